//! A fault-injecting backend for tests: wraps another backend, counts its operations, and fails
//! (or "crashes" at) the Nth write, delete or list, shortens listings, or acknowledges a write
//! without storing it. It decides by counts and a seed only, so every run is reproducible.

use super::{backend_err, Backend, DynBackend, ObjectInfo};
use crate::error::Result;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What to break. Counters are 0-based: `fail_write: Some(0)` fails the first write.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Fail the Nth `write_new`.
    pub fail_write: Option<u64>,
    /// Fail the Nth `delete`.
    pub fail_delete: Option<u64>,
    /// Fail the Nth `list`.
    pub fail_list: Option<u64>,
    /// After the first injected failure, fail every later operation too, as if the process had
    /// died there (nothing it does afterwards reaches storage).
    pub crash: bool,
    /// Return at most this many entries from every listing (a truncated, paginated listing).
    pub short_list: Option<usize>,
    /// Acknowledge the Nth write without storing it (a lost acknowledged write).
    pub lose_write: Option<u64>,
    /// Return the Nth read (whole or ranged, counted over the paths `only_prefix` matches) with
    /// every byte flipped: damage in transit, or a read that does not come back as stored.
    pub garble_read: Option<u64>,
    /// Only count and break objects whose path starts with this (e.g. `data/`); others pass.
    pub only_prefix: Option<String>,
    /// Called with the prefix before every listing, to interleave another actor at an exact
    /// point of an operation (a prune sweep in the middle of a writer's start, say).
    pub before_list: Option<ListHook>,
}

/// A callback run before a listing (see [`FaultPlan::before_list`]).
#[derive(Clone)]
pub struct ListHook(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for ListHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListHook")
    }
}

/// Operation counts of a [`FaultBackend`].
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Writes seen (matching `only_prefix`).
    pub writes: AtomicU64,
    /// Deletes seen.
    pub deletes: AtomicU64,
    /// Listings seen.
    pub lists: AtomicU64,
    /// Reads seen (whole and ranged, any path).
    pub reads: AtomicU64,
    /// Paths read, in order (for tests that must prove a prefix is never read).
    pub read_paths: Mutex<Vec<String>>,
    /// Reads seen that match `only_prefix` (what `garble_read` counts).
    pub matched_reads: AtomicU64,
}

/// The fault-injecting wrapper.
pub struct FaultBackend {
    inner: DynBackend,
    plan: FaultPlan,
    counts: FaultCounts,
    crashed: AtomicBool,
}

impl FaultBackend {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: DynBackend, plan: FaultPlan) -> Self {
        FaultBackend { inner, plan, counts: FaultCounts::default(), crashed: AtomicBool::new(false) }
    }

    /// The operation counts so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }

    /// True once an injected failure has happened under `crash`.
    pub fn has_crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    fn matches(&self, path: &str) -> bool {
        self.plan.only_prefix.as_deref().is_none_or(|p| path.starts_with(p))
    }

    fn dead(&self, op: &'static str, path: &str) -> Result<()> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(backend_err(op, path, "injected fault: the process has crashed"));
        }
        Ok(())
    }

    /// `bytes` read from `path`, garbled when this is the read `garble_read` names.
    fn delivered(&self, path: &str, bytes: Result<Vec<u8>>) -> Result<Vec<u8>> {
        if !self.matches(path) {
            return bytes;
        }
        let n = self.counts.matched_reads.fetch_add(1, Ordering::SeqCst);
        let mut bytes = bytes?;
        if self.plan.garble_read == Some(n) {
            bytes.iter_mut().for_each(|b| *b = !*b);
        }
        Ok(bytes)
    }

    fn inject(&self, op: &'static str, path: &str) -> crate::Error {
        if self.plan.crash {
            self.crashed.store(true, Ordering::SeqCst);
        }
        backend_err(op, path, "injected fault")
    }
}

impl Backend for FaultBackend {
    fn location(&self) -> String {
        format!("fault({})", self.inner.location())
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.dead("read", path)?;
        self.counts.reads.fetch_add(1, Ordering::SeqCst);
        self.counts.read_paths.lock().unwrap_or_else(|p| p.into_inner()).push(path.to_string());
        self.delivered(path, self.inner.read(path))
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.dead("read", path)?;
        self.counts.reads.fetch_add(1, Ordering::SeqCst);
        self.counts.read_paths.lock().unwrap_or_else(|p| p.into_inner()).push(path.to_string());
        self.delivered(path, self.inner.read_range(path, offset, len))
    }

    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        self.dead("write", path)?;
        if self.matches(path) {
            let n = self.counts.writes.fetch_add(1, Ordering::SeqCst);
            if self.plan.fail_write == Some(n) {
                return Err(self.inject("write", path));
            }
            if self.plan.lose_write == Some(n) {
                return Ok(());
            }
        }
        self.inner.write_new(path, data)
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        self.dead("stat", path)?;
        self.inner.stat(path)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.dead("list", prefix)?;
        if let Some(h) = &self.plan.before_list {
            (h.0)(prefix);
        }
        if self.matches(prefix) {
            let n = self.counts.lists.fetch_add(1, Ordering::SeqCst);
            if self.plan.fail_list == Some(n) {
                return Err(self.inject("list", prefix));
            }
        }
        let mut v = self.inner.list(prefix)?;
        if let Some(max) = self.plan.short_list {
            v.truncate(max);
        }
        Ok(v)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.dead("delete", path)?;
        if self.matches(path) {
            let n = self.counts.deletes.fetch_add(1, Ordering::SeqCst);
            if self.plan.fail_delete == Some(n) {
                return Err(self.inject("delete", path));
            }
        }
        self.inner.delete(path)
    }

    fn sync(&self) -> Result<()> {
        self.dead("sync", "")?;
        self.inner.sync()
    }

    fn create_root(&self) -> Result<()> {
        self.dead("create", "")?;
        self.inner.create_root()
    }

    fn guarantees(&self) -> super::Guarantees {
        self.inner.guarantees()
    }

    fn upload_concurrency(&self) -> usize {
        self.inner.upload_concurrency()
    }
}

/// The variable that arms a [`PauseBackend`] in a `cairn` process (test-only; see [`pause_from_env`]).
pub const PAUSE_AT_VAR: &str = "CAIRN_TEST_PAUSE_AT";
/// The variable naming the gate file of a [`PauseBackend`] (test-only).
pub const PAUSE_FILE_VAR: &str = "CAIRN_TEST_PAUSE_FILE";
/// How long a paused operation waits for its release before it fails.
const PAUSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// A test-only wrapper that stops the process once, before one chosen storage operation, until a
/// test releases it: so a test can act (send a signal, kill the process, stop a server) at a known
/// point of an operation instead of after a guessed time.
///
/// Before the `nth` (0-based) operation `op` (`read`, `write`, `stat`, `list` or `delete`) on a
/// path starting with `prefix`, it writes `"OP PATH"` to `FILE.paused` (through a temporary name
/// and a rename, so the file appears whole) and then waits until `FILE` exists. Every other
/// operation passes straight through; the wrapper is transparent otherwise (location, guarantees).
pub struct PauseBackend {
    inner: DynBackend,
    op: String,
    prefix: String,
    nth: u64,
    file: std::path::PathBuf,
    seen: AtomicU64,
}

impl PauseBackend {
    /// Parses `OP:PREFIX[#N]` (see [`PauseBackend`]).
    pub fn new(inner: DynBackend, at: &str, file: std::path::PathBuf) -> Result<Self> {
        let bad = || crate::Error::Usage(format!("{PAUSE_AT_VAR}={at:?}: expected OP:PREFIX[#N]"));
        let (op, rest) = at.split_once(':').ok_or_else(bad)?;
        if !matches!(op, "read" | "write" | "stat" | "list" | "delete") {
            return Err(bad());
        }
        let (prefix, nth) = match rest.rsplit_once('#') {
            Some((p, n)) => (p, n.parse().map_err(|_| bad())?),
            None => (rest, 0),
        };
        Ok(PauseBackend { inner, op: op.into(), prefix: prefix.into(), nth, file, seen: AtomicU64::new(0) })
    }

    fn gate(&self, op: &'static str, path: &str) -> Result<()> {
        if op != self.op || !path.starts_with(&self.prefix) || self.seen.fetch_add(1, Ordering::SeqCst) != self.nth {
            return Ok(());
        }
        let io = |e: std::io::Error| backend_err(op, path, format!("test pause: {}: {e}", self.file.display()));
        let mut paused = self.file.clone().into_os_string();
        paused.push(".paused");
        let mut tmp = paused.clone();
        tmp.push(".tmp");
        std::fs::write(&tmp, format!("{op} {path}")).map_err(io)?;
        std::fs::rename(&tmp, &paused).map_err(io)?;
        let start = std::time::Instant::now();
        while !self.file.exists() {
            if start.elapsed() > PAUSE_LIMIT {
                return Err(backend_err(op, path, "test pause: never released"));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Backend for PauseBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.gate("read", path)?;
        self.inner.read(path)
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.gate("read", path)?;
        self.inner.read_range(path, offset, len)
    }

    fn write_new(&self, path: &str, data: &[u8]) -> Result<()> {
        self.gate("write", path)?;
        self.inner.write_new(path, data)
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>> {
        self.gate("stat", path)?;
        self.inner.stat(path)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.gate("list", prefix)?;
        self.inner.list(prefix)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.gate("delete", path)?;
        self.inner.delete(path)
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn create_root(&self) -> Result<()> {
        self.inner.create_root()
    }

    fn guarantees(&self) -> super::Guarantees {
        self.inner.guarantees()
    }

    fn upload_concurrency(&self) -> usize {
        self.inner.upload_concurrency()
    }
}

/// Test-only hook of [`super::open_url_with`]: with `CAIRN_TEST_PAUSE_AT=OP:PREFIX[#N]` and
/// `CAIRN_TEST_PAUSE_FILE=FILE` set, wraps `inner` in a [`PauseBackend`]; otherwise returns it as
/// it is. Nothing but the black-box tests sets these variables (tests/cli/common.rs, `Pause`).
pub fn pause_from_env(inner: DynBackend) -> Result<DynBackend> {
    let (Some(at), Some(file)) = (std::env::var_os(PAUSE_AT_VAR), std::env::var_os(PAUSE_FILE_VAR)) else {
        return Ok(inner);
    };
    let at = at.to_string_lossy();
    Ok(std::sync::Arc::new(PauseBackend::new(inner, &at, file.into())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fails_the_nth_write_then_everything_after_a_crash() {
        let inner: DynBackend = Arc::new(super::super::opendal::OpendalBackend::memory("f").unwrap());
        let f = FaultBackend::new(inner, FaultPlan { fail_write: Some(1), crash: true, ..Default::default() });
        f.write_new("a/1", b"x").unwrap();
        assert!(f.write_new("a/2", b"y").is_err());
        assert!(f.has_crashed());
        assert!(f.read("a/1").is_err(), "after a crash nothing gets through");
    }

    #[test]
    fn short_listings_and_lost_writes() {
        let inner: DynBackend = Arc::new(super::super::opendal::OpendalBackend::memory("g").unwrap());
        let f = FaultBackend::new(inner, FaultPlan { short_list: Some(2), lose_write: Some(0), ..Default::default() });
        f.write_new("a/0", b"lost").unwrap();
        for i in 1..5 {
            f.write_new(&format!("a/{i}"), b"x").unwrap();
        }
        assert!(f.read("a/0").unwrap_err().is_not_found(), "the acknowledged write was lost");
        assert_eq!(f.list("a/").unwrap().len(), 2);
    }

    #[test]
    fn a_pause_stops_the_nth_matching_operation_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let gate = dir.path().join("gate");
        let inner: DynBackend = Arc::new(super::super::opendal::OpendalBackend::memory("p").unwrap());
        let p = Arc::new(PauseBackend::new(inner, "write:data/#1", gate.clone()).unwrap());
        p.write_new("data/0", b"a").unwrap();
        p.write_new("index/0", b"b").unwrap();
        let q = p.clone();
        let t = std::thread::spawn(move || q.write_new("data/1", b"c"));
        let paused = dir.path().join("gate.paused");
        while !paused.exists() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(std::fs::read_to_string(&paused).unwrap(), "write data/1");
        assert!(p.inner.stat("data/1").unwrap().is_none(), "the paused write went through");
        std::fs::write(&gate, b"").unwrap();
        t.join().unwrap().unwrap();
        p.write_new("data/2", b"d").unwrap();
        assert!(PauseBackend::new(p.clone(), "rename:x", gate.clone()).is_err());
        assert!(PauseBackend::new(p, "write:x#y", gate).is_err());
    }
}

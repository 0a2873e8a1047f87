//! Shared fixtures: a `Repo` (repository + cache dir + password in a private temp dir) that runs the `cairn`
//! binary, deterministic test data, and small file-system helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// The password every fixture repository is created with.
pub const PASSWORD: &str = "correct horse battery staple";

pub fn cairn_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

/// A `Path` as `&str`. The temporary directories the tests use always have UTF-8 names.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("test path is not UTF-8: {p:?}"))
}

/// A cairn repository fixture: a private temp dir holding `repo/` (the repository), `cache/` (the cache dir) and
/// whatever the test creates beside them (source trees, restore targets). `CAIRN_REPOSITORY`, `CAIRN_PASSWORD` and
/// `CAIRN_CACHE_DIR` are set for every command it runs; every other `CAIRN_*` variable of the test's own
/// environment is removed.
pub struct Repo {
    tmp: TempDir,
    /// The canonical path of the temp dir (no symlinks in it, so "made absolute" paths are predictable).
    pub base: PathBuf,
    pub repo: PathBuf,
    pub cache: PathBuf,
    pub password: String,
    /// The `init --json` output (`repository_id`, `key_id`), if this fixture ran `init`.
    pub init_info: Option<Value>,
}

impl Repo {
    /// A fixture with an initialised repository (`cairn init --json` must succeed).
    pub fn new() -> Repo {
        let mut r = Repo::uninit();
        let info = r.json(&["init"]);
        assert!(
            info.get("repository_id").and_then(Value::as_str).is_some()
                && info.get("key_id").and_then(Value::as_str).is_some(),
            "init --json must print {{\"repository_id\": HEX, \"key_id\": HEX}}, got {info}"
        );
        r.init_info = Some(info);
        r
    }

    /// A fixture whose repository path does not exist yet.
    pub fn uninit() -> Repo {
        let tmp = tempfile::Builder::new().prefix("cairn-cli-").tempdir().expect("create temp dir");
        let base = fs::canonicalize(tmp.path()).expect("canonicalize temp dir");
        Repo {
            repo: base.join("repo"),
            cache: base.join("cache"),
            base,
            tmp,
            password: PASSWORD.to_string(),
            init_info: None,
        }
    }

    /// `base/name` (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// `base/name`, created (with parents) as an empty directory.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.base.join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// The `key_id` that `init` reported.
    pub fn init_key_id(&self) -> String {
        self.init_info.as_ref().expect("fixture was not initialised")["key_id"].as_str().unwrap().to_string()
    }

    /// A `Command` for `cairn ARGS...` with this fixture's environment, stdin from /dev/null, and no controlling
    /// terminal (the child runs in a new session), so that a password prompt can never hang a test.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(cairn_bin());
        for (k, _) in std::env::vars_os() {
            if k.as_bytes().starts_with(b"CAIRN_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .env("CAIRN_REPOSITORY", &self.repo)
            .env("CAIRN_PASSWORD", &self.password)
            .env("CAIRN_CACHE_DIR", &self.cache)
            .env("XDG_CACHE_HOME", self.base.join("xdg-cache"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        detach_from_terminal(&mut cmd);
        cmd
    }

    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run_cmd(self.command(args))
    }

    /// Runs `cairn ARGS...` with `data` written to its standard input.
    pub fn run_stdin<S: AsRef<OsStr>>(&self, args: &[S], data: &[u8]) -> Output {
        run_cmd_stdin(self.command(args), data)
    }

    /// Runs `cairn ARGS... --json` with `data` on stdin, asserts exit 0 and parses stdout.
    pub fn json_stdin<S: AsRef<OsStr>>(&self, args: &[S], data: &[u8]) -> Value {
        let args = with_json(args);
        let out = self.run_stdin(&args, data);
        parse_json(&expect_success(&self.command(&args), out))
    }

    /// Runs `cairn ARGS...`, asserts exit 0 and returns stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.run(args);
        String::from_utf8_lossy(&expect_success(&self.command(args), out).stdout).into_owned()
    }

    /// Like `ok` but returns stdout as bytes (for `dump`).
    pub fn ok_bytes<S: AsRef<OsStr>>(&self, args: &[S]) -> Vec<u8> {
        let out = self.run(args);
        expect_success(&self.command(args), out).stdout
    }

    /// Runs `cairn ARGS... --json`, asserts exit 0 and parses stdout as one JSON document.
    pub fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let args = with_json(args);
        let out = self.run(&args);
        let out = expect_success(&self.command(&args), out);
        parse_json(&out)
    }

    /// Runs `cairn ARGS...` and asserts the exit code; returns the output for further checks.
    pub fn expect_code<S: AsRef<OsStr>>(&self, args: &[S], code: i32) -> Output {
        let out = self.run(args);
        assert_code(&self.command(args), &out, code);
        out
    }

    /// Runs `cairn ARGS...` and asserts a usage error: exit 2, and a message on stderr that names each of `names`
    /// (the flag, command or value at fault), so that the user can see what to fix.
    pub fn expect_usage_error<S: AsRef<OsStr>>(&self, args: &[S], names: &[&str]) -> Output {
        let out = self.expect_code(args, 2);
        let err = stderr(&out);
        for name in names {
            assert!(err.contains(name), "the usage error does not name {name:?}\n{}", describe(&out));
        }
        out
    }

    /// `cairn backup PATHS... EXTRA... --json`, asserted to succeed with exit 0. Returns the summary object.
    pub fn backup(&self, paths: &[&Path], extra: &[&str]) -> Value {
        let mut args: Vec<&OsStr> = vec![OsStr::new("backup")];
        args.extend(paths.iter().map(|p| p.as_os_str()));
        args.extend(extra.iter().map(OsStr::new));
        let v = self.json(&args);
        assert!(v.get("snapshot_id").and_then(Value::as_str).is_some(), "backup --json: no snapshot_id in {v}");
        v
    }

    /// `snapshots --json`, as an array.
    pub fn snapshots(&self) -> Vec<Value> {
        self.snapshots_filtered(&[])
    }

    pub fn snapshots_filtered(&self, filter: &[&str]) -> Vec<Value> {
        let mut args = vec!["snapshots"];
        args.extend_from_slice(filter);
        match self.json(&args) {
            Value::Array(a) => a,
            other => panic!("snapshots --json must print an array, got {other}"),
        }
    }

    /// `restore SNAPSHOT --target TARGET`, asserted to succeed.
    pub fn restore(&self, snapshot: &str, target: &Path) {
        self.ok(&["restore", snapshot, "--target", s(target)]);
    }

    /// The paths of `ls SNAPSHOT`, one per output line.
    pub fn ls(&self, snapshot: &str) -> Vec<String> {
        self.ok(&["ls", snapshot]).lines().map(|l| l.trim_end().to_string()).filter(|l| !l.is_empty()).collect()
    }
}

/// `args` with `--json` appended (unless already there).
pub fn with_json<S: AsRef<OsStr>>(args: &[S]) -> Vec<&OsStr> {
    let mut v: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    if !v.iter().any(|a| *a == OsStr::new("--json")) {
        v.push(OsStr::new("--json"));
    }
    v
}

/// Puts the child in a new session: it has no controlling terminal, so `/dev/tty` cannot be opened and a
/// password prompt fails instead of waiting for input.
pub fn detach_from_terminal(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

pub fn run_cmd(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn run_cmd_stdin(mut cmd: Command, data: &[u8]) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    std::thread::scope(|sc| {
        sc.spawn(move || {
            // The child may legitimately stop reading early (e.g. on an error); a broken pipe is not our failure.
            let _ = stdin.write_all(data);
        });
        child.wait_with_output().expect("wait for cairn")
    })
}

/// Spawns `cmd` with piped stdout/stderr (for running several commands at the same time).
pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A pause point in a `cairn` process (the test-only `CAIRN_TEST_PAUSE_AT` hook of src/backend/fault.rs): the
/// process stops before one chosen storage operation and waits until the test releases it, so that the test acts
/// (a signal, a kill, a server outage) at a known point instead of after a guessed time.
pub struct Pause {
    gate: PathBuf,
}

impl Pause {
    /// A pause whose gate file lives in `dir` under `name`.
    pub fn new(dir: &Path, name: &str) -> Pause {
        fs::create_dir_all(dir).unwrap();
        let gate = dir.join(format!("pause-{name}"));
        let p = Pause { gate };
        let _ = fs::remove_file(&p.gate);
        let _ = fs::remove_file(p.paused_file());
        p
    }

    fn paused_file(&self) -> PathBuf {
        PathBuf::from(format!("{}.paused", self.gate.display()))
    }

    /// Arms `cmd` to pause before the `nth` (0-based) operation `op` on a path starting with `prefix`.
    pub fn arm(&self, cmd: &mut Command, op: &str, prefix: &str, nth: u64) {
        cmd.env("CAIRN_TEST_PAUSE_AT", format!("{op}:{prefix}#{nth}")).env("CAIRN_TEST_PAUSE_FILE", &self.gate);
    }

    /// Waits until `child` is paused and returns the operation and path it stopped before (`"write data/…"`).
    /// Panics if the child exits first, or after two minutes.
    pub fn wait(&self, child: &mut Child) -> String {
        let paused = self.paused_file();
        let start = std::time::Instant::now();
        loop {
            if let Ok(what) = fs::read_to_string(&paused) {
                return what;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("cairn exited ({status}) without reaching the pause point");
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(120), "cairn did not reach the pause point");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Lets the paused process go on.
    pub fn release(&self) {
        fs::write(&self.gate, b"").unwrap();
    }
}

fn clip(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() <= max {
        s.into_owned()
    } else {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}… [{} more bytes]", &s[..cut], s.len() - cut)
    }
}

/// A readable account of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        clip(&out.stdout, 4000),
        clip(&out.stderr, 8000)
    )
}

pub fn expect_success(cmd: &Command, out: Output) -> Output {
    assert!(out.status.success(), "command failed: {cmd:?}\n{}", describe(&out));
    out
}

pub fn assert_code(cmd: &Command, out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "expected exit code {code} from {cmd:?}\n{}", describe(out));
}

pub fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not exactly one JSON document ({e}) — `--json` must print nothing else\n{}", describe(out))
    })
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A numeric field of a JSON object, with a useful message when it is missing.
pub fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("no unsigned number `{key}` in {v}"))
}

pub fn string(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string `{key}` in {v}")).to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// Test data

/// `len` pseudo-random (incompressible, unique per seed) bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(b"cairn integration test data");
    h.update(&seed.to_le_bytes());
    let mut out = vec![0u8; len];
    h.finalize_xof().fill(&mut out);
    out
}

/// `len` bytes of highly compressible text.
pub fn compressible_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("{seed:08} line {i:010} the quick brown fox jumps over the lazy dog; status=ok\n").as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

pub fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {path:?}: {e}"));
}

pub fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

/// A timestamp as (seconds, nanoseconds).
pub type Ts = (i64, i64);

/// Sets atime and/or mtime of `path` itself (symlinks are not followed); `None` leaves that time unchanged.
pub fn set_times(path: &Path, atime: Option<Ts>, mtime: Option<Ts>) {
    let spec = |t: Option<Ts>| match t {
        Some((sec, nsec)) => libc::timespec { tv_sec: sec as _, tv_nsec: nsec as _ },
        None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT as _ },
    };
    let times = [spec(atime), spec(mtime)];
    let c = cstring(path);
    // SAFETY: valid NUL-terminated path and a two-element timespec array.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    assert_eq!(r, 0, "utimensat {path:?}: {}", std::io::Error::last_os_error());
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `target/<src without its leading '/'>`: where `restore --target target` puts a backed-up absolute path.
pub fn restored_path(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").expect("absolute source path"))
}

/// Joins relative path bytes to a base path.
pub fn join_rel(base: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(OsStr::from_bytes(rel))
    }
}

/// Every entry under `root` (not following symlinks), as relative path bytes, sorted; the root itself excluded.
pub fn walk(root: &Path) -> Vec<Vec<u8>> {
    fn go(dir: &Path, rel: &[u8], out: &mut Vec<Vec<u8>>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {dir:?}: {e}"))
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let mut r = rel.to_vec();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(name.as_bytes());
            let p = dir.join(&name);
            let is_dir = fs::symlink_metadata(&p).unwrap().is_dir();
            out.push(r.clone());
            if is_dir {
                go(&p, &r, out);
            }
        }
    }
    let mut out = Vec::new();
    go(root, b"", &mut out);
    out
}

/// Regular files under `root` (relative path bytes).
pub fn regular_files(root: &Path) -> Vec<Vec<u8>> {
    walk(root).into_iter().filter(|r| fs::symlink_metadata(join_rel(root, r)).unwrap().is_file()).collect()
}

pub fn show(rel: &[u8]) -> String {
    if rel.is_empty() {
        ".".to_string()
    } else {
        rel.escape_ascii().to_string()
    }
}

/// What a tree holds, ignoring metadata: per relative path, the kind and the content (digest of a regular file,
/// target of a symlink).
pub fn contents(root: &Path) -> BTreeMap<Vec<u8>, String> {
    walk(root)
        .into_iter()
        .map(|rel| {
            let p = join_rel(root, &rel);
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let what = if ft.is_file() {
                format!("file {}", file_digest(&p))
            } else if ft.is_dir() {
                "dir".to_string()
            } else if ft.is_symlink() {
                format!("symlink -> {}", fs::read_link(&p).unwrap().as_os_str().as_bytes().escape_ascii())
            } else if ft.is_fifo() {
                "fifo".to_string()
            } else {
                format!("other {:o}", md_mode(&md))
            };
            (rel, what)
        })
        .collect()
}

fn md_mode(md: &fs::Metadata) -> u32 {
    use std::os::unix::fs::MetadataExt;
    md.mode()
}

/// Asserts that two trees hold the same paths with the same contents (metadata not compared).
pub fn assert_same_contents(expected_root: &Path, actual_root: &Path) {
    assert!(actual_root.is_dir(), "restored tree {actual_root:?} does not exist");
    let a = contents(expected_root);
    let b = contents(actual_root);
    let mut diffs = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => diffs.push(format!("missing: {}", show(k))),
            Some(w) if w != v => diffs.push(format!("differs: {}: expected {v}, got {w}", show(k))),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            diffs.push(format!("unexpected: {}", show(k)));
        }
    }
    assert!(
        diffs.is_empty(),
        "restored tree {actual_root:?} differs from {expected_root:?}:\n{}",
        diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// blake3 of a file's content, hex.
pub fn file_digest(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * KIB];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().to_hex().to_string()
}

/// Every regular file under `root/prefix` (a repository's objects of one kind), sorted.
pub fn objects(root: &Path, prefix: &str) -> Vec<PathBuf> {
    let dir = root.join(prefix);
    regular_files(&dir).iter().map(|r| join_rel(&dir, r)).collect()
}

/// Every object of the repository at `root`: relative path and size.
pub fn object_sizes(root: &Path) -> BTreeSet<(String, u64)> {
    regular_files(root).iter().map(|r| (show(r), fs::symlink_metadata(join_rel(root, r)).unwrap().len())).collect()
}

/// Copies a tree of directories and regular files (a repository) to `dst`.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for rel in walk(src) {
        let from = join_rel(src, &rel);
        let to = join_rel(dst, &rel);
        let md = fs::symlink_metadata(&from).unwrap();
        if md.is_dir() {
            fs::create_dir_all(&to).unwrap();
        } else if md.is_file() {
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {from:?}: {e}"));
        } else {
            panic!("unexpected non-regular entry in a repository: {from:?}");
        }
    }
}

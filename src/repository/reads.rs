//! Reading blobs: locating a blob through the cache, reading its bytes (a tree's out of a window
//! of its pack kept for the trees beside it), opening it (alone, or out of its bundle's body,
//! format-spec §5.5) with its session key and verifying its id. Trees are decoded in
//! [`super::trees`].

use super::{ReadRepository, Repository};
use crate::blob;
use crate::cache::Location;
use crate::crypto::Session;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, PackId};
use crate::layout::pack_path;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes of bundle bodies kept after they were opened: about 8 bundles as writers make them.
const BUNDLE_BODIES_BUDGET: usize = 8 << 20;

/// Tree packs are read in windows of this many bytes, aligned to it: a walk reads many small trees
/// that sit together in few packs, and a remote backend pays a round trip for every read.
const TREE_WINDOW: u64 = 1 << 20;

/// Bytes of tree-pack windows kept.
const TREE_WINDOWS_BUDGET: usize = 8 << 20;

/// Where a bundle was opened: pack, offset, stored length and the session whose key opened it.
type Place = (PackId, u64, u32, [u8; 32]);

/// Byte buffers read or opened lately, by key, newest last, at most `BUDGET` bytes together (one
/// larger than that is not kept). A buffer is only ever sliced: every blob taken from it is
/// verified against its id.
pub(super) struct Recent<K, const BUDGET: usize> {
    entries: VecDeque<(K, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl<K, const BUDGET: usize> Default for Recent<K, BUDGET> {
    fn default() -> Self {
        Recent { entries: VecDeque::new(), bytes: 0 }
    }
}

impl<K: PartialEq, const BUDGET: usize> Recent<K, BUDGET> {
    fn get(&mut self, key: &K) -> Option<Arc<Vec<u8>>> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let e = self.entries.remove(i)?;
        let buf = e.1.clone();
        self.entries.push_back(e);
        Some(buf)
    }

    fn remove(&mut self, key: &K) {
        if let Some(i) = self.entries.iter().position(|(k, _)| k == key) {
            if let Some((_, b)) = self.entries.remove(i) {
                self.bytes -= b.len();
            }
        }
    }

    fn put(&mut self, key: K, buf: Arc<Vec<u8>>) {
        if buf.len() > BUDGET {
            return;
        }
        self.bytes += buf.len();
        self.entries.push_back((key, buf));
        while self.bytes > BUDGET {
            match self.entries.pop_front() {
                Some((_, b)) => self.bytes -= b.len(),
                None => break,
            }
        }
    }
}

/// The bodies of the bundles opened last, by [`Place`].
pub(super) type BundleBodies = Recent<Place, BUNDLE_BODIES_BUDGET>;

/// The windows of tree packs read last, by pack and window start, and the sizes of the packs
/// they came from.
#[derive(Default)]
pub(super) struct TreeWindows {
    windows: Recent<(PackId, u64), TREE_WINDOWS_BUDGET>,
    sizes: HashMap<PackId, u64>,
}

impl Repository {
    /// Where a blob is stored. The first lookup in a process brings the cache up to date with the
    /// index files (a fresh or deleted cache, another host's new snapshot, or a prune elsewhere
    /// that replaced index files and deleted packs the cache still names): one listing of
    /// `index/`, and only new files are read. Any key can do this: the index is not secret to
    /// writers (format-spec §12).
    pub fn locate(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<Location>> {
        if !self.shared.index_synced.load(std::sync::atomic::Ordering::Acquire) {
            let _g = self.shared.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            if !self.shared.index_synced.load(std::sync::atomic::Ordering::Acquire) {
                self.sync_index()?;
            }
        }
        self.shared.cache.lookup(kind, id)
    }

    /// A handle for many [`Repository::locate`] calls in a row, through one cache iterator
    /// ([`crate::cache::Cache::lookups`]), after the same first sync: it sees the blob map as it
    /// is now.
    pub fn lookups(&self) -> Result<super::blobmap::Lookups<'_>> {
        if !self.shared.index_synced.load(std::sync::atomic::Ordering::Acquire) {
            let _g = self.shared.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            if !self.shared.index_synced.load(std::sync::atomic::Ordering::Acquire) {
                self.sync_index()?;
            }
        }
        Ok(self.shared.cache.lookups())
    }
}

impl ReadRepository {
    /// The session of `public`, derived once per process.
    pub(super) fn session(&self, public: &[u8; 32]) -> Result<Session> {
        let mut m = self.shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = m.get(public) {
            return Ok(s.clone());
        }
        let s = Session::for_reading(&self.shared.keys, public)?;
        m.insert(*public, s.clone());
        Ok(s)
    }

    /// Opens a sealed blob read from `loc` (the bytes of its segment: the blob, or the bundle it
    /// is a member of) and verifies its id.
    pub fn open_blob_at(&self, loc: &Location, id: &BlobId, sealed: &[u8]) -> Result<Vec<u8>> {
        let session = self.session(&loc.session)?;
        let repo_id = &self.shared.keys.repo_id;
        let plain = match loc.inner {
            None => blob::open_blob(session.key(), repo_id, loc.kind, id, sealed, loc.plain_length as usize),
            Some(_) if loc.kind != BlobKind::Data => Err("a tree blob cannot be a bundle member".to_string()),
            Some(inner) => {
                let place = (loc.pack, loc.offset, loc.length, loc.session);
                let cached = self.shared.bundles.lock().unwrap_or_else(|p| p.into_inner()).get(&place);
                let body = match cached {
                    Some(b) => Ok(b),
                    None => blob::open_bundle(session.key(), repo_id, sealed).map(|b| {
                        let b = Arc::new(b);
                        self.shared.bundles.lock().unwrap_or_else(|p| p.into_inner()).put(place, b.clone());
                        b
                    }),
                };
                body.and_then(|b| blob::bundle_member(&b, inner, loc.plain_length as usize).map(|m| m.to_vec()))
            }
        }
        .map_err(|e| Error::corrupt_blob(loc.kind, *id, Some(loc.pack), e))?;
        if self.shared.keys.content_id(&plain) != *id {
            return Err(Error::corrupt_blob(loc.kind, *id, Some(loc.pack), "content does not match its id"));
        }
        Ok(plain)
    }

    /// The sealed bytes of the tree at `loc` out of the [`TREE_WINDOW`]-aligned window of its pack
    /// that holds it, read whole the first time (the pack's size from one `stat`, kept). `None`
    /// when the tree is large, the window cannot be read, or it does not hold the tree's bytes (a
    /// wrong index entry): the caller then reads the tree's own range, and fails as it always did.
    fn tree_from_window(&self, loc: &Location, path: &str) -> Option<Vec<u8>> {
        let (offset, len) = (loc.offset, u64::from(loc.length));
        let start = offset - offset % TREE_WINDOW;
        if len > TREE_WINDOW / 4 || offset.saturating_add(len) > start.saturating_add(TREE_WINDOW) {
            return None;
        }
        let windows = || self.shared.tree_windows.lock().unwrap_or_else(|p| p.into_inner());
        let key = (loc.pack, start);
        let cached = windows().windows.get(&key);
        let window = match cached {
            Some(w) => w,
            None => {
                let known = windows().sizes.get(&loc.pack).copied();
                let size = match known {
                    Some(n) => n,
                    None => {
                        let n = self.shared.backend.stat(path).ok()??.size;
                        windows().sizes.insert(loc.pack, n);
                        n
                    }
                };
                let end = size.min(start.saturating_add(TREE_WINDOW));
                if end <= start || offset.saturating_add(len) > end {
                    return None;
                }
                let w = Arc::new(self.shared.backend.read_range(path, start, end - start).ok()?);
                windows().windows.put(key, w.clone());
                w
            }
        };
        let at = (offset - start) as usize;
        window.get(at..at + len as usize).map(<[u8]>::to_vec)
    }

    /// Forgets the window that holds the tree at `loc`: the next tree from it is read again.
    fn drop_window(&self, loc: &Location) {
        let start = loc.offset - loc.offset % TREE_WINDOW;
        self.shared.tree_windows.lock().unwrap_or_else(|p| p.into_inner()).windows.remove(&(loc.pack, start));
    }

    /// Reads the blob at one location (a ranged read of its pack), opens it and verifies its id.
    /// Any key can write an index entry (format-spec §12): this is how a full key tells a real copy
    /// from a forged entry.
    ///
    /// A tree is first taken from a window of its pack ([`Self::tree_from_window`]). When it does
    /// not open from there, its own range is read as for any other blob. Only when those bytes
    /// differ from the window's is the window dropped (it was damaged on its way); when they are
    /// the same, the index entry is what is wrong (a forged one, format-spec §12), the window
    /// stays for the trees beside it, and the error is the window's.
    pub fn read_blob_at(&self, loc: &Location, id: &BlobId) -> Result<Vec<u8>> {
        let path = pack_path(loc.kind, &loc.pack);
        let mut from_window = None;
        if loc.kind == BlobKind::Tree {
            if let Some(sealed) = self.tree_from_window(loc, &path) {
                match self.open_blob_at(loc, id, &sealed) {
                    Ok(plain) => return Ok(plain),
                    Err(e) => from_window = Some((sealed, e)),
                }
            }
        }
        let sealed = self.shared.backend.read_range(&path, loc.offset, loc.length as u64)?;
        if let Some((windowed, e)) = from_window {
            if windowed == sealed {
                return Err(e);
            }
            tracing::debug!("{path}: tree {id} does not open from its window; the window is dropped");
            self.drop_window(loc);
        }
        if sealed.len() != loc.length as usize {
            return Err(Error::corrupt_blob(
                loc.kind,
                *id,
                Some(loc.pack),
                format!("{} bytes at its place, the index says {}", sealed.len(), loc.length),
            ));
        }
        self.open_blob_at(loc, id, &sealed)
    }

    /// Reads, opens and verifies one blob, trying every known location. When every location
    /// names a pack that is gone, the cache is brought up to date once (a prune elsewhere may
    /// have moved the blob) and the lookup is tried again.
    pub fn read_blob(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        match self.read_blob_once(kind, id) {
            Err(e) if e.is_not_found() => {
                self.sync_index()?;
                self.read_blob_once(kind, id)
            }
            r => r,
        }
    }

    fn read_blob_once(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        let locs = self.locate(kind, id)?;
        if locs.is_empty() {
            return Err(Error::corrupt_blob(kind, *id, None, "not in any index"));
        }
        let mut last = None;
        for loc in &locs {
            match self.read_blob_at(loc, id) {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one location"))
    }
}

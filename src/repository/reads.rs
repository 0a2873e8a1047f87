//! Reading blobs: locating a blob through the cache, opening it (alone, or out of its bundle's
//! body, format-spec §5.5) with its session key and verifying its id. Trees are read in
//! [`super::trees`].

use super::{ReadRepository, Repository};
use crate::blob;
use crate::cache::Location;
use crate::crypto::Session;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, PackId};
use crate::layout::pack_path;
use std::collections::VecDeque;
use std::sync::Arc;

/// Bytes of bundle bodies kept after they were opened: about 8 bundles as writers make them.
const BUNDLE_BODIES_BUDGET: usize = 8 << 20;

/// Where a bundle was opened: pack, offset, stored length and the session whose key opened it.
type Place = (PackId, u64, u32, [u8; 32]);

/// The bodies of the bundles opened last, by [`Place`], newest last,
/// at most [`BUNDLE_BODIES_BUDGET`] bytes together. A body is only ever sliced: every member taken
/// from it is verified against its id.
#[derive(Default)]
pub(super) struct BundleBodies {
    bodies: VecDeque<(Place, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl BundleBodies {
    fn get(&mut self, place: &Place) -> Option<Arc<Vec<u8>>> {
        let i = self.bodies.iter().position(|(p, _)| p == place)?;
        let e = self.bodies.remove(i)?;
        let body = e.1.clone();
        self.bodies.push_back(e);
        Some(body)
    }

    fn put(&mut self, place: Place, body: Arc<Vec<u8>>) {
        if body.len() > BUNDLE_BODIES_BUDGET {
            return;
        }
        self.bytes += body.len();
        self.bodies.push_back((place, body));
        while self.bytes > BUNDLE_BODIES_BUDGET {
            match self.bodies.pop_front() {
                Some((_, b)) => self.bytes -= b.len(),
                None => break,
            }
        }
    }
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

    /// Reads the blob at one location (a ranged read of its pack), opens it and verifies its id.
    /// Any key can write an index entry (format-spec §12): this is how a full key tells a real copy
    /// from a forged entry.
    pub fn read_blob_at(&self, loc: &Location, id: &BlobId) -> Result<Vec<u8>> {
        let sealed = self.shared.backend.read_range(&pack_path(loc.kind, &loc.pack), loc.offset, loc.length as u64)?;
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

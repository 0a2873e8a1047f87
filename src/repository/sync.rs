//! Keeping the local cache in step with the index files in storage, and the start of a writing
//! session: the condemned packs of the prune marks (format-spec §6.2, §10.3).

use super::Repository;
use crate::codec::object;
use crate::error::{Error, Result};
use crate::id::{IndexId, PackId};
use crate::index;
use crate::layout::{Object, ObjectType, StoredId};
use rayon::prelude::*;
use std::collections::HashSet;

impl Repository {
    /// Brings the cache's blob map up to date with the index files in storage. An index file
    /// that vanishes between the listing and its read was superseded by prune, which writes the
    /// replacing files first (format-spec §10.6, P3): the sync lists again.
    pub fn sync_index(&self) -> Result<()> {
        for _ in 0..10 {
            if self.sync_index_once()? {
                self.shared.index_synced.store(true, std::sync::atomic::Ordering::Release);
                return Ok(());
            }
        }
        Err(Error::Locked(format!(
            "{}: index files kept vanishing while they were read (a prune running?); try again",
            self.shared.backend.location()
        )))
    }

    /// One pass of [`Repository::sync_index`]; false when an index file vanished meanwhile.
    fn sync_index_once(&self) -> Result<bool> {
        let listed: Vec<IndexId> = self
            .shared
            .backend
            .list(ObjectType::Index.dir())?
            .into_iter()
            .filter_map(|o| IndexId::from_path(&o.path))
            .collect();
        let listed_set: HashSet<IndexId> = listed.iter().copied().collect();
        let ingested: HashSet<IndexId> = self.shared.cache.ingested()?.into_iter().collect();
        if ingested.iter().any(|i| !listed_set.contains(i)) {
            // An index file we relied on is gone (superseded by maintenance): rebuild.
            self.shared.cache.clear_index()?;
            return self.ingest(&listed);
        }
        let new: Vec<IndexId> = listed.into_iter().filter(|i| !ingested.contains(i)).collect();
        self.ingest(&new)
    }

    /// Ingests index files into the cache; false when one of them vanished. A damaged index file
    /// is skipped with a warning (and tried again next time): the blobs it alone describes are
    /// then reported missing by name, and everything else stays readable. Storage and cache
    /// failures stop the sync.
    fn ingest(&self, ids: &[IndexId]) -> Result<bool> {
        self.shared.cache.bulk(ids.len(), || self.ingest_files(ids))
    }

    /// [`Repository::ingest`] without the bulk mode.
    fn ingest_files(&self, ids: &[IndexId]) -> Result<bool> {
        let vanished = std::sync::atomic::AtomicBool::new(false);
        ids.par_iter().try_for_each(|id| match self.read_index(id) {
            Ok(f) => self.shared.cache.ingest_index(id, f.packs()),
            Err(e @ Error::Corrupt { .. }) => {
                tracing::warn!("{e}; skipped (run `cairn check`)");
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                vanished.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        })?;
        Ok(!vanished.into_inner())
    }

    /// Reads and decodes one index file.
    pub fn read_index(&self, id: &IndexId) -> Result<index::IndexFile> {
        let bytes = self.shared.backend.read(&id.path())?;
        object::decode_index(&self.shared.keys, id, &bytes).map_err(|e| Error::corrupt(id.object(), e))
    }

    /// The names of the prune marks in storage, the packs they condemn, and whether a listed mark
    /// vanished before it could be read (a sweep finished meanwhile).
    fn read_marks(&self) -> Result<(HashSet<String>, HashSet<PackId>, bool)> {
        let mut names = HashSet::new();
        let mut out = HashSet::new();
        let mut vanished = false;
        for o in self.shared.backend.list(ObjectType::Mark.dir())? {
            if !matches!(Object::parse(&o.path), Some(Object::Mark(_))) {
                continue;
            }
            let bytes = match self.shared.backend.read(&o.path) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    vanished = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match object::decode_prune_mark(&self.shared.keys, &o.path, &bytes) {
                Ok(m) => out.extend(m.condemned().iter().map(|(_, p)| *p)),
                Err(e) => tracing::warn!("{}: {e}; ignored", o.path),
            }
            names.insert(o.path);
        }
        Ok((names, out, vanished))
    }

    /// The start of a writing session after its lease is taken (format-spec §10.3): brings the
    /// cache up to date with the index and returns the condemned set. Marks are listed before and
    /// after the index sync; if one vanished in between, a sweep finished meanwhile and may have
    /// replaced index files the sync read and deleted packs they name, so the sync runs again.
    pub fn sync_for_writing(&self) -> Result<HashSet<PackId>> {
        let (mut before, _, _) = self.read_marks()?;
        for _ in 0..10 {
            self.sync_index()?;
            let (after, condemned, vanished) = self.read_marks()?;
            if !vanished && before.is_subset(&after) {
                return Ok(condemned);
            }
            before = after;
        }
        Err(Error::Locked(format!(
            "{}: prune marks kept vanishing while a session started (a prune looping?); try again",
            self.shared.backend.location()
        )))
    }
}

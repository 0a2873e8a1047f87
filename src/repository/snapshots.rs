//! Snapshots in storage: listing, loading, resolving a spec, removing.

use super::{ReadRepository, Repository};
use crate::codec::object;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::layout::{ObjectType, StoredId};
use crate::snapshot::{self, Snapshot};
use rayon::prelude::*;

impl Repository {
    /// Snapshot ids in storage.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self
            .shared
            .backend
            .list(ObjectType::Snapshot.dir())?
            .into_iter()
            .filter_map(|o| SnapshotId::from_path(&o.path))
            .collect())
    }
}

impl ReadRepository {
    /// Reads one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let bytes = self.shared.backend.read(&id.path()).map_err(|e| {
            if e.is_not_found() {
                Error::NotFound(format!("snapshot {id}"))
            } else {
                e
            }
        })?;
        let (public, body) = snapshot::split(&bytes).map_err(|e| Error::corrupt(id.object(), e))?;
        let session = self.session(&public)?;
        object::decode_snapshot_body(&self.shared.keys, &session, id, body).map_err(|e| Error::corrupt(id.object(), e))
    }

    /// Removes a snapshot manifest (forget). The data it referenced stays until prune.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.check_writer_version()?;
        self.shared.backend.delete(&id.path())
    }

    /// Every snapshot, oldest first, failing on any that does not open or decode. Prune uses this:
    /// a snapshot it cannot read may reference anything, so it must stop rather than skip it.
    pub fn list_snapshots_strict(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let ids = self.snapshot_ids()?;
        let loaded: Vec<Option<(SnapshotId, Snapshot)>> = ids
            .par_iter()
            .map(|id| match self.load_snapshot(id) {
                Ok(s) => Ok(Some((*id, s))),
                // Deleted between the listing and the read (a concurrent forget).
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect::<Result<_>>()?;
        let mut v: Vec<(SnapshotId, Snapshot)> = loaded.into_iter().flatten().collect();
        v.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
        Ok(v)
    }

    /// Every readable snapshot, oldest first. A snapshot object that does not open or decode is
    /// skipped with a warning naming it (`check` reports it as `snapshot-unreadable`): one damaged
    /// manifest must not stop listings, `latest`, retention or the parent lookup of every later
    /// backup. Storage failures stop the listing.
    pub fn list_snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let ids = self.snapshot_ids()?;
        let loaded: Vec<Result<Option<(SnapshotId, Snapshot)>>> = ids
            .par_iter()
            .map(|id| match self.load_snapshot(id) {
                Ok(s) => Ok(Some((*id, s))),
                Err(e @ Error::Corrupt { .. }) => {
                    tracing::warn!("{e}; skipped (run `cairn check`)");
                    Ok(None)
                }
                // Deleted between the listing and the read (a concurrent forget).
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect();
        let mut v: Vec<(SnapshotId, Snapshot)> = Vec::new();
        for r in loaded {
            v.extend(r?);
        }
        v.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
        Ok(v)
    }

    /// Resolves `latest`, a full id or a unique prefix among `candidates`.
    pub fn resolve_snapshot(&self, spec: &str, candidates: &[(SnapshotId, Snapshot)]) -> Result<SnapshotId> {
        if spec == "latest" {
            return candidates
                .iter()
                .max_by(|a, b| a.1.time().cmp(&b.1.time()))
                .map(|(id, _)| *id)
                .ok_or_else(|| Error::NotFound("snapshot `latest` (no snapshot matches)".into()));
        }
        let spec_l = spec.to_ascii_lowercase();
        if spec_l.len() < 4 || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Usage(format!(
                "{spec:?} is not a snapshot id, a prefix of at least 4 hex digits, or `latest`"
            )));
        }
        let ids = self.snapshot_ids()?;
        let m: Vec<&SnapshotId> = ids.iter().filter(|id| id.to_hex().starts_with(&spec_l)).collect();
        match m.len() {
            0 => Err(Error::NotFound(format!("snapshot {spec}"))),
            1 => Ok(*m[0]),
            n => Err(Error::Usage(format!("snapshot prefix {spec} is ambiguous ({n} snapshots match)"))),
        }
    }
}

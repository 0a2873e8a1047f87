//! The repair operations. `repair index` writes index files, rebuilt from the pack headers, for
//! stored packs that no readable index file describes (packs of an interrupted backup, or packs
//! whose index file was damaged); it only adds. A new index file names the damaged index files it
//! stands in for (`supersedes`), so `check` reports those as superseded rather than as errors, and
//! a later prune can remove them. `repair snapshots` writes, for each snapshot whose trees reference
//! lost data, a new snapshot that keeps every intact item and records what was lost
//! (format-spec §8.2); it removes the original only when asked, after the new one is committed.

use crate::error::Result;
use crate::id::{BlobKind, IndexId, PackId};
use crate::index::IndexPack;
use crate::layout::{Object, ObjectType, StoredId};
use crate::repository::ReadRepository;
use crate::tree::Time;
use crate::writer::{write_index_file, PACKS_PER_INDEX};
use std::collections::HashSet;

mod snapshots;
pub use snapshots::*;

/// Options of `repair index`.
#[derive(Clone, Debug)]
pub struct RepairOptions {
    /// Compute and report; write nothing.
    pub dry_run: bool,
    /// Leave alone packs younger than this many seconds (by the backend's clock): they may
    /// belong to a backup still running, whose own index file is on its way.
    pub min_age_secs: u64,
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions { dry_run: false, min_age_secs: 3600 }
    }
}

/// What `repair index` found and did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RepairReport {
    /// Packs now described by a new index file (hex paths).
    pub indexed: Vec<String>,
    /// Unindexed packs left alone because they are recent.
    pub skipped_recent: Vec<String>,
    /// Packs that could not be read or whose header does not open: (path, reason). Nothing
    /// can be rebuilt from them; `check` reports what they affect.
    pub unreadable: Vec<(String, String)>,
    /// Damaged index files the new index files supersede.
    pub superseded: Vec<String>,
    /// New index files written (empty on a dry run).
    pub index_files: Vec<String>,
}

/// Runs `repair index`.
pub fn repair_index(repo: &ReadRepository, opts: &RepairOptions) -> Result<RepairReport> {
    repo.check_writer_version()?;
    let mut report = RepairReport::default();
    let mut covered: HashSet<PackId> = HashSet::new();
    let mut damaged: Vec<IndexId> = Vec::new();
    let mut superseded: HashSet<IndexId> = HashSet::new();
    for o in repo.backend().list(ObjectType::Index.dir())? {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        match repo.read_index(&id) {
            Ok(f) => {
                covered.extend(f.packs().iter().map(|p| p.id));
                superseded.extend(f.supersedes().iter().copied());
            }
            Err(e) if e.is_not_found() => {}
            Err(crate::Error::Corrupt { .. }) => damaged.push(id),
            Err(e) => return Err(e),
        }
    }
    damaged.retain(|d| !superseded.contains(d));
    let now = Time::now().secs;
    let mut rebuilt: Vec<IndexPack> = Vec::new();
    for kind in [BlobKind::Tree, BlobKind::Data] {
        let t = ObjectType::pack(kind);
        for o in repo.backend().list(t.dir())? {
            let Some(Object::Pack(_, id)) = t.parse(&o.path) else { continue };
            if covered.contains(&id) {
                continue;
            }
            let age = o.modified.map(|m| now - m.secs).unwrap_or(i64::MAX);
            if age < opts.min_age_secs as i64 {
                report.skipped_recent.push(o.path.clone());
                continue;
            }
            let entry = repo
                .backend()
                .read(&o.path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| crate::codec::packer::index_entry(repo.keys(), &id, kind, &bytes));
            match entry {
                Ok(p) => {
                    report.indexed.push(o.path.clone());
                    rebuilt.push(p);
                }
                Err(e) => report.unreadable.push((o.path.clone(), e)),
            }
        }
    }
    // A damaged index file is superseded only when every stored pack is described again after
    // this run: until then it may be the only record of a pack left alone here, and `check` must
    // keep reporting it.
    if !report.skipped_recent.is_empty() || !report.unreadable.is_empty() {
        damaged.clear();
    }
    report.superseded = damaged.iter().map(|d| d.path()).collect();
    if opts.dry_run || (rebuilt.is_empty() && damaged.is_empty()) {
        return Ok(report);
    }
    // The packs were found in storage and read back whole. With nothing to rebuild, one empty
    // index file still records the damaged ones as superseded (their packs are indexed elsewhere).
    let mut chunks: Vec<Vec<IndexPack>> = rebuilt.chunks(PACKS_PER_INDEX).map(<[IndexPack]>::to_vec).collect();
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    for (i, packs) in chunks.into_iter().enumerate() {
        let supersedes = if i == 0 { damaged.clone() } else { Vec::new() };
        let id = write_index_file(repo.backend(), repo.keys(), repo.cache(), supersedes, packs)?;
        report.index_files.push(id.path());
    }
    Ok(report)
}

//! `stats`: how big snapshots are as restored, how many unique blobs they reference and what
//! those take in storage, the dedup ratio between the two, and for the whole repository the index
//! totals and what a prune would return. Reads trees and index files only (nothing under
//! `data/`): sizes of blobs come from index entries, through the one walker
//! ([`crate::trees::Walker`], with its limits) and prune's accounting ([`crate::prune::PackUse`]).

use crate::error::Result;
use crate::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::index::IndexPack;
use crate::layout::{ObjectType, StoredId};
use crate::prune::{PackUse, PruneOptions};
use crate::repository::ReadRepository;
use crate::snapshot::Snapshot;
use crate::time::Time;
use crate::tree::{Content, Node, NodeKind};
use crate::trees::{chunk_list, Control, Visitor, Walker};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;

/// What `stats` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Files and bytes as a restore writes them ([`RestoreSize`]), per snapshot and in all.
    #[default]
    RestoreSize,
    /// The unique blobs the snapshots reference ([`Raw`]).
    Raw,
    /// Both, and their ratio ([`StatsReport::dedup_ratio`]).
    Dedup,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "restore-size" => Ok(Mode::RestoreSize),
            "raw" => Ok(Mode::Raw),
            "dedup" => Ok(Mode::Dedup),
            _ => Err(format!("{s:?} is not a stats mode: write restore-size, raw or dedup")),
        }
    }
}

/// What a restore of snapshots writes. Every name counts (a hardlinked file's names are each a
/// file); `bytes` counts the content of a hardlink group once per snapshot, as a restore writes it
/// once and links the other names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RestoreSize {
    /// Regular files.
    pub files: u64,
    /// Directories (below the root).
    pub dirs: u64,
    /// Symlinks, FIFOs, devices and sockets.
    pub other: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

impl RestoreSize {
    fn add(&mut self, o: &RestoreSize) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.other += o.other;
        self.bytes += o.bytes;
    }
}

/// One snapshot's [`RestoreSize`].
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotSize {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its first 8 hex digits.
    pub short_id: String,
    /// Its time.
    pub time: Time,
    /// Its host.
    pub host: String,
    /// What its restore writes.
    #[serde(flatten)]
    pub size: RestoreSize,
}

/// The unique blobs some snapshots reference (trees, chunk lists and data), each once, with the
/// sizes of its first index entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Raw {
    /// Blobs of both kinds.
    pub blobs: u64,
    /// Data blobs.
    pub data_blobs: u64,
    /// Tree blobs (directory parts and chunk lists).
    pub tree_blobs: u64,
    /// Plain bytes of all of them.
    pub plain_bytes: u64,
    /// Stored (compressed and sealed) bytes of all of them.
    pub stored_bytes: u64,
    /// Plain bytes of the data blobs.
    pub data_plain_bytes: u64,
    /// Stored bytes of the data blobs.
    pub data_stored_bytes: u64,
    /// `plain_bytes / stored_bytes` (none when nothing is stored).
    pub compression_ratio: Option<f64>,
    /// Referenced blobs no index entry names (counted in `blobs`, not in the bytes).
    pub missing_blobs: u64,
}

/// The repository as its index files describe it, and what a prune would return.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RepositoryStats {
    /// Index files read.
    pub index_files: u64,
    /// Packs the index describes.
    pub packs: u64,
    /// Their stored sizes (headers included).
    pub pack_bytes: u64,
    /// Index entries (a blob stored twice counts twice).
    pub blobs: u64,
    /// Their plain bytes.
    pub plain_bytes: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
    /// Entries of blobs no snapshot references.
    pub unused_blobs: u64,
    /// Their stored bytes.
    pub unused_bytes: u64,
    /// Packs none of whose blobs a snapshot references.
    pub unused_packs: u64,
    /// What the next prune with the default options (`--max-unused 5%`, no repack size limit)
    /// would return once its mark is swept: unused packs whole, and the unused blobs of packs past
    /// that share. Stored packs that no index names are not counted.
    pub prune_would_return: u64,
}

/// What `stats` reports; what its mode does not count is none.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatsReport {
    /// The mode.
    pub mode: Mode,
    /// Snapshots counted.
    pub snapshots: usize,
    /// What their restores write, in all (restore-size and dedup).
    pub restore: Option<RestoreSize>,
    /// Per snapshot, oldest first (restore-size).
    pub per_snapshot: Vec<SnapshotSize>,
    /// Their unique blobs (raw and dedup).
    pub raw: Option<Raw>,
    /// `restore.bytes / raw.data_plain_bytes` (dedup; none when there is no data).
    pub dedup_ratio: Option<f64>,
    /// The whole repository (when no snapshot was named).
    pub repository: Option<RepositoryStats>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Counts `snapshots` (oldest first in the report) in `mode`; with `whole_repository`, also the
/// index totals and what a prune would return (which needs every snapshot's blobs: pass them all).
pub fn stats(
    repo: &ReadRepository,
    snapshots: &[(SnapshotId, Snapshot)],
    mode: Mode,
    whole_repository: bool,
) -> Result<StatsReport> {
    let mut report = StatsReport { mode, snapshots: snapshots.len(), ..Default::default() };
    let sizes = mode != Mode::Raw;
    let blobs = mode != Mode::RestoreSize || whole_repository;
    // Counting what restores write walks every snapshot whole; counting blobs alone skips what an
    // earlier snapshot already had.
    let mut walker = if sizes { Walker::new(repo) } else { Walker::new(repo).skip_seen() };
    let mut v =
        StatsVisitor { repo, blobs, size: RestoreSize::default(), groups: HashSet::new(), seen: HashSet::new() };
    let mut order: Vec<&(SnapshotId, Snapshot)> = snapshots.iter().collect();
    order.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
    let mut total = RestoreSize::default();
    for (id, s) in order {
        v.size = RestoreSize::default();
        v.groups.clear();
        v.seen.insert((BlobKind::Tree, s.root()));
        walker.walk(&s.root(), Path::new("/"), &mut v)?;
        if sizes {
            total.add(&v.size);
            if mode == Mode::RestoreSize {
                let (time, host) = (s.time(), s.host().to_string());
                report.per_snapshot.push(SnapshotSize { id: *id, short_id: id.short(), time, host, size: v.size });
            }
        }
    }
    if sizes {
        report.restore = Some(total);
    }
    if mode != Mode::RestoreSize {
        let raw = raw(repo, &v.seen)?;
        report.dedup_ratio = if mode == Mode::Dedup { ratio(total.bytes, raw.data_plain_bytes) } else { None };
        report.raw = Some(raw);
    }
    if whole_repository {
        report.repository = Some(repository(repo, &v.seen)?);
    }
    Ok(report)
}

/// The sizes of `blobs` from their first index entries. A bundle (format-spec §5.5) counts its
/// stored bytes once, with the first of its members met.
fn raw(repo: &ReadRepository, blobs: &HashSet<(BlobKind, BlobId)>) -> Result<Raw> {
    let mut r = Raw::default();
    let mut bundles: HashSet<(PackId, u64)> = HashSet::new();
    for (kind, id) in blobs {
        r.blobs += 1;
        match kind {
            BlobKind::Data => r.data_blobs += 1,
            BlobKind::Tree => r.tree_blobs += 1,
        }
        let Some(loc) = repo.locate(*kind, id)?.into_iter().next() else {
            r.missing_blobs += 1;
            continue;
        };
        let counted = loc.inner.is_some() && !bundles.insert((loc.pack, loc.offset));
        let (plain, stored) = (loc.plain_length as u64, if counted { 0 } else { loc.length as u64 });
        r.plain_bytes += plain;
        r.stored_bytes += stored;
        if *kind == BlobKind::Data {
            r.data_plain_bytes += plain;
            r.data_stored_bytes += stored;
        }
    }
    r.compression_ratio = ratio(r.plain_bytes, r.stored_bytes);
    Ok(r)
}

/// The index totals, and what a prune would return given the blobs every snapshot references.
fn repository(repo: &ReadRepository, used: &HashSet<(BlobKind, BlobId)>) -> Result<RepositoryStats> {
    let mut r = RepositoryStats::default();
    let mut packs: BTreeMap<PackId, IndexPack> = BTreeMap::new();
    for o in repo.backend().list(ObjectType::Index.dir())? {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        r.index_files += 1;
        for ip in repo.read_index(&id)?.packs() {
            packs.entry(ip.id).or_insert_with(|| ip.clone());
        }
    }
    let max_unused = PruneOptions::default().max_unused;
    for ip in packs.values() {
        r.packs += 1;
        r.pack_bytes += ip.size;
        r.blobs += ip.blobs.len() as u64;
        r.plain_bytes += ip.blobs.iter().map(|b| b.plain_length as u64).sum::<u64>();
        let u = PackUse::of(ip, |k, b| used.contains(&(k, *b)));
        r.stored_bytes += u.total_bytes;
        r.unused_blobs += (ip.blobs.len() - u.used.len()) as u64;
        r.unused_bytes += u.unused_bytes();
        r.unused_packs += u64::from(u.used.is_empty());
        r.prune_would_return += u.reclaim(ip, max_unused);
    }
    Ok(r)
}

struct StatsVisitor<'a> {
    repo: &'a ReadRepository,
    /// Collect the blobs referenced.
    blobs: bool,
    /// The current snapshot's sizes.
    size: RestoreSize,
    /// Hardlink groups of the current snapshot already counted.
    groups: HashSet<u64>,
    /// Blobs referenced so far (tree parts, chunk lists, data).
    seen: HashSet<(BlobKind, BlobId)>,
}

impl Visitor for StatsVisitor<'_> {
    fn tree_blob(&mut self, id: &BlobId, _: &[u8]) {
        if self.blobs {
            self.seen.insert((BlobKind::Tree, *id));
        }
    }

    fn node(&mut self, _: &Path, n: &Node) -> Result<Control> {
        match &n.kind {
            NodeKind::File { content } => {
                self.size.files += 1;
                if n.hardlink == 0 || self.groups.insert(n.hardlink) {
                    self.size.bytes += n.size;
                }
                if self.blobs {
                    self.file_blobs(content)?;
                }
            }
            NodeKind::Dir { tree } => {
                self.size.dirs += 1;
                if self.blobs {
                    self.seen.insert((BlobKind::Tree, *tree));
                }
            }
            _ => self.size.other += 1,
        }
        Ok(Control::Descend)
    }
}

impl StatsVisitor<'_> {
    fn file_blobs(&mut self, content: &Content) -> Result<()> {
        match content {
            Content::Chunks(ids) => self.seen.extend(ids.iter().map(|i| (BlobKind::Data, *i))),
            Content::Inline(_) => {}
            Content::Indirect { lists, .. } => {
                for l in lists {
                    if self.seen.insert((BlobKind::Tree, *l)) {
                        let ids = chunk_list(self.repo, l).map_err(|f| f.into_error(l))?;
                        self.seen.extend(ids.into_iter().map(|i| (BlobKind::Data, i)));
                    }
                }
            }
        }
        Ok(())
    }
}

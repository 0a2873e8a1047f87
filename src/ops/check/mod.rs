//! The check operation: verifies a repository's structure, and on request its data, and reports
//! what it finds as data (each finding names the object, and the snapshots and paths it affects).
//! It only reads. Without data reading it reads nothing under `data/` (which may sit in an
//! archive tier): data packs are checked by listing and size against the index. Key files and
//! config objects are checked too, as far as a reader without their passwords can (format-spec
//! §4, §9).

use crate::codec::packer;
use crate::error::Result;
use crate::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::index::IndexPack;
use crate::layout::{pack_path, Object, ObjectType, StoredId};
use crate::repository::ReadRepository;
use crate::tree::{Node, NodeKind};
use crate::trees::{chunk_ids, Control, DirFault, Listing, Visitor, Walker};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

mod keys;
mod prune_state;

/// Which data packs `check` reads in full.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ReadData {
    /// None: data packs are checked by listing and size only.
    #[default]
    None,
    /// Every data pack.
    All,
    /// Part `n` of `m` (1-based): the packs whose id falls in that share.
    Subset {
        /// Which part, 1..=m.
        n: u64,
        /// How many parts.
        m: u64,
    },
    /// About this percentage of the packs (0 < p ≤ 100), always the same ones for the same ids.
    Percent(f64),
    /// One of `days` shares, chosen by the day number `day` (days since the epoch), so that
    /// every pack is read once in `days` consecutive days.
    Rotation {
        /// Length of the rotation.
        days: u64,
        /// Today's day number.
        day: u64,
    },
}

impl std::str::FromStr for ReadData {
    type Err = String;
    /// A share as written after `--read-data-subset`: `N/M` (part N of M, e.g. `1/30`) or `P%`
    /// (0 < P <= 100, e.g. `10%`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{s:?} is not a share: write N/M (e.g. 1/30) or P% (e.g. 10%)");
        if let Some(p) = s.trim().strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            return Ok(ReadData::Percent(p));
        }
        let (n, m) = s.split_once('/').ok_or_else(bad)?;
        let (n, m): (u64, u64) = (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
        if m == 0 || n == 0 || n > m {
            return Err(bad());
        }
        Ok(ReadData::Subset { n, m })
    }
}

impl ReadData {
    /// True when the pack is in the selected share.
    pub fn selects(&self, id: &PackId) -> bool {
        let x = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Subset { n, m } => m > 0 && x % m == (n.max(1) - 1) % m,
            ReadData::Percent(p) => (x as f64) < (p / 100.0) * (u64::MAX as f64),
            ReadData::Rotation { days, day } => days > 0 && x % days == day % days,
        }
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data is damaged or unreachable: some restore will fail.
    Error,
    /// Harmless leftovers (e.g. packs of an interrupted backup that prune will collect).
    Info,
}

/// One thing `check` found.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// A stable code, e.g. `pack-missing`, `blob-corrupt`, `snapshot-unreadable`.
    pub code: &'static str,
    /// The object, e.g. `data/ab/<id>`, `index/<id>`, `snapshots/<id>`, `blob <id>`.
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// Snapshots it affects (hex ids).
    pub snapshots: Vec<String>,
    /// Paths it affects (at most a few per finding).
    pub paths: Vec<String>,
}

/// What `check` looked at and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: u64,
    /// Index files read.
    pub index_files: u64,
    /// Data packs in the index.
    pub data_packs: u64,
    /// Tree packs in the index (all read).
    pub tree_packs: u64,
    /// Distinct trees walked.
    pub trees: u64,
    /// Data packs read in full.
    pub data_packs_read: u64,
    /// Blobs opened and verified.
    pub blobs_verified: u64,
    /// Bytes read from packs.
    pub bytes_read: u64,
    /// The findings, errors first.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Number of findings of severity error.
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }
}

/// Options of a check.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Which data packs to read.
    pub read_data: ReadData,
}

const MAX_PATHS: usize = 5;

struct Walk<'a> {
    repo: &'a ReadRepository,
    listed: &'a HashMap<PackId, u64>,
    bad_blobs: &'a HashMap<BlobId, usize>,
    missing_packs: &'a HashMap<PackId, usize>,
    findings: Vec<Finding>,
    /// Per tree: the findings under it, so a later snapshot sharing the tree is named too.
    trees: HashMap<BlobId, Vec<usize>>,
    /// The snapshot being walked.
    snap: SnapshotId,
    /// Per directory being walked, root first: the findings under it so far.
    under: Vec<Vec<usize>>,
}

impl Walk<'_> {
    fn add(&mut self, f: Finding) -> usize {
        self.findings.push(f);
        self.findings.len() - 1
    }

    fn note(&mut self, idx: usize, path: &Path) {
        let f = &mut self.findings[idx];
        let s = self.snap.to_hex();
        if !f.snapshots.contains(&s) {
            f.snapshots.push(s);
        }
        let p = path.display().to_string();
        if f.paths.len() < MAX_PATHS && !f.paths.contains(&p) {
            f.paths.push(p);
        }
    }

    fn error(code: &'static str, object: String, message: String) -> Finding {
        Finding { severity: Severity::Error, code, object, message, snapshots: vec![], paths: vec![] }
    }

    /// Checks one data blob's location; returns the finding index if something is wrong.
    fn data_blob(&mut self, id: &BlobId) -> Option<usize> {
        if let Some(&i) = self.bad_blobs.get(id) {
            return Some(i);
        }
        match self.repo.locate(BlobKind::Data, id) {
            Err(e) => Some(self.add(Self::error("cache", format!("blob {id}"), e.to_string()))),
            Ok(locs) if locs.is_empty() => Some(self.add(Self::error(
                "blob-missing",
                format!("blob {id}"),
                "data blob is in no index file".into(),
            ))),
            Ok(locs) => {
                if locs.iter().any(|l| self.listed.contains_key(&l.pack)) {
                    None
                } else if let Some(&i) = locs.iter().find_map(|l| self.missing_packs.get(&l.pack)) {
                    Some(i)
                } else {
                    let p = pack_path(BlobKind::Data, &locs[0].pack);
                    Some(self.add(Self::error(
                        "blob-missing",
                        format!("blob {id}"),
                        format!("its pack {p} is not in storage"),
                    )))
                }
            }
        }
    }
}

/// The walk over one snapshot's trees: a directory already walked (in any snapshot) is not read
/// again; its findings are noted for this snapshot and path too.
impl Visitor for Walk<'_> {
    fn enter(&mut self, path: &Path, tree: &BlobId) -> Result<Control> {
        let Some(v) = self.trees.get(tree).cloned() else {
            self.under.push(Vec::new());
            return Ok(Control::Descend);
        };
        for &i in &v {
            self.note(i, path);
        }
        if let Some(up) = self.under.last_mut() {
            up.extend(v);
        }
        Ok(Control::Skip)
    }

    fn fault(&mut self, path: &Path, tree: &BlobId, fault: DirFault, _: &Listing) -> Result<Control> {
        let e = fault.into_error(tree);
        let i = self.add(Self::error("tree-unreadable", format!("tree {tree}"), e.to_string()));
        self.note(i, path);
        self.under.last_mut().expect("entered").push(i);
        Ok(Control::Skip)
    }

    fn node(&mut self, path: &Path, n: &Node) -> Result<Control> {
        let NodeKind::File { content } = &n.kind else {
            return Ok(Control::Descend);
        };
        let mut under = Vec::new();
        match chunk_ids(self.repo, content) {
            Err(e) => {
                let i = self.add(Self::error("tree-unreadable", "chunk list".into(), e.to_string()));
                self.note(i, path);
                under.push(i);
            }
            Ok(ids) => {
                let mut seen = HashSet::new();
                for id in ids {
                    if !seen.insert(id) {
                        continue;
                    }
                    if let Some(i) = self.data_blob(&id) {
                        self.note(i, path);
                        under.push(i);
                    }
                }
            }
        }
        self.under.last_mut().expect("entered").extend(under);
        Ok(Control::Skip)
    }

    fn leave(&mut self, _: &Path, tree: &BlobId) -> Result<()> {
        let mut under = self.under.pop().expect("entered");
        under.sort_unstable();
        under.dedup();
        self.trees.insert(*tree, under.clone());
        if let Some(up) = self.under.last_mut() {
            up.extend(under);
        }
        Ok(())
    }
}

/// The packs of one kind in the storage listing, with their stored sizes (no pack is read).
pub(crate) fn listing(repo: &ReadRepository, kind: BlobKind) -> Result<HashMap<PackId, u64>> {
    let t = ObjectType::pack(kind);
    Ok(repo
        .backend()
        .list(t.dir())?
        .into_iter()
        .filter_map(|o| match t.parse(&o.path) {
            Some(Object::Pack(_, id)) => Some((id, o.size)),
            _ => None,
        })
        .collect())
}

/// Reads a whole pack and compares it with its index entry; returns findings and, for data packs
/// when asked, the ids of blobs that failed to open.
type PackCheck = (Vec<Finding>, Vec<(BlobId, usize)>, u64, u64);

fn read_pack(repo: &ReadRepository, p: &IndexPack, verify_blobs: bool) -> PackCheck {
    let path = pack_path(p.kind, &p.id);
    let err = |code, msg: String| Walk::error(code, path.clone(), msg);
    let bytes = match repo.backend().read(&path) {
        Ok(b) => b,
        Err(e) => {
            return (vec![err("pack-unreadable", e.to_string())], p.blobs.iter().map(|b| (b.id, 0)).collect(), 0, 0)
        }
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let n = bytes.len() as u64;
    if *blake3::hash(&bytes).as_bytes() != p.id.0 {
        out.push(err("pack-corrupt", "its bytes do not hash to its id".into()));
    }
    match packer::parse_pack(repo.keys(), &bytes) {
        Err(e) => out.push(err("pack-corrupt", format!("header: {e}"))),
        Ok((header, blobs)) => {
            if header.sessions() != p.sessions.as_slice() || blobs != p.blobs {
                out.push(err("index-mismatch", "the pack header and the index disagree".into()));
            }
        }
    }
    let mut verified = 0;
    if verify_blobs {
        for b in &p.blobs {
            let loc = crate::cache::Location {
                kind: b.kind,
                pack: p.id,
                offset: b.offset,
                length: b.length,
                plain_length: b.plain_length,
                session: p.sessions.get(b.session as usize).copied().unwrap_or([0; 32]),
            };
            let start = b.offset as usize;
            let r = bytes
                .get(start..start.saturating_add(b.length as usize))
                .ok_or_else(|| "blob lies outside the pack".to_string())
                .and_then(|sealed| repo.open_blob_at(&loc, &b.id, sealed).map_err(|e| e.to_string()));
            match r {
                Ok(_) => verified += 1,
                Err(e) => {
                    bad.push((b.id, out.len()));
                    out.push(Walk::error("blob-corrupt", format!("blob {} in {path}", b.id), e));
                }
            }
        }
    }
    (out, bad, n, verified)
}

/// Runs a check.
pub fn check(repo: &ReadRepository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut findings = Vec::new();

    keys::keys_and_config(repo, &mut findings)?;
    prune_state::prune_state(repo, &mut findings)?;

    // Index files, and the packs they describe.
    let index_ids: Vec<IndexId> =
        repo.backend().list(ObjectType::Index.dir())?.into_iter().filter_map(|o| IndexId::from_path(&o.path)).collect();
    let read: Vec<(IndexId, Result<crate::index::IndexFile>)> =
        index_ids.par_iter().map(|id| (*id, repo.read_index(id))).collect();
    let mut packs: BTreeMap<PackId, (IndexPack, Vec<IndexId>)> = BTreeMap::new();
    let mut superseded: HashSet<IndexId> = HashSet::new();
    let mut unreadable = Vec::new();
    for (id, r) in read {
        report.index_files += 1;
        match r {
            Err(e) => unreadable.push((id, e)),
            Ok(f) => {
                superseded.extend(f.supersedes().iter().copied());
                for p in f.packs() {
                    packs.entry(p.id).or_insert_with(|| (p.clone(), Vec::new())).1.push(id);
                }
            }
        }
    }
    for (id, e) in unreadable {
        if superseded.contains(&id) {
            findings.push(Finding {
                severity: Severity::Info,
                code: "index-superseded",
                object: id.path(),
                message: format!("{e}; a newer index file supersedes it (`repair index`), prune removes it"),
                snapshots: vec![],
                paths: vec![],
            });
        } else {
            findings.push(Walk::error("index-unreadable", id.path(), e.to_string()));
        }
    }
    for (id, (_, files)) in &packs {
        let live: Vec<&IndexId> = files.iter().filter(|f| !superseded.contains(f)).collect();
        if live.len() > 1 {
            let names: Vec<String> = live.iter().map(|f| f.path()).collect();
            findings.push(Walk::error(
                "pack-duplicate",
                format!("pack {id}"),
                format!("listed by several index files: {}", names.join(", ")),
            ));
        }
    }

    // Storage listings against the index.
    let listed_data = listing(repo, BlobKind::Data)?;
    let listed_tree = listing(repo, BlobKind::Tree)?;
    let mut missing_packs: HashMap<PackId, usize> = HashMap::new();
    let mut listed_all: HashMap<PackId, u64> = listed_data.clone();
    listed_all.extend(listed_tree.iter().map(|(k, v)| (*k, *v)));
    for (id, (p, _)) in &packs {
        match p.kind {
            BlobKind::Data => report.data_packs += 1,
            BlobKind::Tree => report.tree_packs += 1,
        }
        let listed = if p.kind == BlobKind::Data { &listed_data } else { &listed_tree };
        let path = pack_path(p.kind, id);
        match listed.get(id) {
            None => {
                missing_packs.insert(*id, findings.len());
                findings.push(Walk::error("pack-missing", path, "in the index but not in storage".into()))
            }
            Some(&size) if size != p.size => {
                findings.push(Walk::error("pack-size", path, format!("stored size {size}, the index says {}", p.size)))
            }
            Some(_) => {}
        }
    }
    for (kind, listed) in [(BlobKind::Data, &listed_data), (BlobKind::Tree, &listed_tree)] {
        for id in listed.keys().filter(|id| !packs.contains_key(id)) {
            findings.push(Finding {
                severity: Severity::Info,
                code: "pack-unindexed",
                object: pack_path(kind, id),
                message: "in storage but in no index file (left by an interrupted run; prune collects it)".into(),
                snapshots: vec![],
                paths: vec![],
            });
        }
    }

    // Tree packs are always read; data packs only when asked.
    let to_read: Vec<&IndexPack> = packs
        .values()
        .map(|(p, _)| p)
        .filter(|p| listed_all.contains_key(&p.id))
        .filter(|p| p.kind == BlobKind::Tree || opts.read_data.selects(&p.id))
        .collect();
    let results: Vec<(PackCheck, BlobKind)> =
        to_read.par_iter().map(|p| (read_pack(repo, p, p.kind == BlobKind::Data), p.kind)).collect();
    let mut bad_blobs: HashMap<BlobId, usize> = HashMap::new();
    for ((f, bad, n, v), kind) in results {
        report.bytes_read += n;
        report.blobs_verified += v;
        if kind == BlobKind::Data {
            report.data_packs_read += 1;
        }
        let first = findings.len();
        findings.extend(f);
        for (id, local) in bad {
            bad_blobs.entry(id).or_insert(first + local);
        }
    }

    // Every snapshot's trees resolve, and every data blob they name is indexed and stored.
    repo.sync_index()?;
    let mut walk = Walk {
        repo,
        listed: &listed_all,
        bad_blobs: &bad_blobs,
        missing_packs: &missing_packs,
        findings,
        trees: HashMap::new(),
        snap: SnapshotId([0; 32]),
        under: Vec::new(),
    };
    let mut walker = Walker::new(repo);
    for sid in repo.snapshot_ids()? {
        report.snapshots += 1;
        match repo.load_snapshot(&sid) {
            Err(e) => {
                walk.add(Walk::error("snapshot-unreadable", sid.path(), e.to_string()));
            }
            Ok(s) => {
                walk.snap = sid;
                walker.walk(&s.root(), Path::new("/"), &mut walk)?;
            }
        }
    }
    report.trees = walk.trees.len() as u64;
    let mut findings = walk.findings;
    // A missing pack that no snapshot needs (e.g. after `repair snapshots --forget`) breaks no
    // restore: a note, as long as every snapshot and tree could be walked to know that.
    let complete = !findings.iter().any(|f| f.code == "snapshot-unreadable" || f.code == "tree-unreadable");
    if complete {
        for f in findings.iter_mut().filter(|f| f.code == "pack-missing" && f.snapshots.is_empty()) {
            f.severity = Severity::Info;
            f.message.push_str("; no snapshot references its blobs (prune drops it from the index)");
        }
    }
    findings.sort_by_key(|f| f.severity);
    report.findings = findings;
    Ok(report)
}

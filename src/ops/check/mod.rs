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
use crate::snapshot::Snapshot;
use crate::trees::Walker;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

mod keys;
mod prune_state;
mod walk;

use walk::Walk;

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
    /// The share as the ledger records it (format-spec §13.3); `None` when no data is read. A
    /// percentage is kept to parts per million.
    pub fn share(&self) -> Option<crate::ledger::ReadShare> {
        use crate::ledger::ReadShare;
        match *self {
            ReadData::None => None,
            ReadData::All => Some(ReadShare::All),
            ReadData::Subset { n, m } => Some(ReadShare::Subset { n, m }),
            ReadData::Percent(p) => Some(ReadShare::Percent { ppm: (p * 10_000.0).round().clamp(1.0, 1e6) as u32 }),
            ReadData::Rotation { days, day } => Some(ReadShare::Rotation { days, day }),
        }
    }

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
    /// Data is damaged or unreachable: some restore will fail; or a snapshot's writer signature
    /// does not verify or its host is not allowed (format-spec §4.3).
    Error,
    /// Suspicious but not damage: a snapshot dated in the future (format-spec §4.3).
    Warning,
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

/// `size` is the pack's size in the storage listing: it is read as one range of that length, so a
/// remote backend fills one buffer of the right size as the bytes arrive.
fn read_pack(
    repo: &ReadRepository,
    p: &IndexPack,
    size: u64,
    claims: &[(IndexId, IndexPack)],
    verify_blobs: bool,
) -> PackCheck {
    let path = pack_path(p.kind, &p.id);
    let err = |code, msg: String| Walk::error(code, path.clone(), msg);
    let bytes = match repo.backend().read_range(&path, 0, size) {
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
            // Every index file's entry, not only the first: any key can write one (format-spec §12).
            for (file, claim) in claims {
                if let Some(what) = index_disagrees(claim, header.sessions(), &blobs, n) {
                    out.push(err(
                        "index-mismatch",
                        format!("index file {file} disagrees with the pack header: {what}"),
                    ));
                }
            }
        }
    }
    let mut verified = 0;
    if verify_blobs {
        for b in &p.blobs {
            let start = b.offset as usize;
            let r = crate::cache::Location::of(p, b)
                .ok_or_else(|| "its index entry names no session of the pack".to_string())
                .and_then(|loc| {
                    let sealed = bytes
                        .get(start..start.saturating_add(b.length as usize))
                        .ok_or_else(|| "blob lies outside the pack".to_string())?;
                    repo.open_blob_at(&loc, &b.id, sealed).map_err(|e| e.to_string())
                });
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

/// How an index entry for a pack differs from the pack's header (and size), naming the first
/// blob that differs; `None` when they agree.
fn index_disagrees(
    claim: &IndexPack,
    sessions: &[[u8; 32]],
    blobs: &[crate::index::IndexBlob],
    size: u64,
) -> Option<String> {
    if claim.size != size {
        return Some(format!("{size} bytes stored, the index says {}", claim.size));
    }
    if claim.sessions != sessions {
        return Some("their session tables differ".into());
    }
    let differs = |i: usize| match (claim.blobs.get(i), blobs.get(i)) {
        (Some(c), Some(h)) if c == h => None,
        (Some(c), _) => Some(format!("the index claims blob {} at offset {}, the header does not", c.id, c.offset)),
        (None, Some(h)) => Some(format!("the header holds blob {}, the index does not name it", h.id)),
        (None, None) => None,
    };
    (0..claim.blobs.len().max(blobs.len())).find_map(differs)
}

/// Whether a blob that failed to open at one location has another indexed copy that opens and
/// verifies: then the failing entry is forged or damaged, and no snapshot loses the blob.
fn good_copy_elsewhere(repo: &ReadRepository, kind: BlobKind, id: &BlobId, bad: &PackId) -> Option<PackId> {
    let locs = repo.locate(kind, id).ok()?;
    locs.iter().filter(|l| l.pack != *bad).find(|l| repo.read_blob_at(l, id).is_ok()).map(|l| l.pack)
}

/// An index file as `check` keeps it: what it supersedes, and its packs.
type SlimIndex = (Vec<IndexId>, Vec<IndexPack>);

/// [`SlimIndex`] of `f`: the blob list of each data pack that `read_data` does not select emptied.
fn slim_index(f: crate::index::IndexFile, read_data: &ReadData) -> SlimIndex {
    let supersedes = f.supersedes().to_vec();
    let mut packs = f.into_packs();
    for p in packs.iter_mut().filter(|p| p.kind == BlobKind::Data && !read_data.selects(&p.id)) {
        p.blobs = Vec::new();
    }
    (supersedes, packs)
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
    // Each file is slimmed as it is read: the blob list of a data pack that is not read is
    // dropped (nothing looks at it), so memory follows the packs, not the blobs, and no file is
    // held twice (benches/README.md "Scale").
    let read: Vec<(IndexId, Result<SlimIndex>)> =
        index_ids.par_iter().map(|id| (*id, repo.read_index(id).map(|f| slim_index(f, &opts.read_data)))).collect();
    let mut packs: BTreeMap<PackId, (IndexPack, Vec<IndexId>)> = BTreeMap::new();
    // Every index file's entry of each pack that is read (its blob list included).
    let mut claims: HashMap<PackId, Vec<(IndexId, IndexPack)>> = HashMap::new();
    let mut superseded: HashSet<IndexId> = HashSet::new();
    let mut unreadable = Vec::new();
    for (id, r) in read {
        report.index_files += 1;
        match r {
            Err(e) => unreadable.push((id, e)),
            Ok((supersedes, file_packs)) => {
                superseded.extend(supersedes);
                for p in file_packs {
                    if p.kind == BlobKind::Tree || opts.read_data.selects(&p.id) {
                        claims.entry(p.id).or_default().push((id, p.clone()));
                    }
                    packs.entry(p.id).or_insert_with(|| (p, Vec::new())).1.push(id);
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
    let results: Vec<(PackCheck, BlobKind)> = to_read
        .par_iter()
        .map(|p| {
            let c = claims.get(&p.id).map(Vec::as_slice).unwrap_or_default();
            let size = listed_all.get(&p.id).copied().unwrap_or_default();
            (read_pack(repo, p, size, c, p.kind == BlobKind::Data), p.kind)
        })
        .collect();
    let mut bad_blobs: HashMap<BlobId, usize> = HashMap::new();
    for (((f, bad, n, v), kind), p) in results.into_iter().zip(&to_read) {
        report.bytes_read += n;
        report.blobs_verified += v;
        if kind == BlobKind::Data {
            report.data_packs_read += 1;
        }
        let first = findings.len();
        findings.extend(f);
        for (id, local) in bad {
            let i = first + local;
            // A blob that opens elsewhere is not lost: the entry that failed is forged or damaged
            // (format-spec §12), and no snapshot is affected by it.
            if findings[i].code == "blob-corrupt" {
                if let Some(good) = good_copy_elsewhere(repo, kind, &id, &p.id) {
                    let f = &mut findings[i];
                    f.code = "index-forged";
                    f.message = format!(
                        "the index entry for blob {id} in {} does not give the blob ({}), while its copy in {} verifies: a forged or damaged index entry",
                        pack_path(kind, &p.id),
                        f.message,
                        pack_path(kind, &good)
                    );
                    continue;
                }
            }
            bad_blobs.entry(id).or_insert(i);
        }
    }

    // Every snapshot's trees resolve, and every data blob they name is indexed and stored.
    repo.sync_index()?;
    let mut walk = Walk::new(repo, &listed_all, &bad_blobs, &missing_packs, findings)?;
    let mut walker = Walker::new(repo);
    for sid in repo.snapshot_ids()? {
        report.snapshots += 1;
        match repo.load_snapshot(&sid) {
            Err(e) => {
                walk.add(Walk::error("snapshot-unreadable", sid.path(), e.to_string()));
            }
            Ok(s) => {
                attribution_findings(repo, &sid, &s, &mut walk)?;
                walk.start(sid);
                walker.walk(&s.root(), Path::new("/"), &mut walk)?;
            }
        }
    }
    report.trees = walk.trees.len() as u64;
    let mut findings = walk.findings;
    // A missing pack that no snapshot needs (e.g. after `repair snapshots --forget`) breaks no
    // restore: a note, as long as every snapshot and tree could be walked to know that.
    let complete = !findings.iter().any(|f| matches!(f.code, "snapshot-unreadable" | "tree-unreadable" | "tree-limit"));
    if complete {
        for f in findings.iter_mut().filter(|f| f.code == "pack-missing" && f.snapshots.is_empty()) {
            f.severity = Severity::Info;
            f.message.push_str("; no snapshot references its blobs (prune drops it from the index)");
        }
    }
    findings.sort_by_key(|f| f.severity);
    report.findings = findings;
    // The ledger entry (format-spec §13.3): the result and the BLAKE3 of the report's JSON; a
    // storage that refuses it (read-only credentials) gets a warning, not a failed check.
    // A check that read data records which share it read (`check-data`), so a report can tell
    // how much of the data the checks of a period covered.
    let errors = report.errors() as u64;
    let warnings = report.findings.iter().filter(|f| f.severity == Severity::Warning).count() as u64;
    let report_hash = crate::id::Digest(*blake3::hash(&serde_json::to_vec(&report).unwrap_or_default()).as_bytes());
    let event = match opts.read_data.share() {
        None => crate::ledger::Event::Check { errors, warnings, report_hash },
        Some(share) => crate::ledger::Event::CheckData {
            errors,
            warnings,
            report_hash,
            data_packs: report.data_packs,
            data_packs_read: report.data_packs_read,
            share,
        },
    };
    if let Some(message) = repo.ledger_note(event) {
        let (object, snapshots, paths) = ("ledger/".to_string(), Vec::new(), Vec::new());
        let f = Finding { severity: Severity::Warning, code: "ledger-unrecorded", object, message, snapshots, paths };
        report.findings.push(f);
    }
    Ok(report)
}

/// `snapshot-forged`, `snapshot-host-not-allowed` and `snapshot-revoked` (errors) and
/// `snapshot-future` (a warning) for snapshot `sid` (format-spec §4.3).
fn attribution_findings(repo: &ReadRepository, sid: &SnapshotId, s: &Snapshot, walk: &mut Walk) -> Result<()> {
    use crate::cert::Attribution;
    use crate::select::Flag;
    let (att, allowed) = repo.attribute_snapshot(sid, s)?;
    for flag in crate::select::flags(&att, allowed, s.time(), crate::time::Time::now()) {
        let (code, severity, message) = match (flag, &att) {
            (Flag::Forged, Attribution::Forged(why)) => ("snapshot-forged", Severity::Error, why.clone()),
            (Flag::HostNotAllowed, Attribution::Attributed { key_id, hosts, .. }) if !hosts.is_empty() => (
                "snapshot-host-not-allowed",
                Severity::Error,
                format!("claims host {:?}; its writer key {key_id} may write only for {}", s.host(), hosts.join(", ")),
            ),
            (Flag::HostNotAllowed, _) => (
                "snapshot-host-not-allowed",
                Severity::Error,
                format!(
                    "claims host {:?}, which is bound to other keys, but was written by {}",
                    s.host(),
                    att.key_id().map_or("no attributed key".to_string(), |k| format!("key {k}"))
                ),
            ),
            (Flag::Revoked, Attribution::Attributed { key_id, revoked: Some(t), .. }) => (
                "snapshot-revoked",
                Severity::Error,
                format!(
                    "written by key {key_id}, which was revoked at {}, and dated after that ({})",
                    t.to_rfc3339(),
                    s.time().to_rfc3339()
                ),
            ),
            (Flag::Future, _) => (
                "snapshot-future",
                Severity::Warning,
                format!("dated {}, more than an hour after now", s.time().to_rfc3339()),
            ),
            _ => continue,
        };
        let mut f = Walk::error(code, sid.path(), format!("{message}; excluded from `latest` and retention"));
        f.severity = severity;
        f.snapshots.push(sid.to_hex());
        walk.add(f);
    }
    Ok(())
}

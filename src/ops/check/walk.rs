//! The walk of `check` over every snapshot's trees (format-spec §7): each distinct directory and
//! chunk list is read once, however many paths and snapshots share it, so the walk is linear in
//! distinct tree blobs; what is found under a shared tree is noted for every snapshot and path
//! that meets it. Reports unreadable trees, parts out of order (`tree-order`), trees beyond the
//! reference's limits (`tree-limit`), invalid hardlink groups (`hardlink-invalid`) and data
//! blobs that are not indexed or stored.

use super::{Finding, Severity};
use crate::error::Result;
use crate::id::{BlobId, BlobKind, PackId, SnapshotId};
use crate::layout::pack_path;
use crate::repository::ReadRepository;
use crate::tree::{self, Content, HardlinkGroups, Node, NodeKind};
use crate::trees::{chunk_list, Control, DirFault, Listing, Visitor};
use std::collections::{HashMap, HashSet};
use std::path::Path;

const MAX_PATHS: usize = 5;

pub(super) struct Walk<'a> {
    pub(super) repo: &'a ReadRepository,
    /// Data blob lookups, one cache iterator for the whole walk (millions of blobs).
    lookups: crate::repository::blobmap::Lookups<'a>,
    pub(super) listed: &'a HashMap<PackId, u64>,
    pub(super) bad_blobs: &'a HashMap<BlobId, usize>,
    pub(super) missing_packs: &'a HashMap<PackId, usize>,
    pub(super) findings: Vec<Finding>,
    /// Per tree: the findings under it, so a later snapshot sharing the tree is named too.
    pub(super) trees: HashMap<BlobId, Vec<usize>>,
    /// Per chunk list read: its number of ids and the findings about it and its data blobs.
    pub(super) lists: HashMap<BlobId, (u64, Vec<usize>)>,
    /// The snapshot being walked.
    pub(super) snap: SnapshotId,
    /// The hardlink groups of the snapshot being walked, as far as its walk reads them.
    pub(super) groups: HardlinkGroups,
    /// Per directory being walked, root first: its tree and the findings under it so far.
    pub(super) under: Vec<(BlobId, Vec<usize>)>,
}

impl<'a> Walk<'a> {
    /// A walk that adds to `findings`.
    pub(super) fn new(
        repo: &'a ReadRepository,
        listed: &'a HashMap<PackId, u64>,
        bad_blobs: &'a HashMap<BlobId, usize>,
        missing_packs: &'a HashMap<PackId, usize>,
        findings: Vec<Finding>,
    ) -> Result<Self> {
        Ok(Walk {
            repo,
            lookups: repo.lookups()?,
            listed,
            bad_blobs,
            missing_packs,
            findings,
            trees: HashMap::new(),
            lists: HashMap::new(),
            snap: SnapshotId([0; 32]),
            groups: HardlinkGroups::default(),
            under: Vec::new(),
        })
    }

    /// Starts the walk of snapshot `sid`.
    pub(super) fn start(&mut self, sid: SnapshotId) {
        self.snap = sid;
        self.groups = HardlinkGroups::default();
    }

    pub(super) fn add(&mut self, f: Finding) -> usize {
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

    pub(super) fn error(code: &'static str, object: String, message: String) -> Finding {
        Finding { severity: Severity::Error, code, object, message, snapshots: vec![], paths: vec![] }
    }

    /// Checks one data blob's location; returns the finding index if something is wrong.
    fn data_blob(&mut self, id: &BlobId) -> Option<usize> {
        if let Some(&i) = self.bad_blobs.get(id) {
            return Some(i);
        }
        match self.lookups.lookup(BlobKind::Data, id) {
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

    /// Checks distinct data blobs of `ids`; returns the findings.
    fn data_blobs(&mut self, ids: &[BlobId]) -> Vec<usize> {
        let mut out = Vec::new();
        if ids.len() <= 16 {
            // Most files: no set allocated (one per file is millions at scale).
            for (i, id) in ids.iter().enumerate() {
                if !ids[..i].contains(id) {
                    out.extend(self.data_blob(id));
                }
            }
            return out;
        }
        let mut seen = HashSet::new();
        for id in ids {
            if seen.insert(*id) {
                out.extend(self.data_blob(id));
            }
        }
        out
    }

    /// Checks one chunk list once (format-spec §7.3): its id count and findings.
    fn list(&mut self, l: &BlobId) -> (u64, Vec<usize>) {
        if let Some(v) = self.lists.get(l) {
            return v.clone();
        }
        let v = match chunk_list(self.repo, l) {
            Ok(ids) => (ids.len() as u64, self.data_blobs(&ids)),
            Err(f) => {
                let e = f.into_error(l);
                (0, vec![self.add(Self::error("tree-unreadable", format!("tree {l}"), e.to_string()))])
            }
        };
        self.lists.insert(*l, v.clone());
        v
    }

    /// Checks a file's content, each chunk list once; returns the findings.
    fn content(&mut self, content: &Content) -> Vec<usize> {
        let (lists, count) = match content {
            Content::Chunks(ids) => return self.data_blobs(ids),
            Content::Indirect { lists, count } => (lists, *count),
            // Its bytes are in the node, checked against its size when the tree decoded (§7.3).
            Content::Inline(_) => return Vec::new(),
        };
        let object = format!("tree {}", lists.first().copied().unwrap_or(BlobId([0; 32])));
        if let Err(e) = tree::check_indirect(lists, count) {
            return vec![self.add(Self::error("tree-limit", object, e))];
        }
        let mut under = Vec::new();
        let mut total = 0u64;
        let mut read_all = true;
        for l in lists {
            let (n, f) = self.list(l);
            read_all &= !f.iter().any(|&i| self.findings[i].code == "tree-unreadable");
            total += n;
            under.extend(f);
        }
        if read_all && total != count {
            let m = format!("chunk list count mismatch: the lists hold {total} ids, the content says {count}");
            under.push(self.add(Self::error("tree-unreadable", object, m)));
        }
        under
    }

    fn push_under(&mut self, v: impl IntoIterator<Item = usize>) {
        if let Some((_, up)) = self.under.last_mut() {
            up.extend(v);
        }
    }
}

/// The walk over one snapshot's trees: a directory already walked (in any snapshot) is not read
/// again; its findings are noted for this snapshot and path too.
impl Visitor for Walk<'_> {
    fn enter(&mut self, path: &Path, tree: &BlobId) -> Result<Control> {
        let Some(v) = self.trees.get(tree).cloned() else {
            self.under.push((*tree, Vec::new()));
            return Ok(Control::Descend);
        };
        for &i in &v {
            self.note(i, path);
        }
        self.push_under(v);
        Ok(Control::Skip)
    }

    fn fault(&mut self, path: &Path, tree: &BlobId, fault: DirFault, _: &Listing) -> Result<Control> {
        let (code, go_on) = match fault {
            // Every part was read: the entries are checked too.
            DirFault::Order(_) => ("tree-order", Control::Descend),
            DirFault::TooDeep(_) | DirFault::TooManyParts(_) => ("tree-limit", Control::Skip),
            _ => ("tree-unreadable", Control::Skip),
        };
        let object = format!("tree {}", fault.blob());
        let e = fault.error_at(tree, path);
        let i = self.add(Self::error(code, object, e.to_string()));
        self.note(i, path);
        self.push_under([i]);
        Ok(go_on)
    }

    fn node(&mut self, path: &Path, n: &Node) -> Result<Control> {
        let mut under = Vec::new();
        if let Err(m) = self.groups.admit(n) {
            let dir = self.under.last().map(|(t, _)| *t).unwrap_or(BlobId([0; 32]));
            let i =
                self.add(Self::error("hardlink-invalid", format!("tree {dir}"), format!("{}: {m}", path.display())));
            under.push(i);
        }
        if let NodeKind::File { content } = &n.kind {
            under.extend(self.content(content));
        }
        for &i in &under {
            self.note(i, path);
        }
        self.push_under(under);
        Ok(if matches!(n.kind, NodeKind::Dir { .. }) { Control::Descend } else { Control::Skip })
    }

    fn leave(&mut self, _: &Path, tree: &BlobId) -> Result<()> {
        let Some((_, mut under)) = self.under.pop() else { return Ok(()) };
        under.sort_unstable();
        under.dedup();
        self.trees.insert(*tree, under.clone());
        self.push_under(under);
        Ok(())
    }
}

//! `find`: every snapshot and path whose name or path matches a glob, or whose entry uses given
//! blobs ("which files use this damaged object"). Reads trees only (nothing under `data/`), through
//! the one walker ([`crate::trees::Walker`], with its limits): one walker for all snapshots, so a
//! directory met again is taken from its cache rather than read again, while every path of every
//! snapshot is still reported. Pack → blobs comes from the index files ([`pack_blobs`]).

use crate::browse::ShownPath;
use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use crate::layout::{ObjectType, StoredId};
use crate::repository::ReadRepository;
use crate::snapshot::Snapshot;
use crate::time::Time;
use crate::tree::{Content, Node, NodeKind};
use crate::trees::{chunk_list, Control, Visitor, Walker};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

/// What `find` looks for. An entry matches when it passes every criterion given.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// Globs on the name, or (with a `/`) on the whole path (format `filter` rules); none: any.
    pub patterns: Patterns,
    /// Only entries modified at or after this time.
    pub oldest: Option<Time>,
    /// Only entries modified at or before this time.
    pub newest: Option<Time>,
    /// Only entries that use one of these blobs (of either kind): a file through its chunks or
    /// chunk lists, a directory through one of its tree blobs. Empty: no such criterion.
    pub blobs: HashSet<BlobId>,
}

/// One matching entry of one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Match {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Its first 8 hex digits.
    pub short_id: String,
    /// Its time.
    pub time: Time,
    /// Its host.
    pub host: String,
    /// The entry's absolute path.
    #[serde(flatten)]
    pub path: ShownPath,
    /// `file`, `dir`, `symlink`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its size (files: bytes).
    pub size: u64,
    /// Its modification time (none for a snapshot's root directory, which has no entry).
    pub mtime: Option<Time>,
    /// Of the blobs asked for, those the entry uses, in id order.
    pub blobs: Vec<BlobId>,
}

/// What `find` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FindReport {
    /// Snapshots searched.
    pub snapshots: usize,
    /// The matches: newest snapshot first, paths in walk order (pre-order, names in byte order).
    pub matches: Vec<Match>,
}

/// The blobs of pack `pack` as the index files list them; [`Error::NotFound`] when none does.
/// Reads `index/` only.
pub fn pack_blobs(repo: &ReadRepository, pack: &PackId) -> Result<Vec<(BlobKind, BlobId)>> {
    let mut out = BTreeSet::new();
    let mut found = false;
    for o in repo.backend().list(ObjectType::Index.dir())? {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        for ip in repo.read_index(&id)?.packs().iter().filter(|ip| ip.id == *pack) {
            found = true;
            out.extend(ip.blobs.iter().map(|b| (b.kind, b.id)));
        }
    }
    if !found {
        return Err(Error::NotFound(format!("pack {pack} in the index")));
    }
    Ok(out.into_iter().collect())
}

/// Searches `snapshots` (in any order; searched newest first).
pub fn find(repo: &ReadRepository, snapshots: &[(SnapshotId, Snapshot)], opts: &FindOptions) -> Result<FindReport> {
    let mut order: Vec<&(SnapshotId, Snapshot)> = snapshots.iter().collect();
    order.sort_by(|a, b| b.1.time().cmp(&a.1.time()).then(b.0.cmp(&a.0)));
    let mut walker = Walker::new(repo);
    let mut v = FindVisitor {
        repo,
        opts,
        out: Vec::new(),
        snap: None,
        lists: HashMap::new(),
        dir_hits: HashMap::new(),
        entering: None,
        pending_dir: None,
    };
    for (id, s) in order {
        v.snap = Some((*id, s));
        v.pending_dir = None;
        walker.walk(&s.root(), Path::new("/"), &mut v)?;
    }
    Ok(FindReport { snapshots: snapshots.len(), matches: v.out })
}

struct FindVisitor<'a> {
    repo: &'a ReadRepository,
    opts: &'a FindOptions,
    out: Vec<Match>,
    snap: Option<(SnapshotId, &'a Snapshot)>,
    /// Per chunk list read, the blobs asked for that it holds.
    lists: HashMap<BlobId, Vec<BlobId>>,
    /// Per directory read (by its first tree blob), the blobs asked for among its parts.
    dir_hits: HashMap<BlobId, Vec<BlobId>>,
    /// The directory being entered: its path and first tree blob.
    entering: Option<(std::path::PathBuf, BlobId)>,
    /// The entry of the directory about to be entered (the root has none).
    pending_dir: Option<Node>,
}

impl FindVisitor<'_> {
    fn wanted(&self, id: &BlobId) -> bool {
        self.opts.blobs.contains(id)
    }

    /// The blobs asked for that a file's content uses.
    fn file_hits(&mut self, content: &Content) -> Result<Vec<BlobId>> {
        let mut hits = BTreeSet::new();
        match content {
            Content::Chunks(ids) => hits.extend(ids.iter().filter(|i| self.wanted(i)).copied()),
            Content::Inline(_) => {}
            Content::Indirect { lists, .. } => {
                for l in lists {
                    if self.wanted(l) {
                        hits.insert(*l);
                    }
                    if !self.lists.contains_key(l) {
                        let ids = chunk_list(self.repo, l).map_err(|f| f.into_error(l))?;
                        let h = ids.into_iter().filter(|i| self.opts.blobs.contains(i)).collect();
                        self.lists.insert(*l, h);
                    }
                    hits.extend(self.lists[l].iter().copied());
                }
            }
        }
        Ok(hits.into_iter().collect())
    }

    /// Records a match of the entry `node` (none: the root) at `path`, if it passes the name and
    /// time criteria.
    fn record(&mut self, path: &Path, node: Option<&Node>, blobs: Vec<BlobId>) {
        let o = self.opts;
        if !o.patterns.is_empty() && !o.patterns.matches(path) {
            return;
        }
        let mtime = node.map(|n| n.mtime);
        if o.oldest.is_some_and(|t| mtime.is_none_or(|m| m < t))
            || o.newest.is_some_and(|t| mtime.is_none_or(|m| m > t))
        {
            return;
        }
        let Some((id, s)) = self.snap else { return };
        self.out.push(Match {
            snapshot: id,
            short_id: id.short(),
            time: s.time(),
            host: s.host().to_string(),
            path: ShownPath::new(path),
            kind: node.map(Node::type_name).unwrap_or("dir"),
            size: node.map(|n| n.size).unwrap_or(0),
            mtime,
            blobs,
        });
    }
}

impl Visitor for FindVisitor<'_> {
    fn enter(&mut self, path: &Path, tree: &BlobId) -> Result<Control> {
        self.entering = Some((path.to_path_buf(), *tree));
        // A directory read before (in this walk or an earlier one) may come from the walker's
        // cache without its parts: its hits were noted when it was read.
        if let Some(h) = self.dir_hits.get(tree).cloned() {
            let node = self.pending_dir.take();
            self.record(path, node.as_ref(), h);
        }
        Ok(Control::Descend)
    }

    fn tree_blob(&mut self, id: &BlobId, _: &[u8]) {
        if !self.wanted(id) {
            return;
        }
        let Some((path, tree)) = self.entering.clone() else { return };
        let snap = self.snap.map(|(id, _)| id);
        let first = !self.dir_hits.contains_key(&tree);
        let hits = self.dir_hits.entry(tree).or_default();
        if !hits.contains(id) {
            hits.push(*id);
            hits.sort();
        }
        if first {
            let node = self.pending_dir.take();
            // Parts after the first add to the match recorded for the first.
            self.record(&path, node.as_ref(), vec![*id]);
        } else if let Some(m) = self.out.last_mut().filter(|m| m.path.raw == path && Some(m.snapshot) == snap) {
            if !m.blobs.contains(id) {
                m.blobs.push(*id);
                m.blobs.sort();
            }
        }
    }

    fn node(&mut self, path: &Path, node: &Node) -> Result<Control> {
        match &node.kind {
            NodeKind::Dir { .. } if !self.opts.blobs.is_empty() => {
                // Matched (or not) by its tree blobs when entered.
                self.pending_dir = Some(node.clone());
            }
            NodeKind::File { content } if !self.opts.blobs.is_empty() => {
                let hits = self.file_hits(content)?;
                if !hits.is_empty() {
                    self.record(path, Some(node), hits);
                }
            }
            _ if !self.opts.blobs.is_empty() => {}
            _ => self.record(path, Some(node), Vec::new()),
        }
        Ok(Control::Descend)
    }
}

//! `diff`: what changed between two snapshots, or one path in them. Reads trees only (nothing
//! under `data/`): a file's content is compared by its chunk ids (or chunk-list ids) and size,
//! never by reading data, and subtrees with equal tree ids are skipped unread (the two-tree walk
//! of [`crate::trees::diff_dirs`], within the limits of format-spec §7.5). How two nodes differ is
//! the pure [`classify`].

use crate::browse::{find, ShownPath};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::ReadRepository;
use crate::tree::{Limits, Node, NodeKind};
use crate::trees::{diff_dirs, Change, Control, DiffEntry};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How an entry differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Only in the new snapshot (`+`).
    Added,
    /// Only in the old snapshot (`-`).
    Removed,
    /// Same type, other content: a file's chunks or size, a symlink's target, a device number (`M`).
    Modified,
    /// Same type and content, other metadata (`U`; listed only when asked for).
    Metadata,
    /// Another type of entry at the same path (`T`), e.g. a file replaced by a directory.
    Type,
}

impl Kind {
    /// The one-letter code of the text output.
    pub fn code(self) -> char {
        match self {
            Kind::Added => '+',
            Kind::Removed => '-',
            Kind::Modified => 'M',
            Kind::Metadata => 'U',
            Kind::Type => 'T',
        }
    }
}

/// The metadata fields [`classify`] compares, by the names it reports: `mode`, `owner` (uid or
/// user name), `group` (gid or group name), `mtime`, `xattrs`. Access and change times and the
/// hardlink group number are not compared (they change without the entry changing).
pub fn metadata_changes(old: &Node, new: &Node) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.mode != new.mode {
        out.push("mode");
    }
    if old.uid != new.uid || old.user != new.user {
        out.push("owner");
    }
    if old.gid != new.gid || old.group != new.group {
        out.push("group");
    }
    if old.mtime != new.mtime {
        out.push("mtime");
    }
    if old.xattrs != new.xattrs {
        out.push("xattrs");
    }
    out
}

/// How `new` differs from `old` at the same path, with the metadata fields that differ: `None`
/// when the difference is none of [`Kind`]'s (directories differ below, or only in what
/// [`metadata_changes`] does not compare). Content is compared by ids and size only.
pub fn classify(old: &Node, new: &Node) -> Option<(Kind, Vec<&'static str>)> {
    if old.type_name() != new.type_name() {
        return Some((Kind::Type, Vec::new()));
    }
    let meta = metadata_changes(old, new);
    let content = match (&old.kind, &new.kind) {
        (NodeKind::Dir { .. }, NodeKind::Dir { .. }) => false,
        (a, b) => a != b || old.size != new.size,
    };
    if content {
        Some((Kind::Modified, meta))
    } else if meta.is_empty() {
        None
    } else {
        Some((Kind::Metadata, meta))
    }
}

/// What `diff` is asked.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Compare only this absolute path (and what lies below it).
    pub path: Option<PathBuf>,
    /// List metadata-only changes ([`Kind::Metadata`]) too.
    pub metadata: bool,
}

/// One changed entry.
#[derive(Clone, Debug, Serialize)]
pub struct DiffItem {
    /// How it changed.
    pub change: Kind,
    /// Its absolute path.
    #[serde(flatten)]
    pub path: ShownPath,
    /// Its type in the old snapshot (`file`, `dir`, ...), if there.
    pub old_type: Option<&'static str>,
    /// Its type in the new snapshot, if there.
    pub new_type: Option<&'static str>,
    /// Its size in the old snapshot (files: bytes; symlinks: target length), if there.
    pub old_size: Option<u64>,
    /// Its size in the new snapshot, if there.
    pub new_size: Option<u64>,
    /// The metadata fields that differ (with `metadata` asked for; see [`metadata_changes`]).
    pub metadata: Vec<&'static str>,
}

impl DiffItem {
    /// True when the entry is a directory on the side where it is (the new one when both).
    pub fn is_dir(&self) -> bool {
        self.new_type.or(self.old_type) == Some("dir")
    }
}

/// Counts and bytes of a diff. Bytes are of regular files: `bytes_added` the new sizes of files
/// added, modified or put in place of another type; `bytes_removed` the old sizes of files
/// removed, modified or replaced by another type. So `bytes_added - bytes_removed` is how much
/// the files' total size grew.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    /// Entries added (of any type, at any depth).
    pub added: u64,
    /// Entries removed.
    pub removed: u64,
    /// Entries with other content.
    pub modified: u64,
    /// Entries of another type.
    pub type_changed: u64,
    /// Entries with other metadata only (counted only when listed).
    pub metadata_changed: u64,
    /// See the type.
    pub bytes_added: u64,
    /// See the type.
    pub bytes_removed: u64,
}

/// The changes, in path order, and their summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffReport {
    /// The changed entries, in pre-order by name (byte order).
    pub entries: Vec<DiffItem>,
    /// Their counts and bytes.
    pub summary: DiffSummary,
}

impl DiffReport {
    fn push(&mut self, change: Kind, path: &Path, old: Option<&Node>, new: Option<&Node>, meta: Vec<&'static str>) {
        let s = &mut self.summary;
        let file = |n: Option<&Node>| n.filter(|n| matches!(n.kind, NodeKind::File { .. })).map(|n| n.size);
        match change {
            Kind::Added => s.added += 1,
            Kind::Removed => s.removed += 1,
            Kind::Modified => s.modified += 1,
            Kind::Type => s.type_changed += 1,
            Kind::Metadata => s.metadata_changed += 1,
        }
        if change != Kind::Metadata {
            s.bytes_added += file(new).unwrap_or(0);
            s.bytes_removed += file(old).unwrap_or(0);
        }
        self.entries.push(DiffItem {
            change,
            path: ShownPath::new(path),
            old_type: old.map(Node::type_name),
            new_type: new.map(Node::type_name),
            old_size: old.map(|n| n.size),
            new_size: new.map(|n| n.size),
            metadata: meta,
        });
    }

    /// Adds what one pair of nodes at `path` (either may be absent) says.
    fn pair(&mut self, path: &Path, old: Option<&Node>, new: Option<&Node>, opts: &DiffOptions) {
        match (old, new) {
            (None, None) => {}
            (None, Some(_)) => self.push(Kind::Added, path, old, new, Vec::new()),
            (Some(_), None) => self.push(Kind::Removed, path, old, new, Vec::new()),
            (Some(o), Some(n)) => match classify(o, n) {
                Some((Kind::Metadata, _)) if !opts.metadata => {}
                Some((kind, meta)) => self.push(kind, path, old, new, if opts.metadata { meta } else { Vec::new() }),
                None => {}
            },
        }
    }
}

fn dir_of(n: Option<&Node>) -> Option<BlobId> {
    match n.map(|n| &n.kind) {
        Some(NodeKind::Dir { tree }) => Some(*tree),
        _ => None,
    }
}

/// The changes from the snapshot whose root tree is `old` to the one whose root is `new`. With
/// `opts.path`, only that path and what lies below it: a path in neither snapshot is
/// [`Error::NotFound`].
pub fn diff(repo: &ReadRepository, old: &BlobId, new: &BlobId, opts: &DiffOptions) -> Result<DiffReport> {
    let mut report = DiffReport::default();
    let (base, old_dir, new_dir) = match &opts.path {
        None => (PathBuf::from("/"), Some(*old), Some(*new)),
        Some(p) if p.parent().is_none() => (PathBuf::from("/"), Some(*old), Some(*new)),
        Some(p) => {
            let at = |root: &BlobId| match find(repo, root, p) {
                Err(e) if e.is_not_found() => Ok(None),
                r => r,
            };
            let (o, n) = (at(old)?, at(new)?);
            if o.is_none() && n.is_none() {
                return Err(Error::NotFound(format!("path {} (in neither snapshot)", p.display())));
            }
            report.pair(p, o.as_ref(), n.as_ref(), opts);
            if o == n {
                return Ok(report);
            }
            (p.clone(), dir_of(o.as_ref()), dir_of(n.as_ref()))
        }
    };
    diff_dirs(repo, old_dir, new_dir, &base, Limits::default(), &mut |e: &DiffEntry| {
        if e.change != Change::Same {
            report.pair(e.path, e.old, e.new, opts);
        }
        Ok(Control::Descend)
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Content, Time};

    fn file(name: &str, chunks: &[u8], size: u64) -> Node {
        let ids = chunks.iter().map(|c| BlobId([*c; 32])).collect();
        Node { size, ..Node::bare(name.as_bytes(), NodeKind::File { content: Content::Chunks(ids) }) }
    }

    #[test]
    fn nodes_are_classified_by_type_then_content_then_metadata() {
        let a = file("a", &[1, 2], 10);
        assert_eq!(classify(&a, &a), None);
        // Content: other chunk ids, or the same ids with another size.
        assert_eq!(classify(&a, &file("a", &[1, 3], 10)), Some((Kind::Modified, vec![])));
        assert_eq!(classify(&a, &file("a", &[1, 2], 11)), Some((Kind::Modified, vec![])));
        // Metadata only; atime, ctime and the hardlink group are not compared.
        let mut m = a.clone();
        m.mode = 0o600;
        m.mtime = Time { secs: 5, nanos: 0 };
        assert_eq!(classify(&a, &m), Some((Kind::Metadata, vec!["mode", "mtime"])));
        let mut quiet = a.clone();
        quiet.atime = Time { secs: 9, nanos: 0 };
        quiet.ctime = Time { secs: 9, nanos: 0 };
        quiet.hardlink = 3;
        assert_eq!(classify(&a, &quiet), None);
        let mut owner = a.clone();
        owner.user = "root".into();
        owner.gid = 7;
        owner.xattrs = vec![(b"user.x".to_vec(), b"1".to_vec())];
        assert_eq!(classify(&a, &owner), Some((Kind::Metadata, vec!["owner", "group", "xattrs"])));
        // Content and metadata: modified, with the metadata that differs too.
        let mut both = file("a", &[4], 10);
        both.mode = 0o600;
        assert_eq!(classify(&a, &both), Some((Kind::Modified, vec!["mode"])));
        // Another type.
        let d = Node::bare(b"a", NodeKind::Dir { tree: BlobId([1; 32]) });
        assert_eq!(classify(&a, &d), Some((Kind::Type, vec![])));
        // Directories differ below, not in themselves; a symlink's target is its content.
        let d2 = Node::bare(b"a", NodeKind::Dir { tree: BlobId([2; 32]) });
        assert_eq!(classify(&d, &d2), None);
        let l1 = Node { size: 2, ..Node::bare(b"l", NodeKind::Symlink { target: b"/x".to_vec() }) };
        let l2 = Node { size: 2, ..Node::bare(b"l", NodeKind::Symlink { target: b"/y".to_vec() }) };
        assert_eq!(classify(&l1, &l2), Some((Kind::Modified, vec![])));
    }

    #[test]
    fn the_summary_counts_file_bytes_on_each_side() {
        let mut r = DiffReport::default();
        let opts = DiffOptions { metadata: false, ..Default::default() };
        let p = Path::new("/x");
        r.pair(p, None, Some(&file("x", &[1], 5)), &opts);
        r.pair(p, Some(&file("x", &[1], 7)), None, &opts);
        r.pair(p, Some(&file("x", &[1], 3)), Some(&file("x", &[2], 4)), &opts);
        let d = Node::bare(b"x", NodeKind::Dir { tree: BlobId([1; 32]) });
        r.pair(p, Some(&file("x", &[1], 100)), Some(&d), &opts);
        let mut m = file("x", &[1], 3);
        m.mode = 0;
        r.pair(p, Some(&file("x", &[1], 3)), Some(&m), &opts);
        let want = DiffSummary {
            added: 1,
            removed: 1,
            modified: 1,
            type_changed: 1,
            metadata_changed: 0,
            bytes_added: 5 + 4,
            bytes_removed: 7 + 3 + 100,
        };
        assert_eq!(r.summary, want);
        assert_eq!(r.entries.len(), 4, "a metadata change is not listed unless asked for");
        r.pair(p, Some(&file("x", &[1], 3)), Some(&m), &DiffOptions { metadata: true, ..Default::default() });
        assert_eq!((r.summary.metadata_changed, r.entries[4].metadata.clone()), (1, vec!["mode"]));
    }
}

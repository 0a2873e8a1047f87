//! The tree walker, the tree writer and the two-tree walk on a repository in memory.

use super::*;
use crate::backend::opendal::OpendalBackend;
use crate::backend::DynBackend;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::{InitOptions, OpenOptions, ReadRepository, Repository};
use crate::tree::{Content, Node, NodeKind, CHUNK_LIST_LEN, MAX_DIRECT_CHUNKS, MAX_NODES_PER_BLOB};
use crate::writer::{Writer, WriterOptions};
use std::path::Path;
use std::sync::Arc;

fn repo() -> ReadRepository {
    let backend: DynBackend = Arc::new(OpendalBackend::memory("trees").unwrap());
    Repository::init(
        backend,
        b"pw",
        &InitOptions::default(),
        &OpenOptions { cache_root: None, no_cache: true, upgrade_config: false },
    )
    .and_then(|r| r.readable())
    .unwrap()
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node { size: 1, ..Node::bare(name, kind) }
}

/// A file whose one chunk is named by `b` (data blobs are never read here).
fn file(name: &str, b: u8) -> Node {
    node(name.as_bytes(), NodeKind::File { content: Content::Chunks(vec![BlobId([b; 32])]) })
}

fn dir(name: &str, tree: BlobId) -> Node {
    node(name.as_bytes(), NodeKind::Dir { tree })
}

/// Stores trees with `build`, then makes them readable.
fn stored<T>(repo: &ReadRepository, build: impl FnOnce(&Writer) -> Result<T>) -> T {
    let w = Writer::new(repo, WriterOptions::default(), "test").unwrap();
    let out = build(&w).unwrap();
    w.finish().unwrap();
    out
}

fn paths(root: &BlobId, walker: &mut Walker, ctl: impl Fn(&Path) -> Control) -> Vec<String> {
    let mut out = Vec::new();
    let mut v = |p: &Path, _: &Node| {
        out.push(p.to_string_lossy().into_owned());
        Ok(ctl(p))
    };
    walker.walk(root, Path::new("/"), &mut v).unwrap();
    out
}

#[test]
fn walk_is_pre_order_with_absolute_paths_across_parts() {
    let repo = repo();
    let (root, big) = stored(&repo, |w| {
        let many: Vec<Node> = (0..MAX_NODES_PER_BLOB + 2).map(|i| file(&format!("f{i:05}"), 1)).collect();
        let big = write_dir(w, many)?;
        let z = write_dir(w, vec![file("y", 2)])?;
        let odd = node(b"n\xff", NodeKind::Fifo);
        Ok((write_dir(w, vec![dir("z", z), file("a", 1), dir("big", big), odd])?, big))
    });
    let got = paths(&root, &mut Walker::new(&repo), |_| Control::Descend);
    assert_eq!(got.len(), 4 + MAX_NODES_PER_BLOB + 2 + 1, "every node once");
    assert_eq!(&got[..3], ["/a", "/big", "/big/f00000"]);
    assert_eq!(got[1 + MAX_NODES_PER_BLOB + 2], "/big/f04097", "the second part follows the first");
    assert_eq!(&got[got.len() - 3..], ["/n\u{fffd}", "/z", "/z/y"]);
    // The big directory is two parts, and the walk reads both.
    struct Parts(Vec<BlobId>);
    impl Visitor for Parts {
        fn tree_blob(&mut self, id: &BlobId, _: &[u8]) {
            self.0.push(*id);
        }
        fn node(&mut self, _: &Path, _: &Node) -> Result<Control> {
            Ok(Control::Descend)
        }
    }
    let mut parts = Parts(Vec::new());
    Walker::new(&repo).walk(&root, Path::new("/"), &mut parts).unwrap();
    assert_eq!(parts.0.len(), 4, "root, two parts of big, z");
    assert_eq!(parts.0[1], big);
    assert_eq!(read_dir(&repo, &big).unwrap().len(), MAX_NODES_PER_BLOB + 2);
}

#[test]
fn skip_stop_and_seen_directories() {
    let repo = repo();
    let (r1, r2) = stored(&repo, |w| {
        let shared = write_dir(w, vec![file("x", 1)])?;
        let r1 = write_dir(w, vec![dir("s", shared), dir("t", shared)])?;
        let r2 = write_dir(w, vec![dir("u", shared), file("v", 2)])?;
        Ok((r1, r2))
    });
    let skip_s = |p: &Path| if p == Path::new("/s") { Control::Skip } else { Control::Descend };
    assert_eq!(paths(&r1, &mut Walker::new(&repo), skip_s), ["/s", "/t", "/t/x"]);
    assert_eq!(paths(&r1, &mut Walker::new(&repo), |_| Control::Stop), ["/s"]);
    let mut w = Walker::new(&repo).skip_seen();
    assert_eq!(paths(&r1, &mut w, |_| Control::Descend), ["/s", "/s/x", "/t"]);
    assert_eq!(paths(&r2, &mut w, |_| Control::Descend), ["/u", "/v"], "shared across walks");
    assert!(paths(&r1, &mut w, |_| Control::Descend).is_empty(), "a root already walked is skipped");
}

/// Records faults and leaves; `policy` answers each fault.
struct Faults {
    policy: Control,
    seen: Vec<String>,
}

impl Visitor for Faults {
    fn fault(&mut self, path: &Path, tree: &BlobId, fault: DirFault, readable: &Listing) -> Result<Control> {
        assert_eq!(fault.blob(), *tree);
        assert!(readable.parts.is_empty() && readable.nodes.is_empty());
        assert!(matches!(fault, DirFault::Unreadable(..)), "{fault:?}");
        self.seen.push(format!("fault {}", path.display()));
        Ok(self.policy)
    }
    fn node(&mut self, path: &Path, _: &Node) -> Result<Control> {
        self.seen.push(path.display().to_string());
        Ok(Control::Descend)
    }
    fn leave(&mut self, path: &Path, _: &BlobId) -> Result<()> {
        self.seen.push(format!("leave {}", path.display()));
        Ok(())
    }
}

#[test]
fn a_directory_that_cannot_be_read_goes_to_the_visitor() {
    let repo = repo();
    let lost = BlobId([9; 32]);
    let root = stored(&repo, |w| write_dir(w, vec![dir("a", lost), file("b", 1)]));
    let err = Walker::new(&repo).walk(&root, Path::new("/"), &mut |_: &Path, _: &Node| Ok(Control::Descend));
    assert!(matches!(err, Err(Error::Corrupt { .. })), "by default the fault is the error: {err:?}");
    let mut v = Faults { policy: Control::Skip, seen: vec![] };
    Walker::new(&repo).walk(&root, Path::new("/"), &mut v).unwrap();
    assert_eq!(v.seen, ["/a", "fault /a", "leave /a", "/b", "leave /"]);
    let mut v = Faults { policy: Control::Stop, seen: vec![] };
    Walker::new(&repo).walk(&root, Path::new("/"), &mut v).unwrap();
    assert_eq!(v.seen, ["/a", "fault /a"]);
}

#[test]
fn long_contents_go_through_chunk_lists() {
    let repo = repo();
    let ids = |n: usize| (0..n).map(|i| BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect::<Vec<_>>();
    let (short, long, longer) = stored(&repo, |w| {
        Ok((
            write_content(w, ids(MAX_DIRECT_CHUNKS))?,
            write_content(w, ids(MAX_DIRECT_CHUNKS + 1))?,
            write_content(w, ids(CHUNK_LIST_LEN + 1))?,
        ))
    });
    assert_eq!(short, Content::Chunks(ids(MAX_DIRECT_CHUNKS)));
    assert!(matches!(&long, Content::Indirect { lists, count } if lists.len() == 1 && *count == 1025));
    assert!(matches!(&longer, Content::Indirect { lists, .. } if lists.len() == 2));
    assert_eq!(chunk_ids(&repo, &long).unwrap(), ids(MAX_DIRECT_CHUNKS + 1));
    assert_eq!(chunk_ids(&repo, &longer).unwrap(), ids(CHUNK_LIST_LEN + 1));
    // Fed one id at a time, the same content (same chunk lists).
    let sink = IdsOnly(&repo);
    for (n, want) in [(MAX_DIRECT_CHUNKS, &short), (MAX_DIRECT_CHUNKS + 1, &long), (CHUNK_LIST_LEN + 1, &longer)] {
        let mut cw = ContentWriter::new(&sink);
        for id in ids(n) {
            cw.push(id).unwrap();
        }
        assert_eq!(cw.count(), n as u64);
        assert_eq!(&cw.finish().unwrap(), want, "{n} ids");
    }
    let Content::Indirect { lists, .. } = &long else { unreachable!() };
    let wrong = Content::Indirect { lists: lists.clone(), count: 7 };
    assert!(chunk_ids(&repo, &wrong).is_err(), "a count that differs from the lists is refused");
    let root = stored(&repo, |w| write_dir(w, vec![]));
    assert!(matches!(chunk_list(&repo, &root), Err(ListFault::NotAList)));
}

fn changes(repo: &ReadRepository, old: &BlobId, new: &BlobId, ctl: Control) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    diff(repo, old, new, Path::new("/"), &mut |e: &DiffEntry| {
        out.push((e.path.to_string_lossy().into_owned(), e.change));
        Ok(ctl)
    })
    .unwrap();
    out
}

#[test]
fn diff_walks_two_trees_in_step_and_skips_equal_subtrees_unread() {
    let repo = repo();
    // Never stored: reading either would fail the walk.
    let unread = BlobId([7; 32]);
    let unread2 = BlobId([8; 32]);
    let mut mode_a = dir("m", unread2);
    mode_a.mode = 0o700;
    let mut mode_b = mode_a.clone();
    mode_b.mode = 0o755;
    let (old, new) = stored(&repo, |w| {
        let d1 = write_dir(w, vec![file("x", 1), file("y", 2)])?;
        let d2 = write_dir(w, vec![file("w", 6), file("x", 1), file("y", 5)])?;
        let g = write_dir(w, vec![file("k", 1)])?;
        let old = write_dir(
            w,
            vec![file("a", 1), file("b", 2), dir("d", d1), dir("gone", g), mode_a.clone(), dir("s", unread)],
        )?;
        let new = write_dir(w, vec![file("a", 1), file("b", 3), file("c", 4), dir("d", d2), mode_b, dir("s", unread)])?;
        Ok((old, new))
    });
    use Change::*;
    let all = changes(&repo, &old, &new, Control::Descend);
    let want: Vec<(String, Change)> = [
        ("/a", Same),
        ("/b", Changed),
        ("/c", Added),
        ("/d", Changed),
        ("/d/w", Added),
        ("/d/x", Same),
        ("/d/y", Changed),
        ("/gone", Removed),
        ("/gone/k", Removed),
        ("/m", Changed),
        ("/s", Same),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c))
    .collect();
    assert_eq!(all, want);
    let top = changes(&repo, &old, &new, Control::Skip);
    assert_eq!(top.len(), 7, "skip: only the roots' entries: {top:?}");
    assert_eq!(changes(&repo, &old, &new, Control::Stop), [("/a".to_string(), Same)]);
    assert!(changes(&repo, &old, &old, Control::Descend).is_empty(), "equal roots are not read");
    // Reversed, what was added is removed.
    let back = changes(&repo, &new, &old, Control::Descend);
    assert_eq!(back.iter().filter(|(_, c)| *c == Removed).count(), 2);
    assert_eq!(back.iter().filter(|(_, c)| *c == Added).count(), 2);
}

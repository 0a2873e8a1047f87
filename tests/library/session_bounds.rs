//! What a writing session holds in memory while it stores many small blobs (issue 11): packs are
//! finished at a blob count as well as a size, index files are written once the stored packs name
//! enough blobs (format-spec §5.4, §6.2, §11 step 4), by prune's sweep and `repair index` as by a
//! session, and the session forgets a new blob once an index file it wrote names it,
//! deduplicating against the cache's blob map from then on. And what a reader's cache does with
//! many index files: a bulk sync, and a resync after a sweep replaced them all.

use super::fixtures::{bytes, init_local};
use cairn::id::{BlobId, BlobKind, IndexId};
use cairn::layout::StoredId;
use cairn::writer::{Writer, WriterOptions, BLOBS_PER_INDEX};

#[test]
fn a_session_writes_bounded_index_files_and_forgets_the_blobs_they_name() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let opts = WriterOptions { blobs_per_pack: 4, blobs_per_index: 8, ..WriterOptions::default() };
    let mut w = Writer::new(&repo, opts, "backup").unwrap();
    let blobs: Vec<Vec<u8>> = (0..50).map(|i| bytes(i, 100)).collect();
    for b in &blobs {
        assert!(w.store(BlobKind::Data, b).unwrap().1, "a new blob is stored");
    }
    w.flush().unwrap();
    assert_eq!(w.unindexed_blobs(), 0, "every blob is named by an index file written and ingested");
    // Known through the cache's blob map now, not through the session's own set.
    for b in &blobs {
        assert!(!w.store(BlobKind::Data, b).unwrap().1, "an indexed blob is not stored again");
    }

    let mut files = 0;
    let mut named = 0;
    for o in repo.backend().list("index/").unwrap() {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        let index = repo.read_index(&id).unwrap();
        let n: usize = index.packs().iter().map(|p| p.blobs.len()).sum();
        assert!(index.packs().iter().all(|p| p.blobs.len() <= 4), "a pack holds at most 4 blobs");
        // Packs join the pending list whole: a file is written at the first pack that reaches 8.
        assert!(n < 8 + 4, "an index file names {n} blobs");
        files += 1;
        named += n;
    }
    assert_eq!(named, 50);
    assert!(files >= 50 / 11, "{files} index files for 50 blobs");
    assert!(files >= 2);
}

/// Every index file in storage, as (blobs each of its packs names, in order).
fn index_files(repo: &cairn::repository::ReadRepository) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for o in repo.backend().list("index/").unwrap() {
        let Some(id) = IndexId::from_path(&o.path) else { continue };
        out.push(repo.read_index(&id).unwrap().packs().iter().map(|p| p.blobs.len()).collect());
    }
    out
}

/// Asserts the rule of format-spec §6.2 for every index file: at most 64 packs, and the packs
/// before its last name fewer than `BLOBS_PER_INDEX` blobs (the file ends at the pack that
/// reaches them); returns the blobs they name in all.
fn assert_bounded(files: &[Vec<usize>], what: &str) -> usize {
    for f in files {
        let before_last: usize = f.iter().rev().skip(1).sum();
        assert!(f.len() <= 64, "{what}: an index file of {} packs", f.len());
        assert!(before_last < BLOBS_PER_INDEX, "{what}: an index file of {f:?} blobs per pack");
    }
    files.iter().flatten().sum()
}

#[test]
fn a_prune_sweep_and_repair_index_write_bounded_index_files_too() {
    use super::fixtures::{commit_root, eager_prune};
    use cairn::repair::{repair_index, RepairOptions};
    use cairn::time::Time;
    use cairn::tree::{Content, Node, NodeKind};

    let tmp = tempfile::tempdir().unwrap();
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    // More blobs than one index file may name, in packs of 1000 (40 packs: fewer than the 64
    // that alone would end a file), all referenced by one snapshot.
    let n = BLOBS_PER_INDEX + 7000;
    let w = Writer::new(&repo, WriterOptions { blobs_per_pack: 1000, ..WriterOptions::default() }, "backup").unwrap();
    let mut dirs = Vec::new();
    for d in 0..n.div_ceil(1000) {
        let files = (d * 1000..((d + 1) * 1000).min(n))
            .map(|i| {
                let (id, _) = w.store(BlobKind::Data, &bytes(i as u64, 40)).unwrap();
                Node {
                    size: 40,
                    ..Node::bare(format!("f{i}").as_bytes(), NodeKind::File { content: Content::Chunks(vec![id]) })
                }
            })
            .collect();
        let tree = cairn::trees::write_dir(&w, files).unwrap();
        dirs.push(Node { mode: 0o755, ..Node::bare(format!("d{d}").as_bytes(), NodeKind::Dir { tree }) });
    }
    let root = cairn::trees::write_dir(&w, dirs).unwrap();
    commit_root(w, root, Time::now(), "cairn");
    // Garbage for prune to sweep: a snapshot of one more blob, forgotten.
    let gone = super::fixtures::plant(&repo, "web-2", Time::now(), &bytes(u64::MAX, 5000), 0o644);
    repo.remove_snapshot(&gone).unwrap();
    assert!(index_files(&repo).len() >= 2, "the session wrote its index in parts");

    let mut o = eager_prune();
    o.break_lock = true;
    let mut swept = false;
    for _ in 0..4 {
        let (plan, _) = cairn::prune::run(&repo, &o, false).unwrap();
        swept |= plan.sweep.is_some();
    }
    assert!(swept, "prune swept");
    let after_prune = index_files(&repo);
    assert!(assert_bounded(&after_prune, "after the sweep") >= n);
    assert!(after_prune.len() >= 2, "the sweep wrote {} index file(s)", after_prune.len());

    // Every index file lost: repair rebuilds them from the packs, bounded the same way.
    for o in repo.backend().list("index/").unwrap() {
        repo.backend().delete(&o.path).unwrap();
    }
    repair_index(&repo, &RepairOptions { dry_run: false, min_age_secs: 0 }).unwrap();
    let repaired = index_files(&repo);
    assert!(assert_bounded(&repaired, "after repair index") >= n);
    assert!(repaired.len() >= 2, "repair wrote {} index file(s)", repaired.len());
}

/// A sync of many index files writes the blob map in bulk (compactions held, no write-ahead log,
/// one compaction at the end: format-spec §6.2's map, built faster); a cache from before a sweep
/// replaced the index files forgets its whole map in one range deletion and builds it again.
/// Either way every kept blob is found, and the blob of a pack the sweep deleted is not.
#[test]
fn a_bulk_sync_and_a_resync_after_a_sweep_find_exactly_the_indexed_blobs() {
    use super::fixtures::{eager_prune, opts, plant};
    use cairn::repository::Repository;
    use cairn::time::Time;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let repo = init_local(&dir, b"pw", &tmp.path().join("c0"));
    // One session, so at least one index file, per snapshot: more than the 16 of a bulk sync.
    let contents: Vec<Vec<u8>> = (0..20).map(|i| bytes(1000 + i, 3000)).collect();
    let snaps: Vec<_> = contents.iter().map(|c| plant(&repo, "web-1", Time::now(), c, 0o644)).collect();
    let ids: Vec<BlobId> = contents.iter().map(|c| repo.keys().content_id(c)).collect();
    assert!(repo.backend().list("index/").unwrap().len() >= 16);

    let open = |cache: &str| {
        Repository::open(super::fixtures::local(&dir), b"pw", &opts(&tmp.path().join(cache)))
            .and_then(|r| r.readable())
            .unwrap()
    };
    let fresh = open("c1");
    fresh.sync_index().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(fresh.cache().lookup(BlobKind::Data, id).unwrap().len(), 1, "blob {i} after the bulk sync");
    }
    drop(fresh);

    // The first snapshot forgotten and pruned (through another cache): its pack is deleted and
    // every index file replaced.
    repo.remove_snapshot(&snaps[0]).unwrap();
    let mut o = eager_prune();
    o.break_lock = true;
    for _ in 0..4 {
        cairn::prune::run(&repo, &o, false).unwrap();
    }
    // The pruning host's cache took the new files' entries in bulk during the sweep (20 old files).
    repo.sync_index().unwrap();
    assert!(repo.cache().lookup(BlobKind::Data, &ids[0]).unwrap().is_empty(), "swept, in the pruning cache");
    for (i, id) in ids.iter().enumerate().skip(1) {
        assert_eq!(repo.cache().lookup(BlobKind::Data, id).unwrap().len(), 1, "blob {i} in the pruning cache");
    }
    let stale = open("c1");
    stale.sync_index().unwrap();
    assert!(stale.cache().lookup(BlobKind::Data, &ids[0]).unwrap().is_empty(), "the swept blob is forgotten");
    for (i, id) in ids.iter().enumerate().skip(1) {
        assert_eq!(stale.cache().lookup(BlobKind::Data, id).unwrap().len(), 1, "blob {i} after the resync");
    }
}

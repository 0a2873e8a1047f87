//! What a writing session holds in memory while it stores many small blobs (issue 11): packs are
//! finished at a blob count as well as a size, index files are written once the stored packs name
//! enough blobs (format-spec §5.4, §11 step 4), and the session forgets a new blob once an index
//! file it wrote names it, deduplicating against the cache's blob map from then on.

use super::fixtures::{bytes, init_local};
use cairn::id::{BlobKind, IndexId};
use cairn::layout::StoredId;
use cairn::writer::{Writer, WriterOptions};

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

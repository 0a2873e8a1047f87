//! Verification before upload (format-spec §5.4) against a faulty compressor: the fault it exists
//! for. A writer whose compressor hands over a payload for other bytes (one byte changed, the
//! writer's test switch) stores nothing under `full` or `compression` and names the blob; under
//! `off` the blob is stored and no longer reads back, which is what the check prevents.

use super::fixtures::{bytes, init_local, local};
use cairn::id::{BlobId, BlobKind};
use cairn::writer::{Verification, Writer, WriterOptions};

/// Compressible bytes, different for each seed.
fn text(seed: u64, len: usize) -> Vec<u8> {
    let words = bytes(seed, 64);
    (0..len).map(|i| b"abcdefgh "[(words[(i / 7) % 64] as usize + i / 301) % 9]).collect()
}

fn faulty(verify: Verification) -> WriterOptions {
    WriterOptions { verify, test_faulty_compressor: true, ..WriterOptions::default() }
}

fn stored_packs(root: &std::path::Path) -> usize {
    let backend = local(root);
    ["data/", "tree/"].iter().map(|p| backend.list(p).map(|l| l.len()).unwrap_or(0)).sum()
}

#[test]
fn a_faulty_compressor_is_caught_before_anything_is_stored_under_full_and_compression_verification() {
    for verify in [Verification::Full, Verification::Compression] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let repo = init_local(&root, b"pw", &tmp.path().join("cache"));
        let packs_before = stored_packs(&root);
        let w = Writer::new(&repo, faulty(verify), "backup").unwrap();

        // A large blob is sealed as it is stored: the store itself fails, naming the blob.
        let large = text(1, 600_000);
        let id = repo.keys().content_id(&large);
        let e = w.store(BlobKind::Data, &large).unwrap_err().to_string();
        assert!(e.contains("verification before upload failed"), "{verify:?}: {e}");
        assert!(e.contains(&id.to_string()[..12]), "{verify:?}: the message names the blob: {e}");
        if verify == Verification::Compression {
            // Caught by the comparison before sealing, not by the full open of the session's
            // first segment (which would catch this one too).
            assert!(e.contains("does not decompress to the plaintext"), "{e}");
        }

        // Small blobs join a bundle, sealed at the flush: the flush fails, naming a member.
        let mut w2 = Writer::new(&repo, faulty(verify), "backup").unwrap();
        for seed in 2..6 {
            w2.store(BlobKind::Data, &text(seed, 20_000)).unwrap();
        }
        let e = w2.flush().unwrap_err().to_string();
        assert!(e.contains("verification before upload failed"), "{verify:?}: {e}");
        if verify == Verification::Compression {
            assert!(e.contains("does not decompress to the plaintext"), "{e}");
        }
        drop(w);
        drop(w2);
        assert_eq!(stored_packs(&root), packs_before, "{verify:?}: no pack was stored");

        // An incompressible blob is stored raw: nothing of it passes through the compressor.
        let mut w3 = Writer::new(&repo, faulty(verify), "backup").unwrap();
        let raw = bytes(9, 600_000);
        let (raw_id, new) = w3.store(BlobKind::Data, &raw).unwrap();
        assert!(new);
        w3.flush().unwrap();
        assert_eq!(repo.read_blob(BlobKind::Data, &raw_id).unwrap(), raw);
    }
}

#[test]
fn without_verification_a_faulty_compressor_stores_blobs_that_do_not_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let mut w = Writer::new(&repo, faulty(Verification::Off), "backup").unwrap();
    let large = text(1, 600_000);
    let (id, new) = w.store(BlobKind::Data, &large).unwrap();
    assert!(new);
    w.flush().unwrap();
    let e = repo.read_blob(BlobKind::Data, &id).unwrap_err().to_string();
    assert!(e.contains(&id.to_string()[..12]), "{e}");
}

#[test]
fn compression_verification_stores_what_reads_back_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let opts = WriterOptions { verify: Verification::Compression, ..WriterOptions::default() };
    let mut w = Writer::new(&repo, opts, "backup").unwrap();
    // More segments than one in OPEN_AGAIN_EVERY: large blobs, bundles and raw blobs.
    let mut stored: Vec<(BlobId, Vec<u8>)> = Vec::new();
    for seed in 0..(2 * cairn::writer::OPEN_AGAIN_EVERY + 3) {
        let plain = match seed % 3 {
            0 => text(seed, 300_000),
            1 => text(seed, 5_000),
            _ => bytes(seed, 40_000),
        };
        let (id, _) = w.store(BlobKind::Data, &plain).unwrap();
        stored.push((id, plain));
    }
    w.flush().unwrap();
    for (id, plain) in &stored {
        assert_eq!(&repo.read_blob(BlobKind::Data, id).unwrap(), plain);
    }
}

//! Bundles (format-spec §5.5, format version 3): small data blobs of a session compressed and sealed
//! together. A tree of small text files round-trips byte for byte through bundles, `check --read-data`
//! verifies every member, and the repository is smaller than the same backup without bundles; a version 2
//! repository gets none; prune repacks a bundle with forgotten members and keeps no copy of them (erasure per
//! member); a bundle forged by a write-only key that claims real members is refused by their ids, and restore
//! and `check` fall back to the real copies.

use super::fixtures::{eager_prune, files, forge_index, indexed_packs, local, opts, restore_matches, write};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::blob;
use cairn::check::{check, CheckOptions, ReadData};
use cairn::codec::packer::{self, PackBuilder};
use cairn::compress::Compression;
use cairn::crypto::Session;
use cairn::id::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use cairn::index::{IndexFile, IndexPack};
use cairn::layout::{pack_path, StoredId};
use cairn::pack::{BundleMember, PackHeader};
use cairn::prune::run;
use cairn::repository::{InitOptions, ReadRepository, Repository};
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use std::collections::BTreeSet;
use std::path::Path;

fn init(dir: &Path, cache: &Path, format_version: u32) -> ReadRepository {
    let io = InitOptions { format_version, ..Default::default() };
    Repository::init(local(dir), b"pw", &io, &opts(cache)).and_then(|r| r.readable()).unwrap()
}

fn backup_of(repo: &Repository, src: &Path) -> SnapshotId {
    let r = backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress);
    r.unwrap().snapshot_id.unwrap()
}

/// A text file of `len` bytes, different for each `seed`: lines of words drawn from one vocabulary of
/// 400 made-up identifiers, so a file compresses alone, and better with its neighbours (they share the
/// vocabulary, which a file alone must spell out again).
fn text(seed: u64, len: usize) -> Vec<u8> {
    let word = |n: u64| {
        let h = blake3::hash(&n.to_le_bytes());
        h.as_bytes()[..5].iter().map(|b| (b'a' + b % 26) as char).collect::<String>()
    };
    let vocabulary: Vec<String> = (0..400).map(|n| format!("{}_{}", word(n), word(n + 1000))).collect();
    let mut out = Vec::with_capacity(len + 64);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(vocabulary[(x % 400) as usize].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// 240 text files of 2 … 40 KiB in six directories; returns their total size.
fn text_tree(src: &Path) -> usize {
    let mut total = 0;
    for i in 0..240u64 {
        let len = 2048 + (i as usize * 7919) % (38 * 1024);
        write(&src.join(format!("d{}/f{i:03}.rs", i % 6)), &text(i, len));
        total += len;
    }
    total
}

/// Every data pack's stored bytes and the number of bundle members the index names.
fn data_packs(repo: &Repository) -> (u64, usize, usize) {
    let packs = indexed_packs(repo, BlobKind::Data);
    let bytes = packs.iter().map(|p| p.size).sum();
    let members = packs.iter().flat_map(|p| &p.blobs).filter(|b| b.inner.is_some()).count();
    let alone = packs.iter().flat_map(|p| &p.blobs).filter(|b| b.inner.is_none()).count();
    (bytes, members, alone)
}

fn check_data(repo: &ReadRepository) -> cairn::check::CheckReport {
    check(repo, &CheckOptions { read_data: ReadData::All }).unwrap()
}

#[test]
fn small_files_are_bundled_restore_byte_for_byte_verify_and_take_less_room() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let total = text_tree(&src);
    let repo = init(&tmp.path().join("repo"), &tmp.path().join("cache"), 3);
    assert_eq!(repo.config().format_version(), 3, "init makes format version 3");
    let snap = backup_of(&repo, &src);
    let (bytes3, members, alone) = data_packs(&repo);
    assert_eq!((members, alone), (240, 0), "every file is a member of a bundle");
    // The packs say so too: version 2 headers with bundles of about 1 MiB of body.
    for p in indexed_packs(&repo, BlobKind::Data) {
        let raw = repo.backend().read(&pack_path(BlobKind::Data, &p.id)).unwrap();
        let (h, blobs) = packer::parse_pack(repo.keys(), &raw).unwrap();
        assert!(matches!(h, PackHeader::V2 { .. }));
        assert_eq!(blobs, p.blobs, "the index names each member as the header does");
    }
    restore_matches(&repo, &snap, &src, &tmp.path().join("restore"));
    let r = check_data(&repo);
    assert_eq!(r.errors(), 0, "{:#?}", r.findings);
    assert!(r.blobs_verified >= 240, "check --read-data verifies every member: {}", r.blobs_verified);

    // The same tree without bundles, in a version 2 repository, takes more room.
    let v2 = init(&tmp.path().join("repo2"), &tmp.path().join("cache2"), 2);
    let snap2 = backup_of(&v2, &src);
    let (bytes2, members2, alone2) = data_packs(&v2);
    assert_eq!((members2, alone2), (0, 240), "a version 2 repository gets no bundle");
    for o in v2.backend().list("index/").unwrap() {
        let id = IndexId::from_path(&o.path).unwrap();
        assert!(matches!(v2.read_index(&id).unwrap(), IndexFile::V1 { .. }), "nor a version 2 index file");
    }
    restore_matches(&v2, &snap2, &src, &tmp.path().join("restore2"));
    assert!(
        bytes3 * 10 < bytes2 * 8,
        "bundles should store {total} bytes of text in less than 80 % of what blobs alone take: {bytes3} vs {bytes2}"
    );
}

#[test]
fn prune_repacks_a_bundle_with_forgotten_members_and_keeps_no_copy_of_them() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    text_tree(&src);
    let repo = init(&tmp.path().join("repo"), &tmp.path().join("cache"), 3);
    let first = backup_of(&repo, &src);
    // Erase one directory: the next snapshot lacks it and the first is forgotten.
    let gone: BTreeSet<BlobId> =
        files(&src.join("d3")).values().map(|content| repo.keys().content_id(content)).collect();
    assert_eq!(gone.len(), 40);
    std::fs::remove_dir_all(src.join("d3")).unwrap();
    let second = backup_of(&repo, &src);
    repo.remove_snapshot(&first).unwrap();
    // Mark, then sweep.
    let (plan, _) = run(&repo, &eager_prune(), false).unwrap();
    assert!(!plan.mark.expect("a mark").repack.is_empty(), "the bundles with erased members are repacked");
    run(&repo, &eager_prune(), false).unwrap();

    // No index entry and no pack header names an erased file's blob any more; the rest restores.
    let mut named = BTreeSet::new();
    for o in repo.backend().list("data/").unwrap() {
        let raw = repo.backend().read(&o.path).unwrap();
        let (_, blobs) = packer::parse_pack(repo.keys(), &raw).unwrap();
        named.extend(blobs.iter().map(|b| b.id));
    }
    for p in indexed_packs(&repo, BlobKind::Data) {
        named.extend(p.blobs.iter().map(|b| b.id));
    }
    assert!(named.is_disjoint(&gone), "an erased member survived prune: {:?}", named.intersection(&gone).next());
    assert_eq!(named.len(), 200);
    restore_matches(&repo, &second, &src, &tmp.path().join("restore"));
    let r = check_data(&repo);
    assert_eq!(r.errors(), 0, "{:#?}", r.findings);
}

/// What a write-only key can do with bundles: seal, under its own session, a bundle whose header and index
/// entries claim real members but whose body is other text, in a pack whose id sorts first.
fn forge_bundle(repo: &Repository, claims: &[(BlobId, u32)]) -> PackId {
    let low = indexed_packs(repo, BlobKind::Data).iter().map(|p| p.id).min().unwrap();
    let wo = repo.keys().write_only();
    let session = Session::new_writer(&wo);
    loop {
        let body: Vec<u8> = claims.iter().flat_map(|(_, n)| text(999, *n as usize)).collect();
        let sealed = blob::seal_bundle(session.key(), &wo.repo_id, &body, Compression::default());
        let members = claims.iter().map(|&(id, plain_length)| BundleMember { id, plain_length }).collect();
        let mut b = PackBuilder::new(BlobKind::Data, 0);
        b.add_bundle(&session.public, members, &sealed);
        let fp = b.finish(&wo);
        if fp.id < low {
            repo.backend().write_new(&pack_path(BlobKind::Data, &fp.id), &fp.bytes).unwrap();
            let index: IndexPack = fp.index;
            forge_index(repo.backend(), &wo, vec![index]);
            return fp.id;
        }
    }
}

#[test]
fn a_forged_bundle_claiming_real_members_is_refused_by_their_ids_and_reads_fall_back() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    text_tree(&src);
    let repo = init(&tmp.path().join("repo"), &tmp.path().join("cache"), 3);
    let snap = backup_of(&repo, &src);
    let claims: Vec<(BlobId, u32)> = indexed_packs(&repo, BlobKind::Data)
        .iter()
        .flat_map(|p| &p.blobs)
        .take(30)
        .map(|b| (b.id, b.plain_length))
        .collect();
    let forged = forge_bundle(&repo, &claims);

    // A fresh cache sees the forged pack first for every claimed blob; restore still matches.
    let admin = Repository::open(local(&tmp.path().join("repo")), b"pw", &opts(&tmp.path().join("cache-admin")))
        .unwrap()
        .readable()
        .unwrap();
    assert_eq!(admin.locate(BlobKind::Data, &claims[0].0).unwrap()[0].pack, forged);
    assert!(admin.read_blob(BlobKind::Data, &claims[0].0).is_ok(), "a read falls back to the real bundle");
    let s = admin.load_snapshot(&snap).unwrap();
    let o = RestoreOptions { target: tmp.path().join("restore"), ..Default::default() };
    let r = restore(&admin, &s.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(files(&tmp.path().join("restore").join(src.strip_prefix("/").unwrap())), files(&src));

    // check --read-data names the forged entries, and no snapshot loses a blob.
    let r = check_data(&admin);
    let forged_path = pack_path(BlobKind::Data, &forged);
    let named: Vec<_> = r.findings.iter().filter(|f| f.code == "index-forged").collect();
    assert_eq!(named.len(), 30, "{:#?}", r.findings);
    assert!(named.iter().all(|f| f.object.contains(&forged_path) && f.snapshots.is_empty()), "{named:#?}");
    assert!(!r.findings.iter().any(|f| f.code == "blob-corrupt"), "no blob is lost: {:#?}", r.findings);
}

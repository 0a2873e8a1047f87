//! Forged index entries (format-spec §6.2, §10.6, §12): a write-only key writes, through the library's own encoders,
//! index files and valid pack headers that claim blobs its packs do not hold. Prune verifies the copy it relies on
//! before deleting the only real one, restore falls back from a forged first location, and `check` names the
//! forged entries.

use super::fixtures::{
    bytes, files, forge_index, forge_pack, indexed_blobs, indexed_packs, init_local, open_faulty, open_local,
    restore_matches, snapshot_of, walk_entries, write,
};
use cairn::backend::fault::FaultPlan;
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, ReadData};
use cairn::id::{BlobKind, PackId, SnapshotId};
use cairn::layout::pack_path;
use cairn::prune::{run, PruneOptions};
use cairn::repository::ReadRepository;
use cairn::restore::{dump, restore, NoRestoreProgress, RestoreOptions};
use cairn::writer::{Writer, WriterOptions};
use std::path::PathBuf;

struct Fx {
    tmp: tempfile::TempDir,
    repo: ReadRepository,
    src: PathBuf,
    snap: SnapshotId,
}

impl Fx {
    fn dir(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }
    /// The repository with a fresh cache (as another host, or the admin after the attack, sees it).
    fn fresh(&self, cache: &str) -> ReadRepository {
        open_local(&self.dir(), self.repo.keys(), self.repo.key_id(), &self.tmp.path().join(cache))
    }
}

/// A repository with one snapshot of a few files (large ones in several chunks, small ones in one).
fn fixture() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("big.bin"), &bytes(1, 700 * 1024));
    write(&src.join("d/other.bin"), &bytes(2, 300 * 1024));
    for i in 0..8u64 {
        write(&src.join(format!("s/{i}")), &bytes(10 + i, 4096));
    }
    let repo = init_local(&tmp.path().join("repo"), b"forged", &tmp.path().join("cache0"));
    let snap = snapshot_of(&repo, &src);
    Fx { tmp, repo, src, snap }
}

/// No grace and no share stop; sessions count as alive for an hour after their lease (so the late writer below
/// is waited for until it ends).
fn eager() -> PruneOptions {
    PruneOptions { lease_timeout_secs: 3600, ..super::fixtures::eager_prune() }
}

#[test]
fn prune_verifies_the_copy_it_relies_on_and_keeps_packs_that_forged_index_entries_claim() {
    let fx = fixture();
    let repo = &fx.repo;
    // The admin forgets the only snapshot, so the mark condemns every pack; a backup whose session began before
    // the mark then commits the same tree (as a backup that found everything stored would): its blobs live only in
    // condemned packs, which the sweep must rescue.
    let tree = repo.load_snapshot(&fx.snap).unwrap();
    repo.remove_snapshot(&fx.snap).unwrap();
    let w = Writer::new(repo, WriterOptions::default(), "backup").unwrap();
    let (plan, _) = run(repo, &eager(), false).unwrap();
    let condemned = plan.mark.expect("a mark").unused.len();
    assert!(condemned >= 2, "every pack is condemned");
    let late = w.commit(&tree).unwrap();

    // The attacker, with the write-only key, claims every indexed blob in packs of garbage.
    let wo = repo.keys().write_only();
    let mut forged = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let (claims, _) = indexed_blobs(repo, kind);
        forged.push(forge_pack(repo.backend(), &wo, kind, &claims, None));
    }

    // The sweep reads the copies the index claims outside the condemned packs, finds them garbage, and keeps
    // every condemned pack the late snapshot needs.
    let (plan, report) = run(repo, &eager(), false).unwrap();
    let s = plan.sweep.expect("the writer ended: the mark is due");
    assert!(s.delete.is_empty(), "a pack whose blobs only a forged entry claims elsewhere was deleted: {s:#?}");
    assert_eq!(s.rescued.len(), condemned, "{s:#?}");
    assert_eq!(s.verified_copies, 0);
    assert!(!s.bad_copies.is_empty());
    assert!(s.bad_copies.iter().all(|c| forged.contains(&c.pack)), "{:#?}", s.bad_copies);
    let forged_path = |c: &cairn::prune::BadCopy| pack_path(c.kind, &c.pack);
    for c in &s.bad_copies {
        let p = forged_path(c);
        assert!(
            plan.warnings.iter().any(|w| w.contains(&p) && w.contains(&c.blob.to_hex())),
            "the report must name the forged location {p}: {:#?}",
            plan.warnings
        );
    }
    let report = report.unwrap();
    assert_eq!((report.deleted_packs, report.rescued_packs, report.verified_copies), (0, condemned, 0));

    let fresh = fx.fresh("cache-after");
    restore_matches(&fresh, &late, &fx.src, &fx.tmp.path().join("restore"));
}

#[test]
fn a_sweep_deletes_a_condemned_pack_once_the_other_copy_verifies() {
    let fx = fixture();
    let repo = &fx.repo;
    // Keep a snapshot of one subdirectory and forget the whole: every pack is partly used, so the mark repacks
    // the kept blobs into new packs and condemns the old ones; the sweep reads each new copy before it deletes.
    let part = fx.src.join("d");
    let kept = snapshot_of(repo, &part);
    repo.remove_snapshot(&fx.snap).unwrap();
    let (plan, _) = run(repo, &eager(), false).unwrap();
    assert!(!plan.mark.expect("a mark").repack.is_empty());
    let (plan, report) = run(repo, &eager(), false).unwrap();
    let s = plan.sweep.expect("due");
    assert!(s.rescued.is_empty(), "{s:#?}");
    assert!(s.bad_copies.is_empty(), "{s:#?}");
    assert!(!s.delete.is_empty(), "{s:#?}");
    // The kept blobs that lay in condemned packs: at least the tree of `d/` (its pack also held the forgotten
    // trees); `d/other.bin` too when its data pack also held forgotten blobs, which depends on the random pack
    // each segment went to.
    assert!(s.verified_copies >= 1, "every kept blob of a condemned pack is read in its new pack: {s:#?}");
    assert_eq!(report.unwrap().verified_copies, s.verified_copies);
    restore_matches(&fx.fresh("cache-after"), &kept, &part, &fx.tmp.path().join("restore"));
}

#[test]
fn restore_and_dump_fall_back_from_a_forged_first_location() {
    let fx = fixture();
    let wo = fx.repo.keys().write_only();
    let mut forged = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let (claims, low) = indexed_blobs(&fx.repo, kind);
        forged.push(forge_pack(fx.repo.backend(), &wo, kind, &claims, Some(low)));
    }
    let repo = fx.fresh("cache-admin");
    // The forged pack is every blob's first location.
    let (claims, _) = indexed_blobs(&repo, BlobKind::Data);
    for (id, _) in &claims {
        assert_eq!(repo.locate(BlobKind::Data, id).unwrap()[0].pack, forged[0]);
    }
    restore_matches(&repo, &fx.snap, &fx.src, &fx.tmp.path().join("restore"));
    // With --verify too.
    let target = fx.tmp.path().join("restore-verify");
    let root = repo.load_snapshot(&fx.snap).unwrap().root();
    let o = RestoreOptions { target: target.clone(), verify: true, ..Default::default() };
    let r = restore(&repo, &root, None, &o, &NoRestoreProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.verified, 10);
    assert_eq!(files(&target.join(fx.src.strip_prefix("/").unwrap())), files(&fx.src));
    // dump reads blob by blob.
    let mut out = Vec::new();
    dump(&repo, &root, &fx.src.join("big.bin"), &mut out).unwrap();
    assert_eq!(out, bytes(1, 700 * 1024));
}

/// The attacker guesses a file the admin will back up later and claims its chunk, beside every stored blob, in a
/// forged pack that sorts first; the admin then backs the file up. Returns the chunk, how many stored blobs were
/// claimed, the forged pack and the admin's snapshot.
fn poison(fx: &Fx) -> (Vec<u8>, usize, PackId, SnapshotId) {
    let repo = &fx.repo;
    let wo = repo.keys().write_only();
    let future = bytes(99, 4096);
    let (mut claims, low) = indexed_blobs(repo, BlobKind::Data);
    let existing = claims.len();
    claims.push((wo.content_id(&future), 4096));
    let forged = forge_pack(repo.backend(), &wo, BlobKind::Data, &claims, Some(low));
    write(&fx.src.join("later.bin"), &future);
    (future, existing, forged, snapshot_of(repo, &fx.src))
}

#[test]
fn check_read_data_names_forged_entries_and_the_snapshots_a_poisoned_dedup_affects() {
    let fx = fixture();
    // Dedup poisoning: the admin's backup stores nothing for the guessed chunk (the residual risk of §12).
    let (future, existing, forged, poisoned) = poison(&fx);
    let report = check(&fx.fresh("cache-check"), &CheckOptions { read_data: ReadData::All }).unwrap();
    let forged_path = pack_path(BlobKind::Data, &forged);
    let named: Vec<&cairn::check::Finding> = report.findings.iter().filter(|f| f.code == "index-forged").collect();
    assert_eq!(named.len(), existing, "{:#?}", report.findings);
    assert!(named.iter().all(|f| f.object.contains(&forged_path) && f.snapshots.is_empty()), "{named:#?}");
    let lost: Vec<&cairn::check::Finding> = report.findings.iter().filter(|f| f.code == "blob-corrupt").collect();
    assert_eq!(lost.len(), 1, "only the poisoned chunk has no good copy: {:#?}", report.findings);
    assert!(lost[0].object.contains(&fx.repo.keys().content_id(&future).to_hex()), "{lost:#?}");
    assert_eq!(lost[0].snapshots, vec![poisoned.to_hex()]);
    assert_eq!(lost[0].paths, vec![fx.src.join("later.bin").display().to_string()]);
}

#[test]
fn a_backup_with_verify_dedup_stores_a_chunk_anew_that_only_a_forged_entry_claims() {
    let fx = fixture();
    let (_, existing, _, _) = poison(&fx);
    // With --verify-dedup the admin's next backup reads each copy it dedups against and stores the chunk anew.
    let fresh = fx.fresh("cache-admin");
    let o = BackupOptions { verify_dedup: true, ..BackupOptions::default() };
    let r = backup(&fresh, vec![BackupSource::Paths(vec![fx.src.clone()])], &o, &NoProgress).unwrap();
    assert_eq!(r.dedup_rejected, 1, "the guessed chunk is stored anew");
    assert!(r.dedup_verified >= existing as u64, "every other deduplicated blob was read back: {}", r.dedup_verified);
    assert!(r.summary.bytes_added >= 4096, "the chunk was stored: {:?}", r.summary);
    restore_matches(&fresh, &r.snapshot_id.unwrap(), &fx.src, &fx.tmp.path().join("restore"));
    // Without the flag a backup trusts the forged entry.
    let plain = backup(&fresh, vec![BackupSource::Paths(vec![fx.src.clone()])], &BackupOptions::default(), &NoProgress);
    assert_eq!(plain.unwrap().dedup_rejected, 0);
}

#[test]
fn check_compares_every_index_files_entry_with_the_pack_header() {
    let fx = fixture();
    let repo = &fx.repo;
    let wo = repo.keys().write_only();
    // No new pack: an index file that claims a tree pack of the admin's holds a blob it does not.
    let mut p = indexed_packs(repo, BlobKind::Tree).remove(0);
    let claimed = wo.content_id(b"not in that pack");
    p.blobs[0].id = claimed;
    let file = forge_index(repo.backend(), &wo, vec![p.clone()]);
    let report = check(&fx.fresh("cache-check"), &CheckOptions::default()).unwrap();
    let m: Vec<&cairn::check::Finding> = report.findings.iter().filter(|f| f.code == "index-mismatch").collect();
    assert_eq!(m.len(), 1, "{:#?}", report.findings);
    assert_eq!(m[0].object, pack_path(BlobKind::Tree, &p.id));
    assert!(m[0].message.contains(&file.to_hex()) && m[0].message.contains(&claimed.to_hex()), "{}", m[0].message);
}

/// A write-only key floods the index with more forged files than a bulk sync's threshold (each claiming every
/// data blob in a pack of garbage) and adds files that do not authenticate. A fresh cache syncs them in bulk
/// (compactions held, no write-ahead log): every blob keeps its real location beside the forged ones, the
/// snapshot restores byte for byte, and the damaged files are not marked ingested, so the next sync reads them
/// again.
#[test]
fn a_bulk_sync_of_a_flood_of_forged_and_damaged_index_files_keeps_every_real_location() {
    use cairn::cache::BULK_FILES;
    use cairn::id::IndexId;
    use cairn::layout::StoredId;
    let fx = fixture();
    let repo = &fx.repo;
    let wo = repo.keys().write_only();
    let (claims, _) = indexed_blobs(repo, BlobKind::Data);
    for _ in 0..BULK_FILES {
        forge_pack(repo.backend(), &wo, BlobKind::Data, &claims, None);
    }
    let damaged: Vec<IndexId> = (0..2u64)
        .map(|i| {
            let id = IndexId(cairn::crypto::random_32());
            repo.backend().write_new(&id.path(), &bytes(900 + i, 500)).unwrap();
            id
        })
        .collect();

    let fresh = fx.fresh("bulk");
    fresh.sync_index().unwrap();
    for (id, _) in &claims {
        assert_eq!(fresh.cache().lookup(BlobKind::Data, id).unwrap().len(), 1 + BULK_FILES, "blob {id}");
    }
    let ingested = fresh.cache().ingested().unwrap();
    assert!(ingested.len() > BULK_FILES);
    assert!(damaged.iter().all(|d| !ingested.contains(d)), "a damaged file is read again next sync");
    restore_matches(&fresh, &fx.snap, &fx.src, &fx.tmp.path().join("restored-bulk"));
}

/// A write-only key claims every tree in a forged tree pack that sorts first, so every tree's first location is
/// garbage. A walk falls back to the real copies and sees what it saw before. Each forged location costs one read of
/// its own range (which tells a forged entry from a window damaged on its way): the forged pack's window is kept, not
/// read again for every tree, and the real tree pack is still read in a window or two.
#[test]
fn a_forged_first_location_for_every_tree_costs_one_read_each_and_no_window_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for i in 0..50 {
        write(&src.join(format!("d{i:02}/f.txt")), format!("file {i}\n").as_bytes());
    }
    let dir = tmp.path().join("repo");
    let repo = init_local(&dir, b"forged", &tmp.path().join("cache0"));
    snapshot_of(&repo, &src);
    let before = walk_entries(&repo).unwrap();
    let real: Vec<PackId> = indexed_packs(&repo, BlobKind::Tree).iter().map(|p| p.id).collect();
    let (claims, low) = indexed_blobs(&repo, BlobKind::Tree);
    let forged = forge_pack(repo.backend(), &repo.keys().write_only(), BlobKind::Tree, &claims, Some(low));

    let (r, counting) = open_faulty(&dir, FaultPlan::default(), repo.keys(), repo.key_id(), &tmp.path().join("cache1"));
    let r = r.unwrap();
    assert_eq!(r.locate(BlobKind::Tree, &claims[0].0).unwrap()[0].pack, forged, "the forged copy is tried first");
    assert_eq!(walk_entries(&r).unwrap(), before, "the walk sees every entry through the real copies");
    let read = counting.counts().read_paths.lock().unwrap().clone();
    let reads_of = |p: &PackId| read.iter().filter(|x| **x == pack_path(BlobKind::Tree, p)).count();
    let trees = claims.len();
    assert!(reads_of(&forged) <= trees + 2, "{} reads of the forged pack for {trees} trees", reads_of(&forged));
    let real_reads: usize = real.iter().map(reads_of).sum();
    assert!(real_reads <= 3, "{real_reads} reads of the real tree packs");
}

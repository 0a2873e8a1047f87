//! Erasure (`rewrite`, format-spec §8.4) end to end through the library: the proof that after
//! `rewrite --forget` and two prune runs no stored blob holds a chunk only the erased file used
//! (through the index and by opening every blob of every pack with the keys), while shared chunks
//! and every other file stay; what a rewritten snapshot keeps (other sources, unchanged subtrees
//! by id, tags, `replaces`); and a crash at every write and delete of a rewrite, after which
//! nothing is lost and the next run finishes without a second replacement; a directory tree named at two paths is
//! rewritten per path.

use super::fixtures::{bytes, copy_dir, files, init_local, local, opts, write};
use cairn::backend::fault::{FaultBackend, FaultPlan};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::cache::Location;
use cairn::check::{check, CheckOptions, ReadData};
use cairn::id::{BlobId, BlobKind, PackId, SnapshotId};
use cairn::ledger::{EntryKind, Event, Replaced};
use cairn::prune::run;
use cairn::repository::{ReadRepository, Repository};
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use cairn::rewrite::{rewrite, RewriteOptions, TAG_REWRITTEN};
use cairn::select::list_all;
use cairn::tree::NodeKind;
use cairn::trees::{chunk_ids, Control, Walker};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PASSWORD: &[u8] = b"erasure";
const REASON: &str = "GDPR request 2026-117";

use super::fixtures::eager_prune as eager;

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    src: PathBuf,
    other: PathBuf,
    /// The erased file.
    erased: PathBuf,
    /// Two snapshots holding it (the second of two sources), oldest first.
    snaps: Vec<SnapshotId>,
}

/// The erased file's bytes: the first 4 MiB and 64 KiB of the kept files' (so its first chunk is
/// theirs), then 3 MiB of its own. The shared part is longer than the largest chunk (4 MiB): the
/// first chunk ends inside it whatever the repository's chunk key. With 3 MiB, a key that put the
/// first cut past 3 MiB left nothing shared and failed the fixture's check.
fn erased_content() -> Vec<u8> {
    let mut v = bytes(1, (4 << 20) + (64 << 10));
    v.extend(bytes(9, 3 << 20));
    v
}

/// A repository with two snapshots of `src` (holding the erased file, two kept copies of a file
/// that shares chunks with it, and small files) and of a second source `other`.
fn fixture() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let (src, other) = (base.join("src"), base.join("other"));
    write(&src.join("keep/k.bin"), &bytes(1, 5 << 20));
    write(&src.join("keep/copy.bin"), &bytes(1, 5 << 20));
    write(&src.join("person/alice.bin"), &erased_content());
    write(&src.join("person/readme.txt"), b"kept beside the erased file\n");
    write(&src.join("notes.txt"), b"v1\n");
    write(&other.join("o.txt"), b"the other source\n");
    let repo = init_local(&base.join("repo"), PASSWORD, &base.join("cache0"));
    let mut snaps = Vec::new();
    for v in ["v1\n", "v2\n"] {
        write(&src.join("notes.txt"), v.as_bytes());
        let sources = vec![BackupSource::Paths(vec![src.clone(), other.clone()])];
        snaps.push(backup(&repo, sources, &BackupOptions::default(), &NoProgress).unwrap().snapshot_id.unwrap());
    }
    let erased = src.join("person/alice.bin");
    Fx { _tmp: tmp, base, src, other, erased, snaps }
}

impl Fx {
    /// The repository at `dir` opened with its password (so its ledger entries are signed).
    fn repo(&self, dir: &Path, cache: &str) -> ReadRepository {
        Repository::open(local(dir), PASSWORD, &opts(&self.base.join(cache))).and_then(|r| r.readable()).unwrap()
    }

    /// The same behind the fault-injecting layer with `plan`.
    fn faulty(&self, dir: &Path, plan: FaultPlan, cache: &str) -> (ReadRepository, Arc<FaultBackend>) {
        let fb = Arc::new(FaultBackend::new(local(dir), plan));
        let repo = Repository::open(fb.clone(), PASSWORD, &opts(&self.base.join(cache))).and_then(|r| r.readable());
        (repo.unwrap(), fb)
    }

    fn opts(&self, forget: bool) -> RewriteOptions {
        RewriteOptions {
            excludes: vec![self.erased.to_string_lossy().into_owned()],
            reason: REASON.into(),
            forget,
            dry_run: false,
        }
    }
}

/// Path → the data blob ids of every file of snapshot `id`.
fn file_chunks(repo: &ReadRepository, id: &SnapshotId) -> BTreeMap<PathBuf, Vec<BlobId>> {
    let root = repo.load_snapshot(id).unwrap().root();
    let mut out = BTreeMap::new();
    Walker::new(repo)
        .walk(&root, Path::new("/"), &mut |p: &Path, n: &cairn::tree::Node| {
            if let NodeKind::File { content } = &n.kind {
                out.insert(p.to_path_buf(), chunk_ids(repo, content)?);
            }
            Ok(Control::Descend)
        })
        .unwrap();
    out
}

/// Opens every blob of every pack file under `dir` with the keys (pack header, then each sealed
/// blob with its session key, its id verified): (kind, id, plaintext).
fn every_blob(repo: &ReadRepository, dir: &Path) -> Vec<(BlobKind, BlobId, Vec<u8>)> {
    let mut out = Vec::new();
    for (rel, data) in files(dir) {
        let kind = match rel.components().next().and_then(|c| c.as_os_str().to_str()) {
            Some("data") => BlobKind::Data,
            Some("tree") => BlobKind::Tree,
            _ => continue,
        };
        let name = rel.file_name().unwrap().to_str().unwrap();
        let pack = PackId(hex::decode(name).unwrap().try_into().unwrap());
        let ip = cairn::codec::packer::index_entry(repo.keys(), &pack, kind, &data).unwrap();
        for b in &ip.blobs {
            let loc = Location::of(&ip, b).unwrap();
            let sealed = &data[b.offset as usize..b.offset as usize + b.length as usize];
            out.push((kind, b.id, repo.open_blob_at(&loc, &b.id, sealed).unwrap()));
        }
    }
    assert!(!out.is_empty(), "no pack found under {dir:?}");
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn after_rewrite_forget_and_two_prunes_no_pack_holds_a_chunk_only_the_erased_file_used() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    let erased_path = fx.erased.clone();
    // Which chunks the erased file uses alone, and which it shares.
    let mut unique: HashSet<BlobId> = HashSet::new();
    let mut others: HashSet<BlobId> = HashSet::new();
    for s in &fx.snaps {
        for (p, ids) in file_chunks(&repo, s) {
            if p == erased_path {
                unique.extend(ids)
            } else {
                others.extend(ids)
            }
        }
    }
    let shared: HashSet<BlobId> = unique.intersection(&others).copied().collect();
    unique.retain(|id| !others.contains(id));
    assert!(!shared.is_empty() && !unique.is_empty(), "the fixture must share some chunks and not others");
    // Fragments of the erased file's own bytes, and its name, to look for in every plaintext.
    let own = bytes(9, 3 << 20);
    let fragments: Vec<&[u8]> = (0..6).map(|i| &own[i * (512 << 10)..i * (512 << 10) + 64]).collect();
    // The scan sees them before the erasure (so it would see them after, were they there).
    let before = every_blob(&repo, &dir);
    assert!(before.iter().any(|(_, id, _)| unique.contains(id)));
    assert!(before.iter().any(|(_, _, p)| fragments.iter().any(|f| contains(p, f))));
    assert!(before.iter().any(|(k, _, p)| *k == BlobKind::Tree && contains(p, b"alice.bin")));

    let all = list_all(&repo).unwrap();
    let report = rewrite(&repo, &all, &all, &fx.opts(true)).unwrap();
    assert_eq!(report.snapshots.len(), 2, "{report:#?}");
    for (s, old) in report.snapshots.iter().zip(&fx.snaps) {
        assert_eq!(s.snapshot, *old);
        assert!(s.new.is_some() && s.forgotten && !s.already_replaced && !s.emptied);
        assert_eq!((s.entries, s.files, s.bytes), (1, 1, erased_content().len() as u64));
        assert_eq!(s.removed.len(), 1);
        assert_eq!(s.removed[0].path, erased_path.to_string_lossy());
        assert!(s.sources_dropped.is_empty());
    }
    drop(repo);

    // Two prune runs: the first marks (and repacks the packs that mix erased and live blobs), the
    // second deletes.
    let repo = fx.repo(&dir, "c2");
    run(&repo, &eager(), false).unwrap();
    run(&repo, &eager(), false).unwrap();
    drop(repo);

    // A fresh cache: the index as stored.
    let repo = fx.repo(&dir, "c3");
    repo.sync_index().unwrap();
    for id in &unique {
        assert!(repo.locate(BlobKind::Data, id).unwrap().is_empty(), "the index still names erased chunk {id}");
    }
    for id in &shared {
        assert!(!repo.locate(BlobKind::Data, id).unwrap().is_empty(), "shared chunk {id} was lost");
    }
    // Every blob of every pack, opened with the keys.
    let after = every_blob(&repo, &dir);
    for (kind, id, plain) in &after {
        assert!(!unique.contains(id), "pack blob {kind} {id} is a chunk only the erased file used");
        assert!(!fragments.iter().any(|f| contains(plain, f)), "blob {kind} {id} holds the erased file's bytes");
        assert!(!contains(plain, b"alice.bin"), "blob {kind} {id} still names the erased file");
    }
    assert!(after.iter().any(|(_, id, _)| shared.contains(id)), "the shared chunks stay stored");
    assert_eq!(check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap().errors(), 0);

    // Everything else restores byte for byte.
    let snaps = list_all(&repo).unwrap();
    assert_eq!(snaps.len(), 2);
    let mut want = files(&fx.src);
    want.remove(Path::new("person/alice.bin"));
    for (i, l) in snaps.iter().enumerate() {
        assert!(l.snapshot.tags().iter().any(|t| t == TAG_REWRITTEN));
        assert_eq!(l.snapshot.replaces(), &[fx.snaps[i]]);
        let target = fx.base.join(format!("restore-{i}"));
        let o = RestoreOptions { target: target.clone(), ..Default::default() };
        let r = restore(&repo, &l.snapshot.root(), None, &o, &NoRestoreProgress).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let mut got = files(&target.join(fx.src.strip_prefix("/").unwrap()));
        let notes = got.remove(Path::new("notes.txt")).unwrap();
        assert_eq!(notes, format!("v{}\n", i + 1).as_bytes());
        let mut w = want.clone();
        w.remove(Path::new("notes.txt"));
        assert_eq!(got, w, "snapshot {i} lost a kept file");
        assert_eq!(files(&target.join(fx.other.strip_prefix("/").unwrap())), files(&fx.other));
    }

    // The ledger records the request: reason, patterns and ids, nothing of the file.
    let log = cairn::ops::ledger::log(&repo, None, Some(EntryKind::Rewrite)).unwrap();
    assert_eq!(log.len(), 1);
    let expected = Event::Rewrite {
        reason: REASON.into(),
        patterns: vec![erased_path.to_string_lossy().into_owned()],
        replaced: fx.snaps.iter().zip(&snaps).map(|(old, l)| Replaced { old: *old, new: l.id }).collect(),
        removed: fx.snaps.clone(),
    };
    assert_eq!(log[0].event.as_ref(), Some(&expected));
    let json = serde_json::to_vec(&log[0]).unwrap();
    assert!(!fragments.iter().any(|f| contains(&json, f) || contains(&json, hex::encode(f).as_bytes())));
    let v = cairn::ops::ledger::verify(&repo, None).unwrap();
    assert!(v.findings.is_empty(), "{:#?}", v.findings);
}

#[test]
fn a_rewritten_snapshot_keeps_its_other_sources_unchanged_subtrees_and_identity_fields() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let repo = fx.repo(&dir, "c1");
    let all = list_all(&repo).unwrap();
    let old = all.iter().find(|l| l.id == fx.snaps[1]).unwrap().clone();
    // A dry run plans and writes nothing.
    let state: Vec<PathBuf> = files(&dir).into_keys().collect();
    let dry =
        rewrite(&repo, std::slice::from_ref(&old), &all, &RewriteOptions { dry_run: true, ..fx.opts(true) }).unwrap();
    assert!(dry.dry_run && dry.ledger_entry.is_none());
    assert_eq!((dry.snapshots.len(), dry.files, dry.bytes), (1, 1, erased_content().len() as u64));
    assert!(dry.snapshots[0].new.is_none() && !dry.snapshots[0].forgotten);
    assert_eq!(files(&dir).into_keys().collect::<Vec<_>>(), state, "a dry run changed the repository");

    // Without --forget both stay.
    let r = rewrite(&repo, std::slice::from_ref(&old), &all, &fx.opts(false)).unwrap();
    let new = r.snapshots[0].new.unwrap();
    assert!(!r.snapshots[0].forgotten);
    assert!(repo.load_snapshot(&old.id).is_ok());
    let s = repo.load_snapshot(&new).unwrap();
    assert_eq!((s.time(), s.host(), s.user()), (old.snapshot.time(), old.snapshot.host(), old.snapshot.user()));
    assert_eq!(s.paths(), old.snapshot.paths(), "both sources still hold something");
    assert_eq!(s.sources(), old.snapshot.sources());
    assert_eq!(s.tags(), &[TAG_REWRITTEN.to_string()]);
    assert_eq!(s.replaces(), &[old.id]);
    // Unchanged subtrees keep their ids; only the directories above the erased file change.
    let trees = |root: BlobId| -> BTreeMap<PathBuf, BlobId> {
        let mut m = BTreeMap::new();
        Walker::new(&repo)
            .walk(&root, Path::new("/"), &mut |p: &Path, n: &cairn::tree::Node| {
                if let NodeKind::Dir { tree } = n.kind {
                    m.insert(p.to_path_buf(), tree);
                }
                Ok(Control::Descend)
            })
            .unwrap();
        m
    };
    let (a, b) = (trees(old.snapshot.root()), trees(s.root()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let person = fx.erased.parent().unwrap();
    for (p, id) in &a {
        let above = person.starts_with(p);
        assert_eq!(b[p] != *id, above, "{p:?}: rewritten iff it holds the erased file");
    }
    assert_eq!(file_chunks(&repo, &new).len() + 1, file_chunks(&repo, &old.id).len());

    // Erasing a whole source drops it from `paths` and `sources`; the other stays.
    let l = list_all(&repo).unwrap().into_iter().find(|l| l.id == new).unwrap();
    let o = RewriteOptions { excludes: vec![fx.other.to_string_lossy().into_owned()], ..fx.opts(true) };
    let r = rewrite(&repo, std::slice::from_ref(&l), &all, &o).unwrap();
    assert_eq!(r.snapshots[0].sources_dropped, vec![fx.other.to_string_lossy().into_owned()]);
    let s2 = repo.load_snapshot(&r.snapshots[0].new.unwrap()).unwrap();
    assert_eq!(s2.paths(), &[fx.src.as_os_str().as_encoded_bytes().to_vec()]);
    assert_eq!(s2.sources().len(), 1);
    assert_eq!(s2.replaces(), &[old.id, new], "the id chain, oldest first");
    assert_eq!(s2.tags(), &[TAG_REWRITTEN.to_string()], "`rewritten` once");
    assert!(repo.load_snapshot(&new).is_err(), "--forget deleted the rewritten original");
    // Snapshots without a match are left alone.
    let again = rewrite(&repo, &list_all(&repo).unwrap(), &list_all(&repo).unwrap(), &o).unwrap();
    let touched: BTreeSet<SnapshotId> = again.snapshots.iter().map(|s| s.snapshot).collect();
    assert_eq!(touched, [fx.snaps[0], old.id].into_iter().collect(), "{again:#?}");

    // A snapshot all of whose sources go gets no replacement; with --forget it is deleted.
    let both = vec![fx.src.to_string_lossy().into_owned(), fx.other.to_string_lossy().into_owned()];
    let left = list_all(&repo).unwrap();
    assert_eq!(left.len(), 3, "the replacements of the two rewrites above");
    let r = rewrite(&repo, &left, &left, &RewriteOptions { excludes: both, ..fx.opts(true) }).unwrap();
    assert!(r.snapshots.iter().all(|s| s.emptied && s.forgotten && s.new.is_none()), "{r:#?}");
    assert!(list_all(&repo).unwrap().is_empty());
    let log = cairn::ops::ledger::log(&repo, None, Some(EntryKind::Rewrite)).unwrap();
    match log.last().and_then(|e| e.event.as_ref()) {
        Some(Event::Rewrite { replaced, removed, .. }) => {
            assert!(replaced.is_empty());
            assert_eq!(removed, &left.iter().map(|l| l.id).collect::<Vec<_>>());
        }
        other => panic!("{other:?}"),
    }
    assert!(cairn::ops::ledger::verify(&repo, None).unwrap().findings.is_empty());
}

/// The snapshots whose tree still holds the erased file.
fn holding(repo: &ReadRepository, erased: &Path) -> Vec<SnapshotId> {
    repo.snapshot_ids().unwrap().into_iter().filter(|id| file_chunks(repo, id).contains_key(erased)).collect()
}

#[test]
fn a_crash_at_any_write_or_delete_of_a_rewrite_loses_nothing_and_the_next_run_finishes() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    // Count the writes and deletes of a rewrite --forget on a throwaway copy.
    let probe = fx.base.join("probe");
    copy_dir(&dir, &probe);
    let (repo, counting) = fx.faulty(&probe, FaultPlan::default(), "cp");
    let all = list_all(&repo).unwrap();
    rewrite(&repo, &all, &all, &fx.opts(true)).unwrap();
    let c = counting.counts();
    let (writes, deletes) =
        (c.writes.load(std::sync::atomic::Ordering::SeqCst), c.deletes.load(std::sync::atomic::Ordering::SeqCst));
    assert!(writes >= 6 && deletes >= 2, "writes {writes}, deletes {deletes}");
    let mut points = 0;
    let plans = (0..writes)
        .map(|n| FaultPlan { fail_write: Some(n), crash: true, ..Default::default() })
        .chain((0..deletes).map(|n| FaultPlan { fail_delete: Some(n), crash: true, ..Default::default() }));
    for (i, plan) in plans.enumerate() {
        let copy = fx.base.join(format!("crash-{i}"));
        copy_dir(&dir, &copy);
        let (repo, fb) = fx.faulty(&copy, plan, &format!("cc{i}"));
        let all = list_all(&repo).unwrap();
        let r = rewrite(&repo, &all, &all, &fx.opts(true));
        if !fb.has_crashed() {
            r.unwrap();
            continue;
        }
        points += 1;
        drop(repo);
        // After the "restart": healthy, and every original is still there or replaced.
        let repo = fx.repo(&copy, &format!("cc{i}-after"));
        assert_eq!(check(&repo, &CheckOptions::default()).unwrap().errors(), 0, "crash point {i}");
        let listed = list_all(&repo).unwrap();
        for old in &fx.snaps {
            let present = listed.iter().any(|l| l.id == *old || l.snapshot.replaces().contains(old));
            assert!(present, "crash point {i}: snapshot {old} and its replacement are both gone");
        }
        // The next run finishes: one clean replacement per original, no original left.
        let r = rewrite(&repo, &listed, &listed, &fx.opts(true)).unwrap();
        let listed = list_all(&repo).unwrap();
        assert_eq!(listed.len(), 2, "crash point {i}: {r:#?}");
        for (l, old) in listed.iter().zip(&fx.snaps) {
            assert_eq!(l.snapshot.replaces(), &[*old], "crash point {i}");
        }
        assert!(holding(&repo, &fx.erased).is_empty(), "crash point {i}");
        // The ledger accounts for everything, or names exactly what the crash left unrecorded.
        let v = cairn::ops::ledger::verify(&repo, None).unwrap();
        let ids: BTreeSet<String> = fx.snaps.iter().chain(listed.iter().map(|l| &l.id)).map(|s| s.to_hex()).collect();
        for f in &v.findings {
            let id = f.object.trim_start_matches("snapshots/");
            assert!(
                matches!(f.code, "snapshot-unrecorded" | "snapshot-missing") && ids.contains(id),
                "crash point {i}: {f:?}"
            );
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
    assert!(points as u64 >= writes + deletes - 2, "only {points} crash points reached");
    eprintln!("rewrite crash points exercised: {points}");
}

#[test]
fn a_replacement_planted_by_a_write_only_key_is_never_taken_for_an_earlier_runs() {
    let fx = fixture();
    let dir = fx.base.join("repo");
    let admin = fx.repo(&dir, "c-admin");
    admin.add_password(b"wo", true).unwrap();
    let old = fx.snaps[1];
    // An honest replacement's manifest (the right tree, time, host, tag and `replaces`), then deleted ...
    let all = list_all(&admin).unwrap();
    let target: Vec<_> = all.iter().filter(|l| l.id == old).cloned().collect();
    let honest = rewrite(&admin, &target, &all, &fx.opts(false)).unwrap().snapshots[0].new.unwrap();
    let copy = admin.load_snapshot(&honest).unwrap().with_writer(None);
    admin.remove_snapshot(&honest).unwrap();
    // ... committed again by a write-only key, as its holder can.
    let wo = Repository::open(local(&dir), b"wo", &opts(&fx.base.join("c-wo"))).unwrap();
    let planted = cairn::writer::Writer::new(&wo, Default::default(), "backup").unwrap().commit(&copy).unwrap();
    drop(wo);

    let admin = fx.repo(&dir, "c-admin2");
    let all = list_all(&admin).unwrap();
    let p = all.iter().find(|l| l.id == planted).unwrap();
    assert_eq!((p.snapshot.root(), p.snapshot.replaces()), (copy.root(), &[old][..]), "the plant looks right");
    let target: Vec<_> = all.iter().filter(|l| l.id == old).cloned().collect();
    let r = rewrite(&admin, &target, &all, &fx.opts(true)).unwrap();
    let s = &r.snapshots[0];
    assert!(!s.already_replaced && s.forgotten, "{r:#?}");
    let new = s.new.unwrap();
    assert_ne!(new, planted);
    let listed = list_all(&admin).unwrap();
    let n = listed.iter().find(|l| l.id == new).unwrap();
    assert!(n.attribution.is_full_key() && n.eligible(), "the replacement is the admin's own");
    assert!(listed.iter().any(|l| l.id == planted), "the plant is left alone");
}

#[test]
fn a_path_pattern_erases_one_of_two_identical_directories_only() {
    use cairn::tree::{Content, Node};
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let repo = init_local(&base.join("repo"), PASSWORD, &base.join("cache"));
    // One directory tree named twice, at /a and /b (what two identical directories are).
    let w = cairn::writer::Writer::new(&repo, Default::default(), "backup").unwrap();
    let file = |name: &[u8], data: &[u8]| {
        let (blob, _) = w.store(BlobKind::Data, data).unwrap();
        Node { size: data.len() as u64, ..Node::bare(name, NodeKind::File { content: Content::Chunks(vec![blob]) }) }
    };
    let dir = cairn::trees::write_dir(&w, vec![file(b"x.txt", b"same\n"), file(b"y.txt", b"also\n")]).unwrap();
    let sub = |name: &[u8]| Node { mode: 0o755, ..Node::bare(name, NodeKind::Dir { tree: dir }) };
    let root = cairn::trees::write_dir(&w, vec![sub(b"a"), sub(b"b")]).unwrap();
    w.commit(&super::fixtures::snapshot_of_root(root, "web-1", cairn::time::Time::now(), "cairn")).unwrap();
    let all = list_all(&repo).unwrap();
    let before = file_chunks(&repo, &all[0].id);
    let opts = RewriteOptions { excludes: vec!["/a/x.txt".into()], ..Default::default() };
    let r = rewrite(&repo, &all, &all, &opts).unwrap();
    let after = file_chunks(&repo, &r.snapshots[0].new.unwrap());
    let mut want = before.clone();
    want.remove(Path::new("/a/x.txt"));
    assert_eq!(after.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "only /a/x.txt goes");
}

#[test]
fn erasing_an_inline_file_removes_its_bytes_from_every_stored_blob() {
    // A file small enough to be stored in its tree node (format-spec §7.3): its bytes live in the
    // tree blobs of its directory, which the rewrite replaces and prune then deletes.
    let tmp = tempfile::tempdir().unwrap();
    let (base, src) = (tmp.path().to_path_buf(), tmp.path().join("src"));
    let secret = b"alice's inline secret: 4f1c9a77e2".to_vec();
    write(&src.join("person/alice.txt"), &secret);
    write(&src.join("person/readme.txt"), b"kept beside the erased file\n");
    let dir = base.join("repo");
    let repo = init_local(&dir, PASSWORD, &base.join("c0"));
    for v in ["v1\n", "v2\n"] {
        write(&src.join("notes.txt"), v.as_bytes());
        backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &BackupOptions::default(), &NoProgress).unwrap();
    }
    let before = every_blob(&repo, &dir);
    assert!(before.iter().all(|(k, _, p)| *k == BlobKind::Tree || !contains(p, &secret)), "stored inline");
    assert!(before.iter().any(|(k, _, p)| *k == BlobKind::Tree && contains(p, &secret)));
    let all = list_all(&repo).unwrap();
    let erased = src.join("person/alice.txt").to_string_lossy().into_owned();
    let o = RewriteOptions { excludes: vec![erased], reason: REASON.into(), forget: true, dry_run: false };
    let report = rewrite(&repo, &all, &all, &o).unwrap();
    assert!(report.snapshots.iter().all(|s| s.removed.len() == 1 && s.bytes == secret.len() as u64), "{report:#?}");
    drop(repo);
    let reopen = |cache: &str| {
        Repository::open(local(&dir), PASSWORD, &opts(&base.join(cache))).and_then(|r| r.readable()).unwrap()
    };
    let repo = reopen("c1");
    run(&repo, &eager(), false).unwrap();
    run(&repo, &eager(), false).unwrap();
    drop(repo);
    let repo = reopen("c2");
    for (kind, id, plain) in every_blob(&repo, &dir) {
        assert!(!contains(&plain, &secret), "blob {kind} {id} holds the erased inline file's bytes");
        assert!(!contains(&plain, b"alice.txt"), "blob {kind} {id} still names the erased file");
    }
    let mut want = files(&src.join("person"));
    want.remove(Path::new("alice.txt"));
    for l in list_all(&repo).unwrap() {
        let target = base.join(format!("r-{}", l.id));
        let o = RestoreOptions { target: target.clone(), ..Default::default() };
        let r = restore(&repo, &l.snapshot.root(), None, &o, &NoRestoreProgress).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(files(&target.join(src.join("person").strip_prefix("/").unwrap())), want);
    }
}

//! Snapshots are no longer self-labelled (format-spec §4.3, §8.1; issue 10 finding 4): each test plays an attacker
//! holding a write-only key, planting snapshots through the library's own writer and encoders, and asserts that
//! retention, `latest`, `--as-of`, `check`, `snapshots --json` and restore treat them by who really wrote them.
//! Also: snapshots from before attribution (`V1`) still list, restore and forget, in the `unattributed` group.

use super::fixtures::{
    ago, as_v1, bytes, files, host_filter as host, local, opts, plant, restore_matches, snapshot_of, snapshot_of_root,
    write,
};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::cert::Attribution;
use cairn::check::{check, CheckOptions, Severity};
use cairn::codec::{attribution, object};
use cairn::crypto::Session;
use cairn::forget::{self, GroupBy, Rules};
use cairn::id::{KeyId, SnapshotId};
use cairn::layout::StoredId;
use cairn::repository::{InitOptions, ReadRepository, Repository};
use cairn::retention::{Count, Policy};
use cairn::select::{self, Filter, Flag, SnapshotSpec};
use cairn::time::Time;
use cairn::Error;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const ADMIN: &[u8] = b"admin";
/// The write-only key of host web-1, bound to it.
const WEB1: &[u8] = b"web-1 key";
/// The attacker's write-only key, bound to no host.
const EVIL: &[u8] = b"evil key";
/// Another host's write-only key, bound to web-2.
const WEB2: &[u8] = b"web-2 key";

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dir: PathBuf,
    web1: KeyId,
    evil: KeyId,
}

fn keep_last(n: u32) -> Rules {
    Rules::Policy(Policy { last: Some(Count::Last(n)), ..Default::default() })
}

impl Fx {
    /// A repository (password [`ADMIN`]) with the write-only keys [`WEB1`] (bound to web-1), [`EVIL`] (unbound)
    /// and [`WEB2`] (bound to web-2), each certified by the admin.
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let dir = base.join("repo");
        let admin = Repository::init(local(&dir), ADMIN, &InitOptions::default(), &opts(&base.join("c-init"))).unwrap();
        let web1 = admin.add_password_for_hosts(WEB1, true, &["web-1".into()]).unwrap();
        let evil = admin.add_password_for_hosts(EVIL, true, &[]).unwrap();
        admin.add_password_for_hosts(WEB2, true, &["web-2".into()]).unwrap();
        Fx { _tmp: tmp, base, dir, web1, evil }
    }

    /// Opens with `password` (so the key signs) and a fresh cache.
    fn open(&self, password: &[u8]) -> Repository {
        let cache = self.base.join(format!("c-{}", super::fixtures::rand_name()));
        Repository::open(local(&self.dir), password, &opts(&cache)).unwrap()
    }

    fn admin(&self) -> ReadRepository {
        self.open(ADMIN).readable().unwrap()
    }

    /// A snapshot of `host` at `time` written by the key of `password`.
    fn plant(&self, password: &[u8], host: &str, time: Time) -> SnapshotId {
        plant(&self.open(password), host, time, b"content", 0o644)
    }

    fn listed(&self, id: &SnapshotId) -> select::Listed {
        select::list_all(&self.admin()).unwrap().into_iter().find(|l| l.id == *id).unwrap()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        super::fixtures::run_cairn(&self.dir, b"admin", &self.base.join("cli"), args)
    }
}

fn kept_and_removed(groups: &[forget::Group]) -> (Vec<SnapshotId>, Vec<SnapshotId>) {
    let ds = groups.iter().flat_map(|g| &g.decisions);
    (ds.clone().filter(|d| d.keep).map(|d| d.id).collect(), ds.filter(|d| !d.keep).map(|d| d.id).collect())
}

#[test]
fn planted_snapshots_claiming_a_bound_host_neither_displace_its_retention_nor_become_latest() {
    let fx = Fx::new();
    // After web-1 was bound to its key (now): web-1's two real snapshots, then newer ones claiming web-1: three
    // by the unbound attacker key, one by web-2's key, and one the attacker leaves unattributed (its session
    // opened without the key's password, so nothing signs).
    let real = [fx.plant(WEB1, "web-1", ago(-2)), fx.plant(WEB1, "web-1", ago(-4))];
    let mut planted: Vec<SnapshotId> = [10i64, 20, 30].iter().map(|s| fx.plant(EVIL, "web-1", ago(-s))).collect();
    planted.push(fx.plant(WEB2, "web-1", ago(-40)));
    let evil = fx.open(EVIL);
    let unsigned =
        Repository::open_with_keys(local(&fx.dir), evil.keys().clone(), fx.evil, &opts(&fx.base.join("u"))).unwrap();
    planted.push(plant(&unsigned, "web-1", ago(-50), b"planted", 0o644));

    let admin = fx.admin();
    let listed = host("web-1").entries(&admin).unwrap();
    assert_eq!(listed.len(), 7);
    for l in &listed {
        let want: &[Flag] = if real.contains(&l.id) { &[] } else { &[Flag::HostNotAllowed] };
        assert_eq!(l.flags, want, "{} by {:?}", l.id, l.attribution);
    }
    assert!(matches!(fx.listed(&real[1]).attribution, Attribution::Attributed { key_id, .. } if key_id == fx.web1));

    // forget --keep-last 2 --host web-1: web-1's two are kept, none removed; the planted ones are excluded.
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(2), &jiff::tz::TimeZone::UTC);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0].writer.as_deref(), Some(fx.web1.to_hex().as_str()));
    let (kept, removed) = kept_and_removed(&groups);
    assert_eq!(kept, [real[1], real[0]]);
    assert!(removed.is_empty());
    let mut excluded: Vec<SnapshotId> = forget::excluded(&listed).iter().map(|x| x.id).collect();
    excluded.sort();
    planted.sort();
    assert_eq!(excluded, planted);
    assert!(forget::execute(&admin, &groups, false).unwrap().is_empty());
    assert_eq!(admin.snapshot_ids().unwrap().len(), 7, "nothing was removed");

    // latest --host web-1 and --as-of now are still web-1's own newest.
    assert_eq!(select::select(&admin, &SnapshotSpec::Latest, &host("web-1")).unwrap().0, real[1]);
    // (As of a moment after both real snapshots, which are dated up to 4 s ahead: `Time::now()` made this
    // depend on how long the test had run.)
    let as_of = select::as_of(&admin, ago(-5), &host("web-1")).unwrap();
    assert_eq!(as_of.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [real[1]]);
    // --writer: a key id prefix, or `unattributed`.
    let by = |w: &str| Filter { writer: Some(w.into()), ..Default::default() }.entries(&admin).unwrap();
    assert_eq!(by(&fx.web1.to_hex()[..6]).iter().map(|l| l.id).collect::<Vec<_>>(), real);
    assert_eq!(by("unattributed").iter().map(|l| l.id).collect::<Vec<_>>(), [planted_unattributed(&listed)]);
    // The web-1 key cannot back up as another host, nor the unbound key as web-1: refused before writing.
    let before = files(&fx.dir).len();
    let src = fx.base.join("src");
    write(&src.join("a"), b"a");
    for (pw, h) in [(WEB1, "db-1"), (EVIL, "web-1")] {
        let o = BackupOptions { host: Some(h.into()), ..Default::default() };
        let err = backup(&fx.open(pw), vec![BackupSource::Paths(vec![src.clone()])], &o, &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::HostNotAllowed { host, .. } if host == h), "{err}");
        assert_eq!(err.exit_code(), 12);
    }
    assert_eq!(files(&fx.dir).len(), before, "a refused backup writes nothing");
}

fn planted_unattributed(listed: &[select::Listed]) -> SnapshotId {
    listed.iter().find(|l| l.attribution == Attribution::Unattributed).unwrap().id
}

/// Stores, as the attacker (`repo`, a write-only key opened with its password), a snapshot of `host` at `time`
/// whose writer block names `claimed` and carries `signature(id, unsigned bytes)`, through the library's encoders.
fn forge(
    repo: &Repository,
    host: &str,
    time: Time,
    claimed: KeyId,
    signature: impl Fn(&SnapshotId, &[u8]) -> cairn::cert::Signature64,
) -> SnapshotId {
    let w = cairn::writer::Writer::new(repo, Default::default(), "backup").unwrap();
    let root = cairn::trees::write_dir(&w, vec![]).unwrap();
    w.finish().unwrap();
    let id = SnapshotId(cairn::crypto::random_32());
    let snap = snapshot_of_root(root, host, time, "cairn");
    let sig = signature(&id, &snap.with_writer(None).unsigned_bytes());
    let snap = snap.with_writer(Some(cairn::cert::Writer { key_id: claimed, signature: sig }));
    let session = Session::new_writer(repo.keys());
    repo.backend().write_new(&id.path(), &object::encode_snapshot(repo.keys(), &session, &id, &snap)).unwrap();
    id
}

#[test]
fn a_writer_block_claiming_the_victim_key_is_forged_excluded_and_reported() {
    let fx = Fx::new();
    let real = [fx.plant(WEB1, "web-1", ago(7200)), fx.plant(WEB1, "web-1", ago(3600))];
    let victim_block = *fx.admin().load_snapshot(&real[1]).unwrap().writer().expect("web-1's snapshot is signed");
    let evil = fx.open(EVIL);
    let secret = evil.key_sign_secret().unwrap().clone();
    // Signed by the attacker's own signing key, claiming web-1's key id.
    let signed = forge(&evil, "web-1", ago(60), fx.web1, |id, unsigned| {
        attribution::sign_snapshot(&secret, &fx.web1, id, unsigned).signature
    });
    // The victim's real writer block copied onto another snapshot.
    let copied = forge(&evil, "web-1", ago(30), fx.web1, |_, _| victim_block.signature);
    let admin = fx.admin();
    for id in [signed, copied] {
        let l = fx.listed(&id);
        assert!(matches!(l.attribution, Attribution::Forged(_)), "{:?}", l.attribution);
        assert_eq!(l.flags, [Flag::Forged]);
    }
    assert_eq!(select::select(&admin, &SnapshotSpec::Latest, &host("web-1")).unwrap().0, real[1]);
    let listed = host("web-1").entries(&admin).unwrap();
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(2), &jiff::tz::TimeZone::UTC);
    assert_eq!(kept_and_removed(&groups), (vec![real[1], real[0]], vec![]));
    let report = check(&admin, &CheckOptions::default()).unwrap();
    for id in [signed, copied] {
        let f = report.findings.iter().find(|f| f.code == "snapshot-forged" && f.object == id.path()).unwrap();
        assert_eq!((f.severity, &f.snapshots), (Severity::Error, &vec![id.to_hex()]));
    }
    assert_eq!(report.errors(), 2, "{:#?}", report.findings);
    let out = fx.cli(&["snapshots", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = |id: &SnapshotId| doc.as_array().unwrap().iter().find(|s| s["id"] == id.to_hex()).unwrap().clone();
    assert_eq!(entry(&signed)["flags"], serde_json::json!(["forged"]));
    assert_eq!(entry(&signed)["attribution"], "forged");
    assert_eq!(entry(&signed)["writer"], serde_json::Value::Null);
    assert_eq!(entry(&real[1])["writer"], fx.web1.to_hex());
    assert_eq!(entry(&real[1])["attribution"], "attributed");
    assert_eq!(entry(&real[1])["flags"], serde_json::json!([]));
    let out = fx.cli(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("snapshot-forged: {}", signed.path())));
}

#[test]
fn a_snapshot_a_bound_key_writes_for_another_host_is_host_not_allowed() {
    let fx = Fx::new();
    let db = fx.plant(ADMIN, "db-1", ago(3600));
    // Through the library's writer (the backup refuses it, see above): web-1's key claiming db-1.
    let planted = fx.plant(WEB1, "db-1", ago(60));
    let l = fx.listed(&planted);
    assert!(matches!(l.attribution, Attribution::Attributed { host_allowed: false, .. }), "{:?}", l.attribution);
    assert_eq!(l.flags, [Flag::HostNotAllowed]);
    let admin = fx.admin();
    assert_eq!(select::select(&admin, &SnapshotSpec::Latest, &host("db-1")).unwrap().0, db);
    let report = check(&admin, &CheckOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.code == "snapshot-host-not-allowed").unwrap();
    assert_eq!((f.severity, f.object.as_str()), (Severity::Error, planted.path().as_str()));
    let listed = host("db-1").entries(&admin).unwrap();
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(1), &jiff::tz::TimeZone::UTC);
    assert_eq!(kept_and_removed(&groups), (vec![db], vec![]));
    assert_eq!(forget::excluded(&listed).iter().map(|x| x.id).collect::<Vec<_>>(), [planted]);
}

#[test]
fn a_snapshot_dated_a_year_ahead_is_future_and_does_not_displace_retention() {
    let fx = Fx::new();
    let real = [fx.plant(WEB1, "web-1", ago(7200)), fx.plant(WEB1, "web-1", ago(3600))];
    let ahead = fx.plant(WEB1, "web-1", ago(-365 * 86_400));
    assert_eq!(fx.listed(&ahead).flags, [Flag::Future]);
    let admin = fx.admin();
    assert_eq!(select::select(&admin, &SnapshotSpec::Latest, &host("web-1")).unwrap().0, real[1]);
    let listed = host("web-1").entries(&admin).unwrap();
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(2), &jiff::tz::TimeZone::UTC);
    assert_eq!(kept_and_removed(&groups), (vec![real[1], real[0]], vec![]));
    let report = check(&admin, &CheckOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.code == "snapshot-future").unwrap();
    assert_eq!((f.severity, f.object.as_str()), (Severity::Warning, ahead.path().as_str()));
    assert_eq!(report.errors(), 0, "a warning, not an error");
}

#[test]
fn restore_strips_setuid_from_snapshots_not_written_by_a_full_key() {
    let fx = Fx::new();
    let by_writer = plant(&fx.open(WEB1), "web-1", ago(60), b"#!/bin/sh\n", 0o6755);
    let by_admin = plant(&fx.open(ADMIN), "web-1", ago(30), b"#!/bin/sh\n", 0o6755);
    let mode = |id: &SnapshotId, extra: &[&str]| {
        let target = fx.base.join(format!("t-{}", super::fixtures::rand_name()));
        let hex = id.to_hex();
        let mut args = vec!["restore", &hex[..12], "--target", target.to_str().unwrap()];
        args.extend(extra);
        let out = fx.cli(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let m = std::fs::metadata(target.join("f")).unwrap().permissions().mode() & 0o7777;
        (m, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (m, err) = mode(&by_writer, &[]);
    assert_eq!(m, 0o755, "setuid and setgid stripped");
    assert!(err.contains("stripped from 1 entry") && err.contains("--keep-setuid"), "{err}");
    assert_eq!(mode(&by_writer, &["--keep-setuid"]).0, 0o6755);
    let (m, err) = mode(&by_admin, &[]);
    assert_eq!(m, 0o6755, "a full key's snapshot keeps them");
    assert!(!err.contains("stripped"), "{err}");
}

#[test]
fn snapshots_from_before_attribution_still_list_restore_and_forget_as_unattributed() {
    let fx = Fx::new();
    let src = fx.base.join("src");
    write(&src.join("a.bin"), &bytes(3, 300 * 1024));
    let admin = fx.admin();
    // Two V1 snapshots, as a writer before attribution stored them (no writer block).
    let mut old = Vec::new();
    for _ in 0..2 {
        let signed = snapshot_of(&admin, &src);
        let v1 = as_v1(&admin.load_snapshot(&signed).unwrap());
        let id = SnapshotId(cairn::crypto::random_32());
        let bytes = object::encode_snapshot(admin.keys(), &Session::new_writer(admin.keys()), &id, &v1);
        admin.backend().write_new(&id.path(), &bytes).unwrap();
        admin.remove_snapshot(&signed).unwrap();
        old.push(id);
    }
    let admin = fx.admin();
    let listed = select::list_all(&admin).unwrap();
    assert_eq!(listed.len(), 2);
    for l in &listed {
        assert_eq!((&l.attribution, l.flags.as_slice()), (&Attribution::Unattributed, &[][..]));
        assert!(matches!(l.snapshot, cairn::snapshot::Snapshot::V1(_)));
    }
    let newest = select::select(&admin, &SnapshotSpec::Latest, &Filter::default()).unwrap().0;
    assert!(old.contains(&newest));
    restore_matches(&admin, &newest, &src, &fx.base.join("restored"));
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(1), &jiff::tz::TimeZone::UTC);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].writer.as_deref(), Some("unattributed"));
    let removed = forget::execute(&admin, &groups, false).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(admin.snapshot_ids().unwrap(), [newest]);
}

#[test]
fn without_a_host_binding_retention_still_keeps_each_writers_snapshots_apart() {
    let fx = Fx::new();
    // web-3 is bound to no key: the attacker may claim it, but its snapshots form their own group.
    let real = [fx.plant(ADMIN, "web-3", ago(7200)), fx.plant(ADMIN, "web-3", ago(3600))];
    let planted: Vec<SnapshotId> = [600i64, 300, 60].iter().map(|s| fx.plant(EVIL, "web-3", ago(*s))).collect();
    let admin = fx.admin();
    let listed = host("web-3").entries(&admin).unwrap();
    assert!(listed.iter().all(|l| l.eligible()));
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(2), &jiff::tz::TimeZone::UTC);
    assert_eq!(groups.len(), 2, "one group per writer");
    let removed = forget::execute(&admin, &groups, false).unwrap();
    assert_eq!(removed, [planted[0]], "only the attacker's own oldest goes");
    for id in real {
        assert!(admin.snapshot_ids().unwrap().contains(&id), "web-3's real snapshot {id} is kept");
    }
}

#[test]
fn copy_signs_with_the_destination_key_only_what_was_attributed_and_leaves_flagged_snapshots_behind() {
    let fx = Fx::new();
    let attributed = fx.plant(WEB1, "web-1", ago(3600));
    let evil = fx.open(EVIL);
    let unsigned =
        Repository::open_with_keys(local(&fx.dir), evil.keys().clone(), fx.evil, &opts(&fx.base.join("u"))).unwrap();
    let unattributed = plant(&unsigned, "web-3", ago(1800), b"unsigned", 0o644);
    let secret = evil.key_sign_secret().unwrap().clone();
    forge(&evil, "web-1", ago(60), fx.web1, |id, unsigned| {
        attribution::sign_snapshot(&secret, &fx.web1, id, unsigned).signature
    });
    let dst_dir = fx.base.join("dst");
    let dst = Repository::init(local(&dst_dir), b"dst", &InitOptions::default(), &opts(&fx.base.join("c-dst")))
        .and_then(|r| r.readable())
        .unwrap();
    let report = cairn::copy::copy(&fx.admin(), &dst, &[], false).unwrap();
    assert_eq!(report.snapshots.len(), 2, "the forged snapshot is not copied: {report:?}");
    let target = |src: SnapshotId| report.snapshots.iter().find(|c| c.source == src).unwrap().target.unwrap();
    let listed = select::list_all(&dst).unwrap();
    let of = |id: SnapshotId| listed.iter().find(|l| l.id == id).unwrap().clone();
    let copied = of(target(attributed));
    assert!(copied.eligible());
    assert!(
        matches!(copied.attribution, Attribution::Attributed { key_id, .. } if key_id == dst.key_id()),
        "re-signed by the destination's key: {:?}",
        copied.attribution
    );
    assert_eq!(of(target(unattributed)).attribution, Attribution::Unattributed, "not laundered into a key's group");
}

#[test]
fn a_full_key_from_before_certificates_certifies_itself_on_its_first_backup() {
    let fx = Fx::new();
    let admin = fx.admin();
    let cert = fx.dir.join(attribution::cert_path(&admin.key_id()));
    std::fs::remove_file(&cert).unwrap();
    drop(admin);
    let repo = fx.open(ADMIN);
    let src = fx.base.join("src");
    write(&src.join("a"), b"a");
    let r = backup(&repo, vec![BackupSource::Paths(vec![src])], &BackupOptions::default(), &NoProgress).unwrap();
    assert_eq!(r.unattributed, None, "signed");
    assert!(cert.exists(), "the full key wrote its own certificate");
    let l = fx.listed(&r.snapshot_id.unwrap());
    assert!(l.attribution.is_full_key() && l.eligible(), "{:?}", l.attribution);
    // A write-only key without a certificate cannot certify itself: its snapshots are unattributed, and say so.
    std::fs::remove_file(fx.dir.join(attribution::cert_path(&fx.evil))).unwrap();
    let r = backup(
        &fx.open(EVIL),
        vec![BackupSource::Paths(vec![fx.base.join("src")])],
        &BackupOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(r.unattributed.as_deref().is_some_and(|w| w.contains("no certificate")), "{:?}", r.unattributed);
    assert_eq!(fx.listed(&r.snapshot_id.unwrap()).attribution, Attribution::Unattributed);
}

/// A signing session loads every certificate first and takes its own key's from there (fewer round trips): files
/// planted under `certs/` by anyone who can write there (garbage, an oversized one, a real certificate copied to
/// another key's name) neither stop a session nor lend a key a certificate or host it does not have.
#[test]
fn certificates_planted_under_certs_neither_stop_a_signing_session_nor_certify_anyone() {
    let fx = Fx::new();
    let certs = fx.dir.join("certs");
    let stolen = std::fs::read(fx.dir.join(attribution::cert_path(&fx.web1))).unwrap();
    let ghost = KeyId([7; 32]);
    write(&certs.join(hex::encode([5u8; 32])), b"not a certificate");
    write(&certs.join(hex::encode([6u8; 32])), &vec![0u8; (1 << 20) + 1]);
    write(&fx.dir.join(attribution::cert_path(&ghost)), &stolen);

    let t = Time::now();
    let by_admin = fx.plant(ADMIN, "db-1", t);
    let l = fx.listed(&by_admin);
    assert!(l.attribution.is_full_key() && l.eligible(), "{:?}", l.attribution);
    let by_web1 = fx.plant(WEB1, "web-1", t);
    let l = fx.listed(&by_web1);
    assert_eq!(l.attribution.key_id(), Some(fx.web1));
    assert!(l.eligible(), "{:?}", l.attribution);
    // The bound key still may not claim another host, planted certificates or not.
    assert!(!fx.listed(&fx.plant(WEB1, "db-1", t)).eligible());
    assert!(fx.admin().key_certificate(&ghost).is_err(), "a certificate copied to another key's name does not verify");
}

/// Stores `snap` (its root replaced by an empty tree of this session) as a manifest written by `repo`'s key: signed
/// by it when the key signs, unattributed when `repo` was opened with [`Repository::open_with_keys`].
fn commit_as(repo: &Repository, snap: &cairn::snapshot::Snapshot) -> SnapshotId {
    let w = cairn::writer::Writer::new(repo, Default::default(), "backup").unwrap();
    let mut snap = snap.clone();
    snap.v3_mut().root = cairn::trees::write_dir(&w, vec![]).unwrap();
    w.commit(&snap).unwrap()
}

#[test]
fn an_origin_written_by_a_write_only_key_never_counts_its_snapshot_under_another_writer() {
    let fx = Fx::new();
    // web-3 is bound to no key: the admin's own snapshots of it, and the attacker's claiming to be the admin's.
    let real = [fx.plant(ADMIN, "web-3", ago(7200)), fx.plant(ADMIN, "web-3", ago(3600))];
    let admin_key = fx.admin().key_id();
    // Every field of a rewritten manifest a full key re-signed (replaces, origin = the admin) and the tag that named
    // the original writer before the origin field: `writer:<admin key id>`.
    let mut claim = snapshot_of_root(cairn::id::BlobId([0; 32]), "web-3", ago(60), "cairn");
    let v = claim.v3_mut();
    v.replaces = vec![real[0]];
    v.origin = Some(admin_key);
    v.tags = vec![format!("writer:{}", admin_key.to_hex())];
    let evil = fx.open(EVIL);
    // 1. Signed by the attacker's own write-only key.
    let signed = commit_as(&evil, &claim);
    // 2. Unattributed (no writer block).
    let unattributed = commit_as(
        &Repository::open_with_keys(local(&fx.dir), evil.keys().clone(), fx.evil, &opts(&fx.base.join("u"))).unwrap(),
        &claim,
    );
    // 3. The admin's real writer block copied onto it: forged.
    let admin_block = *fx.admin().load_snapshot(&real[1]).unwrap().writer().expect("the admin's snapshot is signed");
    let copied = forge(&evil, "web-3", ago(30), admin_key, |_, _| admin_block.signature);
    let admin = fx.admin();
    let expect = [(signed, Some(fx.evil.to_hex())), (unattributed, Some("unattributed".into())), (copied, None)];
    for (id, group) in &expect {
        let l = fx.listed(id);
        assert_eq!(l.origin(), None, "{id}: an origin only a full key's signature vouches for");
        if let Some(g) = group {
            assert_eq!(&l.writer_group(), g, "{id}");
        }
    }
    assert_eq!(fx.listed(&signed).snapshot.origin(), Some(admin_key), "stored as the attacker wrote it");
    assert_eq!(fx.listed(&copied).flags, [Flag::Forged]);
    // Retention by writer: the admin's group is its two real snapshots, whatever the planted ones claim.
    let listed = host("web-3").entries(&admin).unwrap();
    let groups = forget::plan(&listed, GroupBy::default(), &keep_last(2), &jiff::tz::TimeZone::UTC);
    let admin_group = groups.iter().find(|g| g.writer.as_deref() == Some(&admin_key.to_hex()[..])).unwrap();
    let mut ids: Vec<SnapshotId> = admin_group.decisions.iter().map(|d| d.id).collect();
    ids.sort_by_key(|id| real.iter().position(|r| r == id));
    assert_eq!(ids, real);
    assert!(admin_group.decisions.iter().all(|d| d.keep));
    // --writer ADMIN finds only the admin's own.
    let filter = Filter { writer: Some(admin_key.to_hex()[..8].into()), ..host("web-3") };
    let ids: Vec<SnapshotId> = filter.entries(&admin).unwrap().iter().map(|l| l.id).collect();
    assert_eq!(ids, real);
    // `snapshots --json` shows no origin for any of them.
    let out = fx.cli(&["snapshots", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.as_array().unwrap().iter().all(|s| s["origin"].is_null()), "{doc}");

    // The admin re-tagging the attacker's signed snapshot keeps it in the attacker's group: origin = the attacker.
    let done =
        cairn::tag::tag(&admin, &[fx.listed(&signed)], &cairn::tag::Change::Set(vec!["keep".into()]), false, false)
            .unwrap();
    let new = done[0].new.unwrap();
    assert_eq!((done[0].signed, done[0].origin), (true, Some(fx.evil)));
    let l = fx.listed(&new);
    assert_eq!((l.attribution.key_id(), l.origin()), (Some(admin_key), Some(fx.evil)));
    assert_eq!((l.writer_group(), l.snapshot.tags()), (fx.evil.to_hex(), &["keep".to_string()][..]));
}

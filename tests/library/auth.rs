//! What a write-only key can no longer write (format-spec §3.7, §9.2, §10, §12; issue 10 findings 3 and 5): each test
//! plays the attacker with a key added by `key add --write-only`, writing hostile configs, prune marks, waits and
//! lock links through the library's own encoders with only the keys that key holds, and asserts the exact outcome
//! for the admin and for other writers. Also: a repository from before signatures (MAC-framed config) opens, and the
//! first full-key open of a command that writes appends a signed config; read-only commands write nothing.

use super::fixtures::{bytes, files, local, opts, run_cairn, snapshot_of, write};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::check::{check, CheckOptions, CheckReport};
use cairn::codec::object::{self, legacy};
use cairn::config::{self, Config};
use cairn::crypto::KdfParams;
use cairn::id::BlobKind;
use cairn::layout::Object;
use cairn::lease::{MaintenanceLock, PruneMark, PruneWait};
use cairn::prune::{run, PruneOptions};
use cairn::repository::{InitOptions, OpenOptions, ReadRepository, Repository};
use cairn::time::Time;
use cairn::writer::{Writer, WriterOptions};
use cairn::Error;
use std::path::{Path, PathBuf};

const ADMIN: &[u8] = b"admin password";
const BACKUP_HOST: &[u8] = b"write-only password";

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dir: PathBuf,
    src: PathBuf,
}

impl Fx {
    /// A repository with one snapshot of `src` and a write-only key (password [`BACKUP_HOST`]).
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let (dir, src) = (base.join("repo"), base.join("src"));
        write(&src.join("a.bin"), &bytes(1, 700 * 1024));
        write(&src.join("b/c.txt"), b"hello\n");
        let repo =
            Repository::init(local(&dir), ADMIN, &InitOptions::default(), &opts(&base.join("cache-init"))).unwrap();
        snapshot_of(&repo, &src);
        repo.add_key(BACKUP_HOST, true, KdfParams::MINIMUM).unwrap();
        Fx { _tmp: tmp, base, dir, src }
    }

    /// Opens with `password` and a fresh cache named `cache`.
    fn open(&self, password: &[u8], cache: &str) -> cairn::Result<Repository> {
        Repository::open(local(&self.dir), password, &opts(&self.base.join(cache)))
    }

    fn admin(&self, cache: &str) -> ReadRepository {
        self.open(ADMIN, cache).and_then(|r| r.readable()).unwrap()
    }

    fn write_only(&self, cache: &str) -> Repository {
        let r = self.open(BACKUP_HOST, cache).unwrap();
        assert!(!r.keys().can_read(), "the attacker's key must be write-only");
        r
    }

    fn stored(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(path)).unwrap()
    }

    fn packs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> =
            files(&self.dir).into_keys().filter(|p| p.starts_with("data") || p.starts_with("tree")).collect();
        v.sort();
        v
    }
}

fn has(report: &CheckReport, code: &str, object: &str) -> bool {
    report.findings.iter().any(|f| f.code == code && f.object == object)
}

fn backup_of(repo: &Repository, src: &Path) -> cairn::backup::BackupResult {
    backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress).unwrap()
}

#[test]
fn configs_appended_by_a_write_only_key_are_ignored_and_reported() {
    let fx = Fx::new();
    let attacker = fx.write_only("cache-attacker");
    let keys = attacker.keys().clone();
    let ruling = attacker.config().clone();
    // A write-only key cannot sign a config.
    assert!(matches!(object::encode_config(&keys, 2, &ruling), Err(Error::WriteOnlyKey { .. })));
    // With what it holds (writer_key), it appends config/2 with format_version 3 and config/3, chained to it, with
    // min_writer_version 99: either would brick the repository for everyone if it ruled.
    let Config::V1(mut c2) = ruling.clone();
    c2.format_version = 3;
    c2.previous = Some(*blake3::hash(&fx.stored("config/0000000001")).as_bytes());
    let b2 = legacy::encode_config_mac(&keys, 2, &Config::V1(c2.clone()));
    attacker.backend().write_new(&Object::Config(2).path(), &b2).unwrap();
    let mut c3 = c2;
    c3.format_version = config::FORMAT_VERSION;
    c3.min_writer_version = 99;
    c3.previous = Some(*blake3::hash(&b2).as_bytes());
    attacker
        .backend()
        .write_new(&Object::Config(3).path(), &legacy::encode_config_mac(&keys, 3, &Config::V1(c3)))
        .unwrap();

    // The admin opens on config/1 and backs up.
    let admin = fx.admin("cache-admin");
    assert_eq!(admin.config_number(), 1);
    assert!(backup_of(&admin, &fx.src).snapshot_id.is_some());
    // A second write-only client (and the attacker's own key, freshly opened) too.
    let other = fx.write_only("cache-other");
    assert_eq!(other.config_number(), 1);
    write(&fx.src.join("new.txt"), b"written by the backup host\n");
    assert!(backup_of(&other, &fx.src).snapshot_id.is_some());
    // `check` names both configs.
    let report = check(&admin, &CheckOptions::default()).unwrap();
    assert!(has(&report, "config-invalid", "config/0000000002"), "{:#?}", report.findings);
    assert!(has(&report, "config-invalid", "config/0000000003"), "{:#?}", report.findings);
    assert_eq!(report.errors(), 2, "{:#?}", report.findings);
}

#[test]
fn a_prune_mark_and_wait_forged_by_a_write_only_key_delete_nothing_and_cost_writers_nothing() {
    let fx = Fx::new();
    let attacker = fx.write_only("cache-attacker");
    let keys = attacker.keys().clone();
    // A backup is under way: its pack is stored and indexed, its snapshot not yet written.
    let mut w = Writer::new(&attacker, WriterOptions::default(), "backup").unwrap();
    w.store(BlobKind::Data, &bytes(9, 300 * 1024)).unwrap();
    w.flush().unwrap();
    let before = fx.packs();
    // The attacker condemns every pack (the in-flight one included) and writes a wait that omits the running session.
    let condemned: Vec<_> = before
        .iter()
        .filter_map(|p| match Object::parse(p.to_str().unwrap()) {
            Some(Object::Pack(kind, id)) => Some((kind, id)),
            _ => None,
        })
        .collect();
    assert_eq!(condemned.len(), before.len());
    let suffix = "ab".repeat(32);
    let (mark_path, wait_path) = (Object::Mark(suffix.clone()).path(), Object::Wait(suffix).path());
    let mark = PruneMark::V1 { created: Time::now(), condemned, snapshots: vec![] };
    let wait = PruneWait::V1 { created: Time::now(), sessions: vec![] };
    assert!(matches!(object::encode_prune_mark(&keys, &mark_path, &mark), Err(Error::WriteOnlyKey { .. })));
    assert!(matches!(object::encode_wait(&keys, &wait_path, &wait), Err(Error::WriteOnlyKey { .. })));
    attacker.backend().write_new(&mark_path, &legacy::encode_prune_mark_mac(&keys, &mark_path, &mark)).unwrap();
    attacker.backend().write_new(&wait_path, &legacy::encode_wait_mac(&keys, &wait_path, &wait)).unwrap();

    // Writers honour only marks that verify: a backup of data already stored stores nothing again.
    let other = fx.write_only("cache-other");
    let r = backup_of(&other, &fx.src);
    assert!(r.summary.bytes_added < 100 * 1024, "the forged mark made a writer store its data again: {:?}", r.summary);

    // The admin's prune (no grace period; the running session's lease counts) ignores the mark and its wait with a
    // warning naming the mark, and deletes nothing.
    let admin = fx.admin("cache-admin");
    let o = PruneOptions { grace_secs: 0, max_delete_share: 1.0, lease_timeout_secs: 3600, ..PruneOptions::default() };
    let (plan, report) = run(&admin, &o, false).unwrap();
    assert!(plan.warnings.iter().any(|m| m.contains(&mark_path)), "{:#?}", plan.warnings);
    assert!(plan.sweep.is_none(), "{plan:#?}");
    assert_eq!(report.unwrap().deleted_packs, 0);
    let after = fx.packs();
    assert!(before.iter().all(|p| after.contains(p)), "a pack went: {before:?} → {after:?}");
    // `check` names the mark and the wait.
    let report = check(&admin, &CheckOptions::default()).unwrap();
    assert!(has(&report, "mark-invalid", &mark_path), "{:#?}", report.findings);
    assert!(has(&report, "mark-invalid", &wait_path), "{:#?}", report.findings);
    w.abandon();
}

#[test]
fn a_lock_forged_by_a_write_only_key_does_not_stop_prune() {
    let fx = Fx::new();
    let attacker = fx.write_only("cache-attacker");
    let keys = attacker.keys().clone();
    let path = Object::Lock(0).path();
    let link = MaintenanceLock::V1 {
        holder: [7; 32],
        host: "elsewhere".into(),
        pid: 1,
        duration_secs: 100 * 24 * 3600,
        released: false,
        client_time: Time::now(),
    };
    assert!(matches!(object::encode_lock(&keys, &path, &link), Err(Error::WriteOnlyKey { .. })));
    attacker.backend().write_new(&path, &legacy::encode_lock_mac(&keys, &path, &link)).unwrap();
    // A link in the signed framing with a signature the attacker cannot make fails the same way.
    let mut garbage = b"CAIRNPL2".to_vec();
    garbage.extend_from_slice(&postcard::to_allocvec(&link).unwrap());
    garbage.extend_from_slice(&[0x5a; 64]);
    attacker.backend().write_new(&Object::Lock(1).path(), &garbage).unwrap();

    let admin = fx.admin("cache-admin");
    let report = check(&admin, &CheckOptions::default()).unwrap();
    assert!(has(&report, "lock-invalid", &path), "{:#?}", report.findings);
    assert!(has(&report, "lock-invalid", &Object::Lock(1).path()), "{:#?}", report.findings);
    let (_, done) = run(&admin, &PruneOptions::default(), false).expect("a forged lock does not count as held");
    assert!(done.is_some());
    // The forged links occupied their numbers: the run's links went above them, and its release removed them.
    let left: Vec<String> = files(&fx.dir.join("prune")).into_keys().map(|p| p.display().to_string()).collect();
    assert_eq!(left.iter().filter(|p| p.starts_with("lock-")).count(), 1, "{left:?}");
    assert!(left.iter().any(|p| p == "lock-00000000000000000003"), "{left:?}");
}

/// Forged links occupy their numbers: one at the last number leaves none above it, which stops prune with an error
/// that names it (a guard for the arithmetic above every listed link; never a panic).
#[test]
fn a_lock_forged_at_the_last_number_stops_prune_with_an_error_naming_it() {
    let fx = Fx::new();
    let attacker = fx.write_only("cache-attacker");
    let path = Object::Lock(u64::MAX).path();
    attacker.backend().write_new(&path, &[b"CAIRNPL2".as_slice(), &[0u8; 80]].concat()).unwrap();
    let admin = fx.admin("cache-admin");
    let e = run(&admin, &PruneOptions::default(), false).unwrap_err();
    assert!(matches!(e, Error::Locked(_)) && e.to_string().contains(&path), "{e}");
}

impl Fx {
    /// Replaces config/1 with what repositories from before signatures have: the same config,
    /// MAC-framed. Returns its bytes and the config.
    fn unsign_config(&self) -> (Vec<u8>, Config) {
        let admin = self.admin("cache-0");
        let (full, cfg) = (admin.keys().clone(), admin.config().clone());
        drop(admin);
        std::fs::remove_file(self.dir.join("config/0000000001")).unwrap();
        let old = legacy::encode_config_mac(&full, 1, &cfg);
        std::fs::write(self.dir.join("config/0000000001"), &old).unwrap();
        (old, cfg)
    }
}

#[test]
fn read_only_commands_leave_a_repository_from_before_signatures_as_it_is_and_backup_signs_its_config() {
    let fx = Fx::new();
    fx.unsign_config();
    let mut before = files(&fx.dir);
    let cache = fx.base.join("cache-cli");
    let target = fx.base.join("target");
    let reads: [&[&str]; 5] = [
        &["check"],
        &["snapshots"],
        &["restore", "latest", "--target", target.to_str().unwrap(), "--dry-run"],
        &["ls", "latest"],
        &["prune", "--dry-run"],
    ];
    for args in reads {
        let out = run_cairn(&fx.dir, ADMIN, &cache, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        // `check` records one ledger entry (format-spec §13.3) and changes nothing else.
        let mut now = files(&fx.dir);
        let added: Vec<PathBuf> = now.keys().filter(|p| !before.contains_key(*p)).cloned().collect();
        let want = usize::from(args == ["check"]);
        assert_eq!(added.len(), want, "{args:?} added {added:?}");
        assert!(added.iter().all(|p| p.starts_with("ledger")), "{args:?} added {added:?}");
        now.retain(|p, _| before.contains_key(p));
        assert_eq!(now, before, "{args:?} wrote to the repository");
        before = files(&fx.dir);
    }
    // The library opens read-only unless told otherwise.
    assert_eq!(fx.admin("cache-lib").config_number(), 1);
    assert_eq!(files(&fx.dir), before);
    // A command that writes anyway signs the config first.
    let out = run_cairn(&fx.dir, ADMIN, &cache, &["backup", fx.src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(config::is_signed(&fx.stored("config/0000000002")));
}

#[test]
fn a_repository_from_before_signatures_opens_and_the_first_full_key_open_signs_its_config() {
    let fx = Fx::new();
    let (old, cfg) = fx.unsign_config();

    // A write-only key opens it as it is (and cannot sign).
    let wo = fx.write_only("cache-wo");
    assert_eq!(wo.config_number(), 1);
    assert!(!fx.dir.join("config/0000000002").exists());
    // The first full-key open that may write appends config/2: signed, the same parameters,
    // chained to config/1.
    let o = OpenOptions { upgrade_config: true, ..opts(&fx.base.join("cache-1")) };
    let admin = Repository::open(local(&fx.dir), ADMIN, &o).and_then(|r| r.readable()).unwrap();
    assert_eq!(admin.config_number(), 2);
    let signed = fx.stored("config/0000000002");
    assert!(config::is_signed(&signed));
    let c2 = object::decode_config(&wo.keys().clone(), 2, &signed).unwrap();
    assert_eq!(c2.previous(), Some(*blake3::hash(&old).as_bytes()));
    assert_eq!((c2.chunker(), c2.pack_size(), c2.min_writer_version()), (cfg.chunker(), cfg.pack_size(), 1));
    // From now on a MAC-framed config no longer counts, wherever it is numbered.
    let Config::V1(mut c3) = c2.clone();
    c3.min_writer_version = 99;
    c3.previous = Some(*blake3::hash(&signed).as_bytes());
    std::fs::write(fx.dir.join("config/0000000003"), legacy::encode_config_mac(wo.keys(), 3, &Config::V1(c3))).unwrap();
    assert_eq!(fx.write_only("cache-wo2").config_number(), 2);
    let admin = fx.admin("cache-2");
    assert_eq!(admin.config_number(), 2);
    let report = check(&admin, &CheckOptions::default()).unwrap();
    assert!(has(&report, "config-invalid", "config/0000000003"), "{:#?}", report.findings);
    assert!(!has(&report, "config-invalid", "config/0000000001"), "history below the signed config is fine");
    assert_eq!(report.errors(), 1, "{:#?}", report.findings);
    restore_ok(&admin, &fx);
}

/// The snapshot written at setup still restores (the upgrade touched nothing else).
fn restore_ok(repo: &ReadRepository, fx: &Fx) {
    let snaps = repo.list_snapshots_strict().unwrap();
    assert_eq!(snaps.len(), 1);
    let target = fx.base.join("restore");
    super::fixtures::restore_matches(repo, &snaps[0].0, &fx.src, &target);
}

/// Phase 2 groundwork (format-spec §4.3): `init` and `key add` by a full key certify the new key's signing key; a
/// write-only key cannot certify, and a certificate moved to another key's name does not verify.
#[test]
fn init_and_key_add_by_a_full_key_certify_the_new_key() {
    use cairn::codec::attribution::{cert_path, key_public};
    use cairn::keyfile::KeyKind;
    let fx = Fx::new();
    let admin = fx.admin("cache-admin");
    let own = admin.key_certificate(&admin.key_id()).unwrap().expect("init certifies its key");
    assert_eq!((own.kind(), own.hosts().len()), (KeyKind::Full, 0));
    assert_eq!(own.key_public(), key_public(admin.key_sign_secret().expect("opened with its password")));
    let wo = fx.write_only("cache-wo");
    let cert = wo.key_certificate(&wo.key_id()).unwrap().expect("a key added by a full key is certified");
    assert_eq!((cert.kind(), cert.hosts().len()), (KeyKind::WriteOnly, 0));
    assert_eq!(cert.key_public(), key_public(wo.key_sign_secret().unwrap()));
    assert_ne!(cert.key_public(), own.key_public());
    let bound = admin.add_key_for_hosts(b"web", true, KdfParams::MINIMUM, &["web-1".to_string()]).unwrap();
    assert_eq!(admin.key_certificate(&bound).unwrap().unwrap().hosts(), ["web-1".to_string()]);
    // A key added by a write-only key has no certificate, and the admin's certificate copied to its name fails.
    let planted = wo.add_key(b"planted", true, KdfParams::MINIMUM).unwrap();
    assert!(wo.key_certificate(&planted).unwrap().is_none());
    write(&fx.dir.join(cert_path(&planted)), &fx.stored(&cert_path(&admin.key_id())));
    assert!(admin.key_certificate(&planted).is_err());
    std::fs::remove_file(fx.dir.join(cert_path(&planted))).unwrap();
    assert_eq!(check(&admin, &CheckOptions::default()).unwrap().errors(), 0);
}

//! Removing a key revokes it (format-spec §4.3, §12.2): the holder of a removed write-only key still knows its
//! password, hence its key material and signing secret, and keeps writing snapshots that verify as its own. Each
//! test plays that holder through the library's own writer and encoders and asserts that its snapshots dated after
//! the revocation are flagged `revoked` (not `latest`, outside retention, reported by `check`), that only a full key
//! removes keys, and that a revocation not signed by the repository key is ignored and reported.

use super::fixtures::{ago, files, host_filter as host, local, opts, plant, rand_name, run_cairn};
use cairn::cert::{Attribution, Revocation, REVOCATION_MAGIC};
use cairn::check::{check, CheckOptions, Severity};
use cairn::codec::{attribution, envelope};
use cairn::crypto::context;
use cairn::forget::{self, GroupBy, Rules};
use cairn::id::{KeyId, SnapshotId};
use cairn::layout::StoredId;
use cairn::repository::{InitOptions, Repository};
use cairn::retention::{Count, Policy};
use cairn::select::{self, Flag, SnapshotSpec};
use cairn::time::Time;
use cairn::Error;
use std::path::PathBuf;

const ADMIN: &[u8] = b"admin";
/// The write-only key of host web-1, bound to it.
const WEB1: &[u8] = b"web-1 key";
/// The write-only key of host web-2, bound to it.
const WEB2: &[u8] = b"web-2 key";

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dir: PathBuf,
    web1: KeyId,
    web2: KeyId,
}

impl Fx {
    /// A repository (password [`ADMIN`]) with the write-only keys [`WEB1`] and [`WEB2`], certified for web-1 and
    /// web-2.
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let dir = base.join("repo");
        let admin = Repository::init(local(&dir), ADMIN, &InitOptions::default(), &opts(&base.join("c-init"))).unwrap();
        let web1 = admin.add_password_for_hosts(WEB1, true, &["web-1".into()]).unwrap();
        let web2 = admin.add_password_for_hosts(WEB2, true, &["web-2".into()]).unwrap();
        Fx { _tmp: tmp, base, dir, web1, web2 }
    }

    /// Opens with `password` (so the key signs) and a fresh cache.
    fn open(&self, password: &[u8]) -> Repository {
        Repository::open(local(&self.dir), password, &opts(&self.base.join(format!("c-{}", rand_name())))).unwrap()
    }

    fn listed(&self, id: &SnapshotId) -> select::Listed {
        select::list_all(&self.open(ADMIN).readable().unwrap()).unwrap().into_iter().find(|l| l.id == *id).unwrap()
    }

    fn cli(&self, password: &[u8], args: &[&str]) -> std::process::Output {
        run_cairn(&self.dir, password, &self.base.join(format!("cli-{}", rand_name())), args)
    }
}

#[test]
fn a_removed_keys_later_snapshots_are_revoked_excluded_and_reported_while_its_earlier_ones_count() {
    let fx = Fx::new();
    // The holder of web-1's key: its key material and signing secret stay in this handle after the removal.
    let holder = fx.open(WEB1);
    let old = [plant(&holder, "web-1", ago(7200), b"a", 0o644), plant(&holder, "web-1", ago(3600), b"b", 0o644)];
    fx.open(ADMIN).remove_key(&fx.web1, false).unwrap();
    assert!(!fx.dir.join("keys").join(fx.web1.to_hex()).exists(), "the key file is gone");
    assert!(fx.dir.join("revocations").join(fx.web1.to_hex()).exists());
    // Still signing as web-1's key, for web-1, after the revocation.
    let newer = plant(&holder, "web-1", ago(-10), b"c", 0o644);

    let l = fx.listed(&newer);
    assert!(
        matches!(l.attribution, Attribution::Attributed { key_id, revoked: Some(_), .. } if key_id == fx.web1),
        "{:?}",
        l.attribution
    );
    assert_eq!(l.flags, [Flag::Revoked]);
    for id in old {
        let l = fx.listed(&id);
        assert!(matches!(l.attribution, Attribution::Attributed { revoked: None, .. }), "{:?}", l.attribution);
        assert!(l.flags.is_empty(), "{:?}", l.flags);
    }
    let admin = fx.open(ADMIN).readable().unwrap();
    assert_eq!(select::select(&admin, &SnapshotSpec::Latest, &host("web-1")).unwrap().0, old[1]);
    let as_of = select::as_of(&admin, Time::now(), &host("web-1")).unwrap();
    assert_eq!(as_of.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [old[1]]);

    // forget --keep-last 1 --host web-1: the newest of the two old ones is kept, the other removed; the revoked
    // one is neither.
    let listed = host("web-1").entries(&admin).unwrap();
    let rules = Rules::Policy(Policy { last: Some(Count::Last(1)), ..Default::default() });
    let groups = forget::plan(&listed, GroupBy::default(), &rules, &jiff::tz::TimeZone::UTC);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0].writer.as_deref(), Some(fx.web1.to_hex().as_str()));
    let ds = &groups[0].decisions;
    assert_eq!(ds.iter().map(|d| (d.id, d.keep)).collect::<Vec<_>>(), [(old[1], true), (old[0], false)]);
    assert_eq!(forget::excluded(&listed).iter().map(|x| x.id).collect::<Vec<_>>(), [newer]);

    let report = check(&admin, &CheckOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.code == "snapshot-revoked").expect("reported");
    assert_eq!(
        (f.severity, f.object.as_str(), &f.snapshots),
        (Severity::Error, newer.path().as_str(), &vec![newer.to_hex()])
    );
    assert!(f.message.contains(&fx.web1.to_hex()), "{}", f.message);
    assert_eq!(report.errors(), 1, "{:#?}", report.findings);

    // The CLI: `snapshots --json` flags it, `key list --json` still shows the key, `check` fails naming it.
    let out = fx.cli(ADMIN, &["snapshots", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = doc.as_array().unwrap().iter().find(|s| s["id"] == newer.to_hex()).unwrap().clone();
    assert_eq!(entry["flags"], serde_json::json!(["revoked"]));
    assert_eq!(entry["writer"], fx.web1.to_hex());
    let out = fx.cli(ADMIN, &["key", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = doc.as_array().unwrap().iter().find(|k| k["id"] == fx.web1.to_hex()).unwrap().clone();
    assert_eq!(
        (key["key_file"].clone(), key["kind"].clone()),
        (serde_json::json!(false), serde_json::json!("write-only"))
    );
    assert!(key["revoked"].is_string(), "{key}");
    let web2 = doc.as_array().unwrap().iter().find(|k| k["id"] == fx.web2.to_hex()).unwrap().clone();
    assert_eq!(web2["revoked"], serde_json::Value::Null);
    let out = fx.cli(ADMIN, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("snapshot-revoked: {}", newer.path())));
}

#[test]
fn a_write_only_key_cannot_remove_keys() {
    let fx = Fx::new();
    let admin_id = fx.open(ADMIN).key_id();
    let before = files(&fx.dir);
    let web1 = fx.open(WEB1);
    for target in [fx.web2, admin_id] {
        let err = web1.remove_key(&target, false).unwrap_err();
        assert!(matches!(err, Error::WriteOnlyKey { key: Some(k) } if k == fx.web1), "{err}");
        assert_eq!(err.exit_code(), 12);
    }
    let out = fx.cli(WEB1, &["key", "remove", &fx.web2.to_hex()]);
    assert_eq!(out.status.code(), Some(12), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(files(&fx.dir), before, "nothing was deleted nor written");
}

#[test]
fn a_revocation_not_signed_by_the_repository_key_is_ignored_and_reported() {
    let fx = Fx::new();
    // web-1's key, write-only, cannot sign a revocation with the repository key; it signs one revoking web-2's key
    // with the secret it has (its own signing secret) and stores it through the backend.
    let web1 = fx.open(WEB1);
    let secret = web1.key_sign_secret().unwrap().clone();
    let r = Revocation::V1 { key_id: fx.web2, revoked: ago(86_400) };
    assert!(matches!(attribution::encode_revocation(web1.keys(), &r), Err(Error::WriteOnlyKey { .. })));
    let path = attribution::revocation_path(&fx.web2);
    let forged = envelope::sig_encode(REVOCATION_MAGIC, &secret, context::REVOCATION_SIG, path.as_bytes(), &r);
    web1.backend().write_new(&path, &forged).unwrap();

    let snap = plant(&fx.open(WEB2), "web-2", ago(60), b"x", 0o644);
    let l = fx.listed(&snap);
    assert!(matches!(l.attribution, Attribution::Attributed { revoked: None, .. }), "{:?}", l.attribution);
    assert!(l.flags.is_empty(), "{:?}", l.flags);
    let admin = fx.open(ADMIN);
    assert!(admin.list_keys().unwrap().iter().all(|k| k.revoked.is_none()));
    let report = check(&admin.readable().unwrap(), &CheckOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.code == "revocation-invalid").expect("reported");
    assert_eq!((f.severity, f.object.as_str()), (Severity::Error, path.as_str()));
    assert_eq!(report.errors(), 1, "{:#?}", report.findings);

    // The planted object does not block a real revocation: `key remove` replaces it.
    admin.remove_key(&fx.web2, false).unwrap();
    let admin = fx.open(ADMIN);
    let k = admin.list_keys().unwrap().into_iter().find(|k| k.id == fx.web2).unwrap();
    assert!(k.revoked.is_some_and(|t| t.secs > ago(3600).secs), "{k:?}");
    assert!(check(&admin.readable().unwrap(), &CheckOptions::default()).unwrap().errors() == 0);
}

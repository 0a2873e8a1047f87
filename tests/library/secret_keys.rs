//! Key files opened with a generated 256-bit secret (format-spec §4.1, `KeyFile::SecretV1`): they open with the
//! secret's text form and with nothing else, cost no argon2id, grant exactly what a password key file of the same
//! kind grants (a write-only one reads nothing of other sessions), are certified and sign their snapshots like
//! password keys (§4.3), and `check` judges them without their secret.

use super::fixtures::{ago, local, opts, plant, rand_name};
use cairn::cert::Attribution;
use cairn::check::{check, CheckOptions};
use cairn::codec::object;
use cairn::crypto::{self, KdfParams, KeySecret};
use cairn::id::KeyId;
use cairn::keyfile::{Credential, KeyFile, KeyFileSecretV1, KeyFileV1, KeyKind, KEY_MAGIC};
use cairn::layout::StoredId;
use cairn::repository::{InitOptions, Repository};
use cairn::select;
use cairn::Error;
use std::path::PathBuf;

const ADMIN: &[u8] = b"admin password";

struct Fx {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dir: PathBuf,
}

impl Fx {
    /// A repository whose first key is the password [`ADMIN`].
    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let dir = base.join("repo");
        Repository::init(local(&dir), ADMIN, &InitOptions::default(), &opts(&base.join("c-init"))).unwrap();
        Fx { _tmp: tmp, base, dir }
    }

    /// Opens with `credential` and the cache `cache` (a fresh one when `None`).
    fn open_in(&self, credential: &[u8], cache: Option<&str>) -> cairn::Result<Repository> {
        let cache = self.base.join(cache.map_or_else(|| format!("c-{}", rand_name()), |c| c.to_string()));
        Repository::open(local(&self.dir), credential, &opts(&cache))
    }

    fn open(&self, credential: &[u8]) -> cairn::Result<Repository> {
        self.open_in(credential, None)
    }

    fn admin(&self) -> Repository {
        self.open(ADMIN).unwrap()
    }

    /// Writes `kf` as key file `id`.
    fn plant_key(&self, id: &KeyId, kf: &KeyFile) {
        let mut bytes = KEY_MAGIC.to_vec();
        bytes.extend_from_slice(&postcard::to_allocvec(kf).unwrap());
        local(&self.dir).write_new(&id.path(), &bytes).unwrap();
    }
}

fn text(secret: &KeySecret) -> Vec<u8> {
    secret.to_text().as_bytes().to_vec()
}

#[test]
fn a_secret_key_opens_with_its_text_and_nothing_else_does() {
    let fx = Fx::new();
    let admin = fx.admin();
    let secret = crypto::generate_key_secret();
    let id = admin.add_secret_for_hosts(&secret, false, &[]).unwrap();
    let listed = admin.list_keys().unwrap();
    let info = listed.iter().find(|k| k.id == id).unwrap();
    assert_eq!((info.kind, info.credential), (KeyKind::Full, Some(Credential::Secret)));
    assert_eq!(info.credential_name(), "secret");
    let admin_info = listed.iter().find(|k| k.id == admin.key_id()).unwrap();
    assert_eq!(admin_info.credential_name(), "password");
    assert_eq!(admin.key_file_info(&id).unwrap().kdf, None);

    // The text form opens it, as given or with the newline a file ends with; it is a full key.
    for credential in
        [text(&secret), [&text(&secret)[..], b"\n"].concat(), [b"  ", &text(&secret)[..], b"\r\n"].concat()]
    {
        let repo = fx.open(&credential).unwrap();
        assert_eq!(repo.key_id(), id);
        assert_eq!(repo.keys(), admin.keys());
    }

    // A wrong secret of the right form, and the secret of a key of another repository: no key opens.
    let wrong = crypto::generate_key_secret();
    assert!(matches!(fx.open(&text(&wrong)), Err(Error::WrongPassword)));
    let other = Fx::new();
    let other_secret = crypto::generate_key_secret();
    let other_id = other.admin().add_secret_for_hosts(&other_secret, false, &[]).unwrap();
    assert_eq!(other.open(&text(&other_secret)).unwrap().key_id(), other_id);
    assert!(matches!(fx.open(&text(&other_secret)), Err(Error::WrongPassword)));

    // Credentials not of the secret's form never open a secret key file: the bare digits, another case,
    // another prefix, the bytes themselves.
    let digits = String::from_utf8(text(&secret)[16..].to_vec()).unwrap();
    let upper = String::from_utf8(text(&secret)).unwrap().to_uppercase();
    for credential in
        [digits.as_bytes(), upper.as_bytes(), format!("cairn-secret-v2-{digits}").as_bytes(), secret.as_bytes()]
    {
        assert!(matches!(fx.open(credential), Err(Error::WrongPassword)), "{:?}", String::from_utf8_lossy(credential));
    }
    // ... and the password key still opens with its password, as before.
    assert_eq!(fx.open(ADMIN).unwrap().key_id(), admin.key_id());
}

/// A password key file may hold a password that happens to have the secret's form: the secret key files are tried
/// first, then it is tried as a password (format-spec §4.1).
#[test]
fn a_password_of_the_secret_form_still_opens_its_password_key_file() {
    let fx = Fx::new();
    let admin = fx.admin();
    let looks_like_a_secret = text(&crypto::generate_key_secret());
    let id = admin.add_password_for_hosts(&looks_like_a_secret, false, &[]).unwrap();
    admin.add_secret_for_hosts(&crypto::generate_key_secret(), false, &[]).unwrap();
    assert_eq!(fx.open(&looks_like_a_secret).unwrap().key_id(), id);
}

/// An open with a secret runs no argon2id: not when a cheap argon2id key file is planted beside it, not when the
/// key that opened last time (pinned) is a password key. Proved by the library's count of argon2id derivations on
/// this thread (opening tries key files on the calling thread), which an open with the password does move.
#[test]
fn an_open_with_a_secret_runs_no_argon2id() {
    let fx = Fx::new();
    let admin = fx.admin();
    let secret = crypto::generate_key_secret();
    let id = admin.add_secret_for_hosts(&secret, true, &[]).unwrap();
    // A planted password key file at the cheapest parameters: tried first of the argon2id ones.
    fx.plant_key(
        &KeyId([1; 32]),
        &KeyFile::V1(KeyFileV1 {
            kind: KeyKind::Full,
            repo_id: admin.keys().repo_id,
            created: ago(0),
            host: "h".into(),
            user: "u".into(),
            kdf: KdfParams::MINIMUM,
            salt: [7; 32],
            sealed: vec![0; 265],
        }),
    );
    let runs = crypto::argon2id_runs_on_this_thread;

    // The cache "pinned" remembers the password key after its first open.
    assert_eq!(fx.open_in(ADMIN, Some("pinned")).unwrap().key_id(), admin.key_id());
    let before = runs();
    assert_eq!(fx.open_in(ADMIN, Some("pinned")).unwrap().key_id(), admin.key_id());
    assert_eq!(runs() - before, 1, "the pinned password key first: one argon2id");
    let before = runs();
    let wo = fx.open_in(&text(&secret), Some("pinned")).unwrap();
    assert_eq!(wo.key_id(), id);
    assert_eq!(runs() - before, 0, "the secret opened its key file without argon2id");
    let before = runs();
    assert_eq!(fx.open(&text(&secret)).unwrap().key_id(), id);
    assert_eq!(runs() - before, 0, "nor without a pin");

    // A wrong secret finds no secret key file and goes on to the password key files, as a password.
    let before = runs();
    assert!(matches!(fx.open(&text(&crypto::generate_key_secret())), Err(Error::WrongPassword)));
    assert_eq!(runs() - before, 2, "both argon2id key files tried");
    // A password is never tried against a secret key file (they cost nothing, but must not be reachable by a
    // password): the same two derivations.
    let before = runs();
    assert!(matches!(fx.open(b"not it"), Err(Error::WrongPassword)));
    assert_eq!(runs() - before, 2);
}

/// A write-only secret key grants what a write-only password key grants: it backs up, and reads nothing other
/// sessions wrote.
#[test]
fn a_write_only_secret_key_cannot_read_other_sessions() {
    let fx = Fx::new();
    let admin = fx.admin();
    let full_snap = plant(&admin, "h", ago(60), b"the admin's data", 0o644);
    let secret = crypto::generate_key_secret();
    admin.add_secret_for_hosts(&secret, true, &[]).unwrap();

    let wo = fx.open(&text(&secret)).unwrap();
    assert!(!wo.keys().can_read());
    assert_eq!(wo.keys(), &admin.keys().write_only());
    let e = wo.readable().err().expect("a write-only key got a readable handle");
    assert!(matches!(e, Error::WriteOnlyKey { .. }), "{e}");
    let stored = wo.backend().read(&full_snap.path()).unwrap();
    assert!(object::decode_snapshot(wo.keys(), &full_snap, &stored).is_err(), "another session's snapshot opened");
    assert!(object::decode_snapshot(admin.keys(), &full_snap, &stored).is_ok());
    // It adds backups, which the full key reads.
    let own = plant(&wo, "h", ago(30), b"written with the secret", 0o644);
    let reader = admin.readable().unwrap();
    assert_eq!(select::list_all(&reader).unwrap().iter().filter(|l| l.id == own || l.id == full_snap).count(), 2);
    // A write-only key cannot add a full key, secret or not.
    assert!(matches!(
        wo.add_secret_for_hosts(&crypto::generate_key_secret(), false, &[]),
        Err(Error::WriteOnlyKey { .. })
    ));
}

/// The certificate of a secret key binds its signing key, derived from the secret's KEK (format-spec §4.3), and
/// snapshots it writes are attributed to it; its host binding holds.
#[test]
fn a_secret_keys_certificate_verifies_and_its_snapshots_are_attributed_to_it() {
    let fx = Fx::new();
    let admin = fx.admin();
    let secret = crypto::generate_key_secret();
    let id = admin.add_secret_for_hosts(&secret, true, &["web-1".into()]).unwrap();
    let cert = admin.key_certificate(&id).unwrap().expect("a full key certifies the secret key");
    assert_eq!(cert.hosts(), ["web-1".to_string()]);
    assert_eq!(cert.kind(), KeyKind::WriteOnly);

    let wo = fx.open(&text(&secret)).unwrap();
    let snap = plant(&wo, "web-1", ago(10), b"web-1 data", 0o644);
    let reader = admin.readable().unwrap();
    let listed = select::list_all(&reader).unwrap().into_iter().find(|l| l.id == snap).unwrap();
    match &listed.attribution {
        Attribution::Attributed { key_id, kind, hosts, host_allowed, revoked } => {
            assert_eq!((*key_id, *kind, *host_allowed, revoked.is_none()), (id, KeyKind::WriteOnly, true, true));
            assert_eq!(hosts, &["web-1".to_string()]);
        }
        other => panic!("not attributed: {other:?}"),
    }
    assert!(listed.flags.is_empty(), "{:?}", listed.flags);
    // `key passwd` to a secret: the full key in use is replaced by a certified secret key.
    let admin_secret = crypto::generate_key_secret();
    let change = admin.change_to_secret(&admin_secret).unwrap();
    assert_eq!(change.removed, admin.key_id());
    assert!(matches!(fx.open(ADMIN), Err(Error::WrongPassword)));
    let new_admin = fx.open(&text(&admin_secret)).unwrap();
    assert_eq!(new_admin.key_id(), change.key_id);
    assert_eq!(new_admin.key_certificate(&change.key_id).unwrap().unwrap().kind(), KeyKind::Full);
    let snap = plant(&new_admin, "h", ago(1), b"admin data", 0o644);
    let listed = select::list_all(&new_admin.readable().unwrap()).unwrap().into_iter().find(|l| l.id == snap).unwrap();
    assert_eq!(listed.attribution.key_id(), Some(change.key_id));
}

/// `check` judges secret key files without their secret: no finding for a good one, `key-unreadable` for one whose
/// sealed material has the wrong length, `key-duplicate` for a copy.
#[test]
fn check_reports_nothing_for_a_secret_key_file_and_names_a_malformed_one() {
    let fx = Fx::new();
    let admin = fx.admin();
    let secret = crypto::generate_key_secret();
    let id = admin.add_secret_for_hosts(&secret, true, &[]).unwrap();
    let reader = admin.readable().unwrap();
    let key_findings = |reader: &cairn::repository::ReadRepository| {
        let report = check(reader, &CheckOptions::default()).unwrap();
        report.findings.into_iter().filter(|f| f.code.starts_with("key-")).collect::<Vec<_>>()
    };
    let none = key_findings(&reader);
    assert!(none.is_empty(), "a good secret key file: {none:#?}");

    let bad = KeyId([0xbb; 32]);
    fx.plant_key(
        &bad,
        &KeyFile::SecretV1(KeyFileSecretV1 {
            kind: KeyKind::Full,
            repo_id: admin.keys().repo_id,
            created: ago(0),
            host: "h".into(),
            user: "u".into(),
            salt: [3; 32],
            sealed: vec![0; 193 + 40],
        }),
    );
    let copy = KeyId([0xcc; 32]);
    let original = local(&fx.dir).read(&id.path()).unwrap();
    local(&fx.dir).write_new(&copy.path(), &original).unwrap();
    let findings = key_findings(&reader);
    let unreadable: Vec<_> = findings.iter().filter(|f| f.code == "key-unreadable").collect();
    assert_eq!(unreadable.len(), 1, "{findings:#?}");
    assert_eq!(unreadable[0].object, bad.path());
    assert!(unreadable[0].message.contains("sealed key material has 233 bytes"), "{}", unreadable[0].message);
    let duplicates: Vec<_> = findings.iter().filter(|f| f.code == "key-duplicate").map(|f| f.object.clone()).collect();
    assert_eq!(duplicates.len(), 2, "{findings:#?}");
    assert!(duplicates.contains(&id.path()) && duplicates.contains(&copy.path()));
    // Neither stops the real key from opening.
    assert_eq!(fx.open(&text(&secret)).unwrap().key_id(), id);
}

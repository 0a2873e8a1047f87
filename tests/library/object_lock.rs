//! Object-lock retention of ledger entries (format-spec §13.7), against the local S3 server that implements S3
//! Object Lock (moto: scripts/servers/start-s3lock.sh, `S3LOCK_*`; its bucket has object lock enabled): with
//! `ledger_retention=MODE:PERIOD` every ledger entry a backup, forget and prune write carries that mode and a
//! retain-until date of its write time + PERIOD, and the server refuses to delete its version; data packs carry no
//! retention and prune still removes them; without the option no entry is locked; a bucket without object lock
//! refuses the write; every other backend refuses the option (a usage error naming the backend); and on the S3
//! server without Object Lock (s3s-fs) a ledger write with the option fails instead of leaving an entry believed
//! locked. The server's own view is read with signed `curl` requests (`--aws-sigv4`), independently of cairn.

use super::fixtures::{eager_prune, opts, snapshot_of, write};
use super::servers::S3;
use cairn::backend::{self, DynBackend, Options};
use cairn::forget::{self, GroupBy, Rules};
use cairn::prune;
use cairn::repository::{InitOptions, ReadRepository, Repository};
use cairn::retention::{Count, Policy};
use cairn::time::Time;
use cairn::Error;
use std::path::Path;

const ADMIN: &[u8] = b"admin";
/// SHA-256 of the empty body (SigV4's payload hash of a GET, HEAD or DELETE).
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One answer of the S3 server.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A signed request `method` for `key_query` (an object key, with a query string) in the server's bucket.
fn s3curl(s: &S3, method: &str, key_query: &str) -> Answer {
    let mut c = std::process::Command::new("curl");
    c.args(["-s", "-i", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", s.access_key, s.secret_key))
        .args(["-H", &format!("x-amz-content-sha256: {EMPTY_SHA256}")]);
    if method == "HEAD" {
        c.arg("-I");
    } else {
        c.args(["-X", method]);
    }
    let out = c.arg(format!("{}/{}/{key_query}", s.endpoint, s.bucket)).output().expect("curl (start-s3.sh needs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Answer { status, headers, body: body.to_string() }
}

/// A backend on a fresh prefix of `s`'s bucket with `extra` options; its URL's prefix.
fn open(s: &S3, what: &str, extra: &[&str]) -> (DynBackend, String) {
    let url = s.url(what);
    let mut flags = [s.options(), s.credentials(&s.secret_key)].concat();
    flags.extend(extra.iter().map(|e| e.to_string()));
    let o = Options::from_sources(&flags, vec![], None).unwrap();
    let prefix = url.rsplit('/').next().unwrap().to_string();
    (backend::open_url_with(&url, &o).unwrap(), prefix)
}

/// Every object under `dir` (`ledger/`, `data/`), as bucket keys.
fn keys(b: &DynBackend, prefix: &str, dir: &str) -> Vec<String> {
    b.list(dir).unwrap().into_iter().map(|o| format!("{prefix}/{}", o.path)).collect()
}

/// A retain-until date as the server reports it.
fn parse_until(v: &str) -> i64 {
    v.parse::<jiff::Timestamp>().unwrap_or_else(|e| panic!("retain-until {v:?}: {e}")).as_second()
}

/// Backs up `src` twice (the second time without `gone.bin`), forgets the first snapshot and prunes eagerly twice.
/// Returns the data packs before the prune and after it.
fn back_up_forget_prune(repo: &ReadRepository, b: &DynBackend, prefix: &str, src: &Path) -> (Vec<String>, Vec<String>) {
    // Both above the inline threshold (format-spec §7.3), so each is a data blob in a data pack.
    write(&src.join("keep.txt"), "kept\n".repeat(300).as_bytes());
    let gone: Vec<u8> = (0..64).flat_map(|_| cairn::crypto::random_32()).collect();
    write(&src.join("gone.bin"), &gone);
    snapshot_of(repo, src);
    std::fs::remove_file(src.join("gone.bin")).unwrap();
    snapshot_of(repo, src);
    let listed = cairn::select::list_all(repo).unwrap();
    let rules = Rules::Policy(Policy { last: Some(Count::Last(1)), ..Default::default() });
    let groups = forget::plan(&listed, GroupBy::default(), &rules, &jiff::tz::TimeZone::UTC);
    assert_eq!(forget::execute(repo, &groups, false).unwrap().len(), 1);
    let before = keys(b, prefix, "data/");
    // Two runs: the first marks what is unused, the second deletes it (docs/erasure.md).
    prune::run(repo, &eager_prune(), false).unwrap();
    prune::run(repo, &eager_prune(), false).unwrap();
    (before, keys(b, prefix, "data/"))
}

#[test]
fn with_ledger_retention_every_ledger_entry_is_locked_and_data_packs_are_not() {
    let Some(s) = S3::lock_from_env() else { return };
    let (b, prefix) = open(&s, "lock-on", &["ledger_retention=compliance:2d"]);
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Time::now();
    let repo = Repository::init(b.clone(), ADMIN, &InitOptions::default(), &opts(&tmp.path().join("c")))
        .and_then(|r| r.readable())
        .unwrap();
    let (packs_before, packs_after) = back_up_forget_prune(&repo, &b, &prefix, &tmp.path().join("src"));
    let t1 = Time::now();

    // init, two backups, forget, two prunes: each entry locked as the option says, until its write time + 2 days.
    let ledger = keys(&b, &prefix, "ledger/");
    assert_eq!(ledger.len(), 6, "{ledger:?}");
    let period = 2 * 86_400;
    for key in &ledger {
        let h = s3curl(&s, "HEAD", key);
        assert_eq!(h.status, 200, "{key}: {h:?}");
        assert_eq!(h.header("x-amz-object-lock-mode"), Some("COMPLIANCE"), "{key}: {h:?}");
        let until = parse_until(h.header("x-amz-object-lock-retain-until-date").unwrap_or_default());
        assert!((t0.secs + period..=t1.secs + period).contains(&until), "{key}: {until} not in {t0:?}..{t1:?} + 2d");
        // The server refuses to delete the entry's version, and it stays readable.
        let version = h.header("x-amz-version-id").expect("a versioned bucket").to_string();
        let d = s3curl(&s, "DELETE", &format!("{key}?versionId={version}"));
        assert_eq!(d.status, 403, "{key}: a locked version was deleted: {d:?}");
        assert!(d.body.contains("AccessDenied"), "{d:?}");
        assert_eq!(s3curl(&s, "HEAD", &format!("{key}?versionId={version}")).status, 200, "{key}");
    }

    // Data packs carry no retention: prune deleted the forgotten snapshot's pack, and a pack's version can be
    // deleted outright.
    assert!(packs_before.iter().any(|p| !packs_after.contains(p)), "prune deleted no pack: {packs_before:?}");
    for key in &packs_after {
        let h = s3curl(&s, "HEAD", key);
        assert_eq!(h.status, 200, "{key}: {h:?}");
        assert_eq!(h.header("x-amz-object-lock-mode"), None, "a data pack is locked: {h:?}");
        assert_eq!(h.header("x-amz-object-lock-retain-until-date"), None, "{h:?}");
    }
    let key = &packs_after[0];
    let version = s3curl(&s, "HEAD", key).header("x-amz-version-id").unwrap().to_string();
    assert_eq!(s3curl(&s, "DELETE", &format!("{key}?versionId={version}")).status, 204, "{key}");

    // Entries are still created once: a second write under an entry's name is refused, the entry unchanged.
    let path = b.list("ledger/").unwrap()[0].path.clone();
    let stored = b.read(&path).unwrap();
    assert!(b.write_new(&path, b"another entry").unwrap_err().is_exists());
    assert_eq!(b.read(&path).unwrap(), stored);
}

#[test]
fn governance_mode_is_sent_as_governance() {
    let Some(s) = S3::lock_from_env() else { return };
    let (b, prefix) = open(&s, "lock-gov", &["ledger_retention=governance:1d"]);
    let tmp = tempfile::tempdir().unwrap();
    Repository::init(b.clone(), ADMIN, &InitOptions::default(), &opts(&tmp.path().join("c"))).unwrap();
    let ledger = keys(&b, &prefix, "ledger/");
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    let h = s3curl(&s, "HEAD", &ledger[0]);
    assert_eq!(h.header("x-amz-object-lock-mode"), Some("GOVERNANCE"), "{h:?}");
}

#[test]
fn without_the_option_no_ledger_entry_is_locked() {
    let Some(s) = S3::lock_from_env() else { return };
    let (b, prefix) = open(&s, "lock-off", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repository::init(b.clone(), ADMIN, &InitOptions::default(), &opts(&tmp.path().join("c"))).unwrap();
    write(&tmp.path().join("src/f.txt"), b"f\n");
    snapshot_of(&repo, &tmp.path().join("src"));
    let ledger = keys(&b, &prefix, "ledger/");
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    for key in &ledger {
        let h = s3curl(&s, "HEAD", key);
        assert_eq!(h.status, 200, "{key}: {h:?}");
        assert_eq!(h.header("x-amz-object-lock-mode"), None, "{key} is locked without the option: {h:?}");
        let version = h.header("x-amz-version-id").unwrap().to_string();
        assert_eq!(s3curl(&s, "DELETE", &format!("{key}?versionId={version}")).status, 204, "{key}");
    }
}

/// On a bucket created without object lock the server refuses the locked PUT, and the error says what the bucket
/// needs.
#[test]
fn a_bucket_without_object_lock_refuses_the_ledger_write() {
    let Some(mut s) = S3::lock_from_env() else { return };
    s.bucket = super::servers::unique("nolock");
    assert_eq!(s3curl(&s, "PUT", "").status, 200, "create bucket {}", s.bucket);
    let (b, _) = open(&s, "lock-nolock", &["ledger_retention=compliance:1d"]);
    let tmp = tempfile::tempdir().unwrap();
    let e = Repository::init(b.clone(), ADMIN, &InitOptions::default(), &opts(&tmp.path().join("c"))).err().unwrap();
    let m = e.to_string();
    assert!(m.contains("object-lock write was refused: HTTP 400"), "{m}");
    assert!(m.contains("the bucket needs S3 Object Lock enabled"), "{m}");
    assert!(b.list("ledger/").unwrap().is_empty());
}

#[test]
fn backends_without_object_lock_refuse_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Options::from_sources(&["ledger_retention=compliance:7y".into()], vec![], None).unwrap();
    let local = tmp.path().join("repo").display().to_string();
    for (url, scheme) in [(local.as_str(), "file"), ("memory://lock", "memory"), ("sftp://h/p", "sftp")] {
        let e = backend::open_url_with(url, &o).err().unwrap_or_else(|| panic!("{url}: opened"));
        let m = e.to_string();
        assert!(matches!(e, Error::Usage(_)), "{url}: {e:?}");
        assert!(m.contains(&format!("option ledger_retention: the {scheme} backend")), "{m}");
        assert!(m.contains("only s3:// repositories lock ledger entries"), "{m}");
    }
    assert!(!tmp.path().join("repo").exists());
    let bad = Options::from_sources(&["ledger_retention=forever".into()], vec![], None).unwrap();
    let e = backend::open_url_with("s3://b/p", &bad).err().unwrap();
    assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("MODE:PERIOD"), "{e}");
}

/// On the S3 server without Object Lock (s3s-fs, which enforces SigV4, accepts the signed PUT and ignores its lock
/// headers) the option makes the ledger write fail: the retention read back is missing, and the command is not
/// allowed to believe its entry locked.
#[test]
fn on_a_server_without_object_lock_the_ledger_write_fails() {
    let Some(s) = S3::from_env() else { return };
    let (b, _) = open(&s, "lock-none", &["ledger_retention=compliance:1d"]);
    let tmp = tempfile::tempdir().unwrap();
    let e = Repository::init(b.clone(), ADMIN, &InitOptions::default(), &opts(&tmp.path().join("c"))).err().unwrap();
    let m = e.to_string();
    // The signed PUT passed s3s-fs's SigV4 check; the HEAD that reads the retention back found none.
    assert!(m.contains("object-lock write was refused") && m.contains("reports lock mode None"), "{m}");
    assert!(m.contains("it ignores S3 Object Lock"), "{m}");
    assert!(!m.contains("Signature"), "{m}");
}

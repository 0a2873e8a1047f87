//! `cairn ledger log|head|verify` (format-spec §13, docs/cli-contract.md): a scripted repository, a write-only
//! key's backup among its operations, logs one entry per operation and verifies (exit 0); a deleted snapshot and a
//! rolled-back `ledger/` are named with exit 1; a malformed anchor or kind is a usage error; `ledger_retention`
//! (format-spec §13.7) is exit 2 on a local repository and locks every entry on the S3 server with Object Lock.

use crate::common::*;
use serde_json::Value;

fn kinds(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|e| string(e, "kind")).collect()
}

#[test]
fn a_scripted_repository_logs_every_operation_and_verifies() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"one\n");
    let s1 = string(&repo.backup(&[&src], &[]), "snapshot_id");
    write_file(&src.join("f.txt"), b"two\n");
    repo.backup(&[&src], &[]);
    let mut add = repo.command(&["key", "add", "--write-only", "--host", "web-1"]);
    add.env("CAIRN_NEW_PASSWORD", "web-1 key");
    expect_success(&repo.command(&["key", "add"]), run_cmd(add));
    repo.password = "web-1 key".into();
    repo.backup(&[&src], &["--host", "web-1"]);
    repo.password = PASSWORD.into();
    repo.ok(&["forget", "--keep-last", "1"]);
    repo.ok(&["prune"]);
    repo.ok(&["check"]);

    let log = repo.json(&["ledger", "log"]);
    assert_eq!(kinds(&log), ["init", "backup", "backup", "key-add", "backup", "forget", "prune", "check"], "{log}");
    let forget = &log[5]["event"]["forget"]["removed"];
    assert_eq!(forget[0]["snapshot"], Value::from(s1.clone()), "{log}");
    assert_eq!(log[4]["host"], Value::from(log[0]["host"].as_str().unwrap()));
    let backups = repo.json(&["ledger", "log", "--kind", "backup"]);
    assert_eq!(kinds(&backups), ["backup", "backup", "backup"]);
    let since = repo.json(&["ledger", "log", "--since", log[6]["time"].as_str().unwrap()]);
    assert_eq!(kinds(&since), ["prune", "check"]);
    assert_eq!(repo.json(&["ledger", "log", "--since", "1d"]).as_array().unwrap().len(), 8);
    repo.expect_usage_error(&["ledger", "log", "--since", "soonish"], &["soonish"]);
    let text = repo.ok(&["ledger", "log"]);
    assert_eq!(text.lines().count(), 8, "{text}");
    assert!(text.lines().nth(3).unwrap().contains("key-add"), "{text}");

    let head = repo.ok(&["ledger", "head"]);
    let last = string(&log[7], "id");
    assert!(head.starts_with(&format!("cairn-ledger-head 8 {last} ")) && head.lines().count() == 1, "{head}");
    let out = repo.ok(&["ledger", "verify", "--anchor", head.trim()]);
    assert!(out.contains("verified 8 ledger entries (1 head(s)) against 2 snapshots: no findings"), "{out}");
    let v = repo.json(&["ledger", "verify"]);
    assert_eq!((num(&v, "entries"), v["findings"].as_array().unwrap().len()), (8, 0), "{v}");

    // Usage errors: a malformed anchor, an unknown kind.
    repo.expect_usage_error(&["ledger", "verify", "--anchor", "cairn-ledger-head 1 - 0000000000000000"], &["--anchor"]);
    repo.expect_usage_error(&["ledger", "log", "--kind", "nope"], &["nope"]);

    // A snapshot deleted in storage: exit 1, named.
    let snaps = repo.snapshots();
    let gone = string(&snaps[0], "id");
    std::fs::remove_file(repo.repo.join("snapshots").join(&gone)).unwrap();
    let out = repo.expect_code(&["ledger", "verify"], 1);
    assert!(
        stderr(&out).contains(&format!("error snapshot-missing: snapshots/{gone}: recorded by ledger/")),
        "{}",
        describe(&out)
    );
    let out = repo.expect_code(&["ledger", "verify", "--json"], 1);
    let v = parse_json(&out);
    assert_eq!(v["findings"][0]["code"], "snapshot-missing", "{v}");
    assert_eq!(v["findings"][0]["object"], Value::from(format!("snapshots/{gone}")), "{v}");
}

#[test]
fn a_rolled_back_ledger_is_named_through_the_anchor_and_the_cache() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"one\n");
    repo.backup(&[&src], &[]);
    let old = repo.path("ledger-old");
    std::fs::create_dir(&old).unwrap();
    for e in std::fs::read_dir(repo.repo.join("ledger")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), old.join(e.file_name())).unwrap();
    }
    write_file(&src.join("f.txt"), b"two\n");
    let s2 = string(&repo.backup(&[&src], &[]), "snapshot_id");
    let newest = string(&repo.json(&["ledger", "log"]).as_array().unwrap()[2], "id");
    let anchor = repo.ok(&["ledger", "head"]);
    // Roll back: the old ledger, and the newest snapshot gone.
    std::fs::remove_dir_all(repo.repo.join("ledger")).unwrap();
    std::fs::rename(&old, repo.repo.join("ledger")).unwrap();
    std::fs::remove_file(repo.repo.join("snapshots").join(&s2)).unwrap();

    let want = format!("error entry-missing: ledger/{newest}");
    // This client's cache saw the newest entry.
    let out = repo.expect_code(&["ledger", "verify"], 1);
    assert!(stderr(&out).contains(&want) && stderr(&out).contains("seen by this client"), "{}", describe(&out));
    // Another client, with the anchor.
    repo.cache = repo.path("cache-2");
    repo.ok(&["ledger", "verify"]);
    let out = repo.expect_code(&["ledger", "verify", "--anchor", anchor.trim()], 1);
    assert!(stderr(&out).contains(&want) && stderr(&out).contains("anchor"), "{}", describe(&out));
}

/// `ledger_retention` (format-spec §13.7) is S3 only: on a local repository `init` is a usage error (exit 2) naming the
/// option and the backend, whether the option comes from `-o` or the environment, and nothing is created.
#[test]
fn ledger_retention_on_a_local_repository_is_a_usage_error() {
    let repo = Repo::uninit();
    let want = "option ledger_retention: the file backend";
    let out = repo.expect_code(&["-o", "ledger_retention=compliance:7y", "init"], 2);
    assert!(stderr(&out).contains(want) && stderr(&out).contains("only s3:// repositories"), "{}", describe(&out));
    let mut cmd = repo.command(&["init"]);
    cmd.env("CAIRN_OPTION_LEDGER_RETENTION", "governance:30d");
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains(want), "{}", describe(&out));
    assert!(!repo.repo.exists());
}

/// Through the command line, with the option from the environment: `init` and a backup on the S3 server with Object
/// Lock (moto) write two entries, each stored under COMPLIANCE retention (read back with a signed `curl` HEAD).
#[test]
fn ledger_retention_from_the_environment_locks_the_entries_of_init_and_backup() {
    let Some(s3) = crate::servers::S3::lock_from_env() else { return };
    let repo = Repo::uninit();
    let url = s3.url("cli-lock");
    let run = |args: &[&str]| {
        let mut cmd = repo.command(args);
        cmd.env("CAIRN_REPOSITORY", &url)
            .env("CAIRN_OPTION_S3_ENDPOINT", &s3.endpoint)
            .env("CAIRN_OPTION_LEDGER_RETENTION", "compliance:1d")
            .envs(s3.env());
        run_cmd(cmd)
    };
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"locked\n");
    for args in [vec!["init"], vec!["backup", s(&src)]] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        assert!(!stderr(&out).contains("ledger"), "{args:?}: {}", describe(&out));
    }
    let out = run(&["ledger", "log", "--json"]);
    let log: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
    assert_eq!(kinds(&log), ["init", "backup"]);
    let prefix = url.rsplit('/').next().unwrap();
    for e in log.as_array().unwrap() {
        let key = format!("{}/{}/{prefix}/ledger/{}", s3.endpoint, s3.bucket, string(e, "id"));
        let out = std::process::Command::new("curl")
            .args(["-s", "-I", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{}:{}", s3.access_key, s3.secret_key))
            .args(["-H", "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
            .arg(&key)
            .output()
            .expect("curl");
        let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(head.contains("x-amz-object-lock-mode: compliance"), "{key}: {head}");
    }
}

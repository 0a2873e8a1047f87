//! The CLI surface of snapshot attribution (format-spec §4.3, docs/cli-contract.md): `key add --write-only --host`,
//! `key list` certificate state, a bound key refusing another host (exit 12, nothing written), `key passwd` refused
//! under a write-only key, the unattributed warning of `backup`, `snapshots` writer column and `--writer`, and
//! `forget ID`.

use crate::common::*;
use serde_json::Value;

fn add_key(repo: &Repo, password: &str, extra: &[&str]) -> Value {
    let mut args = vec!["key", "add", "--json"];
    args.extend(extra);
    let mut add = repo.command(&args);
    add.env("CAIRN_NEW_PASSWORD", password);
    parse_json(&expect_success(&repo.command(&args), run_cmd(add)))
}

#[test]
fn a_host_bound_write_only_key_backs_up_only_its_host_and_signs_its_snapshots() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"web\n");
    let added = add_key(&repo, "web-1 key", &["--write-only", "--host", "web-1"]);
    assert_eq!(added["hosts"], serde_json::json!(["web-1"]), "{added}");
    let web1 = string(&added, "key_id");
    let keys = repo.json(&["key", "list"]);
    let entry = keys.as_array().unwrap().iter().find(|k| k["id"] == web1.as_str()).unwrap().clone();
    assert_eq!((&entry["certificate"], &entry["hosts"]), (&"certified".into(), &serde_json::json!(["web-1"])));
    // --host needs --write-only.
    repo.expect_usage_error(&["key", "add", "--host", "x"], &["--write-only"]);

    repo.password = "web-1 key".into();
    let before = std::fs::read_dir(repo.repo.join("snapshots")).unwrap().count();
    let out = repo.expect_code(&["backup", s(&src), "--host", "db-1"], 12);
    assert!(stderr(&out).contains("db-1") && stderr(&out).contains("web-1"), "{}", describe(&out));
    assert_eq!(std::fs::read_dir(repo.repo.join("snapshots")).unwrap().count(), before, "nothing written");
    let out = repo.run(&["backup", s(&src), "--host", "web-1"]);
    let out = expect_success(&repo.command(&["backup"]), out);
    assert!(!stderr(&out).contains("unattributed"), "{}", describe(&out));
    // A write-only key cannot change its password: it could not certify the replacement.
    let mut passwd = repo.command(&["key", "passwd"]);
    passwd.env("CAIRN_NEW_PASSWORD", "new");
    let out = run_cmd(passwd);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("key add --write-only --host"), "{}", describe(&out));

    repo.password = PASSWORD.into();
    let snaps = repo.snapshots_filtered(&["--writer", &web1[..8]]);
    assert_eq!(snaps.len(), 1);
    assert_eq!((&snaps[0]["host"], &snaps[0]["writer"]), (&"web-1".into(), &Value::from(web1.clone())));
    let text = repo.ok(&["snapshots"]);
    assert!(text.contains("WRITER") && text.contains(&web1[..8]), "{text}");
    repo.expect_usage_error(&["snapshots", "--writer", "xyz"], &["xyz"]);
}

#[test]
fn a_key_added_by_a_write_only_key_writes_unattributed_snapshots_with_a_warning_and_forget_id_removes_one() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"x\n");
    add_key(&repo, "writer", &["--write-only"]);
    repo.password = "writer".into();
    let added = add_key(&repo, "uncertified", &["--write-only"]);
    repo.password = "uncertified".into();
    let out = repo.run(&["backup", s(&src)]);
    let out = expect_success(&repo.command(&["backup"]), out);
    assert!(stderr(&out).contains("warning: the snapshot is unattributed"), "{}", describe(&out));
    repo.password = PASSWORD.into();
    let keys = repo.json(&["key", "list"]);
    let entry = keys.as_array().unwrap().iter().find(|k| k["id"] == added["key_id"]).unwrap().clone();
    assert_eq!(entry["certificate"], "none");
    let snaps = repo.snapshots_filtered(&["--writer", "unattributed"]);
    assert_eq!((snaps.len(), &snaps[0]["attribution"]), (1, &Value::from("unattributed")));
    let id = string(&snaps[0], "id");
    repo.expect_usage_error(&["forget", "latest"], &["latest"]);
    let removed = repo.json(&["forget", &id[..8]]);
    assert_eq!(removed["removed"], serde_json::json!([id]));
    assert!(repo.snapshots().is_empty());
}

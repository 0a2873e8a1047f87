//! `cairn tag` (format-spec §8.3) and `cairn mount` (issue 14): tag rewrites a manifest with `replaces`, needs a
//! full key (exit 12 for a write-only key), keeps the original writer for retention, and refuses flagged snapshots
//! unless --force (they stay flagged); mount shows the snapshots through FUSE where /dev/fuse allows it.

use crate::common::*;
use serde_json::{json, Value};

fn add_key(repo: &Repo, password: &str, extra: &[&str]) -> String {
    let mut args = vec!["key", "add", "--json"];
    args.extend(extra);
    let mut add = repo.command(&args);
    add.env("CAIRN_NEW_PASSWORD", password);
    string(&parse_json(&expect_success(&repo.command(&args), run_cmd(add))), "key_id")
}

/// The snapshot with id `id` in `snapshots --json`.
fn listed(repo: &Repo, id: &str) -> Value {
    repo.snapshots().into_iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("snapshot {id} not listed"))
}

/// `replaces` of the stored manifest `id` (version 3).
fn replaces(repo: &Repo, id: &str) -> Value {
    repo.json(&["cat", "snapshot", id])["snapshot"]["V3"]["replaces"].clone()
}

/// The id of the one snapshot whose short id is `short`.
fn full_id(repo: &Repo, short: &str) -> String {
    let ids: Vec<String> = repo.snapshots().iter().map(|s| string(s, "id")).filter(|i| i.starts_with(short)).collect();
    assert_eq!(ids.len(), 1, "{short}: {ids:?}");
    ids[0].clone()
}

#[test]
fn tag_rewrites_the_manifest_keeps_the_writer_group_and_refuses_write_only_keys_and_flagged_snapshots() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"x\n");
    let web1 = add_key(&repo, "web-1 key", &["--write-only", "--host", "web-1"]);
    repo.password = "web-1 key".into();
    let s1 =
        string(&repo.backup(&[&src], &["--host", "web-1", "--time", "2024-01-01", "--tag", "daily"]), "snapshot_id");
    // A write-only key may not tag (it would delete a manifest): exit 12, nothing changed.
    let out = repo.expect_code(&["tag", &s1[..8], "--add", "keep"], 12);
    assert!(stderr(&out).contains("write-only"), "{}", describe(&out));
    repo.password = PASSWORD.into();
    assert_eq!(listed(&repo, &s1)["tags"], json!(["daily"]));

    // The full key tags web-1's snapshot: a new manifest signed by the full key, naming the one it replaces and,
    // in the reserved tag, web-1 as the writer retention counts it under; the old manifest is gone.
    let out = repo.ok(&["tag", &s1[..8], "--add", "keep", "--add", "daily"]);
    let short2 = out.split_whitespace().nth(3).unwrap().to_string();
    let s2 = full_id(&repo, &short2);
    assert_eq!(out, format!("tagged     {} -> {short2}  tags daily,keep,writer:{web1}\n", &s1[..8]));
    let l = listed(&repo, &s2);
    assert_eq!(l["tags"], json!(["daily", "keep", format!("writer:{web1}")]));
    assert_eq!((&l["writer"], &l["flags"]), (&json!(repo.init_key_id()), &json!([])));
    assert_eq!(replaces(&repo, &s2), json!([s1]));
    assert!(!repo.snapshots().iter().any(|s| s["id"] == s1.as_str()), "the old manifest is deleted");
    let groups = repo.json(&["snapshots", "--group-by", "writer"]);
    assert_eq!(groups[0]["group"], json!({"writer": web1}), "{groups}");
    assert_eq!(groups[0]["snapshots"][0]["id"], json!(s2));
    assert_eq!(repo.snapshots_filtered(&["--writer", &web1[..8]]).len(), 1);

    // --remove, then --set: the history grows oldest first; the reserved tag stays; user tags are replaced.
    let out = repo.ok(&["tag", &s2[..8], "--remove", "daily"]);
    let s3 = full_id(&repo, out.split_whitespace().nth(3).unwrap());
    assert_eq!(listed(&repo, &s3)["tags"], json!(["keep", format!("writer:{web1}")]));
    let out = repo.json(&["tag", &s3[..8], "--set", "a", "--set", "b"]);
    let s4 = string(&out["snapshots"][0], "new");
    assert_eq!(out["snapshots"][0]["after"], json!(["a", "b", format!("writer:{web1}")]), "{out}");
    assert_eq!(replaces(&repo, &s4), json!([s1, s2, s3]));
    // Nothing to change: nothing written.
    assert_eq!(repo.ok(&["tag", &s4[..8], "--add", "a"]), format!("unchanged  {}  tags a,b,writer:{web1}\n", &s4[..8]));
    assert_eq!(repo.snapshots().len(), 1);
    // Reserved tags are the program's.
    repo.expect_usage_error(&["tag", &s4[..8], "--add", &format!("writer:{}", repo.init_key_id())], &["reserved"]);
    repo.expect_usage_error(&["tag", &s4[..8]], &["--add"]);

    // A flagged snapshot (dated a century ahead: future) is refused without --force, and stays flagged with it:
    // its writer block is kept as it was and no longer verifies.
    let f = string(&repo.backup(&[&src], &["--time", "2124-01-01"]), "snapshot_id");
    assert_eq!(listed(&repo, &f)["flags"], json!(["future"]));
    let out = repo.expect_code(&["tag", &f[..8], "--add", "keep"], 1);
    assert!(stderr(&out).contains("flagged (future)") && stderr(&out).contains("--force"), "{}", describe(&out));
    assert_eq!(listed(&repo, &f)["tags"], json!([]));
    let out = repo.json(&["tag", &f[..8], "--add", "keep", "--force"]);
    let fnew = string(&out["snapshots"][0], "new");
    assert_eq!(out["snapshots"][0]["signed"], json!(false));
    let l = listed(&repo, &fnew);
    assert_eq!(
        (&l["tags"], &l["flags"], &l["attribution"]),
        (&json!(["keep"]), &json!(["forged", "future"]), &json!("forged"))
    );
}

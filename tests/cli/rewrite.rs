//! `cairn rewrite` (erasure, format-spec §8.4) and `cairn restore --overwrite --safety-snapshot` through the
//! binary: the plan of a dry run, the rewrite with --forget and its ledger entry, the key rules (exit 12 for a
//! write-only key, exit 2 without a pattern), and a restore that backs up what it replaces first, so restoring
//! the safety snapshot brings the replaced files back; when that backup fails nothing is touched (exit 1).

use crate::common::*;
use serde_json::{json, Value};

fn add_write_only_key(repo: &Repo, password: &str) {
    let args = ["key", "add", "--write-only", "--json"];
    let mut add = repo.command(&args);
    add.env("CAIRN_NEW_PASSWORD", password);
    expect_success(&repo.command(&args), run_cmd(add));
}

#[test]
fn rewrite_plans_erases_with_forget_and_the_ledger_shows_the_request_not_the_data() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("keep.txt"), b"kept\n");
    write_file(&src.join("people/alice/record.pdf"), b"alice's personal data\n");
    write_file(&src.join("people/bob/record.pdf"), b"bob's\n");
    let s1 = string(&repo.backup(&[&src], &["--tag", "daily"]), "snapshot_id");
    write_file(&src.join("keep.txt"), b"kept, v2\n");
    let s2 = string(&repo.backup(&[&src], &["--tag", "daily"]), "snapshot_id");
    let alice = format!("{}/people/alice", s(&src));

    // Usage: a pattern is required.
    repo.expect_usage_error(&["rewrite", "--forget"], &["--exclude"]);
    // A write-only key can neither plan nor rewrite: exit 12.
    add_write_only_key(&repo, "wo");
    repo.password = "wo".into();
    let out = repo.expect_code(&["rewrite", "--exclude", &alice, "--forget"], 12);
    assert!(stderr(&out).contains("write-only"), "{}", describe(&out));
    repo.password = PASSWORD.into();

    // The dry run: both snapshots, the directory that would go, its files and bytes; nothing written.
    let plan = repo.json(&["rewrite", "--exclude", &alice, "--reason", "ticket 42", "--dry-run"]);
    assert_eq!(plan["dry_run"], json!(true));
    assert_eq!((num(&plan, "examined"), num(&plan, "files"), num(&plan, "bytes")), (2, 2, 44), "{plan}");
    let snaps = plan["snapshots"].as_array().unwrap();
    assert_eq!(snaps.iter().map(|s| string(s, "snapshot")).collect::<Vec<_>>(), [s1.clone(), s2.clone()]);
    assert_eq!(snaps[0]["removed"], json!([{"path": alice, "kind": "dir", "files": 1, "bytes": 22}]), "{plan}");
    assert_eq!(snaps[0]["new"], Value::Null);
    let item = json!({"snapshot": "hex", "time": "time", "host": "str", "paths": ["str"],
                      "removed": [{"path": "str", "kind": "str", "files": "n", "bytes": "n"}], "entries": "n",
                      "files": "n", "bytes": "n", "sources_dropped": ["str"], "new": "hex?",
                      "already_replaced": "bool", "emptied": "bool", "forgotten": "bool"});
    let doc = json!({"dry_run": "bool", "reason": "str", "patterns": ["str"], "examined": "n", "snapshots": [item],
                     "files": "n", "bytes": "n", "ledger_entry": "hex?"});
    crate::contract::conforms("rewrite --dry-run", &plan, &doc);
    assert_eq!(plan["ledger_entry"], Value::Null);
    assert_eq!(repo.snapshots().len(), 2);
    let text = repo.ok(&["rewrite", "--exclude", "record.pdf", "--dry-run"]);
    assert!(
        text.contains("would rewrite") && text.contains("2 of 2 snapshot(s) hold a matching path; 4 files"),
        "{text}"
    );

    // The rewrite: new snapshots tagged `rewritten` replacing the originals, which are deleted.
    let done = repo.json(&["rewrite", "--exclude", &alice, "--reason", "ticket 42", "--forget"]);
    crate::contract::conforms("rewrite", &done, &doc);
    let news: Vec<String> = done["snapshots"].as_array().unwrap().iter().map(|s| string(s, "new")).collect();
    assert!(done["snapshots"].as_array().unwrap().iter().all(|s| s["forgotten"] == json!(true)), "{done}");
    let listed = repo.snapshots();
    assert_eq!(listed.iter().map(|s| string(s, "id")).collect::<Vec<_>>(), news);
    for (l, old) in listed.iter().zip([&s1, &s2]) {
        assert_eq!(l["tags"], json!(["daily", "rewritten"]));
        let manifest = repo.json(&["cat", "snapshot", &string(l, "id")]);
        assert_eq!(manifest["snapshot"]["V3"]["replaces"], json!([old]));
    }
    let ls = repo.ls(&news[1]);
    assert!(ls.iter().any(|p| p.ends_with("people/bob/record.pdf")), "{ls:?}");
    assert!(!ls.iter().any(|p| p.contains("alice")), "{ls:?}");
    let target = repo.path("restored");
    repo.restore(&news[1], &target);
    assert_eq!(std::fs::read(target.join(src.strip_prefix("/").unwrap()).join("keep.txt")).unwrap(), b"kept, v2\n");

    // The ledger: one rewrite entry with the reason, the pattern and the ids, nothing of the data.
    let log = repo.json(&["ledger", "log", "--kind", "rewrite"]);
    let ev = &log[0]["event"]["rewrite"];
    assert_eq!(ev["reason"], json!("ticket 42"));
    assert_eq!(ev["patterns"], json!([alice]));
    assert_eq!(ev["replaced"], json!([{"old": s1, "new": news[0]}, {"old": s2, "new": news[1]}]));
    assert_eq!(ev["removed"], json!([s1, s2]));
    assert!(!log.to_string().contains("personal data"));
    assert_eq!(done["ledger_entry"], log[0]["id"]);
    let v = repo.json(&["ledger", "verify"]);
    assert_eq!(v["findings"], json!([]), "{v}");
    // Nothing matches any more: nothing is written, no entry.
    let again = repo.json(&["rewrite", "--exclude", &alice, "--forget"]);
    assert_eq!((again["snapshots"].clone(), again["ledger_entry"].clone()), (json!([]), Value::Null));
}

#[test]
fn restore_with_a_safety_snapshot_saves_what_it_replaces_and_touches_nothing_when_that_backup_fails() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"original a\n");
    write_file(&src.join("d/b.txt"), b"original b\n");
    write_file(&src.join("d/c.txt"), b"original c\n");
    let snap = string(&repo.backup(&[&src], &[]), "snapshot_id");
    // The target holds a modified copy: a changed file, a symlink where a file belongs, a file only it has.
    let target = repo.path("target");
    repo.restore(&snap, &target);
    let tsrc = target.join(src.strip_prefix("/").unwrap());
    write_file(&tsrc.join("a.txt"), b"modified a\n");
    std::fs::remove_file(tsrc.join("d/c.txt")).unwrap();
    std::os::unix::fs::symlink("elsewhere", tsrc.join("d/c.txt")).unwrap();
    write_file(&tsrc.join("d/extra.txt"), b"only in the target\n");
    let modified = contents(&target);

    // --safety-snapshot needs --overwrite.
    repo.expect_usage_error(&["restore", &snap, "--target", s(&target), "--safety-snapshot"], &["--overwrite"]);
    // A dry run counts what it would save.
    let plan = repo.json(&["restore", &snap, "--target", s(&target), "--overwrite", "--safety-snapshot", "--dry-run"]);
    assert_eq!(num(&plan, "safety_files"), 3, "{plan}");

    // When the safety backup fails (its writer cannot create its lease), exit 1 and the target is untouched.
    let leases = repo.repo.join("leases");
    let _ = std::fs::remove_dir_all(&leases);
    std::fs::write(&leases, b"not a directory").unwrap();
    let out = repo.expect_code(&["restore", &snap, "--target", s(&target), "--overwrite", "--safety-snapshot"], 1);
    assert!(stderr(&out).contains("safety snapshot failed, nothing was restored"), "{}", describe(&out));
    assert_eq!(contents(&target), modified, "a failed safety backup let the restore touch the target");
    std::fs::remove_file(&leases).unwrap();

    // The restore: first the safety snapshot (tagged `safety`, this host, the replaced files), then the restore.
    let r = repo.json(&["restore", &snap, "--target", s(&target), "--overwrite", "--safety-snapshot"]);
    crate::contract::conforms(
        "restore --safety-snapshot",
        &r,
        &json!({"snapshot_id": "hex", "safety_snapshot": "hex?"}),
    );
    let safety = string(&r, "safety_snapshot");
    assert_eq!(std::fs::read(tsrc.join("a.txt")).unwrap(), b"original a\n");
    assert_eq!(std::fs::read(tsrc.join("d/c.txt")).unwrap(), b"original c\n");
    let listed = repo.snapshots().into_iter().find(|l| l["id"] == json!(safety)).unwrap();
    assert_eq!(listed["tags"], json!(["safety"]));
    assert_eq!(listed["host"], repo.snapshots()[0]["host"]);
    let mut paths: Vec<String> = ["a.txt", "d/b.txt", "d/c.txt"].iter().map(|p| s(&tsrc.join(p)).to_string()).collect();
    paths.sort();
    assert_eq!(listed["paths"], json!(paths));

    // Restoring the safety snapshot brings the replaced files back as they were.
    let back = repo.path("back");
    repo.restore(&safety, &back);
    let saved = back.join(tsrc.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(saved.join("a.txt")).unwrap(), b"modified a\n");
    assert_eq!(std::fs::read(saved.join("d/b.txt")).unwrap(), b"original b\n");
    assert_eq!(std::fs::read_link(saved.join("d/c.txt")).unwrap(), std::path::Path::new("elsewhere"));
    assert!(!saved.join("d/extra.txt").exists(), "only what the restore replaced is saved");
    assert_eq!(std::fs::read(tsrc.join("d/extra.txt")).unwrap(), b"only in the target\n");
    // Nothing in the way: no safety snapshot is written.
    let fresh = repo.path("fresh");
    let r = repo.json(&["restore", &snap, "--target", s(&fresh), "--overwrite", "--safety-snapshot"]);
    assert_eq!(r["safety_snapshot"], Value::Null);
    assert_eq!(repo.snapshots().len(), 2);
}

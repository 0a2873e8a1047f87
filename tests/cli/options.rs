//! Command options: backup exclusions and inputs, snapshot metadata and filters, restore selection, `ls`, keys,
//! partial backups.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// The paths of snapshot `id` at or under `src`, relative to `src` ("" is `src` itself), from `ls`.
fn snapshot_rel_paths(repo: &Repo, id: &str, src: &Path) -> BTreeSet<String> {
    let lines = repo.ls(id);
    for l in &lines {
        assert!(l.starts_with('/'), "ls must print absolute paths, got {l:?} in {lines:?}");
    }
    let root = s(src);
    lines
        .iter()
        .filter_map(|l| {
            if l == root {
                Some(String::new())
            } else {
                l.strip_prefix(root).and_then(|r| r.strip_prefix('/')).map(str::to_string)
            }
        })
        .collect()
}

/// Every path of the tree at `src`, relative, plus "" for `src` itself.
fn tree_rel_paths(src: &Path) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = walk(src).iter().map(|r| String::from_utf8(r.clone()).unwrap()).collect();
    all.insert(String::new());
    all
}

fn under(p: &str, dir: &str) -> bool {
    p.starts_with(&format!("{dir}/"))
}

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n";

fn exclusion_tree(src: &Path) {
    write_file(&src.join("keep.txt"), b"keep me\n");
    write_file(&src.join("app.log"), b"log line\n");
    write_file(&src.join("sub/keep2.txt"), b"keep me too\n");
    write_file(&src.join("sub/deep/trace.log"), b"trace\n");
    write_file(&src.join("skipme/.nobackup"), b"");
    write_file(&src.join("skipme/data.txt"), b"in an excluded dir\n");
    write_file(&src.join("skipme/inner/x.txt"), b"deeper in an excluded dir\n");
    write_file(&src.join("cachedir/CACHEDIR.TAG"), CACHEDIR_TAG.as_bytes());
    write_file(&src.join("cachedir/blob.bin"), &random_bytes(1, 300));
    write_file(&src.join("notcache/CACHEDIR.TAG"), b"Signature: not the right one\n");
    write_file(&src.join("notcache/kept.bin"), &random_bytes(2, 300));
    write_file(&src.join("big.bin"), &random_bytes(3, 4000));
    write_file(&src.join("small.bin"), &random_bytes(4, 500));
}

/// Backs up `src` with `flags` and checks the snapshot has exactly the tree's paths minus those `excluded` says,
/// where `optional` paths may be there or not.
fn check_exclusion(flags: &[&str], excluded: impl Fn(&str) -> bool, optional: impl Fn(&str) -> bool) {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    exclusion_tree(&src);
    let summary = repo.backup(&[&src], flags);
    let got = snapshot_rel_paths(&repo, &string(&summary, "snapshot_id"), &src);
    let all = tree_rel_paths(&src);
    let expected: BTreeSet<String> = all.iter().filter(|p| !excluded(p)).cloned().collect();
    let wrong_in: Vec<&String> = got.iter().filter(|p| !expected.contains(*p) && !optional(p)).collect();
    let missing: Vec<&String> = expected.iter().filter(|p| !got.contains(*p) && !optional(p)).collect();
    assert!(
        wrong_in.is_empty() && missing.is_empty(),
        "backup {flags:?}: should not be in the snapshot: {wrong_in:?}; missing from it: {missing:?}; snapshot: {got:?}"
    );
}

#[test]
fn backup_exclude_glob() {
    check_exclusion(&["--exclude", "*.log"], |p| p.ends_with(".log"), |_| false);
}

#[test]
fn backup_exclude_if_present() {
    // The directory holding `.nobackup` and everything in it are excluded (whether the directory itself is kept
    // as an empty entry is not part of the contract).
    check_exclusion(&["--exclude-if-present", ".nobackup"], |p| p == "skipme" || under(p, "skipme"), |p| p == "skipme");
}

#[test]
fn backup_exclude_caches() {
    // Only a directory with a valid CACHEDIR.TAG is excluded; its tag file and the directory entry may be kept.
    check_exclusion(
        &["--exclude-caches"],
        |p| p == "cachedir" || under(p, "cachedir"),
        |p| p == "cachedir" || p == "cachedir/CACHEDIR.TAG",
    );
}

#[test]
fn backup_exclude_larger_than() {
    check_exclusion(&["--exclude-larger-than", "1K"], |p| p == "big.bin", |_| false);
}

#[test]
fn backup_files_from() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    exclusion_tree(&src);
    let list = repo.path("list.txt");
    fs::write(&list, format!("{}\n{}\n", s(&src.join("keep.txt")), s(&src.join("sub/keep2.txt")))).unwrap();

    let summary = repo.json(&["backup", "--files-from", s(&list)]);
    let id = string(&summary, "snapshot_id");
    assert_eq!(num(&summary, "files_new"), 2, "{summary}");
    let entries = ls_json(&repo, &id);
    let files: BTreeSet<&str> = entries.iter().filter(|(_, t)| t != "dir").map(|(p, _)| p.as_str()).collect();
    let (keep, keep2) = (src.join("keep.txt"), src.join("sub/keep2.txt"));
    let expected: BTreeSet<&str> = [s(&keep), s(&keep2)].into_iter().collect();
    assert_eq!(files, expected, "--files-from: the snapshot must hold exactly the listed files");

    let snaps = repo.snapshots();
    let paths: BTreeSet<&str> = snaps[0]["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(paths, expected, "snapshot paths of a --files-from backup");
}

/// `ls SNAPSHOT --json` as (path, type) pairs.
fn ls_json(repo: &Repo, snapshot: &str) -> Vec<(String, String)> {
    let v = repo.json(&["ls", snapshot]);
    v.as_array()
        .unwrap_or_else(|| panic!("ls --json must print an array, got {v}"))
        .iter()
        .map(|e| (string(e, "path"), string(e, "type")))
        .collect()
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or_else(|e| panic!("not an RFC 3339 time: {s:?}: {e}"))
}

#[test]
fn tags_host_and_time_are_recorded_and_filterable() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f"), b"x");
    let a =
        repo.backup(&[&src], &["--tag", "daily", "--tag", "db", "--host", "alpha", "--time", "2024-05-01T10:00:00Z"]);
    let b = repo.backup(&[&src], &["--tag", "weekly", "--host", "beta", "--time", "2024-05-02 11:30"]);
    let (id_a, id_b) = (string(&a, "snapshot_id"), string(&b, "snapshot_id"));

    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 2);
    let (sa, sb) = (&snaps[0], &snaps[1]);
    assert_eq!(string(sa, "id"), id_a, "snapshots are listed oldest first");
    assert_eq!(string(sb, "id"), id_b);
    assert_eq!(string(sa, "host"), "alpha");
    assert_eq!(string(sb, "host"), "beta");
    let tags = |v: &Value| -> BTreeSet<String> {
        v["tags"]
            .as_array()
            .unwrap_or_else(|| panic!("no tags array in {v}"))
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tags(sa), ["daily", "db"].iter().map(|s| s.to_string()).collect());
    assert_eq!(tags(sb), ["weekly"].iter().map(|s| s.to_string()).collect());
    assert_eq!(ts(&string(sa, "time")), ts("2024-05-01T10:00:00Z"));
    assert_eq!(ts(&string(sb, "time")), ts("2024-05-02T11:30:00Z"), "\"YYYY-MM-DD HH:MM\" is UTC");
    assert_eq!(string(sa, "short_id"), id_a[..8]);
    assert_eq!(sa["paths"], serde_json::json!([s(&src)]));

    let ids =
        |filter: &[&str]| -> Vec<String> { repo.snapshots_filtered(filter).iter().map(|v| string(v, "id")).collect() };
    assert_eq!(ids(&["--tag", "db"]), vec![id_a.clone()]);
    assert_eq!(ids(&["--tag", "daily"]), vec![id_a.clone()]);
    assert_eq!(ids(&["--tag", "weekly"]), vec![id_b.clone()]);
    assert_eq!(ids(&["--host", "alpha"]), vec![id_a.clone()]);
    assert_eq!(ids(&["--host", "beta"]), vec![id_b.clone()]);
    assert_eq!(ids(&["--tag", "nope"]), Vec::<String>::new());
    assert_eq!(ids(&["--host", "beta", "--tag", "db"]), Vec::<String>::new());
}

#[test]
fn restore_as_of_picks_the_newest_snapshot_at_or_before() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let f = src.join("f.txt");
    let months = [
        ("2024-01-01T00:00:00Z", "january", "january\n"),
        ("2024-02-01T00:00:00Z", "february", "february!\n"),
        ("2024-03-01T00:00:00Z", "march", "march, the third month\n"),
    ];
    for (time, month, content) in months {
        for (_, m, _) in months {
            let _ = fs::remove_file(src.join(format!("only-{m}")));
        }
        write_file(&f, content.as_bytes());
        write_file(&src.join(format!("only-{month}")), b"1");
        repo.backup(&[&src], &["--time", time]);
    }

    let restore_as_of = |time: &str, name: &str| -> std::path::PathBuf {
        let target = repo.mkdir(name);
        repo.ok(&["restore", "--as-of", time, "--target", s(&target)]);
        restored_path(&target, &src)
    };
    let r = restore_as_of("2024-02-15T00:00:00Z", "t1");
    assert_eq!(fs::read_to_string(r.join("f.txt")).unwrap(), "february!\n", "as of 2024-02-15");
    assert!(r.join("only-february").exists() && !r.join("only-march").exists() && !r.join("only-january").exists());

    // "At or before": exactly the February snapshot's time (date-only form is midnight UTC).
    let r = restore_as_of("2024-02-01", "t2");
    assert_eq!(fs::read_to_string(r.join("f.txt")).unwrap(), "february!\n", "as of 2024-02-01 (exact time)");

    let r = restore_as_of("2024-01-31T23:59:59Z", "t3");
    assert_eq!(fs::read_to_string(r.join("f.txt")).unwrap(), "january\n", "as of 2024-01-31T23:59:59Z");

    let r = restore_as_of("2030-01-01T00:00:00+01:00", "t4");
    assert_eq!(fs::read_to_string(r.join("f.txt")).unwrap(), "march, the third month\n", "as of 2030");

    let target = repo.mkdir("t5");
    let out = repo.run(&["restore", "--as-of", "2023-12-31T00:00:00Z", "--target", s(&target)]);
    assert!(!out.status.success(), "no snapshot at or before 2023-12-31: restore must fail\n{}", describe(&out));
}

#[test]
fn restore_refuses_to_overwrite_without_the_flag() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"original content\n");
    write_file(&src.join("sub/b.txt"), b"other file\n");
    repo.backup(&[&src], &[]);

    let target = repo.mkdir("restore");
    repo.restore("latest", &target);
    let restored = restored_path(&target, &src);
    fs::write(restored.join("a.txt"), b"local edit").unwrap();

    let out = repo.run(&["restore", "latest", "--target", s(&target)]);
    assert_eq!(out.status.code(), Some(1), "restore over existing files without --overwrite\n{}", describe(&out));
    assert!(
        stderr(&out).contains("a.txt") || stderr(&out).contains("b.txt"),
        "the refusal must name the path\n{}",
        describe(&out)
    );
    assert_eq!(fs::read(restored.join("a.txt")).unwrap(), b"local edit", "the existing file was replaced");

    repo.ok(&["restore", "latest", "--target", s(&target), "--overwrite"]);
    assert_same_contents(&src, &restored);
}

#[test]
fn restore_include_and_exclude_select_files() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"a\n");
    write_file(&src.join("b.dat"), b"b\n");
    write_file(&src.join("sub/c.txt"), b"c\n");
    write_file(&src.join("sub/d.dat"), b"d\n");
    repo.backup(&[&src], &[]);

    let files_in = |target: &Path| -> BTreeSet<String> {
        let root = restored_path(target, &src);
        regular_files(&root).iter().map(|r| String::from_utf8(r.clone()).unwrap()).collect()
    };
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };

    let t = repo.mkdir("t1");
    repo.ok(&["restore", "latest", "--target", s(&t), "--include", "*.txt"]);
    assert_eq!(files_in(&t), set(&["a.txt", "sub/c.txt"]), "--include '*.txt'");
    assert_eq!(fs::read(restored_path(&t, &src).join("sub/c.txt")).unwrap(), b"c\n");

    let t = repo.mkdir("t2");
    repo.ok(&["restore", "latest", "--target", s(&t), "--include", "a.txt", "--include", "d.dat"]);
    assert_eq!(files_in(&t), set(&["a.txt", "sub/d.dat"]), "--include a.txt --include d.dat");

    let t = repo.mkdir("t3");
    repo.ok(&["restore", "latest", "--target", s(&t), "--exclude", "*.dat"]);
    assert_eq!(files_in(&t), set(&["a.txt", "sub/c.txt"]), "--exclude '*.dat'");
}

#[test]
fn ls_lists_the_paths() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"12345");
    write_file(&src.join("sub/b.txt"), b"b");
    fs::create_dir(src.join("sub/empty-dir")).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let id = string(&repo.backup(&[&src], &[]), "snapshot_id");

    let got = snapshot_rel_paths(&repo, &id, &src);
    assert_eq!(got, tree_rel_paths(&src), "ls {id}");
    // A unique prefix names the snapshot too.
    assert_eq!(snapshot_rel_paths(&repo, &id[..8], &src), got, "ls with an 8-digit prefix");

    // SNAPSHOT:PATH lists that subtree only.
    let sub = repo.ls(&format!("{id}:{}", s(&src.join("sub"))));
    assert!(sub.iter().any(|l| l == s(&src.join("sub/b.txt"))), "ls ID:sub must list sub/b.txt: {sub:?}");
    assert!(sub.iter().any(|l| l == s(&src.join("sub/empty-dir"))), "ls ID:sub must list sub/empty-dir: {sub:?}");
    assert!(!sub.iter().any(|l| l == s(&src.join("a.txt"))), "ls ID:sub must not list a.txt: {sub:?}");

    let v = repo.json(&["ls", &id]);
    let find = |p: &Path| -> Value {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == s(p))
            .unwrap_or_else(|| panic!("ls --json lacks {p:?}: {v}"))
            .clone()
    };
    let a = find(&src.join("a.txt"));
    assert_eq!(a["type"], "file");
    assert_eq!(a["size"], 5);
    assert!(a.get("mode").is_some() && a.get("mtime").is_some(), "ls --json entry lacks mode/mtime: {a}");
    assert_eq!(find(&src.join("sub"))["type"], "dir");
    assert_eq!(find(&src.join("link"))["type"], "symlink");
}

fn key_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("key list --json must print an array, got {v}"))
        .iter()
        .map(|k| {
            k.get("id")
                .or_else(|| k.get("key_id"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("key without an id in {v}"))
                .to_string()
        })
        .collect()
}

#[test]
fn key_add_list_and_remove() {
    let mut repo = Repo::new();
    let first_key = repo.init_key_id();
    let new_password = "the second password";

    let mut add = repo.command(&["key", "add"]);
    add.env("CAIRN_NEW_PASSWORD", new_password);
    expect_success(&repo.command(&["key", "add"]), run_cmd(add));

    let keys = key_ids(&repo.json(&["key", "list"]));
    assert_eq!(keys.len(), 2, "after key add: {keys:?}");
    assert!(keys.contains(&first_key), "the first key must still be there: {keys:?}");
    let second_key = keys.iter().find(|k| **k != first_key).unwrap().clone();

    // Both passwords open the repository.
    repo.ok(&["snapshots"]);
    repo.password = new_password.to_string();
    repo.ok(&["snapshots"]);

    // With the new password, remove the first key: the old password stops working. `key list` still shows it, as
    // revoked without a key file (format-spec §4.3), dated by its revocation, so after the second key.
    repo.ok(&["key", "remove", &first_key]);
    let listed = repo.json(&["key", "list"]);
    assert_eq!(key_ids(&listed), vec![second_key.clone(), first_key.clone()]);
    let state = |k: &Value| (k["id"].as_str().unwrap().to_string(), k["key_file"].clone(), k["revoked"].is_string());
    let states: Vec<_> = listed.as_array().unwrap().iter().map(state).collect();
    assert_eq!(states, [(second_key.clone(), Value::Bool(true), false), (first_key.clone(), Value::Bool(false), true)]);
    repo.password = PASSWORD.to_string();
    repo.expect_code(&["snapshots"], 12);

    // Removing the last key is refused, and the repository still opens.
    repo.password = new_password.to_string();
    let out = repo.run(&["key", "remove", &second_key]);
    assert!(!out.status.success(), "removing the last key must be refused\n{}", describe(&out));
    repo.ok(&["snapshots"]);
    assert_eq!(key_ids(&repo.json(&["key", "list"])), vec![second_key, first_key]);
}

#[test]
fn unreadable_path_gives_partial_backup_exit_3() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("real.txt"), b"I exist\n");
    let missing = src.join("vanished.txt");
    let list = repo.path("list.txt");
    fs::write(&list, format!("{}\n{}\n", s(&src.join("real.txt")), s(&missing))).unwrap();

    let out = repo.run(&["backup", "--files-from", s(&list), "--json"]);
    assert_eq!(out.status.code(), Some(3), "partial backup\n{}", describe(&out));
    let summary = parse_json(&out);
    let id = string(&summary, "snapshot_id");
    let errors = summary["errors"].as_array().unwrap_or_else(|| panic!("no errors array: {summary}"));
    assert!(
        errors.iter().any(|e| e["path"].as_str().is_some_and(|p| p.contains("vanished.txt")) && e["error"].is_string()),
        "errors must name the unreadable path: {summary}"
    );
    let listing = repo.ls(&id);
    assert!(listing.iter().any(|l| l == s(&src.join("real.txt"))), "the readable file is in the snapshot: {listing:?}");
    assert!(!listing.iter().any(|l| l.contains("vanished.txt")), "the unreadable path is not: {listing:?}");

    let out = repo.run(&["backup", "--files-from", s(&list)]);
    assert_eq!(out.status.code(), Some(3), "partial backup without --json\n{}", describe(&out));
    assert!(stderr(&out).contains("vanished.txt"), "stderr must name the unreadable path\n{}", describe(&out));
    assert_eq!(repo.snapshots().len(), 2, "each partial backup makes a snapshot");
}

/// `backup --dry-run` reads and counts, and stores nothing: no object at all under data/, tree/, index/ or
/// snapshots/ (the same as before the run, on an empty repository and on one that already holds a snapshot).
#[test]
fn dry_run_stores_nothing() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.bin"), &random_bytes(9, 3 * MIB));
    write_file(&src.join("d/b.txt"), &compressible_bytes(10, 200 * KIB));
    let stored = |prefix: &str| objects(&repo.repo, prefix);
    for prefix in ["data", "tree", "index", "snapshots"] {
        assert!(stored(prefix).is_empty(), "a new repository holds {prefix}/ objects: {:?}", stored(prefix));
    }
    let v = repo.json(&["backup", s(&src), "--dry-run"]);
    assert_eq!(v["dry_run"], true, "{v}");
    assert!(v["snapshot_id"].is_null(), "a dry run has no snapshot id: {v}");
    assert_eq!(num(&v, "files_new"), 2, "{v}");
    assert!(num(&v, "bytes_added") >= 3 * MIB as u64, "a dry run counts what it would add: {v}");
    for prefix in ["data", "tree", "index", "snapshots"] {
        assert!(stored(prefix).is_empty(), "backup --dry-run stored {prefix}/ objects: {:?}", stored(prefix));
    }
    assert!(repo.snapshots().is_empty(), "a dry run must not make a snapshot");

    // On a repository with a snapshot: a changed tree, dry run, and nothing changes under those prefixes.
    repo.backup(&[&src], &[]);
    let before: Vec<_> = ["data", "tree", "index", "snapshots"].iter().map(|p| stored(p)).collect();
    write_file(&src.join("new.bin"), &random_bytes(11, 2 * MIB));
    let v = repo.json(&["backup", s(&src), "--dry-run"]);
    assert_eq!(num(&v, "files_new"), 1, "{v}");
    let after: Vec<_> = ["data", "tree", "index", "snapshots"].iter().map(|p| stored(p)).collect();
    assert_eq!(after, before, "backup --dry-run changed the stored objects");
}

//! Control and key kinds: an interrupted backup commits nothing and exits 130; restore's `--dry-run` writes nothing
//! and `--verify` reads back; a write-only key can add backups but not read them; `cat` dumps objects.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::common::*;

/// SIGINT while a backup from stdin is storing its first data pack (the stream still open, more data coming):
/// exit 130, no snapshot, and the repository takes the next backup. The signal comes at a pause point before that
/// pack's upload (`Pause`), not after a guessed time.
#[test]
fn interrupted_backup_exits_130_and_commits_nothing() {
    let repo = Repo::new();
    repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "first"], b"an acknowledged snapshot");

    let mut cmd = repo.command(&["backup", "--stdin", "--stdin-filename", "endless.dump", "--json"]);
    let pause = Pause::new(&repo.base, "sigint");
    pause.arm(&mut cmd, "write", "data/", 0);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cairn");
    let mut stdin = child.stdin.take().unwrap();
    let pid = child.id() as libc::pid_t;
    // Feed distinct data (no dedup) until cairn stops reading; bounded, so a backup that ignores the signal ends
    // (and commits, which fails the test) instead of hanging.
    let feeder = std::thread::spawn(move || {
        let mut sent = 0usize;
        for seed in 0..1024u64 {
            if stdin.write_all(&random_bytes(1000 + seed, 1 << 20)).is_err() {
                break;
            }
            sent += 1 << 20;
        }
        sent
    });
    let what = pause.wait(&mut child);
    assert!(what.starts_with("write data/"), "paused at {what}");
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    pause.release();
    let out = child.wait_with_output().expect("wait for cairn");
    let sent = feeder.join().unwrap();
    assert!(sent < 1024 << 20, "the backup read the whole stream: the interruption came too late");
    assert_eq!(out.status.code(), Some(130), "SIGINT during a backup\n{}", describe(&out));

    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "an interrupted backup must not commit a snapshot: {snaps:?}");
    assert_eq!(repo.ok_bytes(&["dump", "latest", "first"]), b"an acknowledged snapshot");
    // The repository takes the next backup as usual.
    repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "after"], b"after the interruption");
    assert_eq!(repo.snapshots().len(), 2);
    assert_eq!(repo.ok_bytes(&["dump", "latest", "after"]), b"after the interruption");
}

#[test]
fn restore_dry_run_writes_nothing_and_verify_reads_back() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.bin"), &random_bytes(1, 700 * KIB));
    write_file(&src.join("sub/b.txt"), &compressible_bytes(2, 300 * KIB));
    repo.backup(&[&src], &[]);

    let target = repo.mkdir("plan-only");
    let plan = repo.json(&["restore", "latest", "--target", s(&target), "--dry-run"]);
    assert_eq!(plan["dry_run"], Value::Bool(true), "{plan}");
    assert!(num(&plan, "files") == 2 && num(&plan, "bytes") == (1000 * KIB) as u64, "dry-run plan: {plan}");
    assert!(num(&plan, "packs") >= 1, "the plan names the packs to read: {plan}");
    assert!(fs::read_dir(&target).unwrap().next().is_none(), "restore --dry-run wrote into the target");

    let target = repo.mkdir("verified");
    let res = repo.json(&["restore", "latest", "--target", s(&target), "--verify"]);
    assert_eq!(num(&res, "verified"), 2, "--verify must read back both files: {res}");
    assert_same_contents(&src, &restored_path(&target, &src));
}

#[test]
fn write_only_key_adds_backups_but_cannot_read() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    let shared = random_bytes(9, 2 * MIB);
    write_file(&src.join("shared.bin"), &shared);
    let first = repo.backup(&[&src], &[]);
    assert!(num(&first, "bytes_added") >= shared.len() as u64);

    let mut add = repo.command(&["key", "add", "--write-only", "--json"]);
    add.env("CAIRN_NEW_PASSWORD", "writer only");
    let added = parse_json(&expect_success(&repo.command(&["key", "add"]), run_cmd(add)));
    assert_eq!(added["write_only"], Value::Bool(true), "{added}");
    let kinds = repo.json(&["key", "list"]);
    assert!(
        kinds.as_array().unwrap().iter().any(|k| k["kind"] == "write-only"),
        "key list must show the write-only key: {kinds}"
    );

    // With the write-only password: a backup works and dedups against what the full key stored.
    repo.password = "writer only".into();
    let src2 = repo.mkdir("src2");
    write_file(&src2.join("same-content.bin"), &shared);
    write_file(&src2.join("new.txt"), b"written by the write-only key\n");
    let second = repo.backup(&[&src2], &[]);
    assert!(
        num(&second, "bytes_added") < 64 * KIB as u64,
        "the write-only key must dedup against the full key's data: {second}"
    );
    // ... but it reads nothing: no listing, no restore, no dump.
    for args in [&["snapshots"][..], &["ls", "latest"][..], &["dump", "latest", "x"][..]] {
        let out = repo.run(args);
        assert_eq!(out.status.code(), Some(12), "write-only key running {args:?}\n{}", describe(&out));
        assert!(stderr(&out).contains("write-only"), "the refusal must say why\n{}", describe(&out));
    }

    // The full key reads both snapshots.
    repo.password = PASSWORD.into();
    assert_eq!(repo.snapshots().len(), 2);
    let target = repo.mkdir("restore");
    repo.restore("latest", &target);
    assert_same_contents(&src2, &restored_path(&target, &src2));
}

#[test]
fn cat_dumps_repository_objects() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"cat me\n");
    let id = string(&repo.backup(&[&src], &[]), "snapshot_id");

    let config = repo.json(&["cat", "config"]);
    assert_eq!(config["number"], 1, "{config}");
    let snap = repo.json(&["cat", "snapshot", &id[..8]]);
    assert_eq!(string(&snap, "id"), id);
    let key = repo.json(&["cat", "key", &repo.init_key_id()]);
    assert_eq!(string(&key, "id"), repo.init_key_id());
    // The one index file lists every pack the backup stored: its id (the file name), kind (the directory) and
    // size, and blobs of the pack's kind that lie inside it.
    let index_files = objects(&repo.repo, "index");
    assert_eq!(index_files.len(), 1, "{index_files:?}");
    let index_name = index_files[0].file_name().unwrap().to_str().unwrap().to_string();
    let index = repo.json(&["cat", "index", &index_name]);
    let listed: BTreeMap<String, (String, u64)> = index["V1"]["packs"]
        .as_array()
        .unwrap_or_else(|| panic!("no packs array: {index}"))
        .iter()
        .map(|p| {
            let kind = p["kind"].as_str().unwrap().to_string();
            let size = num(p, "size");
            let blobs = p["blobs"].as_array().unwrap();
            assert!(!blobs.is_empty(), "a pack without blobs: {p}");
            for b in blobs {
                assert_eq!(b["kind"].as_str(), Some(kind.as_str()), "a blob of another kind than its pack: {p}");
                assert!(num(b, "offset") + num(b, "length") <= size, "a blob beyond its pack's end: {p}");
                assert_eq!(b["id"].as_str().map(str::len), Some(64), "{b}");
            }
            (string(p, "id"), (kind, size))
        })
        .collect();
    let stored: BTreeMap<String, (String, u64)> = [("data", "Data"), ("tree", "Tree")]
        .iter()
        .flat_map(|(dir, kind)| {
            objects(&repo.repo, dir).into_iter().map(move |p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                (name, (kind.to_string(), fs::metadata(&p).unwrap().len()))
            })
        })
        .collect();
    assert_eq!(listed, stored, "cat index must list exactly the stored packs with their kinds and sizes: {index}");
    // Unknown kinds are usage errors that name the kind.
    repo.expect_usage_error(&["cat", "nonsense", "x"], &["nonsense"]);
}

#[test]
fn restore_of_many_small_files_stays_within_a_low_open_files_limit() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    // 3000 distinct small files land in one data pack: a restore that held a handle for every file of a pack
    // would run out of descriptors under a limit of 512.
    for i in 0..3000u64 {
        write_file(&src.join(format!("d{}/f{i}.txt", i % 10)), format!("small file {i}\n").as_bytes());
    }
    repo.backup(&[&src], &[]);
    let target = repo.mkdir("t");
    let mut cmd = repo.command(&["restore", "latest", "--target", s(&target)]);
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limit.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 512, rlim_max: 512 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    expect_success(&repo.command(&["restore"]), run_cmd(cmd));
    assert_same_contents(&src, &restored_path(&target, &src));
}

/// The tree id of the directory at absolute `path` in snapshot `snap`, found through `cat snapshot` and `cat tree`.
fn tree_of(repo: &Repo, snap: &str, path: &std::path::Path) -> String {
    let s = repo.json(&["cat", "snapshot", snap]);
    // Writers store `V3` (format-spec §8.1): its fields directly under the variant.
    let mut tree = s["snapshot"]["V3"]["root"].as_str().unwrap().to_string();
    for comp in path.strip_prefix("/").unwrap().components() {
        let name = comp.as_os_str().to_str().unwrap().as_bytes().to_vec();
        let t = repo.json(&["cat", "tree", &tree]);
        let node = t["DirV1"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| {
                n["name"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect::<Vec<u8>>() == name
            })
            .unwrap_or_else(|| panic!("no {comp:?} in tree {tree}: {t}"))
            .clone();
        tree = node["kind"]["Dir"]["tree"].as_str().unwrap().to_string();
    }
    tree
}

#[test]
fn backups_leave_access_times_alone_so_unchanged_trees_dedup() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"read me\n");
    write_file(&src.join("sub/b.bin"), &random_bytes(3, 300 * KIB));
    // Times two days back: under relatime, any read would move these atimes to now.
    let old = (now_secs() - 2 * 86_400, 0);
    for p in [src.join("a.txt"), src.join("sub/b.bin"), src.join("sub"), src.clone()] {
        set_times(&p, Some(old), Some(old));
    }
    let atime = |p: &std::path::Path| fs::metadata(p).unwrap().accessed().unwrap();
    let before = (atime(&src.join("a.txt")), atime(&src.join("sub")));
    let first = string(&repo.backup(&[&src], &[]), "snapshot_id");
    assert_eq!((atime(&src.join("a.txt")), atime(&src.join("sub"))), before, "backup changed access times");
    // The source's own trees must be the same blobs again (the ancestors of `src`, such as /tmp, may have changed
    // meanwhile, so only the subtree is compared).
    let second = string(&repo.backup(&[&src], &[]), "snapshot_id");
    let third = string(&repo.backup(&[&src], &["--force"]), "snapshot_id");
    let t1 = tree_of(&repo, &first, &src);
    assert_eq!(tree_of(&repo, &second, &src), t1, "an unchanged tree got a new id");
    assert_eq!(tree_of(&repo, &third, &src), t1, "re-reading every file gave the tree a new id");
}

#[test]
fn init_where_a_deleted_repository_was_succeeds() {
    let repo = Repo::new();
    repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "x"], b"old repository");
    fs::remove_dir_all(&repo.repo).unwrap();
    let v = repo.json(&["init"]);
    assert!(v["repository_id"].is_string(), "{v}");
    assert!(repo.snapshots().is_empty(), "the new repository is empty");
    repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "y"], b"new repository");
    assert_eq!(repo.ok_bytes(&["dump", "latest", "y"]), b"new repository");
}

#[test]
fn unchanged_files_keep_their_extended_attributes() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let f = src.join("tagged.txt");
    write_file(&f, b"has an xattr\n");
    let old = (now_secs() - 3600, 0);
    set_times(&f, None, Some(old));
    if xattr::set(&f, "user.cairn.test", b"kept").is_err() {
        eprintln!("this file system has no user xattrs; skipping");
        return;
    }
    repo.backup(&[&src], &[]);
    let second = repo.backup(&[&src], &[]);
    assert_eq!(
        num(&second, "files_unchanged"),
        1,
        "the second backup must take the file from the files cache: {second}"
    );
    let target = repo.mkdir("t");
    repo.restore("latest", &target);
    let got = xattr::get(restored_path(&target, &src).join("tagged.txt"), "user.cairn.test").unwrap();
    assert_eq!(got.as_deref(), Some(&b"kept"[..]), "the cached file lost its extended attribute");
}

//! Several sources, one snapshot (format-spec §8.1, docs/cli-contract.md `backup`): directories plus each
//! `--command PATH=CMD`'s output (and `--stdin`) as a file at its path; restore, dump and ls per source; a failing
//! command leaves no snapshot and names its path, never its text.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// A secret placed in command lines: it must never reach a manifest, a message or a listing.
const SECRET: &str = "hunter2-Cairn-Secret-7f3a";

/// Two source directories with a few files each.
fn two_dirs(repo: &Repo) -> (std::path::PathBuf, std::path::PathBuf) {
    let etc = repo.mkdir("etc-app");
    write_file(&etc.join("app.conf"), b"listen = 8080\n");
    write_file(&etc.join("sub/tls.pem"), &random_bytes(1, 3000));
    let lib = repo.mkdir("lib-app");
    write_file(&lib.join("state.bin"), &random_bytes(2, 700 * KIB));
    (etc, lib)
}

/// The `sources` of the one snapshot in `snapshots --json`.
fn sources_of(snap: &Value) -> Vec<Value> {
    snap["sources"].as_array().unwrap_or_else(|| panic!("no sources array in {snap}")).clone()
}

#[test]
fn two_dirs_and_two_commands_make_one_snapshot_restored_part_by_part() {
    let repo = Repo::new();
    let (etc, lib) = two_dirs(&repo);
    let rdb = random_bytes(3, 2 * MIB + 11);
    let rdb_file = repo.path("rdb-source");
    write_file(&rdb_file, &rdb);
    let redis_cmd = format!("cat {}", s(&rdb_file));
    let sql_cmd = format!("X={SECRET}; printf 'CREATE TABLE t(x);\\nINSERT INTO t VALUES(1);\\n'");
    let summary = repo.backup(
        &[&etc, &lib],
        &["--command", &format!("redis/dump.rdb={redis_cmd}"), "--command", &format!("db/sql/app.sql={sql_cmd}")],
    );
    let id = string(&summary, "snapshot_id");
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "one snapshot for all four sources");

    // The manifest lists every path it covers, sorted, and each source with its kind, exit status and bytes.
    let paths: Vec<&str> = snaps[0]["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let mut expected = vec!["/db/sql/app.sql".to_string(), "/redis/dump.rdb".into(), s(&etc).into(), s(&lib).into()];
    expected.sort();
    assert_eq!(paths, expected);
    let sources = sources_of(&snaps[0]);
    let sql_len = "CREATE TABLE t(x);\nINSERT INTO t VALUES(1);\n".len() as u64;
    assert_eq!(
        Value::Array(sources),
        serde_json::json!([
            {"path": s(&etc), "kind": "paths", "exit_status": null, "bytes": null},
            {"path": s(&lib), "kind": "paths", "exit_status": null, "bytes": null},
            {"path": "/redis/dump.rdb", "kind": "command", "exit_status": 0, "bytes": rdb.len()},
            {"path": "/db/sql/app.sql", "kind": "command", "exit_status": 0, "bytes": sql_len},
        ])
    );
    assert_eq!(snaps[0]["source"], "files,command:/redis/dump.rdb,command:/db/sql/app.sql");
    // Never the command text: not in the listing, not in the dumped manifest.
    let listing = repo.ok(&["snapshots", "--json"]);
    let manifest = repo.ok(&["cat", "snapshot", &id]);
    for text in [&listing, &manifest] {
        assert!(!text.contains(SECRET) && !text.contains("printf"), "a command's text is shown:\n{text}");
    }
    assert!(manifest.contains("\"sources\""), "cat snapshot shows no sources:\n{manifest}");

    // The whole snapshot: each part byte for byte.
    let all = repo.path("all");
    repo.restore(&id, &all);
    assert_same_contents(&etc, &restored_path(&all, &etc));
    assert_same_contents(&lib, &restored_path(&all, &lib));
    assert!(fs::read(all.join("redis/dump.rdb")).unwrap() == rdb, "restored dump.rdb differs");
    assert_eq!(fs::read(all.join("db/sql/app.sql")).unwrap().len() as u64, sql_len);

    // Only the Redis part.
    let only = repo.path("only-redis");
    repo.ok(&["restore", &id, "--target", s(&only), "--include", "/redis/dump.rdb"]);
    assert_eq!(walk(&only), vec![b"redis".to_vec(), b"redis/dump.rdb".to_vec()], "restore --include took more");
    assert!(fs::read(only.join("redis/dump.rdb")).unwrap() == rdb);

    // dump and ls of nested stream paths.
    assert!(repo.ok_bytes(&["dump", "latest", "redis/dump.rdb"]) == rdb, "dump of a nested stream path");
    assert_eq!(repo.ok_bytes(&["dump", "latest", "/db/sql/app.sql"]).len() as u64, sql_len);
    assert_eq!(repo.ls("latest:/db"), vec!["/db", "/db/sql", "/db/sql/app.sql"]);

    // The next identical run finds this one as its parent (same host and paths): groups work unchanged.
    let again = repo.backup(
        &[&etc, &lib],
        &["--command", &format!("redis/dump.rdb={redis_cmd}"), "--command", &format!("db/sql/app.sql={sql_cmd}")],
    );
    assert_eq!(again["parent"], Value::String(id), "the same sources did not find the previous snapshot as parent");
}

#[test]
fn stdin_with_a_nested_path_joins_directories_and_commands() {
    let repo = Repo::new();
    let (etc, _) = two_dirs(&repo);
    let data = random_bytes(4, 300 * KIB);
    let args = [
        "backup",
        s(&etc),
        "--stdin",
        "--stdin-filename",
        "in/put.bin",
        "--command",
        "out/a.txt=printf a=b",
        "--command-concurrency",
        "1",
    ];
    let summary = repo.json_stdin(&args, &data);
    let id = string(&summary, "snapshot_id");
    assert!(repo.ok_bytes(&["dump", &id, "in/put.bin"]) == data);
    assert_eq!(repo.ok_bytes(&["dump", &id, "out/a.txt"]), b"a=b", "PATH=CMD splits at the first `=`");
    let kinds: Vec<String> = sources_of(&repo.snapshots()[0]).iter().map(|v| v["kind"].to_string()).collect();
    assert_eq!(kinds, ["\"paths\"", "\"stdin\"", "\"command\""]);
}

#[test]
fn the_old_command_form_takes_the_whole_text_and_its_path_from_stdin_filename() {
    let repo = Repo::new();
    // The text holds `=`: in the old form it is not split.
    repo.json(&["backup", "--command", "printf key=value", "--stdin-filename", "dir/kv.txt"]);
    assert_eq!(repo.ok_bytes(&["dump", "latest", "dir/kv.txt"]), b"key=value");
    let src = sources_of(&repo.snapshots()[0]);
    assert_eq!(src, vec![serde_json::json!({"path": "/dir/kv.txt", "kind": "command", "exit_status": 0, "bytes": 9})]);
}

#[test]
fn colliding_or_malformed_stream_paths_are_usage_errors() {
    let repo = Repo::new();
    let (etc, _) = two_dirs(&repo);
    let inside = format!("{}/x.sql=echo", &s(&etc)[1..]);
    repo.expect_usage_error(&["backup", s(&etc), "--command", &inside], &[&format!("{}/x.sql", s(&etc)), s(&etc)]);
    repo.expect_usage_error(&["backup", "--command", "a=echo", "--command", "a/b=echo"], &["/a/b", "/a"]);
    repo.expect_usage_error(&["backup", "--command", "a=echo", "--command", "a=echo"], &["/a"]);
    repo.expect_usage_error(&["backup", "--command", "../x=echo"], &["../x"]);
    // Several commands without PATH=: no path for them (and their text is not echoed).
    let out = repo.expect_usage_error(&["backup", "--command", "echo 1", "--command", "echo 2"], &["PATH=CMD"]);
    assert!(!stderr(&out).contains("echo 1"), "{}", describe(&out));
    repo.expect_usage_error(&["backup", "--stdin"], &["--stdin-filename"]);
    assert!(repo.snapshots().is_empty());
}

/// Runs a backup expected to fail because of the command at `path`: exit 1, no new snapshot, the message names
/// `/path`, shows `stderr_shows`, and never the secret in the command text.
fn assert_command_failure(repo: &Repo, args: &[&str], path: &str, stderr_shows: &str) -> String {
    let before = repo.snapshots().len();
    let out = repo.run(args);
    assert_eq!(out.status.code(), Some(1), "a failing command must exit 1\n{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("the command for /{path} failed")), "the message does not name /{path}\n{err}");
    assert!(err.contains(stderr_shows), "the message does not show {stderr_shows:?}\n{err}");
    assert!(!err.contains(SECRET), "the message shows the command's text\n{err}");
    assert_eq!(repo.snapshots().len(), before, "a failed command made a snapshot");
    err
}

#[test]
fn a_failing_command_makes_no_snapshot_and_names_its_path_with_its_stderr() {
    let repo = Repo::new();
    let (etc, _) = two_dirs(&repo);
    repo.backup(&[&etc], &[]);

    // Exit 3, after some output, with more stderr than the tail keeps: its last lines are shown.
    let noisy = format!(
        "T={SECRET}; printf partial; i=0; while [ $i -lt 50 ]; do echo \"noise $i\" >&2; i=$((i+1)); done; \
         echo 'pg_dump: error: connection refused' >&2; exit 3"
    );
    let err = assert_command_failure(
        &repo,
        &["backup", s(&etc), "--command", &format!("db/app.sql={noisy}")],
        "db/app.sql",
        "pg_dump: error: connection refused",
    );
    assert!(err.contains("exited with status 3"), "{err}");
    assert!(err.contains("noise 49") && !err.contains("noise 10\n"), "not the tail of stderr:\n{err}");

    // Killed by a signal.
    let killed = format!("T={SECRET}; echo dying >&2; kill -9 $$");
    let err = assert_command_failure(&repo, &["backup", "--command", &format!("k.bin={killed}")], "k.bin", "dying");
    assert!(err.contains("killed by signal 9"), "{err}");

    // The old form fails the same way.
    assert_command_failure(
        &repo,
        &["backup", "--command", &format!("T={SECRET}; echo nope >&2; exit 5"), "--stdin-filename", "old.bin"],
        "old.bin",
        "nope",
    );
}

#[test]
fn a_command_failing_while_another_streams_a_lot_stops_both_quickly() {
    let repo = Repo::new();
    let pidfile = repo.path("big.pid");
    // The big one would stream 50 GB; the small one fails after a moment.
    let big = format!("echo $$ > {}; exec head -c 50000000000 /dev/zero", s(&pidfile));
    let fail = format!("T={SECRET}; sleep 1; echo 'redis: NOAUTH' >&2; exit 4");
    let t0 = Instant::now();
    let err = assert_command_failure(
        &repo,
        &["backup", "--command", &format!("big.bin={big}"), "--command", &format!("redis/dump.rdb={fail}")],
        "redis/dump.rdb",
        "redis: NOAUTH",
    );
    assert!(t0.elapsed() < Duration::from_secs(60), "the big stream was not stopped ({:?})", t0.elapsed());
    assert!(!err.contains("/big.bin"), "the stopped stream is not the failure:\n{err}");
    let pid: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // SAFETY: signal 0 only probes.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the other command still runs");
}

#[test]
fn sigint_to_cairn_kills_the_commands_and_makes_no_snapshot() {
    let repo = Repo::new();
    let pidfile = repo.path("cmd.pid");
    let cmd = format!("echo $$ > {}; printf start; exec sleep 600", s(&pidfile));
    let child = spawn(repo.command(&["backup", "--command", &format!("slow.bin={cmd}")]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&pidfile).map_or(true, |p| p.trim().is_empty()) {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a plain system call on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "SIGINT during a command stream\n{}", describe(&out));
    let pid: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // SAFETY: signal 0 only probes.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the command survived cairn's interruption");
    assert!(repo.snapshots().is_empty());
}

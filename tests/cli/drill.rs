//! `cairn drill` (docs/cli-contract.md, format-spec §13.8): a drill of real SQLite data passes with `PRAGMA
//! integrity_check` as its verify command and seals its evidence (the file's BLAKE3 is the ledger entry's
//! report_hash, `ledger verify --evidence` accepts it and refuses an edited copy); damaged data (a damaged pack, a
//! damaged database, a failing command) exits 1; an RTO of 1ms exits 4; the temporary target is removed, also on
//! SIGINT; `--stream` feeds a file into the command without a scratch directory (PostgreSQL's `pg_restore --list`
//! on a `pg_dump -Fc` stream when the test servers run); `run JOB --drill` runs a profile's `[job.NAME.drill]`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::contract::conforms;
use crate::servers::{self, Postgres};

/// The evidence JSON of docs/cli-contract.md (`drill --json`).
fn evidence_spec() -> Value {
    serde_json::json!({"format": "str", "version": "n", "repository": "hex", "snapshot": "hex",
        "snapshot_time": "time", "snapshot_host": "str", "sources": "arr", "tags": "arr", "job": "str?",
        "drill_host": "str", "started": "time", "finished": "time", "target": "str?", "target_temporary": "bool",
        "target_removed": "bool?", "includes": "arr", "stream": "str?", "files": "n", "bytes": "n",
        "compared_files": "n", "compared_bytes": "n", "phases": [{"name": "str", "ms": "n", "passed": "bool"}],
        "verify_command": "obj?", "failures": [{"phase": "str", "path": "str?", "message": "str"}],
        "failures_total": "n", "passed": "bool", "duration_ms": "n", "rto_ms": "n?", "margin_ms": "num?",
        "verdict": "str"})
}

/// A SQLite database with a few rows at `dir/app.db`.
fn sqlite_db(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let db = dir.join("app.db");
    let sql = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); \
               WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000) \
               INSERT INTO t SELECT i, hex(randomblob(64)) FROM c;";
    let out = std::process::Command::new("sqlite3").arg(&db).arg(sql).output().expect("run sqlite3");
    assert!(out.status.success(), "sqlite3: {}", describe(&out));
    db
}

/// The verify command that checks the restored copy of `db`.
fn integrity_check(db: &Path) -> String {
    format!("sqlite3 \"$CAIRN_DRILL_TARGET{}\" 'PRAGMA integrity_check'", s(db))
}

/// `drill ARGS... --json`: the exit code, the evidence document and stdout's bytes.
fn drill(r: &Repo, args: &[&str]) -> (i32, Value, Vec<u8>) {
    let mut a = vec!["drill", "--json"];
    a.extend_from_slice(args);
    let out = r.run(&a);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("drill --json must print the evidence ({e})\n{}", describe(&out)));
    conforms("drill --json", &v, &evidence_spec());
    (out.status.code().unwrap_or(-1), v, out.stdout)
}

/// The drill entries of the ledger (`ledger log --kind drill --json`), oldest first.
fn drill_entries(r: &Repo) -> Vec<Value> {
    r.json(&["ledger", "log", "--kind", "drill"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["drill"].clone())
        .collect()
}

fn blake3_hex(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

#[test]
fn a_drill_of_sqlite_data_passes_and_its_evidence_is_sealed_in_the_ledger() {
    if !servers::sqlite3_available() {
        return;
    }
    let r = Repo::new();
    let src = r.mkdir("src");
    let db = sqlite_db(&src.join("db"));
    fs::write(src.join("notes.txt"), b"hello").unwrap();
    let snap = string(&r.backup(&[&src], &[]), "snapshot_id");
    let ev_dir = r.path("evidence");
    let cmd = integrity_check(&db);
    let (code, v, stdout) = drill(&r, &["--verify-command", &cmd, "--evidence-dir", s(&ev_dir)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "passed");
    assert_eq!(v["passed"], true);
    assert_eq!(v["snapshot"], snap.as_str());
    assert_eq!(v["files"], 2);
    assert_eq!(v["compared_files"], 2);
    assert_eq!(v["compared_bytes"], v["bytes"]);
    assert_eq!(v["bytes"], fs::metadata(&db).unwrap().len() + 5);
    let phases: Vec<&str> = v["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["restore", "compare", "verify"]);
    assert_eq!(v["verify_command"]["command"], cmd.as_str());
    assert_eq!(v["verify_command"]["exit_code"], 0);
    assert_eq!(v["verify_command"]["output_tail"], "ok\n");
    assert_eq!(v["rto_ms"], Value::Null);
    // The temporary target is gone.
    assert_eq!(v["target_temporary"], true);
    assert_eq!(v["target_removed"], true);
    let target = PathBuf::from(v["target"].as_str().unwrap());
    assert!(target.starts_with(std::env::temp_dir()), "{}", target.display());
    assert!(!target.exists(), "{} was not removed", target.display());
    // Two private files; the JSON is the very bytes printed, and its BLAKE3 is in the ledger.
    let mut files: Vec<PathBuf> = fs::read_dir(&ev_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let (json, txt) = (&files[0], &files[1]);
    assert_eq!(json.extension().unwrap(), "json");
    assert_eq!(txt.extension().unwrap(), "txt");
    for f in &files {
        assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
    }
    let bytes = fs::read(json).unwrap();
    assert_eq!(bytes, stdout);
    let entries = drill_entries(&r);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["snapshot"], snap.as_str());
    assert_eq!(entries[0]["passed"], true);
    assert_eq!(entries[0]["report_hash"], blake3_hex(&bytes).as_str());
    assert_eq!(entries[0]["duration_ms"], v["duration_ms"]);
    let text = fs::read_to_string(txt).unwrap();
    assert!(text.contains("verdict        passed"), "{text}");
    assert!(text.contains(&format!("blake3 (json)  {}", blake3_hex(&bytes))), "{text}");
    // ledger verify --evidence: the real file passes and names the entry; an edited copy fails.
    let ok = r.ok(&["ledger", "verify", "--evidence", s(json)]);
    assert!(ok.contains("is recorded by drill entry") && ok.contains(&snap), "{ok}");
    let doc = r.json(&["ledger", "verify", "--evidence", s(json)]);
    assert_eq!(doc["evidence"]["sealed"], true);
    assert_eq!(doc["evidence"]["entries"][0]["snapshot"], snap.as_str());
    assert_eq!(doc["evidence"]["entries"][0]["verified"], true);
    let edited = r.path("edited.json");
    fs::write(&edited, String::from_utf8(bytes).unwrap().replace("\"files\": 2", "\"files\": 3")).unwrap();
    let out = r.expect_code(&["ledger", "verify", "--evidence", s(&edited)], 1);
    assert!(stderr(&out).contains("no verified drill entry"), "{}", describe(&out));
}

#[test]
fn damaged_data_fails_the_drill_with_exit_1() {
    if !servers::sqlite3_available() {
        return;
    }
    let r = Repo::new();
    // A damaged database: the verify command fails.
    let bad = r.mkdir("bad");
    let db = sqlite_db(&bad);
    let mut b = fs::read(&db).unwrap();
    for x in &mut b[100..4096] {
        *x = 0xff;
    }
    fs::write(&db, &b).unwrap();
    r.backup(&[&bad], &[]);
    let (code, v, _) = drill(&r, &["--verify-command", &integrity_check(&db)]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "failed");
    assert_eq!(v["phases"][2]["name"], "verify");
    assert_eq!(v["phases"][2]["passed"], false);
    assert_ne!(v["verify_command"]["exit_code"], 0);
    assert_eq!(v["failures"][0]["phase"], "verify");
    assert!(!Path::new(v["target"].as_str().unwrap()).exists());
    // A damaged pack: restore and the re-read fail, whatever the command says.
    let r = Repo::new();
    let src = r.mkdir("src");
    fs::write(src.join("big.bin"), random_bytes(7, 3 * MIB)).unwrap();
    r.backup(&[&src], &[]);
    let mut damaged = 0;
    for p in walk_files(&r.repo.join("data")) {
        let mut b = fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x55;
        b[mid / 2] ^= 0x55;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, &b).unwrap();
        damaged += 1;
    }
    assert!(damaged > 0);
    let (code, v, _) = drill(&r, &["--verify-command", "true"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "failed");
    let failed: Vec<&str> = v["failures"].as_array().unwrap().iter().map(|f| f["phase"].as_str().unwrap()).collect();
    assert!(failed.contains(&"restore") && failed.contains(&"compare"), "{v}");
    assert!(v["compared_files"].as_u64() == Some(0), "{v}");
    assert!(!Path::new(v["target"].as_str().unwrap()).exists());
    let entries = drill_entries(&r);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["passed"], false);
}

/// Every file below `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_drill_over_its_rto_exits_4_and_records_the_rto() {
    let r = Repo::new();
    let src = r.mkdir("src");
    fs::write(src.join("a"), random_bytes(1, 100 * KIB)).unwrap();
    r.backup(&[&src], &[]);
    let (code, v, _) = drill(&r, &["--rto", "1ms", "--verify-command", "sleep 0.05"]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["verdict"], "over-rto");
    assert_eq!(v["passed"], true);
    assert_eq!(v["rto_ms"], 1);
    assert!(v["margin_ms"].as_i64().unwrap() < 0, "{v}");
    let (code, v, _) = drill(&r, &["--rto", "1h"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rto_ms"], 3_600_000);
    assert!(v["margin_ms"].as_i64().unwrap() > 0, "{v}");
    let entries = drill_entries(&r);
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0]["passed"].clone(), entries[0]["rto_ms"].clone()), (Value::Bool(true), Value::from(1)));
    assert_eq!(entries[1]["rto_ms"], 3_600_000);
    r.expect_usage_error(&["drill", "--rto", "0ms"], &["--rto"]);
}

#[test]
fn an_interrupted_drill_removes_its_temporary_target() {
    let r = Repo::new();
    let src = r.mkdir("src");
    fs::write(src.join("a"), b"data").unwrap();
    r.backup(&[&src], &[]);
    let marker = r.path("marker");
    let cmd = format!("echo \"$CAIRN_DRILL_TARGET\" > {}; sleep 30", s(&marker));
    let mut child = spawn(r.command(&["drill", "--verify-command", &cmd]));
    let start = Instant::now();
    let target = loop {
        if let Ok(t) = fs::read_to_string(&marker) {
            if t.ends_with('\n') {
                break PathBuf::from(t.trim_end());
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the verify command never ran");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(target.join(s(&src).trim_start_matches('/')).join("a").exists());
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!target.exists(), "{} was left behind", target.display());
    assert!(drill_entries(&r).is_empty());
}

#[test]
fn a_streamed_drill_feeds_the_file_to_the_command_without_a_scratch_directory() {
    let r = Repo::new();
    let data = random_bytes(3, 5 * MIB);
    r.json_stdin(&["backup", "--stdin", "--stdin-filename", "dump/db.bin"], &data);
    let before: Vec<_> = tmp_drill_dirs();
    // The command gets exactly the file's bytes.
    let (code, v, _) = drill(&r, &["--stream", "/dump/db.bin", "--verify-command", "wc -c"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verify_command"]["output_tail"].as_str().unwrap().trim(), data.len().to_string());
    assert_eq!(v["stream"], "/dump/db.bin");
    assert_eq!(v["target"], Value::Null);
    assert_eq!(v["target_temporary"], false);
    assert_eq!((v["files"].clone(), v["bytes"].clone()), (Value::from(1), Value::from(data.len())));
    assert_eq!(v["compared_bytes"], data.len());
    let phases: Vec<&str> = v["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["stream", "verify"]);
    assert_eq!(tmp_drill_dirs(), before, "a streamed drill made a scratch directory");
    // A command that reads nothing still passes, and the whole file was still read and checked.
    let (code, v, _) = drill(&r, &["--stream", "/dump/db.bin", "--verify-command", "exit 0"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["compared_bytes"], data.len());
    // No such file: exit 1.
    let (code, v, _) = drill(&r, &["--stream", "/nope", "--verify-command", "cat >/dev/null"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["failures"][0]["phase"], "stream");
    r.expect_usage_error(&["drill", "--stream", "/dump/db.bin"], &["--verify-command"]);
}

/// The scratch directories of drills under the temporary directory.
fn tmp_drill_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("cairn-drill-")))
        .collect();
    v.sort();
    v
}

#[test]
fn postgres_pg_restore_lists_a_streamed_custom_dump() {
    let Some(pg) = Postgres::from_env() else { return };
    let r = Repo::new();
    let db = servers::unique("cairn_drill").replace('-', "_");
    let sh = |c: &str| {
        let out = std::process::Command::new("sh").arg("-c").arg(c).output().unwrap();
        assert!(out.status.success(), "`{c}`: {}", describe(&out));
    };
    sh(&format!("{} {db}", pg.tool("createdb")));
    sh(&format!(
        "{} -d {db} -v ON_ERROR_STOP=1 -qc 'CREATE TABLE drill_items (id int PRIMARY KEY); \
         INSERT INTO drill_items SELECT generate_series(1, 10000)'",
        pg.tool("psql")
    ));
    let dump = format!("{} -Fc -d {db}", pg.tool("pg_dump"));
    r.json(&["backup", "--command", &format!("pg/{db}.dump={dump}")]);
    let path = format!("/pg/{db}.dump");
    let list = format!("{} --list", pg.tool("pg_restore"));
    let (code, v, _) = drill(&r, &["--stream", &path, "--verify-command", &list]);
    assert_eq!(code, 0, "{v}");
    assert!(v["verify_command"]["output_tail"].as_str().unwrap().contains("TABLE public drill_items"), "{v}");
    // Damaged packs: the stream fails its check, exit 1.
    for p in walk_files(&r.repo.join("data")) {
        let mut b = fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x55;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, &b).unwrap();
    }
    let (code, v, _) = drill(&r, &["--stream", &path, "--verify-command", &list]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["verdict"], "failed");
    sh(&format!("{} {db}", pg.tool("dropdb")));
}

#[test]
fn run_job_drill_runs_the_profile_drill_and_reports_it() {
    let r = Repo::new();
    let src = r.mkdir("src");
    fs::write(src.join("a.txt"), b"alpha").unwrap();
    let ev = r.path("ev");
    let metrics = r.path("metrics.prom");
    let cfg = r.path("cairn.toml");
    let text = |rto: &str| {
        format!(
            "[repository.main]\nurl = {:?}\n\n[job.app]\nrepository = \"main\"\npaths = [{:?}]\nhost = \"h1\"\n\
             metrics_file = {:?}\n\n[job.app.drill]\nverify_command = \"test -f \\\"$CAIRN_DRILL_TARGET{}/a.txt\\\"\"\n\
             rto = {rto:?}\nevidence_dir = {:?}\n",
            s(&r.repo),
            s(&src),
            s(&metrics),
            s(&src),
            s(&ev)
        )
    };
    fs::write(&cfg, text("1h")).unwrap();
    let checked = r.json(&["--config", s(&cfg), "config", "check"]);
    assert_eq!(checked["jobs"][0]["drill"]["rto_ms"], 3_600_000, "{checked}");
    assert_eq!(checked["jobs"][0]["drill"]["evidence_dir"], s(&ev));
    r.ok(&["--config", s(&cfg), "run", "app"]);
    let out = r.run(&["--config", s(&cfg), "run", "app", "--drill", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &reports[0]["drill"];
    assert_eq!(d["verdict"], "passed", "{reports}");
    assert_eq!(d["job"], "app");
    assert_eq!(d["snapshot_host"], "h1");
    assert_eq!(d["rto_ms"], 3_600_000);
    assert_eq!(reports[0]["outcome"], "ok");
    assert_eq!(fs::read_dir(&ev).unwrap().count(), 2);
    let prom = fs::read_to_string(&metrics).unwrap();
    assert!(prom.lines().any(|l| l.starts_with("cairn_drill_passed{") && l.ends_with(" 1.0")), "{prom}");
    assert!(prom.lines().any(|l| l.starts_with("cairn_drill_over_rto{") && l.ends_with(" 0.0")), "{prom}");
    let entries = drill_entries(&r);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["job"], "app");
    // Over the RTO: exit 4, outcome over-rto; `drill --job` takes the same table.
    fs::write(&cfg, text("1ms")).unwrap();
    let out = r.run(&["--config", s(&cfg), "run", "app", "--drill", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["outcome"], "over-rto");
    assert_eq!(reports[0]["exit_code"], 4);
    let prom = fs::read_to_string(&metrics).unwrap();
    assert!(prom.lines().any(|l| l.starts_with("cairn_drill_over_rto{") && l.ends_with(" 1.0")), "{prom}");
    let out = r.run(&["--config", s(&cfg), "drill", "--job", "app", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    // A failing command fails the job.
    fs::write(&cfg, text("1h").replace("a.txt", "missing.txt")).unwrap();
    let out = r.run(&["--config", s(&cfg), "run", "app", "--drill", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["failed_step"], "drill");
    let prom = fs::read_to_string(&metrics).unwrap();
    assert!(prom.lines().any(|l| l.starts_with("cairn_drill_passed{") && l.ends_with(" 0.0")), "{prom}");
    assert!(prom.lines().any(|l| l.starts_with("cairn_last_run_outcome{") && l.ends_with(" 2.0")), "{prom}");
    // An unknown key of the drill table is named with its line.
    fs::write(&cfg, format!("{}verify = \"x\"\n", text("1h"))).unwrap();
    let out = r.expect_code(&["--config", s(&cfg), "config", "check"], 2);
    let err = stderr(&out);
    assert!(err.contains("line 14") && err.contains("unknown field `verify`"), "{err}");
}

//! The example profiles of docs/examples/ run end to end against the real servers (scripts/servers/, started by
//! `./test.sh`; skipped with a notice without them, failing under CAIRN_TEST_SERVERS=required): each file is taken
//! as shipped, with only its machine-specific values (repository URL, password source, directories, the servers'
//! addresses) replaced by the test's, and `cairn run` must make one snapshot holding every source, restorable.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;
use crate::servers::{self, Postgres, Redis};

fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("examples").join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `text` with each `(from, to)` replaced; every `from` must occur (the example changed otherwise).
fn rewrite(mut text: String, pairs: &[(&str, String)]) -> String {
    for (from, to) in pairs {
        assert!(text.contains(from), "the example no longer contains {from:?}: update this test");
        text = text.replace(from, to);
    }
    text
}

fn sh_ok(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "`{script}` failed\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// A private password file holding the fixture's password.
fn password_file(r: &Repo) -> PathBuf {
    let p = r.path("repo.pass");
    write_file(&p, format!("{}\n", r.password).as_bytes());
    chmod(&p, 0o600);
    p
}

/// Runs the profile's job with `--json`; asserts exit 0 and returns its report.
fn run_job(r: &Repo, cfg: &Path, job: &str) -> Value {
    let out = r.run(&["--config", s(cfg), "run", "--json", job]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rep = v[0].clone();
    assert_eq!(rep["outcome"], "ok", "{rep}");
    rep
}

#[test]
fn service_example_runs_end_to_end() {
    let Some(redis) = Redis::from_env() else { return };
    if !servers::sqlite3_available() {
        return;
    }
    let r = Repo::new();
    let etc = r.mkdir("etc/app");
    let lib = r.mkdir("var/lib/app");
    write_file(&etc.join("app.conf"), b"listen = 8080\n");
    write_file(&lib.join("uploads.bin"), &random_bytes(7, 100 * KIB));
    let db = lib.join("app.db");
    sh_ok(&format!(
        "sqlite3 -bail {} 'PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); \
         INSERT INTO t VALUES (1, '\"'\"'one'\"'\"'), (2, '\"'\"'two'\"'\"');'",
        s(&db)
    ));
    let text = rewrite(
        example("service.toml"),
        &[
            ("url = \"/srv/backup/cairn\"", format!("url = {:?}", s(&r.repo))),
            ("/etc/cairn/backups.pass", s(&password_file(&r)).to_string()),
            ("\"/etc/app\"", format!("{:?}", s(&etc))),
            ("/var/lib/app", s(&lib).to_string()),
            ("redis-cli -h 127.0.0.1 -p 6379", redis.cli()),
            ("/var/lib/prometheus/node-exporter", s(&r.mkdir("metrics")).to_string()),
        ],
    );
    let cfg = r.path("service.toml");
    fs::write(&cfg, text).unwrap();
    let rep = run_job(&r, &cfg, "service");
    let id = string(&rep, "snapshot_id");
    assert_eq!(r.snapshots().len(), 1, "one snapshot for files, SQLite and Redis");
    assert_eq!(rep["prune_due"], true, "the first run prunes");
    // Each part restores: the files (without the live database), the SQL dump, the RDB.
    let target = r.path("restored");
    r.restore(&id, &target);
    assert_eq!(fs::read(restored_path(&target, &etc.join("app.conf"))).unwrap(), b"listen = 8080\n");
    assert!(restored_path(&target, &lib.join("uploads.bin")).exists());
    assert!(!restored_path(&target, &db).exists(), "the live database file is excluded; its dump is the copy");
    let sql = String::from_utf8(r.ok_bytes(&["dump", &id, "/app/app.sql"])).unwrap();
    assert!(sql.contains("INSERT INTO t VALUES(2,'two');") && sql.trim_end().ends_with("COMMIT;"), "{sql}");
    let fresh = r.path("fresh.db");
    fs::write(r.path("app.sql"), &sql).unwrap();
    sh_ok(&format!("sqlite3 -bail {} < {}", s(&fresh), s(&r.path("app.sql"))));
    assert_eq!(sh_ok(&format!("sqlite3 {} 'SELECT count(*) FROM t'", s(&fresh))), "2");
    let rdb = r.ok_bytes(&["dump", &id, "/redis/dump.rdb"]);
    assert!(rdb.starts_with(b"REDIS"), "the stored Redis dump is not an RDB file");
}

#[test]
fn postgres_example_runs_end_to_end() {
    let Some(pg) = Postgres::from_env() else { return };
    let r = Repo::new();
    let db = servers::unique("jobs_example").replace('-', "_");
    let restored = format!("{db}_restored");
    let psql =
        |d: &str, sql: &str| sh_ok(&format!("{} -X -q -t -A -v ON_ERROR_STOP=1 -d {d} -c \"{sql}\"", pg.tool("psql")));
    psql("postgres", &format!("CREATE DATABASE {db}"));
    psql(&db, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g");
    let text = rewrite(
        example("postgres.toml"),
        &[
            ("url = \"s3://backups/cairn/postgres\"", format!("url = {:?}", s(&r.repo))),
            ("options = { \"s3.region\" = \"eu-central-1\" }\n", String::new()),
            ("cat /run/credentials/cairn-run@postgres.service/repo-password", format!("cat {}", s(&password_file(&r)))),
            ("runuser -u postgres -- pg_dump -Fc -Z0 -d app", format!("{} -Fc -Z0 -d {db}", pg.tool("pg_dump"))),
            ("runuser -u postgres -- pg_dumpall", pg.tool("pg_dumpall")),
            ("runuser -u postgres -- pg_isready", pg.tool("pg_isready")),
            ("/var/lib/prometheus/node-exporter", s(&r.mkdir("metrics")).to_string()),
        ],
    );
    let cfg = r.path("postgres.toml");
    fs::write(&cfg, text).unwrap();
    let rep = run_job(&r, &cfg, "postgres");
    let id = string(&rep, "snapshot_id");
    let dump = r.ok_bytes(&["dump", &id, "/postgres/app.dump"]);
    assert!(dump.starts_with(b"PGDMP"), "the stored dump is not a pg_dump custom archive");
    let globals = String::from_utf8(r.ok_bytes(&["dump", &id, "/postgres/globals.sql"])).unwrap();
    assert!(globals.contains("CREATE ROLE"), "{globals}");
    let file = r.path("app.dump");
    fs::write(&file, &dump).unwrap();
    psql("postgres", &format!("CREATE DATABASE {restored}"));
    sh_ok(&format!("{} --exit-on-error -d {restored} {}", pg.tool("pg_restore"), s(&file)));
    assert_eq!(psql(&restored, "SELECT count(*) FROM items"), "500");
    psql("postgres", &format!("DROP DATABASE {db}"));
    psql("postgres", &format!("DROP DATABASE {restored}"));
}

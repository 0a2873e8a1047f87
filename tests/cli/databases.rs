//! The recipes of docs/databases.md, run against the real servers (scripts/servers/start-{postgres,mariadb,redis}.sh,
//! started by `./test.sh`) and the sqlite3 shell. Each backs a database up with `backup --command` while a writer
//! keeps committing transactions, restores the dump into a fresh database or server, and checks the exact rows or
//! keys a consistent dump must hold, plus the database's own integrity check. A failing dump command makes no
//! snapshot and exits 1.
//!
//! Every writer transaction inserts the next row (id ROWS+1, ROWS+2, ...) and increments a counter, so a consistent
//! dump holds ids exactly 1..=n with the counter equal to n, and n - ROWS lies between the transactions committed
//! before the backup started and those committed when it ended.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::servers::{self, Mysql, Postgres, Redis};

/// Runs `script` with `sh -c`.
fn sh(script: &str) -> Output {
    Command::new("sh").arg("-c").arg(script).stdin(Stdio::null()).output().expect("run sh")
}

/// Runs `script` with `sh -c`, asserts exit 0, and returns its stdout without the trailing newline.
fn sh_ok(script: &str) -> String {
    let out = sh(script);
    assert!(out.status.success(), "`{script}` failed\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// `sh_ok` whose output is one number.
fn sh_num(script: &str) -> u64 {
    let out = sh_ok(script);
    out.trim().parse().unwrap_or_else(|_| panic!("`{script}` printed {out:?}, not a number"))
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A name for a database no other run uses (letters, digits and `_`).
fn db_name(what: &str) -> String {
    servers::unique(what).replace('-', "_")
}

/// A thread that runs one write transaction after another (`step(1)`, `step(2)`, ...) until stopped, counting those
/// that committed (a step committed when its command exited 0).
struct Writer {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    handle: Option<JoinHandle<Result<u64, String>>>,
}

impl Writer {
    fn start<F: Fn(u64) -> Output + Send + 'static>(step: F) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), committed.clone());
        let handle = std::thread::spawn(move || {
            let mut i = 0;
            while !s.load(Ordering::SeqCst) {
                i += 1;
                let out = step(i);
                if !out.status.success() {
                    return Err(format!("write transaction {i} failed\n{}", describe(&out)));
                }
                c.store(i, Ordering::SeqCst);
            }
            Ok(i)
        });
        Writer { stop, committed, handle: Some(handle) }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` transactions committed (60 s at most).
    fn wait_for(&mut self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.committed() < n {
            if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
                self.finish();
            }
            assert!(Instant::now() < deadline, "the writer committed {} of {n} transactions in 60 s", self.committed());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the writer; panics if one of its transactions failed. Returns how many committed.
    fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(Ok(_))) | None => self.committed(),
            Some(Ok(Err(e))) => panic!("{e}"),
            Some(Err(_)) => panic!("the writer thread panicked"),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `backup --command CMD --stdin-filename NAME --json` while `writer` writes. Returns the summary and the writer's
/// committed count just before the backup started and just after it ended, having checked that the writer kept
/// committing during the backup and after it.
fn backup_while_writing(repo: &Repo, writer: &mut Writer, cmd: &str, name: &str) -> (Value, u64, u64) {
    let start = writer.committed() + 3;
    writer.wait_for(start);
    let before = writer.committed();
    let summary = repo.json(&["backup", "--command", cmd, "--stdin-filename", name]);
    let after = writer.committed();
    writer.wait_for(after + 2);
    assert!(after > before, "no write committed while the backup ran ({before} before, {after} after)");
    (summary, before, after)
}

/// What the restored table of a consistent dump holds, as (count(*), count(DISTINCT id), min(id), max(id), counter).
type Census = (u64, u64, u64, u64, u64);

/// Asserts that `census` is a consistent dump of ROWS initial rows plus the writer's first k transactions, with k
/// between `before` (committed when the backup started) and `after` + 1 (when it ended, plus the one in flight).
fn assert_consistent(what: &str, rows: u64, census: Census, before: u64, after: u64) {
    let (count, distinct, min, max, counter) = census;
    assert_eq!(distinct, count, "{what}: duplicate ids in the restored table");
    assert_eq!(min, 1, "{what}: the restored table lost its first rows");
    assert_eq!(max, count, "{what}: the restored ids have gaps (max {max}, count {count}): not one consistent state");
    assert_eq!(counter, count, "{what}: counter {counter} but {count} rows: not one consistent state");
    assert!(count >= rows + before, "{what}: {count} rows restored, but {rows} + {before} committed before the backup");
    assert!(count <= rows + after + 1, "{what}: {count} rows restored, but only {rows} + {after} committed by its end");
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A failing dump command: exit 1, no new snapshot, and the error shows what failed.
fn assert_failed_dump_makes_no_snapshot(repo: &Repo, cmd: &str, name: &str, shows: &str) {
    let snapshots = repo.snapshots().len();
    let out = repo.run(&["backup", "--command", cmd, "--stdin-filename", name]);
    assert_eq!(out.status.code(), Some(1), "a failing dump command must exit 1\n{}", describe(&out));
    assert!(stderr(&out).contains(shows), "the error does not show {shows:?}\n{}", describe(&out));
    assert_eq!(repo.snapshots().len(), snapshots, "a failing dump command made a snapshot");
}

const PG_ROWS: u64 = 200_000;

#[test]
fn postgres_recipe_restores_a_consistent_dump_and_dedups_uncompressed() {
    let Some(pg) = Postgres::from_env() else { return };
    let repo = Repo::new();
    let (db, restored) = (db_name("cairn_pg"), db_name("cairn_pg_restored"));
    let role = db_name("cairn_role");
    let psql = {
        let pg = pg.clone();
        move |db: &str, sql: &str| {
            sh_ok(&format!("{} -d {db} -v ON_ERROR_STOP=1 -Atqc {}", pg.tool("psql"), quote(sql)))
        }
    };
    sh_ok(&format!("{} {db}", pg.tool("createdb")));
    psql(
        &db,
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, payload text NOT NULL); CREATE TABLE counter (n bigint NOT NULL);
             INSERT INTO items SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, {PG_ROWS}) g;
             INSERT INTO counter VALUES ({PG_ROWS}); CREATE ROLE {role} NOLOGIN;"
        ),
    );

    // Back up while a writer commits one row + counter increment per transaction (psql -c runs both in one).
    let pg_dump = format!("{} -Fc -Z0 -d {db}", pg.tool("pg_dump"));
    let mut writer = {
        let (tool, db) = (pg.tool("psql"), db.clone());
        Writer::start(move |i| {
            let id = PG_ROWS + i;
            let sql = format!("INSERT INTO items VALUES ({id}, repeat(md5('{id}'), 3)); UPDATE counter SET n = n + 1;");
            sh(&format!("{tool} -d {db} -v ON_ERROR_STOP=1 -Atqc {}", quote(&sql)))
        })
    };
    let (first, before, after) = backup_while_writing(&repo, &mut writer, &pg_dump, "pg.dump");
    writer.finish();
    // The roles, with pg_dumpall --globals-only (a separate stream).
    repo.json(&[
        "backup",
        "--command",
        &format!("{} --globals-only", pg.tool("pg_dumpall")),
        "--stdin-filename",
        "pg-globals.sql",
    ]);
    let globals = String::from_utf8(repo.ok_bytes(&["dump", "latest", "pg-globals.sql"])).unwrap();
    assert!(globals.contains(&format!("CREATE ROLE {role};")), "the globals dump lacks the role:\n{globals}");

    // Restore the first snapshot's dump into a fresh database: the archive's table of contents first, then the data.
    let dump = repo.ok_bytes(&["dump", &string(&first, "snapshot_id"), "pg.dump"]);
    assert!(dump.starts_with(b"PGDMP"), "the stored dump is not a pg_dump custom archive");
    let file = repo.path("pg.dump");
    write_file(&file, &dump);
    let list = sh_ok(&format!("{}/pg_restore --list {}", pg.bin.display(), s(&file)));
    for entry in [
        "TABLE public items",
        "TABLE DATA public items",
        "TABLE DATA public counter",
        "CONSTRAINT public items items_pkey",
    ] {
        assert!(list.contains(entry), "pg_restore --list does not show {entry:?}:\n{list}");
    }
    sh_ok(&format!("{} {restored}", pg.tool("createdb")));
    sh_ok(&format!("{} --exit-on-error --no-owner -d {restored} {}", pg.tool("pg_restore"), s(&file)));
    let census =
        psql(&restored, "SELECT count(*), count(DISTINCT id), min(id), max(id), (SELECT n FROM counter) FROM items");
    let n: Vec<u64> = census.split('|').map(|x| x.parse().unwrap()).collect();
    assert_consistent("PostgreSQL", PG_ROWS, (n[0], n[1], n[2], n[3], n[4]), before, after);
    // Every restored row has the payload it was written with.
    let bad = psql(&restored, "SELECT count(*) FROM items WHERE payload <> repeat(md5(id::text), 3)");
    assert_eq!(bad, "0", "restored rows with a wrong payload");

    // A small change (5 rows deleted 10 % into the table, 10 appended): the next uncompressed dump stores little. It
    // adds the few chunks around the changes and the header (which holds the dump's time): 2.2 to 4.9 MB of this
    // 21.7 MB dump in 12 runs, and 7.6 MB once in CI. The chunk boundaries depend on each repository's chunker key,
    // and each of the three changed places costs one or two chunks of up to 4 MiB, so the bytes vary widely from
    // run to run; the number of new blobs does not (about 20 chunks in all; the stream's tree blobs besides).
    let small_change = |k: u64| {
        let at = PG_ROWS / 10 + 10 * k;
        format!(
            "DELETE FROM items WHERE id BETWEEN {at} AND {at} + 4;
             INSERT INTO items SELECT g, repeat(md5(g::text), 3) FROM generate_series({0} + 1, {0} + 10) g;",
            10_000_000 + 10 * k
        )
    };
    psql(&db, &small_change(1));
    let second = repo.json(&["backup", "--command", &pg_dump, "--stdin-filename", "pg.dump"]);
    let (added, blobs) = (num(&second, "bytes_added"), num(&second, "blobs_added"));
    assert!(
        added * 2 < dump.len() as u64 && blobs <= 10,
        "after a small change the uncompressed dump added {added} of {} bytes in {blobs} blobs: it does not deduplicate",
        dump.len()
    );
    // The compressed dump (pg_dump's default) does not: after the same kind of change most of it is new.
    let compressed = format!("{} -Fc -d {db}", pg.tool("pg_dump"));
    repo.json(&["backup", "--command", &compressed, "--stdin-filename", "pg-compressed.dump"]);
    psql(&db, &small_change(2));
    let third = repo.json(&["backup", "--command", &compressed, "--stdin-filename", "pg-compressed.dump"]);
    let zsize = repo.ok_bytes(&["dump", "latest", "pg-compressed.dump"]).len() as u64;
    let zadded = num(&third, "bytes_added");
    assert!(zadded * 2 > zsize, "the compressed dump added only {zadded} of {zsize} bytes after a small change");

    // A dump of a database that does not exist: no snapshot, exit 1.
    let wrong = format!("{} -Fc -Z0 -d cairn_no_such_db", pg.tool("pg_dump"));
    assert_failed_dump_makes_no_snapshot(&repo, &wrong, "pg.dump", "cairn_no_such_db");

    for sql in [format!("DROP DATABASE {db}"), format!("DROP DATABASE {restored}"), format!("DROP ROLE {role}")] {
        psql("postgres", &sql);
    }
}

const MYSQL_ROWS: u64 = 20_000;

#[test]
fn mariadb_recipe_restores_a_consistent_single_transaction_dump() {
    let Some(my) = Mysql::from_env() else { return };
    let repo = Repo::new();
    let (db, restored) = (db_name("cairn_my"), db_name("cairn_my_restored"));
    let mysql = {
        let my = my.clone();
        move |db: &str, sql: &str| sh_ok(&format!("{} -N -B {db} -e {}", my.tool("mysql"), quote(sql)))
    };
    mysql(
        "",
        &format!("CREATE DATABASE {db} CHARACTER SET utf8mb4; CREATE DATABASE {restored} CHARACTER SET utf8mb4;"),
    );
    mysql(
        &db,
        &format!(
            "CREATE TABLE items (id BIGINT PRIMARY KEY, payload TEXT NOT NULL) ENGINE=InnoDB;
             CREATE TABLE counter (n BIGINT NOT NULL) ENGINE=InnoDB;
             INSERT INTO items SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_{MYSQL_ROWS};
             INSERT INTO counter VALUES ({MYSQL_ROWS});
             CREATE FUNCTION cairn_double(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x;"
        ),
    );

    let dump_cmd = format!("{} --single-transaction --routines --events {db}", my.tool("mysqldump"));
    let mut writer = {
        let (tool, db) = (my.tool("mysql"), db.clone());
        Writer::start(move |i| {
            let id = MYSQL_ROWS + i;
            let sql = format!(
                "START TRANSACTION; INSERT INTO items VALUES ({id}, REPEAT(MD5({id}), 3)); UPDATE counter SET n = n + 1; COMMIT;"
            );
            sh(&format!("{tool} {db} -e {}", quote(&sql)))
        })
    };
    let (first, before, after) = backup_while_writing(&repo, &mut writer, &dump_cmd, "mysql.sql");
    writer.finish();

    // Restore into a fresh database straight from `cairn dump`.
    let dump = repo.ok_bytes(&["dump", &string(&first, "snapshot_id"), "mysql.sql"]);
    assert!(String::from_utf8_lossy(&dump).contains("-- Dump completed"), "the stored dump is incomplete");
    let file = repo.path("mysql.sql");
    write_file(&file, &dump);
    sh_ok(&format!("{} {restored} < {}", my.tool("mysql"), s(&file)));
    let check = sh_ok(&format!("{} --check {restored}", my.tool("mysqlcheck")));
    let lines: Vec<&str> = check.lines().collect();
    assert_eq!(lines.len(), 2, "mysqlcheck should check the two tables:\n{check}");
    for table in ["counter", "items"] {
        let ok = lines.iter().any(|l| l.starts_with(&format!("{restored}.{table} ")) && l.trim_end().ends_with("OK"));
        assert!(ok, "mysqlcheck does not say {restored}.{table} is OK:\n{check}");
    }
    let census =
        mysql(&restored, "SELECT count(*), count(DISTINCT id), min(id), max(id), (SELECT n FROM counter) FROM items");
    let n: Vec<u64> = census.split('\t').map(|x| x.parse().unwrap()).collect();
    assert_consistent("MariaDB", MYSQL_ROWS, (n[0], n[1], n[2], n[3], n[4]), before, after);
    assert_eq!(mysql(&restored, "SELECT count(*) FROM items WHERE payload <> REPEAT(MD5(id), 3)"), "0");
    // --routines brought the function along.
    assert_eq!(mysql(&restored, "SELECT cairn_double(21)"), "42");

    let wrong = format!("{} --single-transaction cairn_no_such_db", my.tool("mysqldump"));
    assert_failed_dump_makes_no_snapshot(&repo, &wrong, "mysql.sql", "cairn_no_such_db");

    mysql("", &format!("DROP DATABASE {db}; DROP DATABASE {restored};"));
}

const SQLITE_ROWS: u64 = 20_000;

#[test]
fn sqlite_recipe_dump_and_backup_copy_while_written_in_wal_mode() {
    if !servers::sqlite3_available() {
        return;
    }
    let repo = Repo::new();
    let db = repo.path("app.db");
    let sqlite = |db: &Path, sql: &str| sh_ok(&format!("sqlite3 -bail -cmd '.timeout 20000' {} {}", s(db), quote(sql)));
    let mode = sqlite(
        &db,
        &format!(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE items (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
             CREATE TABLE counter (n INTEGER NOT NULL);
             WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {SQLITE_ROWS})
               INSERT INTO items SELECT x, printf('row %d %040d', x, x * 7919) FROM g;
             INSERT INTO counter VALUES ({SQLITE_ROWS});"
        ),
    );
    assert_eq!(mode, "wal");

    let mut writer = {
        let db = db.clone();
        Writer::start(move |i| {
            let id = SQLITE_ROWS + i;
            let sql = format!(
                "BEGIN IMMEDIATE; INSERT INTO items VALUES ({id}, printf('row %d %040d', {id}, {id} * 7919));
                 UPDATE counter SET n = n + 1; COMMIT;"
            );
            sh(&format!("sqlite3 -bail -cmd '.timeout 20000' {} {}", s(&db), quote(&sql)))
        })
    };
    // .dump reads in one transaction: one consistent state as SQL text.
    let dump_cmd = format!("sqlite3 -bail -cmd '.timeout 20000' {} .dump", s(&db));
    let (sql_snap, before1, after1) = backup_while_writing(&repo, &mut writer, &dump_cmd, "app.sql");
    // .backup copies the pages through SQLite (WAL content included) to a temporary file, which is then streamed.
    let copy_cmd = format!(
        "set -e; t=$(mktemp -d); trap 'rm -rf \"$t\"' EXIT; \
         sqlite3 -bail -cmd '.timeout 20000' {} \".backup $t/copy.db\"; cat \"$t/copy.db\"",
        s(&db)
    );
    let (_, before2, after2) = backup_while_writing(&repo, &mut writer, &copy_cmd, "app-copy.db");
    writer.finish();

    assert_eq!(repo.snapshots().len(), 2);
    let census_sql = "SELECT count(*), count(DISTINCT id), min(id), max(id), (SELECT n FROM counter) FROM items";
    let census = |db: &Path| -> Census {
        assert_eq!(sqlite(db, "PRAGMA integrity_check"), "ok", "{}: integrity_check", s(db));
        let n: Vec<u64> = sqlite(db, census_sql).split('|').map(|x| x.parse().unwrap()).collect();
        (n[0], n[1], n[2], n[3], n[4])
    };

    // The SQL dump, restored with `cairn restore`, replayed into a fresh database.
    let target = repo.path("restored");
    repo.restore(&string(&sql_snap, "snapshot_id"), &target);
    let sql_file = target.join("app.sql");
    assert!(fs::read_to_string(&sql_file).unwrap().trim_end().ends_with("COMMIT;"), "the .dump stream is incomplete");
    let fresh = repo.path("fresh.db");
    sh_ok(&format!("sqlite3 -bail {} < {}", s(&fresh), s(&sql_file)));
    assert_consistent("SQLite .dump", SQLITE_ROWS, census(&fresh), before1, after1);

    // The page copy, restored with `cairn dump`, opened as it is.
    let copy = repo.path("copy.db");
    write_file(&copy, &repo.ok_bytes(&["dump", "latest", "app-copy.db"]));
    assert_consistent("SQLite .backup", SQLITE_ROWS, census(&copy), before2, after2);

    let missing = repo.path("no-such-dir").join("app.db");
    let wrong = format!("sqlite3 -bail {} .dump", s(&missing));
    assert_failed_dump_makes_no_snapshot(&repo, &wrong, "app.sql", "app.db");
}

const REDIS_KEYS: u64 = 20_000;

#[test]
fn redis_recipe_rdb_restores_into_a_fresh_server() {
    let Some(redis) = Redis::from_env() else { return };
    let repo = Repo::new();
    let cli = redis.cli();
    // The server is this test's own (scripts/servers/start-redis.sh): start from an empty one.
    sh_ok(&format!("{cli} FLUSHALL"));
    let fill = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'item:' .. i, string.rep(tostring(i), 8)) end \
                redis.call('SET', 'counter', ARGV[1]) return 1";
    sh_ok(&format!("{cli} EVAL {} 0 {REDIS_KEYS}", quote(fill)));
    assert_eq!(sh_num(&format!("{cli} DBSIZE")), REDIS_KEYS + 1);

    let mut writer = {
        let cli = cli.clone();
        // One script is one atomic transaction: the key and the counter together.
        let step = "redis.call('SET', 'item:' .. ARGV[1], string.rep(ARGV[1], 8)) return redis.call('INCR', 'counter')";
        Writer::start(move |i| sh(&format!("{cli} EVAL {} 0 {}", quote(step), REDIS_KEYS + i)))
    };
    let rdb_cmd = format!("{cli} --rdb -");
    let (_, before, after) = backup_while_writing(&repo, &mut writer, &rdb_cmd, "dump.rdb");
    writer.finish();

    // `cairn restore` places dump.rdb; redis-check-rdb validates it; a fresh server loads it at start.
    let target = repo.path("restored");
    repo.restore("latest", &target);
    let rdb = target.join("dump.rdb");
    let check = sh_ok(&format!("redis-check-rdb {}", s(&rdb)));
    assert!(check.contains("RDB looks OK!"), "redis-check-rdb:\n{check}");
    let sock = target.join("redis.sock");
    let server = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket", s(&sock), "--dir", s(&target), "--dbfilename", "dump.rdb"])
        .args(["--appendonly", "no", "--save", "", "--daemonize", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let _server = KillOnDrop(server);
    let fresh = format!("redis-cli -s {}", s(&sock));
    let deadline = Instant::now() + Duration::from_secs(20);
    while sh(&format!("{fresh} PING")).stdout != b"PONG\n" {
        assert!(Instant::now() < deadline, "the fresh redis-server did not answer in 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Consistent: the counter N, the keys item:1..=N with their values, and nothing else.
    let counter = sh_num(&format!("{fresh} GET counter"));
    let count_items = "local n = 0 for i = 1, tonumber(ARGV[1]) do \
                         if redis.call('GET', 'item:' .. i) == string.rep(tostring(i), 8) then n = n + 1 end end \
                       return n";
    let items = sh_num(&format!("{fresh} EVAL {} 0 {counter}", quote(count_items)));
    assert_eq!(items, counter, "the restored server lacks some of item:1..={counter}");
    let dbsize = sh_num(&format!("{fresh} DBSIZE"));
    assert_eq!(dbsize, counter + 1, "keys other than item:1..={counter} and counter in the restored server");
    assert_consistent("Redis", REDIS_KEYS, (counter, counter, 1, counter, counter), before, after);

    let wrong = format!("redis-cli -h {} -p 1 --rdb -", redis.host);
    // redis-cli's own message is passed through.
    assert_failed_dump_makes_no_snapshot(&repo, &wrong, "dump.rdb", "Could not connect to Redis at");
}

/// A private redis-server on a unix socket in `dir` (the shared one's key space belongs to the Redis recipe test),
/// loading `dir/dump.rdb` if present; killed when dropped. Returns it and its `redis-cli -s SOCKET` prefix.
fn private_redis(dir: &Path) -> (KillOnDrop, String) {
    fs::create_dir_all(dir).unwrap();
    let sock = dir.join("redis.sock");
    let server = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket", s(&sock), "--dir", s(dir), "--dbfilename", "dump.rdb"])
        .args(["--appendonly", "no", "--save", "", "--daemonize", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let server = KillOnDrop(server);
    let cli = format!("redis-cli -s {}", s(&sock));
    let deadline = Instant::now() + Duration::from_secs(20);
    while sh(&format!("{cli} PING")).stdout != b"PONG\n" {
        assert!(Instant::now() < deadline, "the private redis-server did not answer in 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, cli)
}

#[test]
fn one_snapshot_of_two_directories_redis_sqlite_and_postgres_restores_each_part() {
    let (Some(pg), Some(_)) = (Postgres::from_env(), Redis::from_env()) else { return };
    if !servers::sqlite3_available() {
        return;
    }
    let repo = Repo::new();
    // Two directories: the service's configuration and its data directory (which holds the SQLite database).
    let etc = repo.mkdir("etc-app");
    write_file(&etc.join("app.toml"), b"[server]\nport = 8080\n");
    write_file(&etc.join("conf.d/tls.pem"), &random_bytes(5, 2000));
    let lib = repo.mkdir("lib-app");
    write_file(&lib.join("uploads/a.bin"), &random_bytes(6, 300 * KIB));
    let app_db = lib.join("app.db");
    let sqlite = |db: &Path, sql: &str| sh_ok(&format!("sqlite3 -bail -cmd '.timeout 20000' {} {}", s(db), quote(sql)));
    sqlite(
        &app_db,
        "PRAGMA journal_mode=WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
         WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 3000)
           INSERT INTO items SELECT x, printf('row %d', x) FROM g;",
    );
    // Redis: 1000 keys in a private server.
    let (_redis, cli) = private_redis(&repo.path("redis-src"));
    let fill = "for i = 1, 1000 do redis.call('SET', 'item:' .. i, string.rep(tostring(i), 8)) end return 1";
    sh_ok(&format!("{cli} EVAL {} 0", quote(fill)));
    // PostgreSQL: a database of 5000 rows.
    let (db, restored) = (db_name("cairn_multi"), db_name("cairn_multi_restored"));
    let psql =
        |db: &str, sql: &str| sh_ok(&format!("{} -d {db} -v ON_ERROR_STOP=1 -Atqc {}", pg.tool("psql"), quote(sql)));
    sh_ok(&format!("{} {db}", pg.tool("createdb")));
    psql(
        &db,
        "CREATE TABLE items (id bigint PRIMARY KEY, payload text NOT NULL);
         INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
    );

    let summary = repo.backup(
        &[&etc, &lib],
        &[
            "--command",
            &format!("redis/dump.rdb={cli} --rdb -"),
            "--command",
            &format!("sqlite/app.sql=sqlite3 -bail -cmd '.timeout 20000' {} .dump", s(&app_db)),
            "--command",
            &format!("postgres/{db}.dump={} -Fc -Z0 -d {db}", pg.tool("pg_dump")),
        ],
    );
    let id = string(&summary, "snapshot_id");
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "one snapshot for the five sources");
    let kinds: Vec<&str> =
        snaps[0]["sources"].as_array().unwrap().iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["paths", "paths", "command", "command", "command"]);

    // Everything, then each part checked.
    let target = repo.path("restored");
    repo.restore(&id, &target);
    assert_same_contents(&etc, &restored_path(&target, &etc));
    assert_eq!(
        fs::read(restored_path(&target, &lib).join("uploads/a.bin")).unwrap(),
        fs::read(lib.join("uploads/a.bin")).unwrap()
    );
    // Redis: the RDB checks, and a fresh server started on it holds the 1000 keys.
    let rdb_dir = target.join("redis");
    let check = sh_ok(&format!("redis-check-rdb {}", s(&rdb_dir.join("dump.rdb"))));
    assert!(check.contains("RDB looks OK!"), "redis-check-rdb:\n{check}");
    {
        let (_fresh, fresh) = private_redis(&rdb_dir);
        assert_eq!(sh_num(&format!("{fresh} DBSIZE")), 1000);
        assert_eq!(sh_ok(&format!("{fresh} GET item:777")), "777".repeat(8));
    }
    // SQLite: the SQL replays into a fresh database that passes its integrity check.
    let fresh_db = repo.path("fresh.db");
    sh_ok(&format!("sqlite3 -bail {} < {}", s(&fresh_db), s(&target.join("sqlite/app.sql"))));
    assert_eq!(sqlite(&fresh_db, "PRAGMA integrity_check"), "ok");
    assert_eq!(sqlite(&fresh_db, "SELECT count(*), max(id) FROM items"), "3000|3000");
    // PostgreSQL: pg_restore into a fresh database.
    let pg_file = target.join(format!("postgres/{db}.dump"));
    sh_ok(&format!("{} {restored}", pg.tool("createdb")));
    sh_ok(&format!("{} --exit-on-error --no-owner -d {restored} {}", pg.tool("pg_restore"), s(&pg_file)));
    assert_eq!(psql(&restored, "SELECT count(*), count(DISTINCT id) FROM items"), "5000|5000");

    // Only the Redis part of that snapshot.
    let only = repo.path("only-redis");
    repo.ok(&["restore", &id, "--target", s(&only), "--include", "/redis/dump.rdb"]);
    assert_eq!(walk(&only), vec![b"redis".to_vec(), b"redis/dump.rdb".to_vec()]);
    assert_eq!(fs::read(only.join("redis/dump.rdb")).unwrap(), fs::read(rdb_dir.join("dump.rdb")).unwrap());

    // One failing dump among them: no snapshot, and the message names its path.
    let out = repo.run(&[
        "backup",
        s(&etc),
        "--command",
        &format!("redis/dump.rdb={cli} --rdb -"),
        "--command",
        &format!("postgres/x.dump={} -Fc -Z0 -d cairn_no_such_db", pg.tool("pg_dump")),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("/postgres/x.dump") && err.contains("cairn_no_such_db"), "{err}");
    assert_eq!(repo.snapshots().len(), 1);

    for sql in [format!("DROP DATABASE {db}"), format!("DROP DATABASE {restored}")] {
        psql("postgres", &sql);
    }
}

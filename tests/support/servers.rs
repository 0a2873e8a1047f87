//! The storage servers and emulators, and the database servers of docs/databases.md, that `./test.sh` starts on
//! loopback (scripts/servers/): their settings, read from the environment, and the rule for a missing one. With `CAIRN_TEST_SERVERS=required` (set by `./test.sh` and CI) a
//! server whose variables are missing FAILS the test; without it (a plain `cargo test`) the test prints a notice and
//! skips. Shared by `tests/library.rs` and `tests/cli.rs` through `#[path]`.
#![allow(dead_code)]

use std::path::PathBuf;

/// True when missing servers are failures.
pub fn required() -> bool {
    std::env::var("CAIRN_TEST_SERVERS").is_ok_and(|v| v == "required")
}

fn var(server: &str, name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if required() {
                panic!(
                    "CAIRN_TEST_SERVERS=required but {name} is not set: the {server} test server did not start \
                     (see scripts/servers/up.sh)"
                );
            }
            eprintln!(
                "note: skipping the {server} part of this test: {name} is not set (./test.sh starts the servers)"
            );
            None
        }
    }
}

/// A name no other test run uses.
pub fn unique(what: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::getrandom(&mut b).expect("random bytes");
    format!("{what}-{}", hex::encode(b))
}

/// An S3 server: s3s-fs (`S3_*`), or moto with Object Lock (`S3LOCK_*`).
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub state_dir: PathBuf,
}

impl S3 {
    pub fn from_env() -> Option<S3> {
        S3::with_prefix("S3", "S3")
    }
    /// The S3 server with Object Lock (moto; scripts/servers/start-s3lock.sh): its bucket has object lock enabled.
    pub fn lock_from_env() -> Option<S3> {
        S3::with_prefix("S3 with Object Lock (moto)", "S3LOCK")
    }
    fn with_prefix(server: &str, p: &str) -> Option<S3> {
        Some(S3 {
            endpoint: var(server, &format!("{p}_ENDPOINT"))?,
            bucket: var(server, &format!("{p}_BUCKET"))?,
            access_key: var(server, &format!("{p}_ACCESS_KEY"))?,
            secret_key: var(server, &format!("{p}_SECRET_KEY"))?,
            state_dir: var(server, &format!("{p}_STATE_DIR"))?.into(),
        })
    }
    /// A fresh repository URL in the bucket.
    pub fn url(&self, what: &str) -> String {
        format!("s3://{}/{}", self.bucket, unique(what))
    }
    /// `-o` options (without credentials: those go in AWS_* variables or `credentials`).
    pub fn options(&self) -> Vec<String> {
        vec![format!("s3.endpoint={}", self.endpoint)]
    }
    /// The credentials as `-o` options.
    pub fn credentials(&self, secret: &str) -> Vec<String> {
        vec![format!("s3.access_key_id={}", self.access_key), format!("s3.secret_access_key={secret}")]
    }
    /// The credentials as environment variables.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
        ]
    }
}

/// The SFTP server (OpenSSH sshd).
#[derive(Clone, Debug)]
pub struct Sftp {
    pub host: String,
    pub port: String,
    pub user: String,
    pub key: String,
    pub root: String,
    pub state_dir: PathBuf,
}

impl Sftp {
    pub fn from_env() -> Option<Sftp> {
        Some(Sftp {
            host: var("SFTP", "SFTP_HOST")?,
            port: var("SFTP", "SFTP_PORT")?,
            user: var("SFTP", "SFTP_USER")?,
            key: var("SFTP", "SFTP_KEY")?,
            root: var("SFTP", "SFTP_ROOT")?,
            state_dir: var("SFTP", "SFTP_STATE_DIR")?.into(),
        })
    }
    pub fn url(&self, what: &str) -> String {
        format!("sftp://{}@{}:{}{}/{}", self.user, self.host, self.port, self.root, unique(what))
    }
    pub fn options(&self) -> Vec<String> {
        vec![format!("sftp.key={}", self.key)]
    }
    /// A private key the server does not accept (its own host key).
    pub fn wrong_key(&self) -> String {
        self.state_dir.join("host_ed25519").to_string_lossy().into_owned()
    }
}

/// The WebDAV server (rclone serve webdav).
#[derive(Clone, Debug)]
pub struct Webdav {
    pub host: String,
    pub port: String,
    pub user: String,
    pub pass: String,
}

impl Webdav {
    pub fn from_env() -> Option<Webdav> {
        Some(Webdav {
            host: var("WebDAV", "WEBDAV_HOST")?,
            port: var("WebDAV", "WEBDAV_PORT")?,
            user: var("WebDAV", "WEBDAV_USER")?,
            pass: var("WebDAV", "WEBDAV_PASS")?,
        })
    }
    pub fn url(&self, what: &str) -> String {
        format!("webdav://{}@{}:{}/{}", self.user, self.host, self.port, unique(what))
    }
    /// `-o` options without the password (that goes in `CAIRN_WEBDAV_PASSWORD` or `password`).
    pub fn options(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn password(&self, pass: &str) -> Vec<String> {
        vec![format!("webdav.password={pass}")]
    }
}

/// The Google Cloud Storage emulator (fake-gcs-server). It checks no credentials, ignores `ifGenerationMatch` and has
/// no XML multipart API, so it is opened with a fixed token, `conditional_create=false` and `chunk_size=0`.
#[derive(Clone, Debug)]
pub struct Gcs {
    pub endpoint: String,
    pub bucket: String,
}

impl Gcs {
    pub fn from_env() -> Option<Gcs> {
        Some(Gcs { endpoint: var("GCS", "GCS_ENDPOINT")?, bucket: var("GCS", "GCS_BUCKET")? })
    }
    pub fn url(&self, what: &str) -> String {
        format!("gcs://{}/{}", self.bucket, unique(what))
    }
    /// `-o` options: the endpoint, a token (the emulator accepts any), and what the emulator cannot do.
    pub fn options(&self) -> Vec<String> {
        vec![
            format!("gcs.endpoint={}", self.endpoint),
            "gcs.token=emulator-accepts-any-token".into(),
            "conditional_create=false".into(),
            "chunk_size=0".into(),
        ]
    }
}

/// The Azure Blob Storage emulator (Azurite) with its development account.
#[derive(Clone, Debug)]
pub struct Azure {
    pub endpoint: String,
    pub container: String,
    pub account: String,
    pub key: String,
}

impl Azure {
    pub fn from_env() -> Option<Azure> {
        Some(Azure {
            endpoint: var("Azure", "AZURE_ENDPOINT")?,
            container: var("Azure", "AZURE_CONTAINER")?,
            account: var("Azure", "AZURE_ACCOUNT")?,
            key: var("Azure", "AZURE_KEY")?,
        })
    }
    pub fn url(&self, what: &str) -> String {
        format!("azblob://{}/{}", self.container, unique(what))
    }
    /// `-o` options without the key (that goes in `AZURE_STORAGE_ACCOUNT_KEY` or `key`).
    pub fn options(&self) -> Vec<String> {
        vec![format!("azblob.endpoint={}", self.endpoint), format!("azblob.account_name={}", self.account)]
    }
    pub fn key(&self, key: &str) -> Vec<String> {
        vec![format!("azblob.account_key={key}")]
    }
}

/// The PostgreSQL server (scripts/servers/start-postgres.sh): superuser `user`, trust authentication on loopback.
#[derive(Clone, Debug)]
pub struct Postgres {
    /// The directory of the server's own client programs (pg_dump, pg_restore, psql of the same version).
    pub bin: PathBuf,
    pub host: String,
    pub port: String,
    pub user: String,
}

impl Postgres {
    pub fn from_env() -> Option<Postgres> {
        Some(Postgres {
            bin: var("PostgreSQL", "CAIRN_TEST_PG_BIN")?.into(),
            host: var("PostgreSQL", "CAIRN_TEST_PG_HOST")?,
            port: var("PostgreSQL", "CAIRN_TEST_PG_PORT")?,
            user: var("PostgreSQL", "CAIRN_TEST_PG_USER")?,
        })
    }
    /// `TOOL -h HOST -p PORT -U USER` as a shell command prefix (the paths hold no shell metacharacters).
    pub fn tool(&self, tool: &str) -> String {
        format!("{}/{tool} -h {} -p {} -U {}", self.bin.display(), self.host, self.port, self.user)
    }
}

/// The MariaDB server (scripts/servers/start-mariadb.sh): `user` without a password, through the unix socket.
#[derive(Clone, Debug)]
pub struct Mysql {
    pub socket: String,
    pub user: String,
}

impl Mysql {
    pub fn from_env() -> Option<Mysql> {
        Some(Mysql {
            socket: var("MariaDB", "CAIRN_TEST_MYSQL_SOCKET")?,
            user: var("MariaDB", "CAIRN_TEST_MYSQL_USER")?,
        })
    }
    /// `TOOL --no-defaults --socket=S -u USER` as a shell command prefix.
    pub fn tool(&self, tool: &str) -> String {
        format!("{tool} --no-defaults --socket={} -u {}", self.socket, self.user)
    }
}

/// The Redis server (scripts/servers/start-redis.sh): no password, loopback only.
#[derive(Clone, Debug)]
pub struct Redis {
    pub host: String,
    pub port: String,
}

impl Redis {
    pub fn from_env() -> Option<Redis> {
        Some(Redis { host: var("Redis", "CAIRN_TEST_REDIS_HOST")?, port: var("Redis", "CAIRN_TEST_REDIS_PORT")? })
    }
    /// `redis-cli -h HOST -p PORT` as a shell command prefix.
    pub fn cli(&self) -> String {
        format!("redis-cli -h {} -p {}", self.host, self.port)
    }
}

/// True when the `sqlite3` shell runs (the SQLite recipe needs no server, only it). When it does not: a failure
/// under `CAIRN_TEST_SERVERS=required`, else a notice and false.
pub fn sqlite3_available() -> bool {
    let ok = std::process::Command::new("sqlite3").arg("-version").output().is_ok_and(|o| o.status.success());
    if !ok {
        if required() {
            panic!("CAIRN_TEST_SERVERS=required but the sqlite3 shell does not run (.ci/servers installs it)");
        }
        eprintln!("note: skipping the SQLite test: the sqlite3 shell does not run (.ci/servers installs it)");
    }
    ok
}

/// The `promtool` program (Debian's `prometheus` package, installed by .ci/servers), when it runs. When it does
/// not: a failure under `CAIRN_TEST_SERVERS=required`, else a notice and `None`.
pub fn promtool() -> Option<PathBuf> {
    let ok = std::process::Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        if required() {
            panic!(
                "CAIRN_TEST_SERVERS=required but promtool does not run (.ci/servers installs the prometheus package)"
            );
        }
        eprintln!("note: skipping the promtool checks: promtool does not run (.ci/servers installs it)");
        return None;
    }
    Some(PathBuf::from("promtool"))
}

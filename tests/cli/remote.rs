//! End to end on the servers `./test.sh` starts (S3: s3s-fs, SFTP: OpenSSH, WebDAV: rclone, GCS: gcp-storage-emulator,
//! Azure: Azurite): init, backup, a second backup, restore byte for byte, check, forget and prune; copy local → S3 →
//! SFTP; wrong credentials; an S3 server killed during a backup and restarted while the backup retries; several
//! processes backing up into one bucket at once. tests/support/servers.rs has the rule for a missing server (fail
//! under `CAIRN_TEST_SERVERS=required`, else skip with a notice).
//!
//! The servers are configured through different option sources, so each source is exercised: S3 through
//! `CAIRN_OPTION_S3_ENDPOINT` plus the `AWS_*` variables, SFTP and GCS through `-o` (GCS's token, a secret, through
//! `CAIRN_OPTION_GCS_TOKEN`), WebDAV through an options file
//! plus `CAIRN_WEBDAV_PASSWORD`, Azure through `CAIRN_OPTION_AZBLOB_ENDPOINT` plus the `AZURE_STORAGE_*` variables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use crate::servers::{Azure, Gcs, Sftp, Webdav, S3};

/// A repository on a remote server, driven through the `cairn` binary.
struct Remote {
    r: Repo,
    url: String,
    env: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Remote {
    fn s3(s: &S3, what: &str) -> Remote {
        let mut env = s.env();
        env.push(("CAIRN_OPTION_S3_ENDPOINT".into(), s.endpoint.clone()));
        Remote { r: Repo::uninit(), url: s.url(what), env, flags: Vec::new() }
    }

    fn sftp(s: &Sftp, what: &str) -> Remote {
        let flags = s.options().into_iter().flat_map(|o| ["-o".to_string(), o]).collect();
        Remote { r: Repo::uninit(), url: s.url(what), env: Vec::new(), flags }
    }

    fn webdav(w: &Webdav, what: &str) -> Remote {
        let r = Repo::uninit();
        let file = r.path("options.toml");
        std::fs::write(&file, format!("# cairn backend options\nretries = 3\n[webdav]\nuser = \"{}\"\n", w.user))
            .unwrap();
        let env =
            vec![("CAIRN_OPTIONS_FILE".into(), s(&file).to_string()), ("CAIRN_WEBDAV_PASSWORD".into(), w.pass.clone())];
        Remote { r, url: w.url(what), env, flags: Vec::new() }
    }

    fn gcs(g: &Gcs, what: &str) -> Remote {
        // A secret option (the token) is refused with -o: it goes in the environment.
        let (secret, plain): (Vec<String>, Vec<String>) =
            g.options().into_iter().partition(|o| o.starts_with("gcs.token="));
        let flags = plain.into_iter().flat_map(|o| ["-o".to_string(), o]).collect();
        let env = secret
            .into_iter()
            .map(|o| ("CAIRN_OPTION_GCS_TOKEN".to_string(), o["gcs.token=".len()..].to_string()))
            .collect();
        Remote { r: Repo::uninit(), url: g.url(what), env, flags }
    }

    fn azure(a: &Azure, what: &str) -> Remote {
        let env = vec![
            ("CAIRN_OPTION_AZBLOB_ENDPOINT".into(), a.endpoint.clone()),
            ("AZURE_STORAGE_ACCOUNT".into(), a.account.clone()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), a.key.clone()),
        ];
        Remote { r: Repo::uninit(), url: a.url(what), env, flags: Vec::new() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut all: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        let mut c = self.r.command(&all);
        c.env("CAIRN_REPOSITORY", &self.url);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_cmd(self.command(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        String::from_utf8_lossy(&expect_success(&self.command(args), out).stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        parse_json(&expect_success(&self.command(&a), out))
    }
}

/// A small tree: a few MiB of incompressible data (several packs at the test pack size is not needed; one pack
/// of data plus trees is enough to cross every write path) and some small files.
fn make_tree(root: &Path, seed: u64) {
    write_file(&root.join("big.bin"), &random_bytes(seed, 3 * MIB + 123));
    write_file(&root.join("text.txt"), &compressible_bytes(seed + 1, 200 * KIB));
    for i in 0..20 {
        write_file(&root.join(format!("dir/{i}/f")), format!("file {i} of {seed}").as_bytes());
    }
    write_file(&root.join("empty"), b"");
}

/// init, backup, change, second backup, restore of both byte for byte, check with data.
fn roundtrip(remote: &Remote) {
    let src = remote.r.mkdir("src");
    make_tree(&src, 1);
    let init = remote.json(&["init"]);
    assert!(init.get("repository_id").is_some(), "{init}");
    let first = remote.json(&["backup", s(&src)]);
    let first_id = string(&first, "snapshot_id");
    let first_copy = remote.r.path("first-copy");
    copy_tree(&src, &first_copy);
    write_file(&src.join("dir/3/f"), b"changed");
    write_file(&src.join("new.bin"), &random_bytes(9, MIB));
    let second = remote.json(&["backup", s(&src)]);
    let second_id = string(&second, "snapshot_id");
    assert_ne!(first_id, second_id);
    assert_eq!(remote.json(&["snapshots"]).as_array().map(Vec::len), Some(2));

    let t1 = remote.r.path("restore-1");
    remote.ok(&["restore", &first_id, "--target", s(&t1)]);
    assert_same_contents(&first_copy, &restored_path(&t1, &src));
    let t2 = remote.r.path("restore-2");
    remote.ok(&["restore", "latest", "--target", s(&t2)]);
    assert_same_contents(&src, &restored_path(&t2, &src));
    remote.ok(&["check", "--read-data"]);
    forget_and_prune(remote);
}

/// forget, then both phases of prune, then check with data and a byte-identical restore of what was kept. Where
/// the service cannot create objects conditionally (WebDAV, the GCS emulator) prune refuses and says why, until
/// forced.
fn forget_and_prune(remote: &Remote) {
    let src = remote.r.base.join("src");
    remote.ok(&["forget", "--keep-last", "1"]);
    let prune = ["prune", "--grace", "0", "--max-unused", "0%"];
    let mut args: Vec<&str> = prune.to_vec();
    if remote.url.starts_with("webdav") || remote.url.starts_with("gcs") {
        let out = remote.run(&args);
        assert_code(&remote.command(&args), &out, 1);
        assert!(stderr(&out).contains("cannot keep two prunes apart"), "{}", stderr(&out));
        args.push("--force");
    }
    let mark = remote.json(&args);
    assert!(mark["plan"]["mark"].is_object(), "no mark: {mark}");
    let sweep = remote.json(&args);
    assert!(num(&sweep["report"], "deleted_packs") > 0, "the sweep deleted nothing: {sweep}");
    remote.ok(&["check", "--read-data"]);
    let t = remote.r.path("restore-after-prune");
    remote.ok(&["restore", "latest", "--target", s(&t)]);
    assert_same_contents(&src, &restored_path(&t, &src));
}

/// `copy` across services: local → S3 with shared chunker keys (only missing blobs move; a second run copies
/// nothing), then S3 → SFTP without them (files are cut again); both destinations restore byte for byte.
#[test]
fn copy_local_to_s3_then_s3_to_sftp() {
    let (Some(s3), Some(sftp)) = (S3::from_env(), Sftp::from_env()) else { return };
    let local = Repo::new();
    let src = local.mkdir("src");
    make_tree(&src, 5);
    local.backup(&[&src], &[]);

    let b = Remote::s3(&s3, "copy-dst");
    let with_source = |r: &Remote, args: &[&str], from_pw: &str, extra_env: &[(String, String)]| {
        let mut c = r.command(args);
        c.env("CAIRN_FROM_PASSWORD", from_pw);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        parse_json(&expect_success(&r.command(args), run_cmd(c)))
    };
    with_source(&b, &["init", "--copy-chunker-from", s(&local.repo), "--json"], &local.password, &[]);
    let v = with_source(&b, &["copy", "--from-repo", s(&local.repo), "--json"], &local.password, &[]);
    assert_eq!(v["rechunked"], false, "{v}");
    assert!(v["snapshots"][0]["target"].is_string(), "{v}");
    let again = with_source(&b, &["copy", "--from-repo", s(&local.repo), "--json"], &local.password, &[]);
    assert_eq!(num(&again, "blobs_added"), 0, "{again}");
    assert_eq!(num(&again, "data_blobs_read"), 0, "{again}");
    b.ok(&["check", "--read-data"]);
    let t = b.r.path("restore-s3");
    b.ok(&["restore", "latest", "--target", s(&t)]);
    assert_same_contents(&src, &restored_path(&t, &src));

    let c = Remote::sftp(&sftp, "copy-dst");
    c.ok(&["init"]);
    // The S3 source is configured through b's environment (options for another service are ignored).
    let v = with_source(&c, &["copy", "--from-repo", &b.url, "--json"], &b.r.password, &b.env);
    assert_eq!(v["rechunked"], true, "{v}");
    c.ok(&["check", "--read-data"]);
    let t = c.r.path("restore-sftp");
    c.ok(&["restore", "latest", "--target", s(&t)]);
    assert_same_contents(&src, &restored_path(&t, &src));
}

#[test]
fn s3_end_to_end() {
    let Some(srv) = S3::from_env() else { return };
    roundtrip(&Remote::s3(&srv, "e2e"));
}

#[test]
fn sftp_end_to_end() {
    let Some(srv) = Sftp::from_env() else { return };
    roundtrip(&Remote::sftp(&srv, "e2e"));
}

#[test]
fn webdav_end_to_end() {
    let Some(srv) = Webdav::from_env() else { return };
    roundtrip(&Remote::webdav(&srv, "e2e"));
}

#[test]
fn gcs_end_to_end() {
    let Some(srv) = Gcs::from_env() else { return };
    roundtrip(&Remote::gcs(&srv, "e2e"));
}

#[test]
fn azure_end_to_end() {
    let Some(srv) = Azure::from_env() else { return };
    roundtrip(&Remote::azure(&srv, "e2e"));
}

/// HTTPS through the ring TLS provider: a private `rclone serve webdav` with a certificate from a throwaway CA.
/// Without trusting the CA the repository cannot be reached (exit 10, the message says why); with it
/// (`SSL_CERT_FILE`) the whole roundtrip works.
#[test]
fn webdavs_end_to_end_with_a_private_ca() {
    let Some(_) = Webdav::from_env() else { return };
    let r0 = Repo::uninit();
    let dir = r0.path("tls-dav");
    let out = Command::new(scripts().join("start-webdav.sh"))
        .arg(&dir)
        .env("WEBDAV_TLS", "1")
        .env_remove("WEBDAV_PORT")
        .output()
        .expect("run start-webdav.sh");
    assert!(out.status.success(), "start-webdav.sh WEBDAV_TLS=1 failed: {}", describe(&out));
    let env = exports(&out);
    let get = |k: &str| export(&env, k);
    struct Stop(PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(self.0.join("rclone.pid")) {
                // SAFETY: kill(2) of the server this test started.
                unsafe { libc::kill(pid.trim().parse().unwrap_or(0), libc::SIGTERM) };
            }
        }
    }
    let _stop = Stop(dir.clone());
    let srv = Webdav {
        host: get("WEBDAV_HOST"),
        port: get("WEBDAV_PORT"),
        user: get("WEBDAV_USER"),
        pass: get("WEBDAV_PASS"),
    };
    let mut remote = Remote::webdav(&srv, "tls");
    remote.url = remote.url.replacen("webdav://", "webdavs://", 1);
    remote.flags = vec!["-o".into(), "retries=1".into()];
    let out = remote.run(&["snapshots"]);
    assert_code(&remote.command(&["snapshots"]), &out, 10);
    assert!(stderr(&out).contains("certificate"), "the message does not say why: {}", stderr(&out));
    remote.env.push(("SSL_CERT_FILE".into(), get("WEBDAV_CA")));
    roundtrip(&remote);
}

/// Refused credentials: exit 10 ("repository cannot be reached"), a message naming the service, the operation
/// and the object, and never the secret.
#[test]
fn wrong_credentials_exit_10_with_a_clear_message() {
    let mut cases = Vec::new();
    if let Some(srv) = S3::from_env() {
        let mut r = Remote::s3(&srv, "cred");
        r.env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
        r.env.push(("AWS_SECRET_ACCESS_KEY".into(), "wrong-secret-0000".into()));
        cases.push(("s3", r, "wrong-secret-0000".to_string()));
    }
    if let Some(srv) = Sftp::from_env() {
        let mut r = Remote::sftp(&srv, "cred");
        r.flags = vec!["-o".into(), format!("sftp.key={}", srv.wrong_key())];
        cases.push(("sftp", r, "PRIVATE KEY".to_string()));
    }
    if let Some(srv) = Webdav::from_env() {
        let mut r = Remote::webdav(&srv, "cred");
        r.env.retain(|(k, _)| k != "CAIRN_WEBDAV_PASSWORD");
        r.env.push(("CAIRN_WEBDAV_PASSWORD".into(), "wrong-pass-1111".into()));
        cases.push(("webdav", r, "wrong-pass-1111".to_string()));
    }
    // The GCS emulator checks no credentials; Azurite checks the account key's signature.
    if let Some(srv) = Azure::from_env() {
        let mut r = Remote::azure(&srv, "cred");
        r.env.retain(|(k, _)| k != "AZURE_STORAGE_ACCOUNT_KEY");
        r.env.push(("AZURE_STORAGE_ACCOUNT_KEY".into(), "d3Jvbmcta2V5LTIyMjI=".into()));
        cases.push(("azblob", r, "d3Jvbmcta2V5LTIyMjI=".to_string()));
    }
    for (name, r, secret) in cases {
        for args in [&["init"][..], &["snapshots"][..]] {
            let out = r.run(args);
            assert_code(&r.command(args), &out, 10);
            let err = stderr(&out);
            assert!(err.contains(&format!("{name}://")) && err.contains("list"), "{name}: unclear: {err}");
            assert!(!err.contains(&secret), "{name}: the secret is in the message: {err}");
        }
    }
}

#[test]
fn bad_urls_and_options_are_usage_errors() {
    let r = Repo::uninit();
    let run = |args: &[&str], repo: &str| {
        let mut c = r.command(args);
        c.env("CAIRN_REPOSITORY", repo);
        let out = run_cmd(c);
        (out.status.code(), stderr(&out))
    };
    let (code, err) = run(&["-o", "s3.endpiont=http://x", "snapshots"], "s3://b/p");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("s3.endpiont"), "{err}");
    let (code, err) = run(&["snapshots"], "webdav://u:secret-pw@h/x");
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("secret-pw"), "{err}");
    let (code, err) = run(&["snapshots"], "ftp://h/x");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ftp://"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Faults and concurrency on S3
// ---------------------------------------------------------------------------------------------

/// A private s3s-fs (its own port and data), so that killing it disturbs no other test.
struct PrivateS3 {
    dir: PathBuf,
    env: Vec<(String, String)>,
    srv: S3,
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/servers")
}

/// The `export NAME='value'` lines a start script printed.
fn exports(out: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// One value of [`exports`].
fn export(env: &[(String, String)], name: &str) -> String {
    env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{name} was not printed"))
}

impl PrivateS3 {
    fn start(dir: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
        let out = Command::new(scripts().join("start-s3.sh"))
            .arg(dir)
            // Not the shared server's port and keys from this process's environment.
            .env_remove("S3_PORT")
            .env_remove("S3_ACCESS_KEY")
            .env_remove("S3_SECRET_KEY")
            .env_remove("S3_BUCKET")
            .envs(env.iter().cloned())
            .output()
            .expect("run start-s3.sh");
        assert!(out.status.success(), "start-s3.sh failed: {}", describe(&out));
        exports(&out)
    }

    fn new(base: &Path) -> Option<PrivateS3> {
        S3::from_env()?; // the same rule: no S3 server here means no s3s-fs either
        let dir = base.join("private-s3");
        let env = Self::start(&dir, &[]);
        let get = |k: &str| export(&env, k);
        let srv = S3 {
            endpoint: get("S3_ENDPOINT"),
            bucket: get("S3_BUCKET"),
            access_key: get("S3_ACCESS_KEY"),
            secret_key: get("S3_SECRET_KEY"),
            state_dir: dir.clone(),
        };
        Some(PrivateS3 { dir, env, srv })
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.join("server.pid")).unwrap().trim().parse().unwrap()
    }

    /// Kills the server and waits until the process is gone (it is not our child: start-s3.sh detached it).
    fn kill(&self) {
        let pid = self.pid();
        // SAFETY: plain kill(2) of the server this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let t0 = std::time::Instant::now();
        // SAFETY: kill(pid, 0) only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && t0.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn restart(&self) {
        Self::start(&self.dir, &self.env);
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server dies in the middle of a backup — killed while the backup is paused before its second data pack's
/// upload (`Pause`) — and is restarted once the backup has reported a failed upload and is retrying. OpenDAL's
/// retries bridge the outage: the backup completes, its snapshot restores byte for byte, `check --read-data` accepts
/// the repository, and the next backup succeeds and restores.
#[test]
fn s3_killed_during_a_backup_and_restarted_while_it_retries() {
    use std::io::BufRead;
    let r0 = Repo::uninit();
    let Some(srv) = PrivateS3::new(&r0.base) else { return };
    let mut remote = Remote::s3(&srv.srv, "kill");
    remote.flags = vec!["-o".into(), "retries=8".into()];
    let src = remote.r.mkdir("src");
    for i in 0..24 {
        write_file(&src.join(format!("f{i}.bin")), &random_bytes(100 + i, 4 * MIB));
    }
    remote.ok(&["init"]);
    let pause = Pause::new(&remote.r.base, "s3-outage");
    let mut child = spawn({
        let mut c = remote.command(&["backup", s(&src), "--json"]);
        c.env("CAIRN_LOG", "warn");
        pause.arm(&mut c, "write", "data/", 1);
        c
    });
    let what = pause.wait(&mut child);
    assert!(what.starts_with("write data/"), "paused at {what}");
    srv.kill();
    // Read stderr as it comes: the first retry warning is the point where the upload has failed against the dead
    // server and is waiting to try again.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    pause.release();
    let t0 = std::time::Instant::now();
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(line) if line.contains("retry") => break,
            Ok(_) => continue,
            Err(e) => {
                panic!("no retry warning after {:?} ({e}): the backup did not retry the failed upload", t0.elapsed())
            }
        }
    }
    srv.restart();
    let status = child.wait().unwrap();
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let err = reader.join().unwrap();
    assert!(status.success(), "the backup did not bridge the outage ({status}); its stderr:\n{err}");
    assert!(err.contains("retry"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    let t = remote.r.path("t");
    remote.ok(&["restore", &string(&v, "snapshot_id"), "--target", s(&t)]);
    assert_same_contents(&src, &restored_path(&t, &src));
    remote.ok(&["check", "--read-data"]);
    let v = remote.json(&["backup", s(&src)]);
    let t = remote.r.path("t2");
    remote.ok(&["restore", &string(&v, "snapshot_id"), "--target", s(&t)]);
    assert_same_contents(&src, &restored_path(&t, &src));
    remote.ok(&["check"]);
}

/// Four processes back up four different trees (sharing some files) into one repository at the same time; every
/// snapshot restores byte for byte and `check --read-data` passes.
#[test]
fn s3_concurrent_backups_into_one_bucket() {
    let Some(srv) = S3::from_env() else { return };
    let remote = Remote::s3(&srv, "multi");
    remote.ok(&["init"]);
    let shared = random_bytes(77, 2 * MIB);
    let srcs: Vec<PathBuf> = (0..4)
        .map(|i| {
            let d = remote.r.mkdir(&format!("src{i}"));
            write_file(&d.join("shared.bin"), &shared);
            write_file(&d.join("own.bin"), &random_bytes(200 + i, 3 * MIB));
            write_file(&d.join("small"), format!("tree {i}").as_bytes());
            d
        })
        .collect();
    let children: Vec<_> = srcs
        .iter()
        .map(|d| {
            let mut c = remote.command(&["backup", s(d), "--json"]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            spawn(c)
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "a concurrent backup failed: {}", describe(&out));
            string(&parse_json(&out), "snapshot_id")
        })
        .collect();
    assert_eq!(remote.json(&["snapshots"]).as_array().map(Vec::len), Some(4));
    for (i, (id, d)) in ids.iter().zip(&srcs).enumerate() {
        let t = remote.r.path(&format!("t{i}"));
        remote.ok(&["restore", id, "--target", s(&t)]);
        assert_same_contents(d, &restored_path(&t, d));
    }
    remote.ok(&["check", "--read-data"]);
}

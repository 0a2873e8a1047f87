//! What a local user on the backup host can do to another user's (root's) cairn (README "Security model"): a
//! cache directory in a shared place, another user's cache directory, and the modes of the cache cairn creates.

use crate::common::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The uid and gid of `nobody`, the other user of these tests (they run as root).
const OTHER: u32 = 65534;

fn chown_all(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_all(&e.unwrap().path(), uid);
        }
    }
}

/// `cmd` again with program `prog`, the same arguments and environment.
fn with_program(cmd: &Command, prog: &Path) -> Command {
    let mut c = Command::new(prog);
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdin(std::process::Stdio::null());
    detach_from_terminal(&mut c);
    c
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// With HOME and XDG_CACHE_HOME unset and no home directory in the user database, cairn runs without a cache and
/// says so; it does not fall back to a shared directory under the temporary directory (`/tmp/cairn-cache`).
#[test]
fn without_a_home_there_is_no_cache_and_no_shared_directory() {
    let r = Repo::new();
    let tmpdir = r.mkdir("tmpdir");
    // nobody cannot reach the test binary under root's home: a copy it can run.
    let bin = r.path("cairn");
    fs::copy(cairn_bin(), &bin).unwrap();
    chown_all(&r.base, OTHER);
    let mut cmd = with_program(&r.command(&["snapshots"]), &bin);
    cmd.env_remove("CAIRN_CACHE_DIR").env_remove("HOME").env_remove("XDG_CACHE_HOME").env("TMPDIR", &tmpdir);
    cmd.uid(OTHER).gid(OTHER);
    let out = run_cmd(cmd);
    assert!(out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("no cache directory") && err.contains("--cache-dir"), "{}", describe(&out));
    assert!(!tmpdir.join("cairn-cache").exists(), "a cache in the shared temporary directory");
    assert_eq!(fs::read_dir(&tmpdir).unwrap().count(), 0, "the temporary cache is removed");
}

/// A cache directory (or a directory cairn keeps in it) that another user owns, or that others can write, is
/// refused with an error naming it and `--cache-dir`; nothing is opened through it.
#[test]
fn a_cache_directory_another_user_controls_is_refused() {
    let r = Repo::new();
    let check = |path: &Path| {
        let out = r.expect_code(&["snapshots"], 1);
        let err = stderr(&out);
        assert!(err.contains(&format!("cache directory {}", path.display())), "{}", describe(&out));
        assert!(err.contains("--cache-dir"), "{}", describe(&out));
    };
    fs::create_dir_all(&r.cache).unwrap();
    std::os::unix::fs::chown(&r.cache, Some(OTHER), Some(OTHER)).unwrap();
    check(&r.cache);
    std::os::unix::fs::chown(&r.cache, Some(0), Some(0)).unwrap();
    fs::set_permissions(&r.cache, fs::Permissions::from_mode(0o777)).unwrap();
    check(&r.cache);
    fs::set_permissions(&r.cache, fs::Permissions::from_mode(0o700)).unwrap();
    r.ok(&["snapshots"]);
    let pins = r.cache.join("pins");
    std::os::unix::fs::chown(&pins, Some(OTHER), Some(OTHER)).unwrap();
    check(&pins);
}

/// After a backup every directory of the cache is 0700 and the files cairn writes itself are 0600 (RocksDB's own
/// files are inside a 0700 directory).
#[test]
fn the_cache_is_private_after_a_backup() {
    let r = Repo::new();
    let src = r.mkdir("src");
    write_file(&src.join("f"), b"data");
    r.backup(&[&src], &[]);
    fn walk(p: &Path, top: &Path) {
        let m = mode(p);
        if fs::symlink_metadata(p).unwrap().is_dir() {
            assert_eq!(m, 0o700, "{p:?}");
            for e in fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), top);
            }
        } else if p.parent() == Some(top) || p.parent().and_then(Path::file_name) == Some(OsStr::new("pins")) {
            assert_eq!(m, 0o600, "{p:?}");
        }
    }
    walk(&r.cache, &r.cache);
    assert_eq!(mode(&r.cache.join("CACHEDIR.TAG")), 0o600);
    assert!(fs::read_dir(r.cache.join("pins")).unwrap().count() > 0);
}

/// A secret backend option on the command line (visible in `ps`) is a usage error that names the option and the
/// variable to use instead, and does not echo the value.
#[test]
fn secret_options_are_refused_on_the_command_line() {
    let r = Repo::new();
    for (opt, var) in [
        ("s3.secret_access_key", "CAIRN_OPTION_S3_SECRET_ACCESS_KEY"),
        ("webdav.password", "CAIRN_OPTION_WEBDAV_PASSWORD"),
        ("azblob.account_key", "CAIRN_OPTION_AZBLOB_ACCOUNT_KEY"),
        ("gcs.token", "CAIRN_OPTION_GCS_TOKEN"),
    ] {
        let flag = format!("{opt}=hunter2");
        let out = r.expect_usage_error(&["-o", &flag, "snapshots"], &[opt, var, "--options-file"]);
        assert!(!stderr(&out).contains("hunter2"), "{}", describe(&out));
    }
    // Not secret: accepted as before.
    r.ok(&["-o", "s3.access_key_id=a", "snapshots"]);
}

/// A running cairn has a core file size limit of 0 (and is not dumpable), whatever limit it was started with, so a
/// crash cannot write its keys to disk.
#[test]
fn a_running_cairn_writes_no_core_file() {
    let r = Repo::new();
    let pause = Pause::new(&r.base, "core");
    let mut cmd = r.command(&["snapshots"]);
    pause.arm(&mut cmd, "list", "snapshots/", 0);
    // SAFETY: setrlimit is async-signal-safe; the child starts with a core limit to lower.
    unsafe {
        cmd.pre_exec(|| {
            let l = libc::rlimit { rlim_cur: 1 << 20, rlim_max: 1 << 20 };
            if libc::setrlimit(libc::RLIMIT_CORE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = spawn(cmd);
    pause.wait(&mut child);
    let limits = fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    pause.release();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let line = limits.lines().find(|l| l.starts_with("Max core file size")).expect("a core limit line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[4..6], ["0", "0"], "{line}");
}

/// A password file others can read is used, with a warning on stderr naming the file and its mode.
#[test]
fn a_readable_password_file_is_warned_about() {
    let r = Repo::new();
    let f = r.path("pw");
    write_file(&f, format!("{}\n", r.password).as_bytes());
    for (m, warned) in [(0o644, true), (0o640, true), (0o600, false)] {
        fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
        let out = r.run(&["--password-file", s(&f), "snapshots"]);
        assert!(out.status.success(), "{}", describe(&out));
        let err = stderr(&out);
        let named = err.contains("warning: password file") && err.contains(s(&f)) && err.contains(&format!("{m:04o}"));
        assert_eq!(named, warned, "mode {m:o}: {}", describe(&out));
        assert_eq!(err.contains("warning"), warned, "{}", describe(&out));
    }
}

/// `copy` without the source's password names the variable that is missing (CAIRN_FROM_PASSWORD), not
/// CAIRN_PASSWORD, which is set.
#[test]
fn copy_names_the_missing_source_password() {
    let a = Repo::new();
    let b = Repo::new();
    let out = b.expect_code(&["copy", "--from-repo", s(&a.repo)], 12);
    let err = stderr(&out);
    assert!(err.contains("set CAIRN_FROM_PASSWORD,") && err.contains("--from-password-file"), "{}", describe(&out));
    assert!(!err.contains("set CAIRN_PASSWORD"), "{}", describe(&out));
}

/// `init` with a cache directory that would be refused fails before it writes anything to the repository.
#[test]
fn init_refuses_a_foreign_cache_directory_before_writing() {
    let r = Repo::uninit();
    fs::create_dir_all(&r.cache).unwrap();
    std::os::unix::fs::chown(&r.cache, Some(OTHER), Some(OTHER)).unwrap();
    let out = r.expect_code(&["init"], 1);
    assert!(stderr(&out).contains("--cache-dir"), "{}", describe(&out));
    assert!(!r.repo.join("config").exists() && !r.repo.join("keys").exists(), "init wrote a repository");
}

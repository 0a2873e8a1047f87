//! A local user racing a backup (README "Security model", docs/cli-contract.md "backup"): an entry swapped for a
//! symlink or for another file between the walk's `lstat` and its open is reported on the backup's error list and
//! nothing of the other object is stored. The swap happens at the exact moment through the walk's test-only hook
//! (`BackupOptions::test_before_open`).

use crate::fixtures::{files, init_local, write};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress, WalkHook};
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use std::path::PathBuf;
use std::sync::Arc;

const SECRET: &[u8] = b"root-only secret: must never reach a snapshot";
const OTHER: &[u8] = b"another file renamed into place";

#[test]
fn a_backup_stores_nothing_through_an_entry_swapped_after_its_stat() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let secret = t.join("secret");
    write(&secret.join("key"), SECRET);
    write(&t.join("other"), OTHER);
    let src = t.join("src");
    write(&src.join("a-file"), b"public a");
    write(&src.join("b-dir/inner"), b"public inner");
    write(&src.join("c-renamed"), b"public c");
    write(&src.join("z-kept"), b"public z");
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));

    let (s, tt) = (src.clone(), t.to_path_buf());
    let hook = move |p: &std::path::Path| {
        let Ok(rel) = p.strip_prefix(&s) else { return };
        match rel.to_str() {
            // A file becomes a symlink to a root-only file.
            Some("a-file") => {
                std::fs::remove_file(p).unwrap();
                std::os::unix::fs::symlink(tt.join("secret/key"), p).unwrap();
            }
            // A directory becomes a symlink to a root-only directory.
            Some("b-dir") => {
                std::fs::rename(p, tt.join("moved")).unwrap();
                std::os::unix::fs::symlink(tt.join("secret"), p).unwrap();
            }
            // Another file is renamed over a file.
            Some("c-renamed") => std::fs::rename(tt.join("other"), p).unwrap(),
            _ => {}
        }
    };
    let opts = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();

    let mut reported: Vec<PathBuf> = r.errors.iter().map(|e| PathBuf::from(&e.path)).collect();
    reported.sort();
    assert_eq!(reported, [src.join("a-file"), src.join("b-dir"), src.join("c-renamed")], "{:?}", r.errors);
    assert!(r.errors.iter().all(|e| e.message.contains("not stored")), "{:?}", r.errors);
    assert_eq!(r.summary.errors, 3);

    let target = t.join("restored");
    let snap = repo.load_snapshot(&r.snapshot_id.unwrap()).unwrap();
    let o = RestoreOptions { target: target.clone(), ..Default::default() };
    let rr = restore(&repo, &snap.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(rr.errors.is_empty(), "{:?}", rr.errors);
    let restored = files(&target.join(src.strip_prefix("/").unwrap()));
    let names: Vec<_> = restored.keys().cloned().collect();
    assert_eq!(names, [PathBuf::from("z-kept")], "only the untouched file is stored");
    for (p, data) in files(&target) {
        assert!(data != SECRET && data != OTHER, "{p:?} holds content the walk never examined");
    }
}

/// A file swapped for a FIFO between the `lstat` and the open: the walk opens it without blocking (`O_NONBLOCK`
/// stays on the handle), the handle's own `fstat` shows another object — by its type, since the FIFO may well get
/// the deleted file's inode number — and the entry is reported and not stored; the backup neither hangs on the FIFO
/// nor stores what it read from it.
#[test]
fn a_file_swapped_for_a_fifo_after_its_stat_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let src = t.join("src");
    write(&src.join("a-fifo"), b"public a");
    write(&src.join("z-kept"), b"public z");
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));

    let s = src.clone();
    let hook = move |p: &std::path::Path| {
        if p.strip_prefix(&s).ok().and_then(|r| r.to_str()) == Some("a-fifo") {
            std::fs::remove_file(p).unwrap();
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: `c` is a valid C string.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }
    };
    let opts = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();

    let reported: Vec<PathBuf> = r.errors.iter().map(|e| PathBuf::from(&e.path)).collect();
    assert_eq!(reported, [src.join("a-fifo")], "{:?}", r.errors);
    assert!(r.errors[0].message.contains("not stored"), "{:?}", r.errors);

    let target = t.join("restored");
    let snap = repo.load_snapshot(&r.snapshot_id.unwrap()).unwrap();
    let o = RestoreOptions { target: target.clone(), ..Default::default() };
    let rr = restore(&repo, &snap.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(rr.errors.is_empty(), "{:?}", rr.errors);
    let names: Vec<_> = files(&target.join(src.strip_prefix("/").unwrap())).keys().cloned().collect();
    assert_eq!(names, [PathBuf::from("z-kept")]);
}

/// The files cache against a local user (the walker only compares an unchanged file with its directory's record and
/// the builder makes its node from that record): a file the record holds unchanged and swapped for a symlink to a
/// root-only file right after its `lstat` keeps the content the record names, its own; one swapped before the walk
/// reaches it is a symlink in the snapshot. Nothing of the root-only file is stored either way.
#[test]
fn files_the_records_hold_unchanged_and_swapped_for_symlinks_store_nothing_of_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let secret = t.join("secret/key");
    write(&secret, SECRET);
    let src = t.join("src");
    write(&src.join("a-swapped-after-stat"), b"public a");
    write(&src.join("b-swapped-before"), &[b'b'; 3000]);
    write(&src.join("c-kept"), b"public c");
    std::thread::sleep(std::time::Duration::from_millis(150));
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));
    let sources = || vec![BackupSource::Paths(vec![src.clone()])];
    let first = backup(&repo, sources(), &BackupOptions::default(), &NoProgress).unwrap();
    assert_eq!(first.summary.files_new, 3, "{:?}", first.summary);

    std::fs::remove_file(src.join("b-swapped-before")).unwrap();
    std::os::unix::fs::symlink(&secret, src.join("b-swapped-before")).unwrap();
    let (s, key) = (src.clone(), secret.clone());
    let hook = move |p: &std::path::Path| {
        if p == s.join("a-swapped-after-stat") {
            std::fs::remove_file(p).unwrap();
            std::os::unix::fs::symlink(&key, p).unwrap();
        }
    };
    let opts = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, sources(), &opts, &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.summary.files_unchanged, r.summary.files_new), (2, 0), "{:?}", r.summary);

    let target = t.join("restored");
    let snap = repo.load_snapshot(&r.snapshot_id.unwrap()).unwrap();
    let o = RestoreOptions { target: target.clone(), ..Default::default() };
    let rr = restore(&repo, &snap.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(rr.errors.is_empty(), "{:?}", rr.errors);
    let out = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(out.join("a-swapped-after-stat")).unwrap(), b"public a", "the recorded content");
    let b = out.join("b-swapped-before");
    assert!(std::fs::symlink_metadata(&b).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&b).unwrap(), secret);
    assert_eq!(std::fs::read(out.join("c-kept")).unwrap(), b"public c");
    // Read what was restored without following links: the secret is nowhere in it.
    for e in walkdir(&target) {
        if std::fs::symlink_metadata(&e).unwrap().file_type().is_file() {
            assert_ne!(std::fs::read(&e).unwrap(), SECRET, "{e:?}");
        }
    }
}

fn walkdir(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

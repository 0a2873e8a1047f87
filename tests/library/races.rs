//! A local user racing a backup (README "Security model", docs/cli-contract.md "backup"): an entry swapped for a
//! symlink or for another file between the walk's `lstat` and its open is reported on the backup's error list and
//! nothing of the other object is stored; a new file, examined through its open handle, is stored as that handle
//! reads it. The swap happens at the exact moment through the walk's test-only hook
//! (`BackupOptions::test_before_open`).

use crate::fixtures::{files, init_local, write};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress, WalkHook};
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use std::path::PathBuf;
use std::sync::Arc;

const SECRET: &[u8] = b"root-only secret: must never reach a snapshot";
const OTHER: &[u8] = b"another file renamed into place";

/// Restores the snapshot backup `r` made to `t/restored`, which it returns; the restore reports no error.
fn restored(repo: &cairn::repository::ReadRepository, r: &cairn::backup::BackupResult, t: &std::path::Path) -> PathBuf {
    let target = t.join("restored");
    let snap = repo.load_snapshot(r.snapshot_id.as_ref().unwrap()).unwrap();
    let o = RestoreOptions { target: target.clone(), ..Default::default() };
    let rr = restore(repo, &snap.root(), None, &o, &NoRestoreProgress).unwrap();
    assert!(rr.errors.is_empty(), "{:?}", rr.errors);
    target
}

/// Makes a FIFO at `p`.
fn mkfifo(p: &std::path::Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// A first backup of `src` without a hook, so that every directory has a files cache record and the next backup
/// examines entries by `lstat` before opening them; then each of `changed` gets other content of another size, so
/// that the next backup reads it again.
fn recorded(repo: &cairn::repository::ReadRepository, src: &std::path::Path, changed: &[&str]) {
    std::thread::sleep(std::time::Duration::from_millis(150));
    let first =
        backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress)
            .unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    for name in changed {
        write(&src.join(name), format!("{name}, changed since the first backup").as_bytes());
    }
}

/// A scratch directory holding the root-only file at `secret/key`: it, the file's path, and the path of the
/// source directory the test makes (`src`).
fn with_secret() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret/key");
    write(&secret, SECRET);
    let src = tmp.path().join("src");
    (tmp, secret, src)
}

/// No regular file below `target` (read without following symlinks) holds the root-only file's bytes.
fn no_secret_in(target: &std::path::Path) {
    for (p, data) in regular_files(target) {
        assert_ne!(data, SECRET, "{p:?}");
    }
}

/// Regular files below `dir`, read without following symlinks (a FIFO or a symlink is never opened).
fn regular_files(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir(dir) {
        if std::fs::symlink_metadata(&e).unwrap().file_type().is_file() {
            let data = std::fs::read(&e).unwrap();
            out.push((e, data));
        }
    }
    out
}

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
    // The directory has a record: its files are examined by `lstat`, then opened.
    recorded(&repo, &src, &["a-file", "c-renamed"]);

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

    let target = restored(&repo, &r, t);
    let restored = files(&target.join(src.strip_prefix("/").unwrap()));
    let names: Vec<_> = restored.keys().cloned().collect();
    assert_eq!(names, [PathBuf::from("z-kept")], "only the untouched file is stored");
    for (p, data) in files(&target) {
        assert!(data != SECRET && data != OTHER, "{p:?} holds content the walk never examined");
    }
}

/// In a directory the files cache has no record of, a regular file is examined through its handle: opened first
/// (never through a symlink, never blocking), then `fstat`ed. A swap after the open changes nothing (the handle is the
/// file the walk examined and reads); an entry swapped after the directory was listed and before the walk reached it
/// is stored as what the walk finds there: a symlink as a symlink (its target is never opened), a FIFO as a FIFO
/// (never read, the backup does not block), another file as that file. Nothing of the root-only file is stored.
/// The read-ahead helpers open at most `READ_AHEAD` entries beyond the one whose hook runs, so fillers put the
/// swapped entries out of their reach (the next test races them inside it).
#[test]
fn a_new_file_is_examined_through_its_open_handle_and_an_entry_swapped_before_it_as_what_it_became() {
    let (tmp, secret, src) = with_secret();
    let t = tmp.path();
    write(&t.join("other"), OTHER);
    write(&src.join("a-file"), b"public a");
    write(&src.join("b-dir/inner"), b"public inner");
    write(&src.join("c-renamed"), b"public c");
    write(&src.join("d-later-symlink"), b"public d");
    write(&src.join("e-later-fifo"), b"public e");
    write(&src.join("f-later-renamed"), b"public f");
    write(&src.join("z-kept"), b"public z");
    for i in 0..cairn::backup::READ_AHEAD {
        write(&src.join(format!("c-filler-{i:03}")), b"public filler");
    }
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));

    let (s, tt, key) = (src.clone(), t.to_path_buf(), secret.clone());
    let hook = move |p: &std::path::Path| {
        let Ok(rel) = p.strip_prefix(&s) else { return };
        match rel.to_str() {
            // After a-file's open: it becomes a symlink to the root-only file, and the entries the walk has listed
            // but not reached are swapped for a symlink, a FIFO and another file.
            Some("a-file") => {
                std::fs::remove_file(p).unwrap();
                std::os::unix::fs::symlink(&key, p).unwrap();
                let d = s.join("d-later-symlink");
                std::fs::remove_file(&d).unwrap();
                std::os::unix::fs::symlink(&key, &d).unwrap();
                let e = s.join("e-later-fifo");
                std::fs::remove_file(&e).unwrap();
                mkfifo(&e);
                std::fs::rename(tt.join("other"), s.join("f-later-renamed")).unwrap();
            }
            // Directories are still examined by `lstat` first: this one is refused, as in a recorded directory.
            Some("b-dir") => {
                std::fs::rename(p, tt.join("moved")).unwrap();
                std::os::unix::fs::symlink(tt.join("secret"), p).unwrap();
            }
            // After c-renamed's open another file is renamed over it: the handle still reads the old one.
            Some("c-renamed") => {
                write(&tt.join("renamed-over"), b"renamed over after the open");
                std::fs::rename(tt.join("renamed-over"), p).unwrap();
            }
            _ => {}
        }
    };
    let opts = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();
    let reported: Vec<PathBuf> = r.errors.iter().map(|e| PathBuf::from(&e.path)).collect();
    assert_eq!(reported, [src.join("b-dir")], "{:?}", r.errors);

    let target = restored(&repo, &r, t);
    let out = target.join(src.strip_prefix("/").unwrap());
    let mut got: Vec<(String, Vec<u8>)> = regular_files(&out)
        .into_iter()
        .map(|(p, d)| (p.strip_prefix(&out).unwrap().display().to_string(), d))
        .collect();
    got.sort();
    let fillers = got.iter().filter(|(n, d)| n.starts_with("c-filler-") && d == b"public filler").count();
    assert_eq!(fillers, cairn::backup::READ_AHEAD);
    got.retain(|(n, _)| !n.starts_with("c-filler-"));
    let want: Vec<(String, Vec<u8>)> =
        [("a-file", &b"public a"[..]), ("c-renamed", b"public c"), ("f-later-renamed", OTHER), ("z-kept", b"public z")]
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_vec()))
            .collect();
    assert_eq!(got, want, "files as the walk examined them through their handles");
    let d = out.join("d-later-symlink");
    assert!(std::fs::symlink_metadata(&d).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&d).unwrap(), secret);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(out.join("e-later-fifo")).unwrap().file_type().is_fifo());
    no_secret_in(&target);
}

/// The read-ahead helpers race a local user inside their window: when the first file of a new directory is opened,
/// every later entry is swapped for a symlink to a root-only file, a FIFO, or another file, while the helpers may
/// have opened it already or not. Whichever came first, each entry is stored as the object one handle showed: the
/// original file with its own bytes, or the symlink as a symlink (never followed), or the FIFO as a FIFO (never
/// read; the backup does not block), or the other file; nothing is reported as an error, and nothing of the
/// root-only file is stored.
#[test]
fn entries_swapped_while_the_read_ahead_opens_them_are_stored_as_one_object_each() {
    let (tmp, secret, src) = with_secret();
    let t = tmp.path();
    write(&src.join("a-first"), b"public first");
    let n = 3 * cairn::backup::READ_AHEAD;
    let original = |i: usize| format!("public {i:03}").into_bytes();
    let other = |i: usize| format!("other {i:03}, renamed into place").into_bytes();
    for i in 0..n {
        write(&src.join(format!("e-{i:03}")), &original(i));
    }
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));

    let (s, tt, key) = (src.clone(), t.to_path_buf(), secret.clone());
    let hook = move |p: &std::path::Path| {
        if p != s.join("a-first") {
            return;
        }
        for i in 0..n {
            let e = s.join(format!("e-{i:03}"));
            match i % 3 {
                0 => {
                    let tmp = tt.join(format!("link-{i:03}"));
                    std::os::unix::fs::symlink(&key, &tmp).unwrap();
                    std::fs::rename(&tmp, &e).unwrap();
                }
                1 => {
                    let tmp = tt.join(format!("fifo-{i:03}"));
                    mkfifo(&tmp);
                    std::fs::rename(&tmp, &e).unwrap();
                }
                _ => {
                    let tmp = tt.join(format!("other-{i:03}"));
                    write(&tmp, &other(i));
                    std::fs::rename(&tmp, &e).unwrap();
                }
            }
        }
    };
    let opts =
        BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), threads: 2, ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    let target = restored(&repo, &r, t);
    let out = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(out.join("a-first")).unwrap(), b"public first");
    let (mut kept, mut swapped) = (0, 0);
    for i in 0..n {
        let e = out.join(format!("e-{i:03}"));
        let ft = std::fs::symlink_metadata(&e).unwrap().file_type();
        use std::os::unix::fs::FileTypeExt;
        if ft.is_file() && std::fs::read(&e).unwrap() == original(i) {
            kept += 1;
            continue;
        }
        swapped += 1;
        match i % 3 {
            0 => {
                assert!(ft.is_symlink(), "e-{i:03}: {ft:?}");
                assert_eq!(std::fs::read_link(&e).unwrap(), secret);
            }
            1 => assert!(ft.is_fifo(), "e-{i:03}: {ft:?}"),
            _ => assert_eq!(std::fs::read(&e).unwrap(), other(i), "e-{i:03}"),
        }
    }
    assert_eq!(kept + swapped, n);
    // The entries beyond the window were not opened before the swap.
    assert!(swapped >= n - cairn::backup::READ_AHEAD - 1, "kept {kept}, swapped {swapped}");
    no_secret_in(&target);
}

/// The files of a directory the files cache has no record of are opened ahead of the walk by several helpers at
/// once: the hook of the first file waits until the hook of another runs, which only a second opener can do while
/// the first is held (one opener at a time would wait out the timeout and the test fails).
#[test]
fn new_files_are_opened_ahead_of_the_walk_by_several_helpers_at_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let src = t.join("src");
    // Enough files for the read-ahead window to hold more than one batch.
    let n = cairn::backup::READ_AHEAD + 8;
    for i in 0..n {
        write(&src.join(format!("f-{i:03}")), format!("public {i}").as_bytes());
    }
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));
    let (s, other_ran, overlapped) = (src.clone(), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (o, ov) = (other_ran.clone(), overlapped.clone());
    let hook = move |p: &std::path::Path| {
        if p == s.join("f-000") {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < until {
                if o.load(Ordering::SeqCst) {
                    ov.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        } else if p.parent() == Some(&s) {
            o.store(true, Ordering::SeqCst);
        }
    };
    let opts =
        BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), threads: 2, ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(overlapped.load(Ordering::SeqCst), "another file was opened while the first one's open was held");
    let target = restored(&repo, &r, t);
    let got = files(&target.join(src.strip_prefix("/").unwrap()));
    for i in 0..n {
        assert_eq!(got[&PathBuf::from(format!("f-{i:03}"))], format!("public {i}").into_bytes());
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
    recorded(&repo, &src, &["a-fifo"]);

    let s = src.clone();
    let hook = move |p: &std::path::Path| {
        if p.strip_prefix(&s).ok().and_then(|r| r.to_str()) == Some("a-fifo") {
            std::fs::remove_file(p).unwrap();
            mkfifo(p);
        }
    };
    let opts = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();

    let reported: Vec<PathBuf> = r.errors.iter().map(|e| PathBuf::from(&e.path)).collect();
    assert_eq!(reported, [src.join("a-fifo")], "{:?}", r.errors);
    assert!(r.errors[0].message.contains("not stored"), "{:?}", r.errors);

    let target = restored(&repo, &r, t);
    let names: Vec<_> = files(&target.join(src.strip_prefix("/").unwrap())).keys().cloned().collect();
    assert_eq!(names, [PathBuf::from("z-kept")]);
}

/// The files cache against a local user (the walker only compares an unchanged file with its directory's record and
/// the builder makes its node from that record): a file the record holds unchanged and swapped for a symlink to a
/// root-only file right after its `lstat` keeps the content the record names, its own; one swapped before the walk
/// reaches it is a symlink in the snapshot. Nothing of the root-only file is stored either way.
#[test]
fn files_the_records_hold_unchanged_and_swapped_for_symlinks_store_nothing_of_the_target() {
    let (tmp, secret, src) = with_secret();
    let t = tmp.path();
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

    let target = restored(&repo, &r, t);
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

/// A local user resizes files between the walk's `lstat` and its read, so the size the chunker is told (it sizes
/// its buffer by it) is a lie: one file of a few bytes becomes 9 MiB (read as a small file first, then chunked
/// past what it was said to hold), one of 9 MiB is cut to 5 MiB. Each is stored as read, byte for byte, with a
/// warning naming it, and the rest of the tree is untouched.
#[test]
fn files_resized_after_their_stat_are_stored_exactly_as_read() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let src = t.join("src");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..9 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    write(&src.join("a-grows"), b"small");
    write(&src.join("b-shrinks"), b"small too");
    write(&src.join("z-kept"), b"public z");
    let repo = init_local(&t.join("repo"), b"pw", &t.join("cache"));
    recorded(&repo, &src, &["a-grows"]);
    // 9 MiB when the walk examines it.
    let other: Vec<u8> = big.iter().rev().copied().collect();
    write(&src.join("b-shrinks"), &other);

    let (s, grown, cut) = (src.clone(), big.clone(), other[..5 << 20].to_vec());
    let hook = move |p: &std::path::Path| match p.strip_prefix(&s).ok().and_then(|r| r.to_str()) {
        Some("a-grows") => std::fs::write(p, &grown).unwrap(),
        Some("b-shrinks") => std::fs::write(p, &cut).unwrap(),
        _ => {}
    };
    let opts = BackupOptions { test_before_open: Some(WalkHook(Arc::new(hook))), ..BackupOptions::default() };
    let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &opts, &NoProgress).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    for name in ["a-grows", "b-shrinks"] {
        assert!(r.warnings.iter().any(|w| std::path::Path::new(&w.path) == src.join(name)), "{name}: {:?}", r.warnings);
    }

    let target = restored(&repo, &r, t);
    let got = files(&target.join(src.strip_prefix("/").unwrap()));
    assert_eq!(got.len(), 3);
    assert!(got[&PathBuf::from("a-grows")] == big, "the grown file, as read");
    assert!(got[&PathBuf::from("b-shrinks")] == other[..5 << 20], "the cut file, as read");
    assert_eq!(got[&PathBuf::from("z-kept")], b"public z");
}

//! Restore through the binary against a local user's planted symlink (issue 10, finding 1): refused with exit 1
//! and the path named, or replaced with `--overwrite`; never written through. And `--no-special-files` with its
//! `special_skipped` count in `--json` (finding 7). The library tests (`tests/library/hostile_restore.rs`) cover
//! hostile trees and the other flags.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::common::*;

/// Names, modes and mtimes of everything in `dir` (not following symlinks), and file contents.
fn listing(dir: &Path) -> Vec<(String, u32, i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        let body = if m.is_file() { fs::read(&p).unwrap() } else { Vec::new() };
        out.push((p.display().to_string(), m.mode(), m.mtime(), m.mtime_nsec(), body));
    }
    let m = fs::symlink_metadata(dir).unwrap();
    out.push((dir.display().to_string(), m.mode(), m.mtime(), m.mtime_nsec(), Vec::new()));
    out.sort();
    out
}

#[test]
fn restore_never_writes_through_a_symlink_planted_where_a_directory_goes() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("etc/x"), b"restored\n");
    repo.backup(&[&src], &[]);
    let outside = repo.mkdir("outside");
    write_file(&outside.join("keep"), b"not to be touched\n");
    let before = listing(&outside);

    let target = repo.mkdir("target");
    let restored = restored_path(&target, &src);
    fs::create_dir_all(&restored).unwrap();
    std::os::unix::fs::symlink(&outside, restored.join("etc")).unwrap();

    let out = repo.run(&["restore", "latest", "--target", s(&target)]);
    assert_eq!(out.status.code(), Some(1), "a planted symlink without --overwrite\n{}", describe(&out));
    assert!(stderr(&out).contains("etc") && stderr(&out).contains("symlink"), "{}", describe(&out));
    assert_eq!(listing(&outside), before, "the refused restore changed the outside directory");

    repo.ok(&["restore", "latest", "--target", s(&target), "--overwrite"]);
    assert_eq!(listing(&outside), before, "--overwrite wrote through the planted symlink");
    assert!(fs::symlink_metadata(restored.join("etc")).unwrap().is_dir());
    assert_eq!(fs::read(restored.join("etc/x")).unwrap(), b"restored\n");
}

#[test]
fn restore_no_special_files_skips_a_fifo_and_counts_it() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f"), b"file\n");
    let fifo = std::ffi::CString::new(src.join("p").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    repo.backup(&[&src], &[]);

    let target = repo.mkdir("skip");
    let res = repo.json(&["restore", "latest", "--target", s(&target), "--no-special-files"]);
    assert_eq!(num(&res, "special_skipped"), 1, "{res}");
    assert_eq!(num(&res, "other"), 0, "{res}");
    let restored = restored_path(&target, &src);
    assert!(fs::symlink_metadata(restored.join("p")).is_err(), "the fifo was created");
    assert_eq!(fs::read(restored.join("f")).unwrap(), b"file\n");

    let target = repo.mkdir("all");
    let res = repo.json(&["restore", "latest", "--target", s(&target)]);
    assert_eq!(num(&res, "special_skipped"), 0, "{res}");
    assert!(fs::symlink_metadata(restored_path(&target, &src).join("p")).unwrap().file_type().is_fifo());
}

//! `prune` and `forget --prune`: two phases across runs, dry runs that change nothing, the grace warning, one JSON
//! document, usage errors, and a prune killed with SIGKILL at an arbitrary point that the next run finishes (the
//! lock of a dead process on this host is stale at once). The lock itself (exit 11) is tested in the library tests.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

/// Every object path of the repository, with its size.
fn objects(root: &Path) -> BTreeSet<(String, u64)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<(String, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert((p.strip_prefix(base).unwrap().to_string_lossy().into_owned(), e.metadata().unwrap().len()));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn pack_bytes(root: &Path) -> u64 {
    objects(root).iter().filter(|(p, _)| p.starts_with("data/") || p.starts_with("tree/")).map(|(_, s)| s).sum()
}

/// Two snapshots of `src`: the first with a large file the second lacks.
fn two_generations(repo: &Repo) -> (std::path::PathBuf, String, String) {
    let src = repo.mkdir("src");
    write_file(&src.join("kept.bin"), &random_bytes(1, 2 * MIB));
    write_file(&src.join("gone.bin"), &random_bytes(2, 3 * MIB));
    let first = string(&repo.backup(&[&src], &[]), "snapshot_id");
    std::fs::remove_file(src.join("gone.bin")).unwrap();
    write_file(&src.join("new.txt"), b"second generation\n");
    let second = string(&repo.backup(&[&src], &[]), "snapshot_id");
    (src, first, second)
}

#[test]
fn forget_prune_then_prune_returns_the_space_and_keeps_what_is_kept() {
    let repo = Repo::new();
    let (src, _first, second) = two_generations(&repo);
    let before = pack_bytes(&repo.repo);

    // forget --prune --grace 0: removes the old snapshot and marks; nothing is deleted yet. One JSON document.
    let out = repo.run(&["forget", "--keep-last", "1", "--prune", "--grace", "0", "--force", "--json"]);
    let out = expect_success(&repo.command(&["forget"]), out);
    let v = parse_json(&out);
    assert_eq!(v["forget"]["removed"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["prune"]["plan"]["mark"].is_object(), "forget --prune made no mark: {v}");
    assert!(stderr(&out).contains("below 24h"), "no warning for a short grace: {}", stderr(&out));
    assert!(pack_bytes(&repo.repo) >= before, "phase 1 must not delete");

    // A dry run of the sweep changes nothing and says what it would delete.
    let objs = objects(&repo.repo);
    let text = repo.ok(&["prune", "--grace", "0", "--force", "--dry-run"]);
    assert!(text.contains("would delete") && text.contains("dry run"), "{text}");
    assert_eq!(objects(&repo.repo), objs, "prune --dry-run changed the repository");

    // The sweep deletes the 3 MiB only the old snapshot used.
    let v = repo.json(&["prune", "--grace", "0", "--force"]);
    assert!(num(&v["report"], "deleted_packs") > 0, "{v}");
    let after = pack_bytes(&repo.repo);
    assert!(after + 2 * MIB as u64 <= before, "prune returned too little: {before} -> {after}");
    repo.ok(&["check", "--read-data"]);
    let target = repo.path("restore");
    repo.restore(&second, &target);
    assert_same_contents(&src, &restored_path(&target, &src));
    // Nothing is left to do.
    let v = repo.json(&["prune", "--grace", "0"]);
    assert!(v["plan"]["mark"].is_null() && v["plan"]["sweep"].is_null(), "{v}");
}

#[test]
fn the_default_grace_period_keeps_condemned_packs() {
    let repo = Repo::new();
    two_generations(&repo);
    repo.ok(&["forget", "--keep-last", "1"]);
    let out = repo.run(&["prune"]);
    let out = expect_success(&repo.command(&["prune"]), out);
    assert!(!stderr(&out).contains("below 24h"), "{}", stderr(&out));
    let objs = pack_bytes(&repo.repo);
    let text = repo.ok(&["prune"]);
    assert!(text.contains("grace period: due in 2"), "{text}");
    assert_eq!(pack_bytes(&repo.repo), objs);
    // Bad option values are usage errors.
    repo.expect_code(&["prune", "--grace", "soon"], 2);
    repo.expect_code(&["prune", "--max-unused", "150%"], 2);
    repo.expect_code(&["prune", "--max-repack-size", "lots"], 2);
}

#[test]
fn a_prune_killed_at_any_moment_leaves_a_repository_that_check_accepts_and_the_next_prune_finishes() {
    let repo = Repo::new();
    let (src, _first, second) = two_generations(&repo);
    repo.ok(&["forget", "--keep-last", "1"]);
    // Mark, so that the killed run has a sweep to do; then kill runs at growing delays.
    repo.ok(&["prune", "--grace", "0", "--force", "--max-unused", "0%"]);
    for delay_ms in [5u64, 40, 120] {
        let mut child = spawn(repo.command(&["prune", "--grace", "0", "--force", "--max-unused", "0%"]));
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        repo.ok(&["check"]);
        // A lock left by the killed process (same host, dead pid) does not stop the next run.
        repo.ok(&["prune", "--grace", "0", "--force", "--max-unused", "0%"]);
        repo.ok(&["check", "--read-data"]);
        let target = repo.path(&format!("restore-{delay_ms}"));
        repo.restore(&second, &target);
        assert_same_contents(&src, &restored_path(&target, &src));
    }
}

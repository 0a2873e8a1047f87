//! `prune` and `forget --prune`: two phases across runs, dry runs that change nothing, the grace warning, one JSON
//! document, usage errors, and a prune killed with SIGKILL at each step of its sweep that the next run finishes (the
//! lock of a dead process on this host is stale at once). The lock itself (exit 11) is tested in the library tests.

use std::path::Path;

use crate::common::*;

fn pack_bytes(root: &Path) -> u64 {
    object_sizes(root).iter().filter(|(p, _)| p.starts_with("data/") || p.starts_with("tree/")).map(|(_, s)| s).sum()
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
    let objs = object_sizes(&repo.repo);
    let text = repo.ok(&["prune", "--grace", "0", "--force", "--dry-run"]);
    assert!(text.contains("would delete") && text.contains("dry run"), "{text}");
    assert_eq!(object_sizes(&repo.repo), objs, "prune --dry-run changed the repository");

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
    repo.expect_usage_error(&["prune", "--grace", "soon"], &["--grace", "soon"]);
    repo.expect_usage_error(&["prune", "--max-unused", "150%"], &["--max-unused", "150%"]);
    repo.expect_usage_error(&["prune", "--max-repack-size", "lots"], &["--max-repack-size", "lots"]);
}

/// A prune killed with SIGKILL at each step of its sweep — before the new index file, between it and the deletion
/// of the old ones, in the middle of the pack deletions, and before the mark's removal — leaves a repository that
/// `check` accepts, and the next run (whose lock check finds the dead process on this host) finishes the sweep:
/// the space comes back and what is kept restores. Each kill comes at a pause point before that storage operation
/// (`Pause`), on a fresh copy of the marked repository.
#[test]
fn a_prune_killed_at_any_step_of_its_sweep_leaves_a_repository_that_check_accepts_and_the_next_prune_finishes() {
    let repo = Repo::new();
    let (src, _first, second) = two_generations(&repo);
    let before = pack_bytes(&repo.repo);
    repo.ok(&["forget", "--keep-last", "1"]);
    // Mark, so that the killed run has a sweep to do.
    let prune = ["prune", "--grace", "0", "--force", "--max-unused", "0%"];
    repo.ok(&prune);
    let marked = repo.path("marked");
    copy_tree(&repo.repo, &marked);
    for (op, prefix, nth) in
        [("write", "index/", 0), ("delete", "index/", 0), ("delete", "data/", 0), ("delete", "prune/mark-", 0)]
    {
        let name = format!("{op}-{}", prefix.trim_end_matches(['/', '-']).replace('/', "-"));
        let dir = repo.path(&format!("killed-{name}"));
        copy_tree(&marked, &dir);
        let on = |args: &[&str]| {
            let mut c = repo.command(args);
            c.env("CAIRN_REPOSITORY", &dir).env("CAIRN_CACHE_DIR", repo.path(&format!("cache-{name}")));
            c
        };
        let ok = |args: &[&str]| {
            let out = run_cmd(on(args));
            String::from_utf8_lossy(&expect_success(&on(args), out).stdout).into_owned()
        };
        let pause = Pause::new(&repo.base, &name);
        let mut cmd = on(&prune);
        pause.arm(&mut cmd, op, prefix, nth);
        let mut child = spawn(cmd);
        let what = pause.wait(&mut child);
        assert!(what.starts_with(&format!("{op} {prefix}")), "{name}: paused at {what}");
        child.kill().unwrap();
        child.wait().unwrap();
        ok(&["check"]);
        // A lock left by the killed process (same host, dead pid) does not stop the next run.
        ok(&prune);
        assert!(
            pack_bytes(&dir) + 2 * MIB as u64 <= before,
            "{name}: the next prune did not finish the sweep: {before} -> {}",
            pack_bytes(&dir)
        );
        ok(&["check", "--read-data"]);
        let target = repo.path(&format!("restore-{name}"));
        ok(&["restore", &second, "--target", s(&target)]);
        assert_same_contents(&src, &restored_path(&target, &src));
    }
}

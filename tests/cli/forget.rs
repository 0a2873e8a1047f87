//! `forget`: retention by flags and by a policy file, dry runs that change nothing, reasons in the output, and the
//! refusal to empty a group.

use std::collections::BTreeSet;
use std::fs;

use serde_json::Value;

use crate::common::*;

/// Backs up `src` at each time (UTC) with the given tags; returns the snapshot ids in order.
fn history(repo: &Repo, src: &std::path::Path, times: &[(&str, &[&str])]) -> Vec<String> {
    times
        .iter()
        .enumerate()
        .map(|(i, (time, tags))| {
            write_file(&src.join("f.txt"), format!("version {i}\n").as_bytes());
            let mut args = vec!["--time", *time];
            for t in *tags {
                args.extend(["--tag", *t]);
            }
            string(&repo.backup(&[src], &args), "snapshot_id")
        })
        .collect()
}

fn ids(repo: &Repo) -> BTreeSet<String> {
    repo.snapshots().iter().map(|s| string(s, "id")).collect()
}

#[test]
fn keep_daily_removes_the_rest_and_dry_run_changes_nothing() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let all = history(
        &repo,
        &src,
        &[
            ("2024-03-01T08:00:00Z", &[]),
            ("2024-03-01T20:00:00Z", &[]),
            ("2024-03-02T08:00:00Z", &[]),
            ("2024-03-03T08:00:00Z", &["audit"]),
            ("2024-03-04T08:00:00Z", &[]),
            ("2024-03-04T09:00:00Z", &[]),
        ],
    );
    let before = ids(&repo);

    let plan = repo.json(&["forget", "--keep-daily", "2", "--keep-tag", "audit", "--tz", "UTC", "--dry-run"]);
    assert_eq!(ids(&repo), before, "--dry-run removed snapshots");
    let groups = plan["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "one host and one path: one group: {plan}");
    let verdict = |id: &str| -> Value {
        groups[0]["snapshots"].as_array().unwrap().iter().find(|s| s["id"] == id).cloned().unwrap()
    };
    // Daily 2 keeps the newest of 4 March and of 3 March; the tag keeps 3 March too.
    assert_eq!(verdict(&all[5])["keep"], true);
    assert_eq!(verdict(&all[4])["keep"], false, "older snapshot of the same day");
    let reasons = verdict(&all[3])["reasons"].to_string();
    assert!(reasons.contains("daily") && reasons.contains("tag audit"), "reasons of the 3 March snapshot: {reasons}");
    assert_eq!(verdict(&all[0])["keep"], false);

    let done = repo.json(&["forget", "--keep-daily", "2", "--keep-tag", "audit", "--tz", "UTC"]);
    assert_eq!(done["removed"].as_array().unwrap().len(), 4, "{done}");
    let expected: BTreeSet<String> = [all[3].clone(), all[5].clone()].into_iter().collect();
    assert_eq!(ids(&repo), expected);
    // What is left restores.
    let target = repo.mkdir("t");
    repo.restore(&all[3], &target);
    assert_eq!(fs::read_to_string(restored_path(&target, &src).join("f.txt")).unwrap(), "version 3\n");
}

#[test]
fn forget_refuses_to_empty_a_group_or_to_run_without_a_policy() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    history(&repo, &src, &[("2024-01-01T00:00:00Z", &[]), ("2024-01-02T00:00:00Z", &[])]);
    let before = ids(&repo);

    let out = repo.run(&["forget", "--keep-tag", "nothing-has-this"]);
    assert_eq!(out.status.code(), Some(1), "emptying a group must be refused\n{}", describe(&out));
    assert!(stderr(&out).contains("--allow-empty"), "{}", describe(&out));
    assert_eq!(ids(&repo), before, "a refused forget removed snapshots");

    repo.expect_usage_error(&["forget"], &["--keep-", "--policy"]);
    assert_eq!(ids(&repo), before);

    repo.ok(&["forget", "--keep-tag", "nothing-has-this", "--allow-empty"]);
    assert!(ids(&repo).is_empty());
}

#[test]
fn policy_file_applies_classes_by_tag() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let all = history(
        &repo,
        &src,
        &[
            ("2017-06-01T00:00:00Z", &["critical"]),
            ("2019-01-01T00:00:00Z", &["transient"]),
            ("2024-01-01T00:00:00Z", &["critical"]),
            ("2024-01-02T00:00:00Z", &["transient"]),
            ("2024-01-03T00:00:00Z", &[]),
        ],
    );
    let policy = repo.path("policy.toml");
    fs::write(
        &policy,
        r#"
[[class]]
name = "critical"
tags = ["critical"]
keep-within = "7y"

[[class]]
name = "transient"
tags = ["transient"]
keep-within = "30d"

[default]
keep-daily = 30
"#,
    )
    .unwrap();
    // Group by host only, so the classes see every snapshot of the host.
    repo.ok(&["forget", "--policy", repo.path("policy.toml").to_str().unwrap(), "--group-by", "host"]);
    let expected: BTreeSet<String> =
        [all[0].clone(), all[2].clone(), all[3].clone(), all[4].clone()].into_iter().collect();
    assert_eq!(ids(&repo), expected, "the 2019 transient snapshot goes; critical ones within 7 years stay");

    let bad = repo.path("bad.toml");
    fs::write(&bad, "[default]\nkeep-dayly = 3\n").unwrap();
    let out = repo.expect_code(&["forget", "--policy", bad.to_str().unwrap()], 2);
    assert!(stderr(&out).contains("keep-dayly"), "the error names the bad key\n{}", describe(&out));
}

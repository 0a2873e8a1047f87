//! `cairn status` (docs/cli-contract.md): the monitoring-plugin exit codes 0 OK, 1 WARNING (age between `--warn`
//! and `--rpo`, or a partial run), 2 CRITICAL (age past `--rpo`, no snapshot, a size change of at least
//! `--size-change`), 3 UNKNOWN (repository unreachable, wrong password, bad argument); the `--json` fields; and
//! that it reads nothing under `data/` or `tree/`.

use crate::common::{describe, now_secs, parse_json, s, write_file, Repo};
use serde_json::Value;
use std::fs;

/// `--time` for a snapshot taken `secs` ago.
fn ago(secs: i64) -> String {
    jiff::Timestamp::from_second(now_secs() - secs).unwrap().to_string()
}

const H: i64 = 3600;

/// A repository with one snapshot of a 1000-byte tree taken `age` seconds ago (host `h1`).
fn one_snapshot(age: i64) -> (Repo, String) {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a"), &[7u8; 1000]);
    let id = repo.backup(&[&src], &["--host", "h1", "--time", &ago(age)])["snapshot_id"].as_str().unwrap().to_string();
    (repo, id)
}

/// `status ARGS` with its exit code asserted; stdout.
fn status(repo: &Repo, args: &[&str], code: i32) -> String {
    let mut a = vec!["status"];
    a.extend_from_slice(args);
    String::from_utf8(repo.expect_code(&a, code).stdout).unwrap()
}

fn status_json(repo: &Repo, args: &[&str], code: i32) -> Value {
    let mut a = vec!["status", "--json"];
    a.extend_from_slice(args);
    parse_json(&repo.expect_code(&a, code))
}

#[test]
fn fresh_snapshot_is_ok_with_its_json_fields() {
    let (repo, id) = one_snapshot(2 * H);
    let text = status(&repo, &["--warn", "20h"], 0);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("CAIRN OK - 1 group(s), newest snapshots at most 2h 0min old | groups=1 "), "{text}");
    assert!(first.contains(";72000;86400;0"), "perfdata carries the thresholds: {text}");
    let src = repo.path("src");
    assert_eq!(
        text.lines().nth(1).unwrap(),
        format!("OK host h1, paths {}: newest {} 2h 0min old, 1000 B, last run ok", s(&src), &id[..8])
    );
    let v = status_json(&repo, &["--warn", "20h"], 0);
    assert_eq!((v["status"].as_str(), v["exit_code"].as_i64()), (Some("OK"), Some(0)), "{v}");
    assert!(v["now"].as_str().unwrap().ends_with('Z'), "{v}");
    let g = &v["groups"][0];
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(g["host"], "h1");
    assert_eq!(g["paths"], serde_json::json!([s(&src)]));
    assert_eq!((g["status"].as_str(), g["reasons"].as_array().unwrap().len()), (Some("OK"), 0));
    assert_eq!((g["snapshots"].as_u64(), g["flagged"].as_u64()), (Some(1), Some(0)));
    assert_eq!(g["newest"]["id"].as_str(), Some(id.as_str()));
    assert_eq!(g["newest"]["short_id"].as_str(), Some(&id[..8]));
    let age = g["newest"]["age_secs"].as_i64().unwrap();
    assert!((2 * H..2 * H + 120).contains(&age), "{g}");
    assert_eq!((g["newest"]["bytes_processed"].as_u64(), g["newest"]["errors"].as_u64()), (Some(1000), Some(0)));
    assert!(g["previous"].is_null() && g["size_change"].is_null(), "{g}");
    assert_eq!(g["last_run"], "ok");
    assert!(g.get("tags").is_some_and(Value::is_null) && g.get("writer").is_some_and(Value::is_null), "{g}");
}

#[test]
fn age_between_warn_and_rpo_is_warning() {
    let (repo, id) = one_snapshot(21 * H);
    let text = status(&repo, &["--warn", "20h", "--rpo", "24h"], 1);
    assert!(text.starts_with("CAIRN WARNING - 1 group(s) (0 critical, 1 warning)"), "{text}");
    assert!(text.contains(&format!("newest snapshot {} is 21h 0min old, past 20h 0min", &id[..8])), "{text}");
    // Without --warn the same snapshot is fresh enough.
    status(&repo, &[], 0);
}

#[test]
fn age_past_rpo_is_critical() {
    let (repo, _) = one_snapshot(25 * H);
    let text = status(&repo, &["--warn", "20h", "--rpo", "24h"], 2);
    assert!(text.starts_with("CAIRN CRITICAL - 1 group(s) (1 critical, 0 warning)"), "{text}");
    assert!(text.contains("past the RPO of 24h 0min"), "{text}");
    // A longer RPO accepts it.
    status(&repo, &["--rpo", "2d"], 0);
}

#[test]
fn size_jump_of_half_is_critical_with_size_change() {
    let (repo, _) = one_snapshot(2 * H);
    let src = repo.path("src");
    write_file(&src.join("b"), &[8u8; 500]);
    let second =
        repo.backup(&[&src], &["--host", "h1", "--time", &ago(H)])["snapshot_id"].as_str().unwrap().to_string();
    let v = status_json(&repo, &["--size-change", "50%"], 2);
    let g = &v["groups"][0];
    assert_eq!((g["status"].as_str(), g["size_change"].as_f64()), (Some("CRITICAL"), Some(0.5)), "{v}");
    assert_eq!(g["newest"]["id"].as_str(), Some(second.as_str()));
    assert_eq!(g["previous"]["bytes_processed"].as_u64(), Some(1000));
    assert!(g["reasons"][0].as_str().unwrap().contains("+50.0%"), "{g}");
    // Below the jump, or without the rule: OK, the change still reported.
    status(&repo, &["--size-change", "60%"], 0);
    let text = status(&repo, &[], 0);
    assert!(text.contains("1.46 KiB (+50.0%)"), "{text}");
}

#[test]
fn no_snapshot_is_critical_and_groups_are_judged_apart() {
    let repo = Repo::new();
    let text = status(&repo, &[], 2);
    assert_eq!(text.lines().nth(1), Some("CRITICAL all snapshots: no snapshot"), "{text}");
    assert!(text.lines().next().unwrap().ends_with("| groups=1 critical=1 warning=0 age_max=U;;86400;0"), "{text}");
    let src = repo.mkdir("src");
    write_file(&src.join("a"), b"x");
    repo.backup(&[&src], &["--host", "old", "--time", &ago(30 * H)]);
    repo.backup(&[&src], &["--host", "new", "--time", &ago(H)]);
    let v = status_json(&repo, &[], 2);
    let states: Vec<(&str, &str)> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["host"].as_str().unwrap(), g["status"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![("new", "OK"), ("old", "CRITICAL")]);
    status(&repo, &["--host", "new"], 0);
    // A filter that selects nothing is CRITICAL too.
    status(&repo, &["--host", "gone"], 2);
}

#[test]
fn unknown_when_the_repository_cannot_be_read() {
    let (repo, _) = one_snapshot(H);
    let missing = repo.path("nowhere");
    let out = repo.expect_code(&["status", "-r", s(&missing)], 3);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("CAIRN UNKNOWN - ") && text.contains("nowhere"), "{}", describe(&out));
    let mut cmd = repo.command(&["status", "--json"]);
    cmd.env("CAIRN_PASSWORD", "wrong");
    let out = crate::common::run_cmd(cmd);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let v = parse_json(&out);
    assert_eq!((v["status"].as_str(), v["exit_code"].as_i64()), (Some("UNKNOWN"), Some(3)), "{v}");
    assert!(v["error"].as_str().unwrap().contains("password"), "{v}");
    // A bad argument is UNKNOWN too (not 2, which is CRITICAL here).
    let out = repo.expect_code(&["status", "--rpo", "6m"], 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("6m"), "{}", describe(&out));
    repo.expect_code(&["status", "--no-such-flag"], 3);
    // Other commands keep exit 2 for usage errors.
    repo.expect_code(&["snapshots", "--no-such-flag"], 2);
}

#[test]
fn status_reads_nothing_under_data_or_tree() {
    let (repo, _) = one_snapshot(H);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("now");
        v["groups"][0]["newest"].as_object_mut().unwrap().remove("age_secs");
        v
    };
    let before = strip(status_json(&repo, &["--warn", "20h"], 0));
    fs::rename(repo.repo.join("data"), repo.base.join("data-archived")).unwrap();
    fs::rename(repo.repo.join("tree"), repo.base.join("tree-archived")).unwrap();
    fs::remove_dir_all(&repo.cache).unwrap();
    assert_eq!(strip(status_json(&repo, &["--warn", "20h"], 0)), before);
    // The test really took them away.
    repo.expect_code(&["ls", "latest"], 1);
}

#[test]
fn status_json_conforms_to_the_contract() {
    use crate::contract::conforms;
    use serde_json::json;
    let (repo, _) = one_snapshot(2 * H);
    let src = repo.path("src");
    repo.backup(&[&src], &["--host", "h1"]);
    let facts = json!({"id": "hex", "short_id": "short", "time": "time", "age_secs": "n", "bytes_processed": "n",
                       "errors": "n"});
    let spec = json!({"status": "str", "exit_code": "n", "now": "time", "groups": [{
        "name": "str?", "host": "str?", "paths": "arr", "tags": "arr?", "writer": "str?", "status": "str",
        "reasons": "arr", "snapshots": "n", "flagged": "n", "newest": facts, "previous": facts,
        "size_change": "num?", "last_run": "str?"}]});
    conforms("status", &status_json(&repo, &["--group-by", "host,paths,writer"], 0), &spec);
    let v = status_json(&repo, &["--group-by", "host,paths,writer"], 0);
    assert!(v["groups"][0]["writer"].is_string(), "{v}");
    let out = repo.expect_code(&["status", "--json", "-r", s(&repo.path("nowhere"))], 3);
    conforms("status (unknown)", &parse_json(&out), &json!({"status": "str", "exit_code": "n", "error": "str"}));
}

#[test]
fn flagged_snapshots_do_not_count_as_fresh() {
    let (repo, old) = one_snapshot(30 * H);
    // Dated two hours ahead: flagged `future` (format-spec §4.3), so it does not make the group fresh.
    let src = repo.path("src");
    repo.backup(&[&src], &["--host", "h1", "--time", &ago(-2 * H)]);
    let v = status_json(&repo, &[], 2);
    let g = &v["groups"][0];
    assert_eq!((g["snapshots"].as_u64(), g["flagged"].as_u64()), (Some(1), Some(1)), "{v}");
    assert_eq!(g["newest"]["id"].as_str(), Some(old.as_str()));
    // A group whose only snapshot is flagged has none that counts.
    repo.backup(&[&src], &["--host", "h2", "--time", &ago(-2 * H)]);
    let text = status(&repo, &["--host", "h2"], 2);
    assert!(text.contains(": no snapshot that counts (1 flagged: future)"), "{text}");
}

#[test]
fn jobs_are_judged_by_their_own_group_and_thresholds() {
    let repo = Repo::new();
    let (web, db) = (repo.mkdir("web"), repo.mkdir("db"));
    write_file(&web.join("a"), b"web");
    write_file(&db.join("b"), b"db");
    let profile = repo.path("cairn.toml");
    fs::write(
        &profile,
        format!(
            "[repository.main]\nurl = {:?}\n\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\nhost = \"h1\"\n\
             rpo = \"1h\"\n\n[job.db]\nrepository = \"main\"\npaths = [{:?}]\nhost = \"h1\"\n\
             commands = [{{ path = \"db.sql\", command = \"printf x\" }}]\n",
            s(&repo.repo),
            s(&web),
            s(&db)
        ),
    )
    .unwrap();
    let cfg = s(&profile);
    // web's snapshot is 3 h old: past the job's 1 h rpo although the command line's default is 24 h.
    repo.backup(&[&web], &["--host", "h1", "--time", &ago(3 * H)]);
    let web_status = status_json(&repo, &["--config", cfg, "web"], 2);
    assert_eq!(web_status["groups"][0]["name"], "job web", "{web_status}");
    // db has no snapshot of its own yet: a backup of its directory alone is another group (no db.sql).
    repo.backup(&[&db], &["--host", "h1", "--time", &ago(2 * H)]);
    let text = status(&repo, &["--config", cfg, "db"], 2);
    assert!(text.contains("CRITICAL job db"), "{text}");
    repo.backup(&[&db], &["--host", "h1", "--time", &ago(2 * H), "--command", "db.sql=printf x"]);
    status(&repo, &["--config", cfg, "db"], 0);
    // The worst job decides; a job the profile lacks is UNKNOWN.
    status(&repo, &["--config", cfg, "db", "web"], 2);
    status(&repo, &["--config", cfg, "--rpo", "48h", "db"], 0);
    let text = status(&repo, &["--config", cfg, "nosuch"], 3);
    assert!(text.contains("no job \"nosuch\""), "{text}");
}

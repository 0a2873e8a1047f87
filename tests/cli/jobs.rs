//! Job profiles (docs/jobs.md): `cairn config check` on good and broken profiles and on every file of
//! docs/examples/, `cairn run` making one snapshot per job with its tags and host, forgetting in its own group by
//! its retention, pruning only when due, running its hooks with the outcome in the environment, and exiting with
//! the worst outcome; the systemd units of docs/examples/ pass `systemd-analyze verify`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;
use crate::contract::conforms;

/// The `run --json` report of docs/cli-contract.md.
fn report_spec() -> Value {
    serde_json::json!({"job": "str", "repository": "str", "dry_run": "bool", "outcome": "str", "exit_code": "num",
        "failed_step": "str?", "error": "str?", "snapshot_id": "hex?", "backup": "obj?", "forget": "obj?",
        "prune": "obj?", "prune_due": "bool?", "last_prune": "time?", "hooks": [{"hook": "str", "exit_code": "num?"}],
        "plan": "obj?", "started": "time", "finished": "time"})
}

/// The `config check --json` document of docs/cli-contract.md.
fn check_spec() -> Value {
    serde_json::json!({"file": "str", "jobs": [{"job": "str", "repository": "str", "url": "str", "password": "str",
        "paths": "arr", "commands": "arr", "excludes": "arr", "tags": "arr", "host": "str?", "retention_file": "str?",
        "retention": [{"name": "str", "tags": "arr", "rules": "str"}], "prune_every": "str?",
        "hooks": {"before": "arr", "after": "arr", "on_failure": "arr"}, "rpo": "str?", "warn": "str?",
        "size_change": "str?", "metrics_file": "str?"}]})
}

/// Writes `text` as `base/NAME` and returns its path.
fn profile(r: &Repo, name: &str, text: &str) -> PathBuf {
    let p = r.path(name);
    fs::write(&p, text).unwrap();
    p
}

/// The `[repository.main]` table of the fixture's repository (password and cache from the fixture's environment).
fn repo_table(r: &Repo) -> String {
    format!("[repository.main]\nurl = {:?}\n", s(&r.repo))
}

/// `run ARGS... --json --config PROFILE`: the exit code and the per-job reports.
fn run_json(r: &Repo, cfg: &Path, args: &[&str]) -> (i32, Vec<Value>) {
    let mut a = vec!["--config", s(cfg), "run", "--json"];
    a.extend_from_slice(args);
    let out = r.run(&a);
    let reports = match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(v)) => v,
        _ => panic!("run --json must print an array of job reports\n{}", describe(&out)),
    };
    (out.status.code().unwrap_or(-1), reports)
}

/// `KEY=VALUE` lines of a hook's `env` dump, as a map of the CAIRN_* variables.
fn env_file(p: &Path) -> std::collections::BTreeMap<String, String> {
    let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("hook file {}: {e}", p.display()));
    text.lines()
        .filter(|l| l.starts_with("CAIRN_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn two_dirs(r: &Repo) -> (PathBuf, PathBuf) {
    let a = r.mkdir("etc-app");
    let b = r.mkdir("var-lib-app");
    write_file(&a.join("app.conf"), b"listen = 8080\n");
    write_file(&b.join("state.bin"), &random_bytes(1, 200 * KIB));
    (a, b)
}

#[test]
fn config_check_names_unknown_key_and_line() {
    let r = Repo::new();
    let text =
        format!("{}\n[job.web]\nrepository = \"main\"\npaths = [\"/etc\"]\nprune_evry = \"7d\"\n", repo_table(&r));
    let cfg = profile(&r, "bad.toml", &text);
    let out = r.expect_code(&["config", "check", "--config", s(&cfg)], 2);
    let err = stderr(&out);
    assert!(err.contains("prune_evry") && err.contains("line 7") && err.contains(s(&cfg)), "{}", describe(&out));
    // A bad value: the key and the line too; nothing runs.
    let text = format!("{}\n[job.web]\nrepository = \"main\"\npaths = [\"/etc\"]\nrpo = \"1 day\"\n", repo_table(&r));
    let cfg = profile(&r, "bad2.toml", &text);
    let out = r.expect_code(&["--config", s(&cfg), "run", "web"], 2);
    let err = stderr(&out);
    assert!(err.contains("job.web.rpo") && err.contains("line 7"), "{}", describe(&out));
    assert!(r.snapshots().is_empty());
    // CAIRN_CONFIG names the file as --config does.
    let mut cmd = r.command(&["config", "check"]);
    cmd.env("CAIRN_CONFIG", &cfg);
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("job.web.rpo"), "{}", describe(&out));
}

#[test]
fn config_check_prints_the_plan() {
    let r = Repo::new();
    let policy = profile(&r, "retention.toml", "[default]\nkeep-daily = 7\n");
    let text = format!(
        "{}password_env = \"APP_PASS\"\n\n[job.web]\nrepository = \"main\"\npaths = [\"/etc/app\"]\ntags = [\"daily\"]\n\
         retention_file = {:?}\nprune_every = \"7d\"\nbefore = \"true\"\nrpo = \"24h\"\nsize_change = \"50%\"\n",
        repo_table(&r),
        s(&policy)
    );
    let cfg = profile(&r, "ok.toml", &text);
    let v = r.json(&["config", "check", "--config", s(&cfg)]);
    conforms("config check", &v, &check_spec());
    let job = &v["jobs"][0];
    assert_eq!(job["job"], "web");
    assert_eq!(job["password"], "variable APP_PASS");
    assert_eq!(job["retention"], serde_json::json!([{"name": "default", "tags": [], "rules": "daily 7"}]));
    assert_eq!((&job["prune_every"], &job["rpo"], &job["size_change"]), (&"7d".into(), &"24h".into(), &"50%".into()));
    let text = r.ok(&["config", "check", "--config", s(&cfg)]);
    assert!(text.contains("job web:") && text.contains("prune       every 7d"), "{text}");
    // A broken retention file is caught by the check.
    fs::write(&policy, "[default]\nkeep-dayly = 7\n").unwrap();
    let out = r.expect_code(&["config", "check", "--config", s(&cfg)], 2);
    assert!(stderr(&out).contains("keep-dayly"), "{}", describe(&out));
}

#[test]
fn run_makes_one_snapshot_and_forgets_in_its_group() {
    let r = Repo::new();
    let (a, b) = two_dirs(&r);
    let (pa, pb) = (s(&a), s(&b));
    // History of the job's group, and one snapshot of another group that the job's retention must not touch.
    for day in ["2026-01-01", "2026-01-02", "2026-01-03"] {
        r.backup(
            &[&a, &b],
            &["--host", "web-1", "--tag", "daily", "--time", day, "--command", "db/dump.sql=printf old"],
        );
    }
    // The other group backs up the job's directories and one more, with the same host and tag.
    let c = r.mkdir("srv-other");
    let other: Vec<String> = ["2026-01-01", "2026-01-02", "2026-01-03"]
        .iter()
        .map(|day| {
            string(&r.backup(&[&a, &b, &c], &["--host", "web-1", "--tag", "daily", "--time", day]), "snapshot_id")
        })
        .collect();
    let text = format!(
        "{}\n[job.web]\nrepository = \"main\"\npaths = [{pa:?}, {pb:?}]\ntags = [\"daily\", \"app\"]\nhost = \"web-1\"\n\
         excludes = [\"*.tmp\"]\ncommands = [{{ path = \"db/dump.sql\", command = \"printf 'row 1'\" }}]\n\
         [job.web.retention.default]\nkeep-last = 2\n",
        repo_table(&r)
    );
    write_file(&a.join("junk.tmp"), b"excluded");
    let cfg = profile(&r, "cairn.toml", &text);
    let (code, reports) = run_json(&r, &cfg, &["web"]);
    assert_eq!(code, 0, "{reports:?}");
    let rep = &reports[0];
    conforms("run", rep, &report_spec());
    assert_eq!((&rep["job"], &rep["outcome"], &rep["exit_code"]), (&"web".into(), &"ok".into(), &0.into()));
    let id = string(rep, "snapshot_id");
    assert_eq!(rep["backup"]["snapshot_id"], Value::from(id.clone()));
    let snaps = r.snapshots_filtered(&["--tag", "app"]);
    assert_eq!(snaps.len(), 1, "one snapshot for both directories: {snaps:?}");
    let snap = &snaps[0];
    assert_eq!(string(snap, "id"), id);
    assert_eq!(snap["host"], "web-1");
    assert_eq!(snap["tags"], serde_json::json!(["daily", "app"]));
    let paths: Vec<&str> = snap["paths"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(paths.contains(&pa) && paths.contains(&pb), "{paths:?}");
    assert!(!r.ls(&id).iter().any(|l| l.ends_with("junk.tmp")), "the job's excludes apply");
    assert_eq!(r.ok_bytes(&["dump", &id, "/db/dump.sql"]), b"row 1", "the command's output is in the same snapshot");
    // keep-last 2 in the job's group: the new snapshot and 2026-01-03 stay; the other group is untouched.
    let removed = rep["forget"]["removed"].as_array().unwrap().len();
    assert_eq!(removed, 2, "{}", rep["forget"]);
    let ids: Vec<String> = r.snapshots().iter().map(|s| string(s, "id")).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(other.iter().all(|o| ids.contains(o)) && ids.contains(&id), "another group's snapshots stay: {ids:?}");
    // No prune_every: no prune.
    assert_eq!((&rep["prune"], &rep["prune_due"]), (&Value::Null, &Value::Null));
}

#[test]
fn run_prunes_only_when_due() {
    let r = Repo::new();
    let (a, _) = two_dirs(&r);
    let text =
        format!("{}\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\nprune_every = \"7d\"\n", repo_table(&r), s(&a));
    let cfg = profile(&r, "cairn.toml", &text);
    // First run: never pruned, so due; the state file records it under the cache dir by repository id.
    let (code, reports) = run_json(&r, &cfg, &["web"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(reports[0]["prune_due"], true);
    assert!(reports[0]["prune"]["plan"].is_object(), "{}", reports[0]);
    let repo_id = r.init_info.as_ref().unwrap()["repository_id"].as_str().unwrap().to_string();
    let state = r.cache.join("jobs").join(format!("{repo_id}.json"));
    let recorded: Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    assert!(recorded["last_prune"].is_string(), "{recorded}");
    // Second run right after: not due.
    let (code, reports) = run_json(&r, &cfg, &["web"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!((&reports[0]["prune_due"], &reports[0]["prune"]), (&Value::Bool(false), &Value::Null));
    assert_eq!(reports[0]["last_prune"], recorded["last_prune"]);
    // Eight days later (the state file says so): due again.
    let old = serde_json::json!({"last_prune": "2020-01-01T00:00:00Z"});
    fs::write(&state, old.to_string()).unwrap();
    let (_, reports) = run_json(&r, &cfg, &["web"]);
    assert_eq!(reports[0]["prune_due"], true);
    assert!(reports[0]["prune"].is_object(), "{}", reports[0]);
}

#[test]
fn hooks_see_the_outcome_and_a_failing_before_hook_stops_the_job() {
    let r = Repo::new();
    let (a, _) = two_dirs(&r);
    let (before, after, failed) = (r.path("before.env"), r.path("after.env"), r.path("failed.env"));
    let text = format!(
        "{}\n[job.ok]\nrepository = \"main\"\npaths = [{:?}]\nbefore = \"env > {}\"\nafter = \"env > {}\"\n\
         on_failure = \"env > {}\"\n",
        repo_table(&r),
        s(&a),
        s(&before),
        s(&after),
        s(&failed)
    );
    let cfg = profile(&r, "cairn.toml", &text);
    let (code, reports) = run_json(&r, &cfg, &["ok"]);
    assert_eq!(code, 0, "{reports:?}");
    let id = string(&reports[0], "snapshot_id");
    let b = env_file(&before);
    assert_eq!(
        (b["CAIRN_JOB"].as_str(), b["CAIRN_HOOK"].as_str(), b["CAIRN_OUTCOME"].as_str()),
        ("ok", "before", "pending")
    );
    let e = env_file(&after);
    assert_eq!(e["CAIRN_OUTCOME"], "ok");
    assert_eq!(e["CAIRN_SNAPSHOT_ID"], id);
    assert_eq!((e["CAIRN_EXIT_CODE"].as_str(), e["CAIRN_ERROR"].as_str()), ("0", ""));
    assert!(!failed.exists(), "on_failure must not run after a good run");
    // Hooks do not inherit the password (README "Security model").
    assert!(!b.contains_key("CAIRN_PASSWORD") && !e.contains_key("CAIRN_PASSWORD"), "{b:?}");
    assert!(b.contains_key("CAIRN_REPOSITORY"), "the rest of the environment is passed on: {b:?}");

    // A failing before hook: no backup, exit 1, on_failure ran with the failure, after did not.
    fs::remove_file(&after).unwrap();
    let text = format!(
        "{}\n[job.bad]\nrepository = \"main\"\npaths = [{:?}]\nbefore = \"exit 4\"\nafter = \"env > {}\"\n\
         on_failure = \"env > {}\"\n",
        repo_table(&r),
        s(&a),
        s(&after),
        s(&failed)
    );
    let cfg = profile(&r, "bad.toml", &text);
    let before_snaps = r.snapshots().len();
    let (code, reports) = run_json(&r, &cfg, &["bad"]);
    assert_eq!(code, 1, "{reports:?}");
    conforms("run", &reports[0], &report_spec());
    assert_eq!((&reports[0]["outcome"], &reports[0]["failed_step"]), (&"failure".into(), &"before".into()));
    assert_eq!(r.snapshots().len(), before_snaps, "no backup after a failing before hook");
    assert!(!after.exists(), "after must not run after a failure");
    let f = env_file(&failed);
    assert_eq!((f["CAIRN_JOB"].as_str(), f["CAIRN_HOOK"].as_str()), ("bad", "on_failure"));
    assert_eq!((f["CAIRN_OUTCOME"].as_str(), f["CAIRN_EXIT_CODE"].as_str()), ("failure", "1"));
    assert_eq!((f["CAIRN_FAILED_STEP"].as_str(), f["CAIRN_SNAPSHOT_ID"].as_str()), ("before", ""));
    assert!(f["CAIRN_ERROR"].contains("exit 4") || f["CAIRN_ERROR"].contains("exit status: 4"), "{f:?}");
}

#[test]
fn a_failing_command_makes_no_snapshot_and_fails_the_job() {
    let r = Repo::new();
    let (a, _) = two_dirs(&r);
    let text = format!(
        "{}\n[job.db]\nrepository = \"main\"\npaths = [{:?}]\n\
         commands = [{{ path = \"db.sql\", command = \"echo partial; echo boom >&2; exit 7\" }}]\n",
        repo_table(&r),
        s(&a)
    );
    let cfg = profile(&r, "cairn.toml", &text);
    let (code, reports) = run_json(&r, &cfg, &["db"]);
    assert_eq!(code, 1, "{reports:?}");
    assert_eq!((&reports[0]["outcome"], &reports[0]["failed_step"]), (&"failure".into(), &"backup".into()));
    assert_eq!(reports[0]["snapshot_id"], Value::Null);
    assert!(reports[0]["error"].as_str().unwrap().contains("db.sql"), "{}", reports[0]);
    assert!(r.snapshots().is_empty());
}

#[test]
fn run_all_exits_with_the_worst_outcome() {
    let r = Repo::new();
    let (a, b) = two_dirs(&r);
    let missing = r.path("missing");
    let text = format!(
        "{}\n[job.good]\nrepository = \"main\"\npaths = [{:?}]\n\n[job.broken]\nrepository = \"main\"\npaths = [{:?}]\n\
         before = \"false\"\n",
        repo_table(&r),
        s(&a),
        s(&b)
    );
    let cfg = profile(&r, "cairn.toml", &text);
    let (code, reports) = run_json(&r, &cfg, &["--all"]);
    assert_eq!(code, 1, "{reports:?}");
    let outcomes: Vec<(&str, &str)> =
        reports.iter().map(|r| (r["job"].as_str().unwrap(), r["outcome"].as_str().unwrap())).collect();
    assert_eq!(outcomes, vec![("broken", "failure"), ("good", "ok")]);
    // One job ok and one partial (a path that cannot be read): 3.
    let text = format!(
        "{}\n[job.good]\nrepository = \"main\"\npaths = [{:?}]\n\n[job.partial]\nrepository = \"main\"\npaths = [{:?}, {:?}]\n",
        repo_table(&r),
        s(&a),
        s(&b),
        s(&missing)
    );
    let cfg = profile(&r, "partial.toml", &text);
    let (code, reports) = run_json(&r, &cfg, &["good", "partial"]);
    assert_eq!(code, 3, "{reports:?}");
    assert_eq!((&reports[0]["outcome"], &reports[1]["outcome"]), (&"ok".into(), &"partial".into()));
    // An unknown job is a usage error before anything runs.
    let n = r.snapshots().len();
    r.expect_usage_error(&["--config", s(&cfg), "run", "good", "nosuch"], &["nosuch"]);
    assert_eq!(r.snapshots().len(), n);
    // --dry-run runs nothing.
    let (code, reports) = run_json(&r, &cfg, &["--all", "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(reports[0]["plan"]["job"], "good");
    assert_eq!(r.snapshots().len(), n);
}

/// docs/examples/ in the repository.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("examples")
}

#[test]
fn example_profiles_pass_config_check() {
    let r = Repo::uninit();
    let mut n = 0;
    for e in fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let v = r.json(&["config", "check", "--config", s(&p)]);
            assert!(!v["jobs"].as_array().unwrap().is_empty(), "{}: no job", p.display());
            n += 1;
        }
    }
    assert!(n >= 2, "docs/examples/ must hold the service and postgres profiles");
    // The profile of README's "Jobs" section.
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let jobs = &readme[readme.find("### Jobs").expect("README has a Jobs section")..];
    let start = jobs.find("```toml\n").expect("README's Jobs section shows a profile") + 8;
    let end = start + jobs[start..].find("```").unwrap();
    let cfg = r.path("readme.toml");
    fs::create_dir_all(&r.base).unwrap();
    fs::write(&cfg, &jobs[start..end]).unwrap();
    let v = r.json(&["config", "check", "--config", s(&cfg)]);
    assert_eq!(v["jobs"][0]["job"], "service");
}

#[test]
fn example_systemd_units_verify() {
    let Some(analyze) =
        ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].into_iter().find(|p| Path::new(p).exists())
    else {
        assert!(!crate::servers::required(), "systemd-analyze is missing (CAIRN_TEST_SERVERS is set: install systemd)");
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let r = Repo::uninit();
    // The units run /usr/local/bin/cairn; verify checks that the binary exists, so point it at this build.
    let dir = r.mkdir("units");
    for unit in ["cairn-run@.service", "cairn-run@.timer"] {
        let text = fs::read_to_string(examples().join(unit)).unwrap();
        fs::write(dir.join(unit), text.replace("/usr/local/bin/cairn", cairn_bin())).unwrap();
    }
    // Instances of the templates, as systemd would load them.
    for (src, inst) in [("cairn-run@.service", "cairn-run@web.service"), ("cairn-run@.timer", "cairn-run@web.timer")] {
        fs::copy(dir.join(src), dir.join(inst)).unwrap();
    }
    let out = Command::new(analyze)
        .arg("verify")
        .arg(dir.join("cairn-run@web.service"))
        .arg(dir.join("cairn-run@web.timer"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Messages about units of the host system (not ours) are not this test's business.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("cairn-run@")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify:\n{err}");
}

#[test]
fn the_profile_names_the_password_source() {
    let r = Repo::new();
    let (a, _) = two_dirs(&r);
    let text = format!(
        "{}password_env = \"JOB_PASS\"\n\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\n",
        repo_table(&r),
        s(&a)
    );
    let cfg = profile(&r, "cairn.toml", &text);
    // The fixture's CAIRN_PASSWORD is removed: only the profile's variable is asked.
    let mut cmd = r.command(&["--config", s(&cfg), "run", "--json", "web"]);
    cmd.env_remove("CAIRN_PASSWORD").env("JOB_PASS", &r.password);
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Unset, it is an error naming it (the job's own code is the password's: 12), not a fall-back to CAIRN_PASSWORD.
    let out = r.run(&["--config", s(&cfg), "run", "--json", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&rep[0]["exit_code"], &rep[0]["failed_step"]), (&12.into(), &"backup".into()));
    assert!(rep[0]["error"].as_str().unwrap().contains("JOB_PASS"), "{}", rep[0]);
    // password_file, with the fixture's variable set to a wrong password: the file wins.
    let pass = r.path("pass");
    write_file(&pass, format!("{}\n", r.password).as_bytes());
    chmod(&pass, 0o600);
    let text = format!(
        "{}password_file = {:?}\n\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\n",
        repo_table(&r),
        s(&pass),
        s(&a)
    );
    let cfg = profile(&r, "file.toml", &text);
    let mut cmd = r.command(&["--config", s(&cfg), "run", "web"]);
    cmd.env("CAIRN_PASSWORD", "wrong");
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(r.snapshots().len(), 2);
}

#[test]
fn run_writes_the_jobs_metrics_labelled_with_the_job() {
    let r = Repo::new();
    let (a, _) = two_dirs(&r);
    let metrics = r.path("cairn.prom");
    let text = format!(
        "{}\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\nmetrics_file = {:?}\n",
        repo_table(&r),
        s(&a),
        s(&metrics)
    );
    let cfg = profile(&r, "cairn.toml", &text);
    let (code, reports) = run_json(&r, &cfg, &["web"]);
    assert_eq!(code, 0, "{reports:?}");
    let written = std::fs::read_to_string(&metrics).expect("the job's metrics file is written");
    let series: Vec<&str> = written.lines().filter(|l| !l.starts_with('#')).collect();
    let outcome = series
        .iter()
        .find(|l| l.starts_with("cairn_last_run_outcome{"))
        .unwrap_or_else(|| panic!("no outcome series in {written}"));
    assert!(outcome.contains("command=\"run\"") && outcome.contains("cairn_job=\"web\""), "{outcome}");
    assert!(outcome.ends_with(" 0.0"), "a successful run: {outcome}");
    assert!(
        series.iter().any(|l| l.starts_with("cairn_backup_files{") && l.contains("cairn_job=\"web\"")),
        "the backup step's counters carry the job label: {written}"
    );
}

#[test]
fn a_repository_table_chooses_its_jobs_verification() {
    let r = Repo::new();
    let src = r.mkdir("src");
    write_file(&src.join("f.txt"), &b"verify me ".repeat(50_000));
    let text = format!(
        "{}verify = \"compression\"\n\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\n",
        repo_table(&r),
        s(&src)
    );
    let cfg = profile(&r, "verify.toml", &text);
    let plan = r.ok(&["--config", s(&cfg), "run", "web", "--dry-run"]);
    assert!(plan.contains("--verify compression"), "{plan}");
    let (code, reports) = run_json(&r, &cfg, &["web"]);
    assert_eq!((code, reports[0]["outcome"].as_str()), (0, Some("ok")), "{reports:?}");
    let restored = r.path("restored");
    r.restore("latest", &restored);
    assert_same_contents(&src, &restored_path(&restored, &src));
    let cfg = profile(&r, "bad.toml", &text.replace("\"compression\"", "\"sometimes\""));
    r.expect_usage_error(&["--config", s(&cfg), "run", "web"], &["verify", "sometimes"]);
}

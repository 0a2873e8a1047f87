//! `--metrics-file` (docs/monitoring.md): the node_exporter textfile series after backup, forget, prune, check and
//! copy, one file shared by the commands (each keeps the others' series), written atomically, with no secret in it;
//! a failed run keeps the last success; `promtool check metrics` accepts a real file and `promtool check rules`
//! accepts docs/alerts.yml (promtool missing: a failure under `CAIRN_TEST_SERVERS=required`, else skipped).

use crate::common::{describe, parse_json, s, write_file, Repo, PASSWORD};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// The samples of a metrics file: `(name, sorted labels) -> value`.
fn samples(path: &Path) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let text = fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels = labels.trim_end_matches('}');
        let labels: BTreeMap<String, String> = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        out.insert((name.to_string(), labels), value.parse().unwrap());
    }
    out
}

/// The value of `name` for `command` (any other labels), if there is one such series.
fn value(m: &BTreeMap<(String, BTreeMap<String, String>), f64>, name: &str, command: &str) -> Option<f64> {
    let v: Vec<f64> = m.iter().filter(|((n, l), _)| n == name && l["command"] == command).map(|(_, v)| *v).collect();
    assert!(v.len() <= 1, "{name} {command}: {v:?}");
    v.first().copied()
}

fn promtool(args: &[&str], stdin: Option<&Path>) {
    let Some(bin) = crate::servers::promtool() else { return };
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(match stdin {
        Some(p) => Stdio::from(fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "promtool {args:?}: {}", describe(&out));
}

#[test]
fn backup_forget_prune_check_share_one_file_that_promtool_accepts() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a"), &[1u8; 1000]);
    let dir = repo.mkdir("textfile");
    let file = dir.join("cairn.prom");
    let m = ["--metrics-file", s(&file)];
    let before = crate::common::now_secs() as f64;
    repo.backup(&[&src], &m);
    write_file(&src.join("b"), &[2u8; 500]);
    let second = repo.backup(&[&src], &m);
    repo.ok(&["forget", "--keep-last", "1", m[0], m[1]]);
    repo.ok(&["prune", "--grace", "0", m[0], m[1]]);
    repo.ok(&["check", m[0], m[1]]);
    let got = samples(&file);
    for cmd in ["backup", "forget", "prune", "check"] {
        assert_eq!(value(&got, "cairn_last_run_outcome", cmd), Some(0.0), "{cmd}: {got:#?}");
        let t = value(&got, "cairn_last_success_timestamp_seconds", cmd).unwrap();
        assert!(t >= before && t == value(&got, "cairn_last_run_timestamp_seconds", cmd).unwrap(), "{cmd}");
        assert!(value(&got, "cairn_last_run_duration_seconds", cmd).unwrap() >= 0.0);
        assert_eq!(value(&got, "cairn_snapshots", cmd), Some(if cmd == "backup" { 2.0 } else { 1.0 }), "{cmd}");
        assert!(value(&got, "cairn_repository_size_bytes", cmd).unwrap() > 1000.0, "{cmd}");
    }
    // The backup's series are the second backup's: 1500 bytes against the parent's 1000.
    assert_eq!(value(&got, "cairn_backup_processed_bytes", "backup"), Some(1500.0));
    assert_eq!(value(&got, "cairn_backup_read_bytes", "backup"), Some(second["bytes_read"].as_u64().unwrap() as f64));
    assert_eq!(value(&got, "cairn_backup_added_bytes", "backup"), Some(second["bytes_added"].as_u64().unwrap() as f64));
    assert_eq!(
        value(&got, "cairn_backup_stored_bytes", "backup"),
        Some(second["bytes_added_stored"].as_u64().unwrap() as f64)
    );
    assert_eq!(value(&got, "cairn_backup_size_change_ratio", "backup"), Some(0.5));
    let files: BTreeMap<&str, f64> = got
        .iter()
        .filter(|((n, _), _)| n == "cairn_backup_files")
        .map(|((_, l), v)| (l["state"].as_str(), *v))
        .collect();
    assert_eq!(files, BTreeMap::from([("changed", 0.0), ("new", 1.0), ("unchanged", 1.0)]));
    assert_eq!(value(&got, "cairn_forget_removed_snapshots", "forget"), Some(1.0));
    assert_eq!(value(&got, "cairn_check_errors", "check"), Some(0.0));
    // Labels: the same four on every series; the repository path, this host; no password anywhere.
    let host = crate::common::run_cmd({
        let mut c = Command::new("uname");
        c.arg("-n");
        c
    });
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    for (_, l) in got.keys() {
        assert_eq!(l["repository"], s(&repo.repo));
        assert_eq!(l["host"], host);
        assert_eq!(l["cairn_job"], "");
    }
    let text = fs::read_to_string(&file).unwrap();
    assert!(!text.contains(PASSWORD), "{text}");
    // Only the file and its lock file are left in its directory (the temporary file was renamed over it).
    let mut names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, [".cairn.prom.lock", "cairn.prom"]);
    promtool(&["check", "metrics"], Some(&file));
    promtool(&["check", "rules", concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.yml")], None);
}

#[test]
fn a_failed_run_keeps_the_last_success_and_dry_runs_write_nothing() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a"), b"x");
    let file = repo.path("cairn.prom");
    // The variable works as the option does.
    let mut cmd = repo.command(&["check"]);
    cmd.env("CAIRN_METRICS_FILE", &file);
    let mut again = repo.command(&["check"]);
    again.env("CAIRN_METRICS_FILE", &file);
    crate::common::expect_success(&cmd, crate::common::run_cmd(again));
    let first = samples(&file);
    let success = value(&first, "cairn_last_success_timestamp_seconds", "check").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut cmd = repo.command(&["check", "--metrics-file", s(&file)]);
    cmd.env("CAIRN_PASSWORD", "wrong");
    let out = crate::common::run_cmd(cmd);
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    let got = samples(&file);
    assert_eq!(value(&got, "cairn_last_run_outcome", "check"), Some(2.0));
    assert_eq!(value(&got, "cairn_last_success_timestamp_seconds", "check"), Some(success));
    assert!(value(&got, "cairn_last_run_timestamp_seconds", "check").unwrap() > success);
    // Dry runs record nothing.
    let text = fs::read_to_string(&file).unwrap();
    repo.ok(&["backup", s(&src), "--dry-run", "--metrics-file", s(&file)]);
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
    // A corrupt file is replaced, with a warning naming it.
    fs::write(&file, "this is { not metrics\n").unwrap();
    let out = repo.run(&["backup", s(&src), "--json", "--metrics-file", s(&file)]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    parse_json(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not valid") && err.contains(s(&file)), "{err}");
    assert_eq!(value(&samples(&file), "cairn_last_run_outcome", "backup"), Some(0.0));
}

#[test]
fn copy_records_the_destination() {
    let from = Repo::new();
    let src = from.mkdir("src");
    write_file(&src.join("a"), b"copy me");
    from.backup(&[&src], &[]);
    let to = Repo::new();
    let file = to.path("cairn.prom");
    let args = ["copy", "--from-repo", s(&from.repo), "--metrics-file", s(&file)];
    let mut cmd = to.command(&args);
    cmd.env("CAIRN_FROM_PASSWORD", &from.password);
    let mut again = to.command(&args);
    again.env("CAIRN_FROM_PASSWORD", &from.password);
    crate::common::expect_success(&cmd, crate::common::run_cmd(again));
    let got = samples(&file);
    assert_eq!(value(&got, "cairn_copy_copied_snapshots", "copy"), Some(1.0));
    assert_eq!(value(&got, "cairn_snapshots", "copy"), Some(1.0));
    assert!(got.keys().all(|(_, l)| l["repository"] == s(&to.repo)), "{got:#?}");
}

#[test]
fn concurrent_commands_keep_each_others_series() {
    let repo = Repo::new();
    let file = repo.path("cairn.prom");
    let hosts: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    // `check` labels with this machine's host: use backups of one tiny source under six host names instead.
    let src = repo.mkdir("src");
    write_file(&src.join("a"), b"x");
    let children: Vec<_> = hosts
        .iter()
        .map(|h| {
            crate::common::spawn(repo.command(&["backup", s(&src), "--host", h, "-q", "--metrics-file", s(&file)]))
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let got = samples(&file);
    let seen: std::collections::BTreeSet<&str> =
        got.keys().filter(|(n, _)| n == "cairn_last_run_outcome").map(|(_, l)| l["host"].as_str()).collect();
    assert_eq!(seen, hosts.iter().map(String::as_str).collect());
}

/// A local user who can write the metrics directory (node_exporter's textfile directory often is) plants symlinks
/// where a root cairn will write: at the lock file's name (dangling, toward a file it must not create) and at the
/// metrics file itself (toward a file it must not change). cairn follows neither; the metrics file it writes
/// replaces the symlink, not its target.
#[test]
fn symlinks_planted_in_the_metrics_directory_are_not_followed() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a"), b"a");
    let dir = repo.mkdir("textfile");
    let victim = repo.path("victim.conf");
    fs::write(&victim, b"precious\n").unwrap();
    let created = repo.path("created-by-cairn");
    std::os::unix::fs::symlink(&created, dir.join(".cairn.prom.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("cairn.prom")).unwrap();
    let metrics = dir.join("cairn.prom");
    let out = repo.run(&["--metrics-file", s(&metrics), "backup", s(&src)]);
    assert!(!created.exists(), "the lock was opened through the symlink\n{}", describe(&out));
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n", "{}", describe(&out));
    // The lock refused to open: no metrics are written, and the backup itself succeeded with a warning.
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not written"), "{}", describe(&out));
    // With the planted lock gone, the metrics file replaces the symlink, not the file it pointed to.
    fs::remove_file(dir.join(".cairn.prom.lock")).unwrap();
    repo.ok(&["--metrics-file", s(&metrics), "backup", s(&src)]);
    assert!(!fs::symlink_metadata(&metrics).unwrap().file_type().is_symlink());
    assert!(fs::read_to_string(&metrics).unwrap().contains("cairn_last_run_outcome"));
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
}

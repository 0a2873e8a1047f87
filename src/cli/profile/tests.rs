use super::*;

const GOOD: &str = r#"
[repository.main]
url = "/srv/backup"
password_file = "/etc/cairn/main.pass"
options = { "s3.region" = "eu-west-1" }

[job.web]
repository = "main"
paths = ["/etc/app", "/var/lib/app"]
commands = [{ path = "redis/dump.rdb", command = "redis-cli --rdb -" }]
excludes = ["*.tmp"]
tags = ["daily"]
host = "web-1"
prune_every = "7d"
before = "echo start"
on_failure = ["echo one", "echo two"]
rpo = "24h"
warn = "20h"
size_change = "50%"
metrics_file = "/var/lib/node_exporter/cairn.prom"

[job.web.retention.default]
keep-daily = 30
keep-yearly = 7
"#;

fn err(text: &str) -> ProfileError {
    match parse(text) {
        Ok(_) => panic!("parsed: {text}"),
        Err(e) => e,
    }
}

#[test]
fn parses_a_full_profile() {
    let p = parse(GOOD).unwrap();
    let r = &p.repositories["main"];
    assert_eq!(r.password, Some(PasswordSource::File("/etc/cairn/main.pass".into())));
    assert_eq!(r.options, vec!["s3.region=eu-west-1".to_string()]);
    let j = &p.jobs["web"];
    assert_eq!(j.paths, vec![PathBuf::from("/etc/app"), PathBuf::from("/var/lib/app")]);
    assert_eq!(j.commands, vec![JobCommand { path: "redis/dump.rdb".into(), command: "redis-cli --rdb -".into() }]);
    assert_eq!(j.prune_every.map(|d| d.secs), Some(7 * 86400));
    assert_eq!(j.thresholds.rpo.map(|d| d.secs), Some(86400));
    assert_eq!(j.thresholds.size_change, Some((0.5, "50%".to_string())));
    assert_eq!(j.hooks.before, vec!["echo start".to_string()]);
    assert_eq!(j.hooks.on_failure.len(), 2);
    match &j.retention {
        Some(Retention::Inline(pf)) => assert!(pf.classes.is_empty() && pf.default.is_some()),
        other => panic!("retention: {other:?}"),
    }
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = "[repository.main]\nurl = \"/r\"\n\n[job.a]\nrepository = \"main\"\npaths = [\"/x\"]\nkeep_daily = 3\n";
    let e = err(text);
    assert_eq!(e.line, Some(7), "{e}");
    assert!(e.message.contains("keep_daily"), "{e}");
    // Inside the inline retention classes too (the policy-file parser's own tables).
    let text = "[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"main\"\npaths = [\"/x\"]\n\
                [job.a.retention.default]\nkeep-dayly = 3\n";
    let e = err(text);
    assert!(e.message.contains("keep-dayly"), "{e}");
    assert_eq!(e.line, Some(7), "{e}");
    let e = err("[repository.main]\nurl = \"/r\"\npasword_file = \"/p\"\n");
    assert_eq!((e.line, e.message.contains("pasword_file")), (Some(3), true), "{e}");
}

#[test]
fn bad_values_name_key_and_line() {
    let base = "[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"main\"\npaths = [\"/x\"]\n";
    for (extra, key) in [
        ("prune_every = \"7x\"", "prune_every"),
        ("prune_every = \"6mo\"", "prune_every"),
        ("rpo = \"6m\"", "rpo"),
        ("size_change = \"half\"", "size_change"),
        ("metrics_file = \"m.prom\"", "metrics_file"),
        ("retention_file = \"r.toml\"", "retention_file"),
        ("exclude_larger_than = \"big\"", "exclude_larger_than"),
        ("tags = \"daily\"", "tags"),
    ] {
        let e = err(&format!("{base}{extra}\n"));
        assert_eq!(e.line, Some(6), "{extra}: {e}");
        assert!(e.message.contains(key), "{extra}: {e}");
    }
    let e = err(&format!("{base}[job.a.retention.default]\nkeep-within = \"6m\"\n"));
    assert!(e.message.contains("job.a.retention") && e.message.contains("keep-within"), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
}

#[test]
fn checks_references_and_paths() {
    let e = err("[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"other\"\npaths = [\"/x\"]\n");
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("job.a.repository") && e.message.contains("other"), "{e}");
    let e = err("[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"main\"\npaths = [\"/x\", \"rel/y\"]\n");
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("job.a.paths") && e.message.contains("absolute"), "{e}");
    for bad in ["/abs", "a/../b", "./a", "a//b", "a/", "", ".."] {
        let text = format!(
            "[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"main\"\ncommands = [{{ path = {bad:?}, command = \"true\" }}]\n"
        );
        let e = err(&text);
        assert_eq!(e.line, Some(5), "{bad:?}: {e}");
        assert!(e.message.contains("job.a.commands"), "{bad:?}: {e}");
    }
    let e = err("[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"main\"\n");
    assert!(e.message.contains("nothing to back up"), "{e}");
    let e = err("[repository.main]\nurl = \"/r\"\npassword_file = \"/p\"\npassword_env = \"X\"\n");
    assert!(e.message.contains("password_env"), "{e}");
}

#[test]
fn relative_command_paths_are_accepted() {
    for good in ["app.sql", "redis/dump.rdb", "a.b/c-d_e"] {
        assert!(plain_relative(good), "{good}");
    }
    assert_eq!(size_change("200%"), Ok(2.0));
    assert!(size_change("0%").is_err());
    assert!(size_change("50").is_err());
}

#[test]
fn the_drill_table_is_parsed_and_checked() {
    let base = "[repository.main]\nurl = \"/r\"\n[job.a]\nrepository = \"main\"\npaths = [\"/x\"]\n[job.a.drill]\n";
    let p = parse(&format!(
        "{base}verify_command = \"true\"\nrto = \"90min\"\ninclude = [\"/x/db\"]\nevidence_dir = \"/ev\"\n"
    ))
    .unwrap();
    let d = p.jobs["a"].drill.clone().unwrap();
    assert_eq!(d.verify_command.as_deref(), Some("true"));
    assert_eq!(d.rto_ms, Some(5_400_000));
    assert_eq!(d.includes, vec!["/x/db".to_string()]);
    assert_eq!(d.evidence_dir, Some(PathBuf::from("/ev")));
    assert_eq!((d.stream, d.target), (None, None));
    assert_eq!(parse(&format!("{base}rto = \"250ms\"\n")).unwrap().jobs["a"].drill.as_ref().unwrap().rto_ms, Some(250));
    assert!(parse(base).unwrap().jobs["a"].drill.is_some());
    assert!(parse(&base.replace("[job.a.drill]\n", "")).unwrap().jobs["a"].drill.is_none());
    for (bad, line, words) in [
        ("rto = \"6m\"\n", 7, "job.a.drill.rto"),
        ("rto = \"0ms\"\n", 7, "above zero"),
        ("evidence_dir = \"ev\"\n", 7, "absolute"),
        ("stream = \"/x.dump\"\n", 7, "verify_command"),
        ("verify_command = \"c\"\nstream = \"/d\"\ntarget = \"/t\"\n", 8, "restores nothing"),
        ("verify = \"x\"\n", 7, "verify"),
    ] {
        let e = err(&format!("{base}{bad}"));
        assert_eq!(e.line, Some(line), "{bad}: {e}");
        assert!(e.message.contains(words), "{bad}: {e}");
    }
}

#[test]
fn a_repository_sets_its_jobs_verification_and_a_bad_one_names_key_and_line() {
    let p = parse("[repository.main]\nurl = \"/r\"\nverify = \"compression\"\n").unwrap();
    assert_eq!(p.repositories["main"].verify.as_deref(), Some("compression"));
    assert_eq!(parse("[repository.main]\nurl = \"/r\"\n").unwrap().repositories["main"].verify, None);
    let e = err("[repository.main]\nurl = \"/r\"\nverify = \"sometimes\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("verify") && e.message.contains("sometimes"), "{e}");
}

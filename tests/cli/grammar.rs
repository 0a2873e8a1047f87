//! One grammar per kind of argument and one exit-code rule (docs/cli-contract.md, "Arguments"): durations mean
//! the same in every flag and the policy file (`m` alone is refused), sizes are read one way, a malformed id or
//! prefix is a usage error (2) while a well-formed one that matches nothing, or more than one, is an error (1).
//! Also: `--json` shows the stored bytes of names as they are (no guessing that 32 bytes are an id), and the
//! completions and man pages come from the clap definition.

use crate::common::*;
use serde_json::Value;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ambiguous_minutes_or_months_is_a_usage_error_everywhere() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f"), b"x");
    repo.backup(&[&src], &[]);
    // Before: `prune --grace 6m` was 6 minutes and `forget --keep-within 6m` 6 months.
    for args in [
        &["prune", "--grace", "6m", "--dry-run"][..],
        &["forget", "--keep-within", "6m", "--dry-run"],
        &["forget", "--keep-within-daily", "1y6m", "--dry-run"],
    ] {
        let out = repo.expect_code(args, 2);
        let err = stderr_of(&out);
        assert!(err.contains("min") && err.contains("mo"), "{args:?}: the message says what to write: {err}");
    }
    let policy = repo.path("policy.toml");
    std::fs::write(&policy, "[default]\nkeep-within = \"6m\"\n").unwrap();
    let out = repo.expect_code(&["forget", "--policy", s(&policy), "--dry-run"], 2);
    assert!(stderr_of(&out).contains("6mo"), "{}", stderr_of(&out));

    // The same words mean the same everywhere.
    repo.ok(&["forget", "--keep-within", "6mo", "--dry-run"]);
    repo.ok(&["forget", "--keep-within", "2months", "--dry-run"]);
    std::fs::write(&policy, "[default]\nkeep-within = \"6mo\"\n").unwrap();
    repo.ok(&["forget", "--policy", s(&policy), "--dry-run"]);
    let v = repo.json(&["prune", "--grace", "90min", "--dry-run"]);
    assert!(v["plan"].is_object(), "{v}");
    // A grace period of fixed length only: months have none.
    let out = repo.expect_code(&["prune", "--grace", "6mo", "--dry-run"], 2);
    assert!(stderr_of(&out).contains("days"), "{}", stderr_of(&out));
    // Retention counts in hours or longer.
    repo.expect_code(&["forget", "--keep-within", "90min", "--dry-run"], 2);
}

#[test]
fn sizes_are_read_one_way() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("small"), &[1; 1000]);
    write_file(&src.join("big"), &[2; 3000]);
    // Both flags take fractions and the long unit names.
    for size in ["2K", "2KiB", "1.5k", "2kb"] {
        let v = repo.json(&["backup", s(&src), "--exclude-larger-than", size, "--dry-run"]);
        assert_eq!(num(&v, "files_new"), 1, "--exclude-larger-than {size}: {v}");
        repo.json(&["prune", "--max-repack-size", size, "--dry-run"]);
    }
    for bad in ["lots", "10X", "-1K"] {
        repo.expect_code(&["backup", s(&src), "--exclude-larger-than", bad], 2);
        repo.expect_code(&["prune", "--max-repack-size", bad], 2);
    }
}

#[test]
fn malformed_ids_are_usage_errors_and_unknown_ones_are_not_found() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f"), b"x");
    let id = string(&repo.backup(&[&src], &[]), "snapshot_id");
    let target = repo.path("t");
    // Malformed: not hex, too short, bad hex id: 2 (before: a bad snapshot prefix was 1, a bad hex id in cat 2).
    for args in [
        vec!["ls", "zzzz"],
        vec!["ls", "abc"],
        vec!["dump", "nothex!", "f"],
        vec!["restore", "xyz", "--target", s(&target)],
        vec!["cat", "snapshot", "qq"],
        vec!["cat", "tree", "abcd"],
        vec!["cat", "blob", "not-an-id"],
        vec!["key", "remove", "xyz"],
        vec!["backup", s(&src), "--parent", "nope"],
    ] {
        repo.expect_code(&args, 2);
    }
    // Well-formed but matching nothing: 1, and the message says what was not found.
    let other = if id.starts_with('0') { "1111" } else { "0000" };
    for args in [vec!["ls", other], vec!["cat", "snapshot", other], vec!["dump", other, "f"]] {
        let out = repo.expect_code(&args, 1);
        assert!(stderr_of(&out).contains("not found"), "{args:?}: {}", stderr_of(&out));
    }
    repo.expect_code(&["cat", "tree", &"ab".repeat(32)], 1);
    repo.expect_code(&["key", "remove", "0123456789abcdef"], 1);
    // Ambiguous: 2 (the argument must be longer). A second snapshot object whose name shares the first 63 digits (a copy: the prefix is
    // resolved on the listing, before anything is opened).
    let twin = format!("{}{}", &id[..63], if id.ends_with('0') { '1' } else { '0' });
    std::fs::copy(repo.repo.join("snapshots").join(&id), repo.repo.join("snapshots").join(&twin)).unwrap();
    let out = repo.expect_code(&["ls", &id[..8]], 2);
    assert!(stderr_of(&out).contains("ambiguous"), "{}", stderr_of(&out));
    std::fs::remove_file(repo.repo.join("snapshots").join(&twin)).unwrap();
    // The full id and an upper-case prefix work.
    assert!(!repo.ls(&id).is_empty());
    assert!(!repo.ls(&id[..6].to_ascii_uppercase()).is_empty());
}

#[test]
fn a_32_byte_file_name_is_shown_as_its_bytes_not_as_hex() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let name = "abcdefghijklmnopqrstuvwxyz012345";
    assert_eq!(name.len(), 32);
    // Above the inline threshold (format-spec §7.3), so its content is a data blob id.
    write_file(&src.join(name), &b"thirty-two\n".repeat(100));
    let snap = string(&repo.backup(&[&src], &[]), "snapshot_id");

    let ls = repo.json(&["ls", &snap]);
    let want = format!("{}/{name}", s(&src));
    assert!(ls.as_array().unwrap().iter().any(|e| e["path"] == want.as_str()), "ls --json: {ls}");

    // cat tree: names are the stored bytes (an array), whatever their length; hexify turned 32 of them into hex.
    // Writers store `V3` (format-spec §8.1): its fields directly under the variant.
    let root = repo.json(&["cat", "snapshot", &snap])["snapshot"]["V3"]["root"].as_str().unwrap().to_string();
    let mut tree = root;
    for comp in src.strip_prefix("/").unwrap().components() {
        let t = repo.json(&["cat", "tree", &tree]);
        let n = find_node(&t, comp.as_os_str().to_str().unwrap());
        tree = n["kind"]["Dir"]["tree"].as_str().unwrap().to_string();
    }
    let t = repo.json(&["cat", "tree", &tree]);
    let node = find_node(&t, name);
    assert!(node["name"].is_array(), "the name is its bytes: {node}");
    assert!(!t.to_string().contains(&hex_of(name.as_bytes())), "a name printed as hex: {t}");
    // Ids are hex strings.
    assert!(node["kind"]["File"]["content"]["Chunks"][0].as_str().is_some_and(|s| s.len() == 64), "{node}");
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn find_node(tree: &Value, name: &str) -> Value {
    tree["DirV1"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| {
            n["name"]
                .as_array()
                .is_some_and(|a| a.iter().map(|b| b.as_u64().unwrap() as u8).collect::<Vec<u8>>() == name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no {name:?} in {tree}"))
        .clone()
}

const COMMANDS: [&str; 14] = [
    "init",
    "key",
    "backup",
    "snapshots",
    "ls",
    "restore",
    "dump",
    "forget",
    "prune",
    "check",
    "repair",
    "copy",
    "cat",
    "completion",
];

#[test]
fn completions_and_man_pages_cover_every_command() {
    let repo = Repo::uninit();
    let bash = repo.ok(&["completion", "bash"]);
    for c in COMMANDS {
        assert!(bash.contains(c), "bash completion lacks {c}");
    }
    for flag in ["--exclude-larger-than", "--keep-within", "--grace", "--read-data-subset"] {
        assert!(bash.contains(flag), "bash completion lacks {flag}");
    }
    for shell in ["zsh", "fish"] {
        assert!(repo.ok(&["completion", shell]).contains("backup"), "{shell}");
    }
    repo.expect_code(&["completion", "tcsh"], 2);

    // A closed stdout (`cairn completion bash | head -0`) is an error (exit 1), not a panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = repo.command(&["completion", "bash"]);
    let out = cmd.stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!stderr_of(&out).contains("panicked"), "{}", describe(&out));

    let dir = repo.path("man");
    repo.ok(&["man", "--dir", s(&dir)]);
    for page in std::iter::once("cairn".to_string())
        .chain(COMMANDS.iter().map(|c| format!("cairn-{c}")))
        .chain(["cairn-key-add", "cairn-repair-index", "cairn-cat-tree"].map(String::from))
    {
        let p = dir.join(format!("{page}.1"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.contains(".TH"), "{page}: not a man page");
    }
    assert!(!dir.join("cairn-man.1").exists(), "the maintenance command has no page");
    let backup = std::fs::read_to_string(dir.join("cairn-backup.1")).unwrap();
    assert!(backup.contains("exclude\\-larger\\-than"), "the page lists the flags");
}

#[test]
fn every_verification_mode_stores_what_restores_and_a_mode_is_read_one_way() {
    let text: Vec<u8> = b"verify me before upload ".iter().cycle().take(700_000).copied().collect();
    let mut noise = vec![0u8; 300_000];
    getrandom::getrandom(&mut noise).unwrap();
    // A new repository for each mode, so that each stores every blob itself.
    for flags in [&["--verify", "full"][..], &["--verify", "compression"], &["--verify", "off"], &["--no-verify"], &[]]
    {
        let repo = Repo::new();
        let src = repo.mkdir("src");
        write_file(&src.join("large.txt"), &text);
        write_file(&src.join("small.txt"), &text[..20_000]);
        write_file(&src.join("noise.bin"), &noise);
        let v = repo.backup(&[&src], flags);
        assert!(v["blobs_added"].as_u64().unwrap() >= 3, "{flags:?}: {v}");
        let target = repo.path("restored");
        repo.restore(v["snapshot_id"].as_str().unwrap(), &target);
        assert_same_contents(&src, &restored_path(&target, &src));
        repo.ok(&["check", "--read-data"]);
    }
    let repo = Repo::new();
    let src = repo.mkdir("src");
    repo.expect_usage_error(&["backup", s(&src), "--verify", "sometimes"], &["--verify", "sometimes"]);
    repo.expect_usage_error(&["backup", s(&src), "--verify", "full", "--no-verify"], &["--no-verify"]);
}

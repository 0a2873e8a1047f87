//! Key files opened with a generated secret (`--new-secret-file`, format-spec §4.1): `init` and `key add` write the
//! secret to a new private file (never over an existing one) and the key file after it; the file then works as a
//! password file, and its text as `CAIRN_PASSWORD`; `key list` says which credential each key takes; a write-only
//! secret key reads nothing; `key passwd` can replace the key in use by a secret.

use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// The secret file's text, checked for its form: `cairn-secret-v1-`, 64 lowercase hex digits, a newline.
fn secret_text(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text.strip_suffix('\n').unwrap_or_else(|| panic!("no newline at the end of {text:?}"));
    let digits = line.strip_prefix("cairn-secret-v1-").unwrap_or_else(|| panic!("not a secret: {text:?}"));
    assert_eq!(digits.len(), 64, "{text:?}");
    assert!(digits.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{text:?}");
    line.to_string()
}

fn mode(file: &Path) -> u32 {
    std::fs::metadata(file).unwrap().permissions().mode() & 0o7777
}

/// `cmd` without the fixture's `CAIRN_PASSWORD`.
fn no_password(mut cmd: Command) -> Command {
    cmd.env_remove("CAIRN_PASSWORD");
    cmd
}

/// `cairn ARGS... --password-file FILE` with no other password source.
fn with_file(repo: &Repo, file: &Path, args: &[&str]) -> (Command, Output) {
    let mut all = vec!["--password-file", s(file)];
    all.extend_from_slice(args);
    let out = run_cmd(no_password(repo.command(&all)));
    (repo.command(&all), out)
}

fn key_list(repo: &Repo) -> Vec<Value> {
    repo.json(&["key", "list"]).as_array().unwrap().clone()
}

#[test]
fn init_with_a_new_secret_file_then_backup_with_the_secret_file_or_its_text() {
    let mut repo = Repo::uninit();
    let file = repo.path("repo.secret");
    // No password source at all, and no terminal: init asks for none.
    let init = no_password(repo.command(&["init", "--new-secret-file", s(&file), "--json"]));
    let out = expect_success(&repo.command(&["init"]), run_cmd(init));
    let info = parse_json(&out);
    assert_eq!(mode(&file), 0o600, "the secret file is private");
    let text = secret_text(&file);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&text) && !stderr(&out).contains(&text), "printed");

    // The file as the password file.
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"backed up with a secret\n");
    let (cmd, out) = with_file(&repo, &file, &["backup", s(&src), "--json"]);
    let first = parse_json(&expect_success(&cmd, out));
    let (cmd, out) = with_file(&repo, &file, &["snapshots", "--json"]);
    let snaps = parse_json(&expect_success(&cmd, out));
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["id"], first["snapshot_id"]);
    assert_eq!(snaps[0]["attribution"], "attributed", "the first key certified itself: {snaps}");
    assert_eq!(snaps[0]["writer"], info["key_id"]);

    // Its text as CAIRN_PASSWORD.
    repo.password = text.clone();
    write_file(&src.join("b.txt"), b"and with its text\n");
    repo.backup(&[&src], &[]);
    assert_eq!(repo.snapshots().len(), 2);
    let keys = key_list(&repo);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!((keys[0]["credential"].as_str(), keys[0]["kind"].as_str()), (Some("secret"), Some("full")));
    assert_eq!(keys[0]["id"], info["key_id"]);
    let target = repo.mkdir("restore");
    repo.restore("latest", &target);
    assert_same_contents(&src, &restored_path(&target, &src));

    // Anything else is a wrong password (exit 12): the digits alone, the text in upper case.
    for wrong in [text["cairn-secret-v1-".len()..].to_string(), text.to_uppercase()] {
        repo.password = wrong;
        repo.expect_code(&["snapshots"], 12);
    }
}

#[test]
fn a_new_secret_file_that_exists_is_refused_and_left_untouched_by_init_and_key_add() {
    let repo = Repo::uninit();
    let file = repo.path("taken");
    write_file(&file, b"keep me\n");
    let out = repo.expect_code(&["init", "--new-secret-file", s(&file)], 1);
    assert!(stderr(&out).contains("already exists") && stderr(&out).contains(s(&file)), "{}", describe(&out));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me\n");
    assert!(!repo.repo.exists(), "init wrote a repository after refusing the secret file");

    let repo = Repo::new();
    let file = repo.path("taken");
    write_file(&file, b"keep me\n");
    let link = repo.path("link");
    std::os::unix::fs::symlink(repo.path("nowhere"), &link).unwrap();
    for (path, args) in [
        (&file, vec!["key", "add", "--new-secret-file", s(&file)]),
        (&file, vec!["key", "add", "--write-only", "--new-secret-file", s(&file)]),
        (&file, vec!["key", "passwd", "--new-secret-file", s(&file)]),
        (&link, vec!["key", "add", "--new-secret-file", s(&link)]),
    ] {
        let out = repo.expect_code(&args, 1);
        assert!(stderr(&out).contains("already exists"), "{}", describe(&out));
        assert!(stderr(&out).contains(s(path)), "{}", describe(&out));
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me\n");
    assert!(!repo.path("nowhere").exists(), "written through a symlink");
    assert_eq!(key_list(&repo).len(), 1, "a key was added");
    // A password and a secret for one new key: usage error.
    let pw = repo.path("pw");
    write_file(&pw, b"pw\n");
    chmod(&pw, 0o600);
    let fresh = repo.path("fresh.secret");
    repo.expect_usage_error(
        &["key", "add", "--new-password-file", s(&pw), "--new-secret-file", s(&fresh)],
        &["--new-secret-file"],
    );
    assert!(!fresh.exists());
}

#[test]
fn key_add_write_only_new_secret_file_backs_up_but_cannot_restore() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("shared.bin"), &random_bytes(3, 300 * KIB));
    repo.backup(&[&src], &[]);
    let file = repo.path("writer.secret");
    let added = repo.json(&["key", "add", "--write-only", "--host", "web-1", "--new-secret-file", s(&file)]);
    assert_eq!(added["write_only"], Value::Bool(true), "{added}");
    assert_eq!(mode(&file), 0o600);
    let text = secret_text(&file);

    let keys = key_list(&repo);
    let cred = |id: &Value| keys.iter().find(|k| k["id"] == *id).unwrap()["credential"].as_str().unwrap().to_string();
    assert_eq!(cred(&added["key_id"]), "secret");
    assert_eq!(cred(&Value::String(repo.init_key_id())), "password");
    let listed = repo.ok(&["key", "list"]);
    assert!(listed.lines().next().unwrap().contains("CREDENTIAL"), "{listed}");
    let short = &added["key_id"].as_str().unwrap()[..8];
    let line = listed.lines().find(|l| l.contains(short)).unwrap();
    assert!(line.contains("write-only") && line.contains("secret"), "{listed}");

    // With the secret file: a backup as web-1 works and is attributed to the new key; reading is refused (12).
    let src2 = repo.mkdir("src2");
    write_file(&src2.join("new.txt"), b"written with a write-only secret\n");
    let (cmd, out) = with_file(&repo, &file, &["backup", s(&src2), "--host", "web-1", "--json"]);
    let second = parse_json(&expect_success(&cmd, out));
    assert!(second["unattributed"].is_null(), "{second}");
    let target = repo.path("restore");
    let admin = repo.init_key_id();
    for args in
        [&["restore", "latest", "--target", s(&target)][..], &["snapshots"][..], &["key", "remove", &admin[..8]][..]]
    {
        let (cmd, out) = with_file(&repo, &file, args);
        assert_code(&cmd, &out, 12);
    }
    assert!(!target.exists());
    // The same with its text in CAIRN_PASSWORD.
    repo.password = text;
    repo.expect_code(&["ls", "latest"], 12);
    repo.password = PASSWORD.into();
    let snaps = repo.snapshots();
    let by_writer = snaps.iter().find(|s| s["id"] == second["snapshot_id"]).unwrap();
    assert_eq!(by_writer["writer"], added["key_id"]);
    assert_eq!(by_writer["flags"], Value::Array(vec![]));
}

#[test]
fn key_passwd_new_secret_file_replaces_the_key_in_use() {
    let mut repo = Repo::new();
    let file = repo.path("admin.secret");
    let changed = repo.json(&["key", "passwd", "--new-secret-file", s(&file)]);
    assert_eq!(changed["removed"].as_str().unwrap(), repo.init_key_id());
    assert_eq!(mode(&file), 0o600);
    repo.expect_code(&["snapshots"], 12);
    repo.password = secret_text(&file);
    let keys = key_list(&repo);
    assert_eq!(keys.len(), 2, "the replaced key stays listed, revoked: {keys:?}");
    let new = keys.iter().find(|k| k["id"] == changed["key_id"]).unwrap();
    assert_eq!((new["credential"].as_str(), new["current"].as_bool()), (Some("secret"), Some(true)));
    assert_eq!(new["certificate"], "certified");
}

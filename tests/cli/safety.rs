//! Safety: wrong passwords and missing repositories are refused with their exit codes, a repository is never
//! overwritten, corruption is never restored as data, the cache is only a cache, and concurrent backups work.

use std::fs;
use std::path::Path;

use crate::common::*;

/// A small tree of distinct files (random and text), nested.
fn small_tree(src: &Path, seed: u64) {
    write_file(&src.join("a.txt"), format!("file a of tree {seed}\n").as_bytes());
    write_file(&src.join("random-1.bin"), &random_bytes(seed * 10 + 1, 300 * KIB));
    write_file(&src.join("sub/random-2.bin"), &random_bytes(seed * 10 + 2, 280 * KIB + 3));
    write_file(&src.join("sub/deeper/text.log"), &compressible_bytes(seed, 100 * KIB));
    write_file(&src.join("sub/deeper/random-3.bin"), &random_bytes(seed * 10 + 3, 310 * KIB));
    write_file(&src.join("empty"), b"");
}

#[test]
fn wrong_password_exits_12_with_one_line() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    small_tree(&src, 1);
    repo.backup(&[&src], &[]);
    repo.mkdir("t");

    for args in
        [&["snapshots"][..], &["backup", s(&src)][..], &["restore", "latest", "--target", s(&repo.path("t"))][..]]
    {
        let out = run_cmd({
            let mut c = repo.command(args);
            c.env("CAIRN_PASSWORD", "not the password");
            c
        });
        assert_eq!(out.status.code(), Some(12), "wrong password for {args:?}\n{}", describe(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "wrong password: stderr must be one line, got:\n{err}");
        assert!(err.to_lowercase().contains("password"), "wrong password: stderr must mention the password:\n{err}");
    }
    assert!(!repo.path("t").join(src.strip_prefix("/").unwrap()).exists(), "restore with a wrong password wrote files");
    // Nothing was added with the wrong password.
    assert_eq!(repo.snapshots().len(), 1);
}

#[test]
fn no_password_source_and_no_terminal_exits_12() {
    let repo = Repo::new();
    let out = run_cmd({
        let mut c = repo.command(&["snapshots"]);
        c.env_remove("CAIRN_PASSWORD");
        c
    });
    assert_eq!(out.status.code(), Some(12), "no password source, no terminal\n{}", describe(&out));
}

#[test]
fn password_file_and_command_are_password_sources() {
    let repo = Repo::new();
    let pw_file = repo.path("pw");
    fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();

    // --password-file comes before CAIRN_PASSWORD.
    let out = run_cmd({
        let mut c = repo.command(&["--password-file", s(&pw_file), "snapshots"]);
        c.env("CAIRN_PASSWORD", "wrong");
        c
    });
    assert!(out.status.success(), "--password-file must win over CAIRN_PASSWORD\n{}", describe(&out));

    // CAIRN_PASSWORD_COMMAND: stdout's first line.
    let out = run_cmd({
        let mut c = repo.command(&["snapshots"]);
        c.env_remove("CAIRN_PASSWORD").env("CAIRN_PASSWORD_COMMAND", format!("cat {}; echo second-line", s(&pw_file)));
        c
    });
    assert!(out.status.success(), "CAIRN_PASSWORD_COMMAND must be used\n{}", describe(&out));

    // A password file with the wrong password is exit 12 even if CAIRN_PASSWORD is right.
    let bad = repo.path("bad-pw");
    fs::write(&bad, "nope\n").unwrap();
    let out = repo.run(&["--password-file", s(&bad), "snapshots"]);
    assert_eq!(out.status.code(), Some(12), "wrong --password-file\n{}", describe(&out));
}

/// Commands cairn runs do not inherit a password: a stream command's environment (stored as the
/// stream) and a password command's (its stderr) hold no CAIRN_PASSWORD, CAIRN_FROM_PASSWORD or
/// CAIRN_NEW_PASSWORD, though the rest of the environment (CAIRN_REPOSITORY) is passed on.
#[test]
fn commands_cairn_runs_inherit_no_password_variable() {
    let repo = Repo::new();
    let secrets = [("CAIRN_FROM_PASSWORD", "from-secret-4711"), ("CAIRN_NEW_PASSWORD", "new-secret-4712")];
    let out = run_cmd({
        let mut c = repo.command(&["backup", "--command", "env", "--stdin-filename", "env.txt"]);
        c.envs(secrets);
        c
    });
    assert!(out.status.success(), "{}", describe(&out));
    let env = String::from_utf8(repo.ok_bytes(&["dump", "latest", "env.txt"])).unwrap();
    assert!(env.lines().any(|l| l.starts_with("CAIRN_REPOSITORY=")), "the environment is passed on:\n{env}");
    for name in ["CAIRN_PASSWORD", "CAIRN_FROM_PASSWORD", "CAIRN_NEW_PASSWORD"] {
        assert!(!env.lines().any(|l| l.starts_with(&format!("{name}="))), "{name} leaked to a stream command:\n{env}");
    }
    assert!(!env.contains(PASSWORD) && !env.contains("secret-471"), "a password value leaked:\n{env}");

    // A password command runs before the repository opens; it sees none of them either.
    let pw_file = repo.path("pw");
    fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    let out = run_cmd({
        let cmd = format!("env | grep -c '^CAIRN_[A-Z_]*PASSWORD=' >&2; cat {}", s(&pw_file));
        let mut c = repo.command(&["--password-command", &cmd, "snapshots"]);
        c.envs(secrets);
        c
    });
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "0", "{}", describe(&out));
}

#[test]
fn missing_or_invalid_repository_exits_10() {
    let repo = Repo::uninit();
    let out = repo.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(10), "repository path does not exist\n{}", describe(&out));
    assert!(!repo.repo.exists(), "a command other than init must not create the repository");

    let src = repo.mkdir("src");
    small_tree(&src, 2);
    let out = repo.run(&["backup", s(&src)]);
    assert_eq!(out.status.code(), Some(10), "backup into a missing repository\n{}", describe(&out));
    assert!(!repo.repo.exists(), "backup must not create a repository");

    // An existing directory that is not a cairn repository.
    fs::create_dir(&repo.repo).unwrap();
    fs::write(repo.repo.join("unrelated.txt"), "not a repository").unwrap();
    let out = repo.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(10), "directory that is not a repository\n{}", describe(&out));
}

#[test]
fn init_twice_is_refused_and_the_repository_survives() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    small_tree(&src, 3);
    let id = string(&repo.backup(&[&src], &[]), "snapshot_id");

    let out = repo.run(&["init"]);
    assert_eq!(out.status.code(), Some(1), "second init must be refused with exit 1\n{}", describe(&out));
    assert!(stderr(&out).contains("already exists"), "second init must say \"already exists\"\n{}", describe(&out));

    // Another password: still refused, and it does not become a key of the repository.
    repo.password = "another password".into();
    let out = repo.run(&["init"]);
    assert_eq!(out.status.code(), Some(1), "init with another password must be refused\n{}", describe(&out));
    let out = repo.run(&["snapshots"]);
    assert_eq!(
        out.status.code(),
        Some(12),
        "the refused init's password must not open the repository\n{}",
        describe(&out)
    );

    repo.password = PASSWORD.into();
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(string(&snaps[0], "id"), id);
    let target = repo.mkdir("restore");
    repo.restore(&id, &target);
    assert_same_contents(&src, &restored_path(&target, &src));
}

/// Flips one bit in the first blob of each pack file (each in its own copy of the repository, with a fresh cache):
/// `restore` must fail, and no file may be written with content that differs from the source. (The first byte of a
/// pack is its first blob's nonce, format-spec §5; a byte in the middle of a small pack can fall in its header,
/// which restore does not read, which made this test flaky.)
#[test]
fn corrupted_pack_is_never_restored_as_data() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    small_tree(&src, 4);
    repo.backup(&[&src], &[]);

    let data = repo.repo.join("data");
    assert!(data.is_dir(), "no data/ directory in the repository");
    let packs: Vec<Vec<u8>> = regular_files(&data);
    assert!(!packs.is_empty(), "no files under {data:?}");
    // At most 8, spread over the list.
    let step = packs.len().div_ceil(8);
    let chosen: Vec<&Vec<u8>> = packs.iter().step_by(step).collect();

    for pack in chosen {
        let work_dir = tempfile::Builder::new().prefix("cairn-corrupt-").tempdir().unwrap();
        let work = fs::canonicalize(work_dir.path()).unwrap();
        let copy = work.join("repo");
        copy_tree(&repo.repo, &copy);
        let file = join_rel(&copy.join("data"), pack);
        let mut bytes = fs::read(&file).unwrap();
        assert!(!bytes.is_empty(), "empty pack file {file:?}");
        bytes[0] ^= 0x10;
        fs::write(&file, &bytes).unwrap();

        let target = work.join("restore");
        fs::create_dir(&target).unwrap();
        let mut cmd = repo.command(&["restore", "latest", "--target", s(&target)]);
        cmd.env("CAIRN_REPOSITORY", &copy).env("CAIRN_CACHE_DIR", work.join("fresh-cache"));
        let out = run_cmd(cmd);
        let which = format!("data/{}", show(pack));
        assert!(!out.status.success(), "restore succeeded although {which} has a flipped bit\n{}", describe(&out));
        assert!(!out.stderr.is_empty(), "restore failed silently ({which} corrupted)");

        // Whatever was written must be exactly the source's content.
        let restored = restored_path(&target, &src);
        for rel in regular_files(&target) {
            let path = join_rel(&target, &rel);
            let inside = path.strip_prefix(&restored).unwrap_or_else(|_| {
                panic!("restore ({which} corrupted) wrote a file outside the source tree: {path:?}")
            });
            let original = src.join(inside);
            assert!(
                original.is_file() && fs::read(&original).unwrap() == fs::read(&path).unwrap(),
                "restore ({which} corrupted) wrote {path:?} with content that differs from the source"
            );
        }
    }
}

#[test]
fn deleting_the_cache_changes_nothing() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    small_tree(&src, 5);
    write_file(&src.join("big.bin"), &random_bytes(55, 3 * MIB));

    repo.backup(&[&src], &[]);
    assert!(repo.cache.exists(), "CAIRN_CACHE_DIR {:?} was not used by backup", repo.cache);
    fs::remove_dir_all(&repo.cache).unwrap();

    let second = repo.backup(&[&src], &[]);
    assert!(
        num(&second, "bytes_added") < 256 * KIB as u64,
        "after deleting the cache, an unchanged tree added {} bytes: {second}",
        num(&second, "bytes_added")
    );

    fs::remove_dir_all(&repo.cache).unwrap();
    let target = repo.mkdir("restore");
    repo.restore("latest", &target);
    assert_same_contents(&src, &restored_path(&target, &src));
}

#[test]
fn two_concurrent_backups_both_succeed() {
    let repo = Repo::new();
    let src_a = repo.mkdir("src-a");
    let src_b = repo.mkdir("src-b");
    small_tree(&src_a, 6);
    small_tree(&src_b, 7);
    // Some data shared by both trees, so that both processes want to store the same blobs.
    let shared = random_bytes(77, 2 * MIB);
    write_file(&src_a.join("shared.bin"), &shared);
    write_file(&src_b.join("shared.bin"), &shared);

    let a = spawn(repo.command(&["backup", s(&src_a), "--json"]));
    let b = spawn(repo.command(&["backup", s(&src_b), "--json"]));
    let (out_a, out_b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(out_a.status.success(), "concurrent backup A failed\n{}", describe(&out_a));
    assert!(out_b.status.success(), "concurrent backup B failed\n{}", describe(&out_b));
    let id_a = string(&parse_json(&out_a), "snapshot_id");
    let id_b = string(&parse_json(&out_b), "snapshot_id");
    assert_ne!(id_a, id_b);

    let ids: Vec<String> = repo.snapshots().iter().map(|s| string(s, "id")).collect();
    assert!(ids.contains(&id_a) && ids.contains(&id_b) && ids.len() == 2, "snapshots: {ids:?}");

    for (id, src) in [(&id_a, &src_a), (&id_b, &src_b)] {
        let target = repo.mkdir(&format!("restore-{}", &id[..8]));
        repo.restore(id, &target);
        assert_same_contents(src, &restored_path(&target, src));
        // Nothing of the other tree ended up in this snapshot's restore.
        let other = if src == &src_a { &src_b } else { &src_a };
        assert!(!restored_path(&target, other).exists(), "snapshot {id} also restored {other:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let repo = Repo::new();
    repo.expect_usage_error(&["backup", "--no-such-flag", "/"], &["--no-such-flag"]);
    repo.expect_usage_error(&["no-such-command"], &["no-such-command"]);
}

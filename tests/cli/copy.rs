//! `copy` and `init --copy-chunker-from`: snapshots move between repositories re-sealed with the destination's keys;
//! with shared chunker keys only missing blobs are read and stored; without, files are cut again and the output says
//! so; a second run copies nothing; restores from the destination are byte-identical. (Remote pairs: tests/cli/remote.rs.)

use crate::common::*;

fn copy_json(dst: &Repo, src: &Repo, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["copy", "--from-repo", s(&src.repo), "--json"];
    args.extend_from_slice(extra);
    let mut cmd = dst.command(&args);
    cmd.env("CAIRN_FROM_PASSWORD", &src.password);
    parse_json(&expect_success(&dst.command(&args), run_cmd(cmd)))
}

#[test]
fn copy_with_shared_chunker_keys_reads_only_what_the_destination_lacks() {
    let a = Repo::new();
    let src = a.mkdir("src");
    write_file(&src.join("big.bin"), &random_bytes(1, 3 * MIB));
    write_file(&src.join("d/small.txt"), b"first\n");
    let first = string(&a.backup(&[&src], &[]), "snapshot_id");

    let mut b = Repo::uninit();
    b.password = "another password".into();
    let mut init = b.command(&["init", "--copy-chunker-from", s(&a.repo)]);
    init.env("CAIRN_FROM_PASSWORD", &a.password);
    expect_success(&b.command(&["init"]), run_cmd(init));

    let v = copy_json(&b, &a, &[]);
    assert_eq!(v["rechunked"], false, "{v}");
    assert_eq!(v["snapshots"][0]["source"], first.as_str(), "{v}");
    assert!(num(&v, "data_bytes_read") >= 3 * MIB as u64, "{v}");

    // Idempotent.
    let v = copy_json(&b, &a, &[]);
    assert!(v["snapshots"][0]["target"].is_null() && v["snapshots"][0]["already"].is_string(), "{v}");
    assert_eq!(num(&v, "blobs_added"), 0, "{v}");
    assert_eq!(num(&v, "data_blobs_read"), 0, "{v}");

    // A second snapshot in A: only its new data is read.
    write_file(&src.join("d/small.txt"), b"second\n");
    write_file(&src.join("new.bin"), &random_bytes(2, MIB));
    let second = string(&a.backup(&[&src], &[]), "snapshot_id");
    let v = copy_json(&b, &a, &[&second[..8]]);
    let read = num(&v, "data_bytes_read");
    assert!(read >= MIB as u64 && read < 2 * MIB as u64, "read {read} bytes for a 1 MiB change: {v}");
    let target = string(&v["snapshots"][0], "target");

    b.ok(&["check", "--read-data"]);
    let out = b.path("restore");
    b.restore(&target, &out);
    assert_same_contents(&src, &restored_path(&out, &src));
    // Metadata moved with it.
    let snaps = b.snapshots();
    assert_eq!(snaps.len(), 2);
}

#[test]
fn copy_between_unrelated_repositories_cuts_files_again_and_says_so() {
    let a = Repo::new();
    let src = a.mkdir("src");
    write_file(&src.join("big.bin"), &compressible_bytes(3, 2 * MIB));
    write_file(&src.join("link-target.txt"), b"target\n");
    std::os::unix::fs::symlink("link-target.txt", src.join("link")).unwrap();
    a.backup(&[&src], &[]);
    let b = Repo::new();
    let mut cmd = b.command(&["copy", "--from-repo", s(&a.repo)]);
    cmd.env("CAIRN_FROM_PASSWORD", &a.password);
    let out = expect_success(&b.command(&["copy"]), run_cmd(cmd));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("do not share chunker keys"), "{text}");
    b.ok(&["check", "--read-data"]);
    let target = b.path("restore");
    b.restore("latest", &target);
    assert_same_contents(&src, &restored_path(&target, &src));
    // Running it again copies nothing.
    let v = copy_json(&b, &a, &[]);
    assert_eq!(num(&v, "blobs_added"), 0, "{v}");
    // A wrong source password is exit 12 and names nothing secret.
    let mut cmd = b.command(&["copy", "--from-repo", s(&a.repo)]);
    cmd.env("CAIRN_FROM_PASSWORD", "wrong");
    assert_code(&b.command(&["copy"]), &run_cmd(cmd), 12);
}

//! `backup --stdin` and `backup --command`: a stream stored as one file, given back by `dump`.

use std::fs;

use crate::common::*;

#[test]
fn stdin_stream_is_given_back_by_dump() {
    let repo = Repo::new();
    let data = random_bytes(11, 3 * MIB + 17);
    let summary = repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "db.dump"], &data);
    assert!(summary["snapshot_id"].is_string(), "{summary}");

    let dumped = repo.ok_bytes(&["dump", "latest", "db.dump"]);
    assert_eq!(dumped.len(), data.len(), "dump returned a different length");
    assert!(dumped == data, "dump returned different bytes");

    // The stream is stored as /db.dump at the root of the snapshot.
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1);
    let listing = repo.ls("latest");
    assert!(listing.iter().any(|l| l == "/db.dump"), "ls does not show /db.dump: {listing:?}");
}

#[test]
fn command_output_is_stored() {
    let repo = Repo::new();
    let copy = repo.path("copy-of-stream");
    let cmd = format!("head -c 5000000 /dev/urandom | tee {}", s(&copy));
    let summary = repo.json(&["backup", "--command", &cmd, "--stdin-filename", "x"]);
    assert!(summary["snapshot_id"].is_string(), "{summary}");

    let expected = fs::read(&copy).unwrap();
    assert_eq!(expected.len(), 5_000_000, "the command did not run as expected");
    let dumped = repo.ok_bytes(&["dump", "latest", "x"]);
    assert_eq!(dumped.len(), expected.len(), "dump returned a different length");
    assert!(dumped == expected, "dump returned different bytes than the command wrote");
}

#[test]
fn failing_command_makes_no_snapshot() {
    let repo = Repo::new();
    repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "first"], b"a first snapshot");
    assert_eq!(repo.snapshots().len(), 1);

    let out = repo.run(&["backup", "--command", "sh -c 'echo partial; exit 3'", "--stdin-filename", "x"]);
    assert!(!out.status.success(), "a failing --command must fail the backup\n{}", describe(&out));
    assert_eq!(out.status.code(), Some(1), "contract: exit 1 when the command fails\n{}", describe(&out));

    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "a failed --command must not make a snapshot: {snaps:?}");
    // `latest` is still the first snapshot, and there is no `x` in it.
    assert_eq!(repo.ok_bytes(&["dump", "latest", "first"]), b"a first snapshot");
    assert!(!repo.run(&["dump", "latest", "x"]).status.success(), "dump of x must fail: it was never stored");
}

#[test]
fn same_stdin_name_twice_gives_back_the_second_content() {
    let repo = Repo::new();
    // Same name, same length, made within the same second: nothing but the content tells them apart.
    let one = random_bytes(21, 200 * KIB);
    let two = random_bytes(22, 200 * KIB);
    let first = repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "db.dump"], &one);
    let second = repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "db.dump"], &two);
    let (id1, id2) = (string(&first, "snapshot_id"), string(&second, "snapshot_id"));
    assert_ne!(id1, id2);
    assert!(num(&second, "bytes_added") >= two.len() as u64, "second stream was not stored: {second}");

    assert!(repo.ok_bytes(&["dump", "latest", "db.dump"]) == two, "dump latest returned the old stream");
    assert!(repo.ok_bytes(&["dump", &id2, "db.dump"]) == two, "dump of the second snapshot is wrong");
    // A unique prefix of 8 hex digits names the first snapshot.
    assert!(repo.ok_bytes(&["dump", &id1[..8], "db.dump"]) == one, "dump of the first snapshot (by prefix) is wrong");
}

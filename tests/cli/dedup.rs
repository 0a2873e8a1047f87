//! Deduplication: unchanged data is not stored again, and a small change stores little.

use std::fs;
use std::os::unix::fs::FileExt;

use crate::common::*;

const FILES: u64 = 40;

#[test]
fn unchanged_tree_adds_nearly_nothing_and_a_small_edit_adds_little() {
    let repo = Repo::new();
    let src = repo.mkdir("src");

    // 40 files: one 8 MiB random file, four of 2-3 MiB random, 35 small ones in subdirectories.
    write_file(&src.join("big.bin"), &random_bytes(100, 8 * MIB));
    for i in 0..4u64 {
        write_file(&src.join(format!("medium/m{i}.bin")), &random_bytes(200 + i, 2 * MIB + i as usize * 300 * KIB));
    }
    for i in 0..35u64 {
        let len = 1 + (i as usize * 1_531) % (50 * KIB);
        write_file(&src.join(format!("small/d{}/f{i}.dat", i % 5)), &random_bytes(300 + i, len));
    }
    let files = regular_files(&src);
    assert_eq!(files.len() as u64, FILES);
    let total: u64 = files.iter().map(|r| fs::metadata(join_rel(&src, r)).unwrap().len()).sum();
    // File times in the past, so that no "modified very recently" heuristic re-reads them.
    for r in &files {
        set_times(&join_rel(&src, r), Some((1_600_000_000, 5)), Some((1_600_000_000, 123_456_789)));
    }

    let first = repo.backup(&[&src], &[]);
    assert_eq!(num(&first, "files_new"), FILES, "first backup: {first}");
    assert!(
        num(&first, "bytes_added") >= total,
        "first backup of {total} bytes of unique random data added only {} bytes: {first}",
        num(&first, "bytes_added")
    );

    // Second backup of the unchanged tree: only metadata may be added.
    let second = repo.backup(&[&src], &[]);
    assert_eq!(num(&second, "files_unchanged"), FILES, "second backup: {second}");
    assert_eq!(num(&second, "files_new"), 0, "second backup: {second}");
    assert_eq!(num(&second, "files_changed"), 0, "second backup: {second}");
    assert!(
        num(&second, "bytes_added_stored") < 64 * KIB as u64,
        "unchanged tree stored {} new bytes: {second}",
        num(&second, "bytes_added_stored")
    );
    assert_eq!(second["parent"].as_str(), first["snapshot_id"].as_str(), "the parent is the previous snapshot");

    // Overwrite 4 KiB in the middle of the 8 MiB file: one changed file, about one chunk stored.
    let edited = random_bytes(999, 4 * KIB);
    {
        let f = fs::OpenOptions::new().write(true).open(src.join("big.bin")).unwrap();
        f.write_all_at(&edited, 4 * MIB as u64 + 12_345).unwrap();
    }
    let third = repo.backup(&[&src], &[]);
    assert_eq!(num(&third, "files_changed"), 1, "after editing one file: {third}");
    assert_eq!(num(&third, "files_unchanged"), FILES - 1, "after editing one file: {third}");
    // The new bytes are the chunk(s) around the edit. Chunk boundaries depend on the repository's keyed gear
    // table, so they differ on every run: simulating FastCDC 2020 (min 256 KiB, avg 1 MiB, max 4 MiB,
    // normalization 1) with random gear tables on this edit gives 1.5 MiB on average, >= 3 MiB in 3.5% of runs,
    // >= 5 MiB in 1 of 3000, never >= 6 MiB. Re-storing the whole file would add 8 MiB.
    assert!(
        num(&third, "bytes_added") < 6 * MIB as u64,
        "a 4 KiB edit in an 8 MiB file added {} bytes (tree: {total} bytes): {third}",
        num(&third, "bytes_added")
    );
    assert!(num(&third, "bytes_added") > 0, "the edit must store something: {third}");

    // The edited content is what the newest snapshot gives back.
    let big = src.join("big.bin");
    let dumped = repo.ok_bytes(&["dump", "latest", s(&big)]);
    assert!(dumped == fs::read(&big).unwrap(), "dump of the edited file differs from the file");
}

#[test]
fn stream_with_an_insertion_dedups_against_the_previous_stream() {
    let repo = Repo::new();
    let stream = random_bytes(7, 32 * MIB);

    let first = repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "stream.bin"], &stream);
    assert!(num(&first, "bytes_added") >= 32 * MIB as u64, "first stream: {first}");

    // The same stream with 100 bytes inserted in the middle.
    let mut changed = stream[..16 * MIB].to_vec();
    changed.extend_from_slice(&random_bytes(8, 100));
    changed.extend_from_slice(&stream[16 * MIB..]);
    let second = repo.json_stdin(&["backup", "--stdin", "--stdin-filename", "stream.bin"], &changed);
    assert!(
        num(&second, "bytes_added") < 10 * MIB as u64,
        "100 bytes inserted into a 32 MiB stream added {} bytes: {second}",
        num(&second, "bytes_added")
    );

    let dumped = repo.ok_bytes(&["dump", "latest", "stream.bin"]);
    assert!(dumped == changed, "dump of the second stream differs ({} vs {} bytes)", dumped.len(), changed.len());
}

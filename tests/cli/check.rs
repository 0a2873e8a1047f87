//! `check`: a healthy repository passes; every kind of damage is reported, naming the object and the snapshots and
//! paths it affects, with a non-zero exit; without `--read-data` nothing under `data/` is read.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn tree(src: &Path) {
    write_file(&src.join("a.bin"), &random_bytes(31, 600 * KIB));
    write_file(&src.join("sub/b.bin"), &random_bytes(32, 900 * KIB));
    write_file(&src.join("sub/c.txt"), &compressible_bytes(33, 200 * KIB));
}

fn check_json(repo: &Repo, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(extra);
    let out = repo.run(&args);
    (out.status.code(), parse_json(&out))
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn healthy_repository_passes_every_mode() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    tree(&src);
    repo.backup(&[&src], &[]);
    repo.backup(&[&src], &["--force"]);
    for extra in [
        &[][..],
        &["--read-data"][..],
        &["--read-data-subset", "1/3"][..],
        &["--read-data-subset", "50%"][..],
        &["--read-data-rotation", "30"][..],
    ] {
        let (code, v) = check_json(&repo, extra);
        assert_eq!(code, Some(0), "check {extra:?}: {v}");
        assert!(codes(&v).is_empty(), "check {extra:?}: {v}");
        assert_eq!(num(&v, "snapshots"), 2);
    }
    let (_, all) = check_json(&repo, &["--read-data"]);
    assert_eq!(num(&all, "data_packs_read"), num(&all, "data_packs"), "--read-data reads every data pack: {all}");
    assert!(num(&all, "blobs_verified") >= 3, "{all}");
    // Subsets of 1/3, 2/3 and 3/3 cover every pack exactly once.
    let parts: u64 =
        (1..=3).map(|n| num(&check_json(&repo, &["--read-data-subset", &format!("{n}/3")]).1, "data_packs_read")).sum();
    assert_eq!(parts, num(&all, "data_packs"));
    repo.expect_usage_error(&["check", "--read-data-subset", "0/3"], &["--read-data-subset", "0/3"]);
}

#[test]
fn structural_check_reads_nothing_under_data() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    tree(&src);
    repo.backup(&[&src], &[]);
    // Same size, different bytes: only reading the packs could tell.
    for p in objects(&repo.repo, "data") {
        let n = fs::metadata(&p).unwrap().len() as usize;
        fs::write(&p, vec![0x5a; n]).unwrap();
    }
    let (code, v) = check_json(&repo, &[]);
    assert_eq!(code, Some(0), "a structural check must not read data packs: {v}");
    assert_eq!(num(&v, "data_packs_read"), 0);
    let (code, v) = check_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(1), "{v}");
    assert!(codes(&v).iter().any(|c| c == "pack-corrupt"), "{v}");
}

#[test]
fn every_kind_of_damage_is_reported_with_what_it_affects() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    tree(&src);
    let snap = string(&repo.backup(&[&src], &[]), "snapshot_id");

    // A flipped bit in each data pack: found by --read-data, naming the snapshot and a path.
    for (i, pack) in objects(&repo.repo, "data").into_iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let copy = work.path().join("repo");
        copy_tree(&repo.repo, &copy);
        let target = copy.join(pack.strip_prefix(&repo.repo).unwrap());
        let mut bytes = fs::read(&target).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x01;
        fs::write(&target, &bytes).unwrap();
        let mut cmd = repo.command(&["check", "--read-data", "--json"]);
        cmd.env("CAIRN_REPOSITORY", &copy).env("CAIRN_CACHE_DIR", work.path().join("cache"));
        let out = run_cmd(cmd);
        assert_eq!(out.status.code(), Some(1), "data pack {i} with a flipped bit\n{}", describe(&out));
        let v = parse_json(&out);
        let bad: Vec<&Value> =
            v["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "blob-corrupt").collect();
        assert!(!bad.is_empty(), "no blob-corrupt finding: {v}");
        assert!(
            bad.iter()
                .any(|f| f["snapshots"].to_string().contains(&snap) && !f["paths"].as_array().unwrap().is_empty()),
            "the finding must name the snapshot and the affected path: {v}"
        );
    }

    // A missing data pack: found without reading data, naming the affected files.
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("repo");
    copy_tree(&repo.repo, &copy);
    let victim = objects(&repo.repo, "data")[0].strip_prefix(&repo.repo).unwrap().to_path_buf();
    fs::remove_file(copy.join(&victim)).unwrap();
    let mut cmd = repo.command(&["check", "--json"]);
    cmd.env("CAIRN_REPOSITORY", &copy).env("CAIRN_CACHE_DIR", work.path().join("cache"));
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let v = parse_json(&out);
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "pack-missing").cloned().unwrap();
    assert!(f["object"].as_str().unwrap().ends_with(victim.file_name().unwrap().to_str().unwrap()), "{f}");
    assert!(f["snapshots"].to_string().contains(&snap) && !f["paths"].as_array().unwrap().is_empty(), "{f}");

    // Damaged metadata objects: each is named.
    for (prefix, code) in
        [("index", "index-unreadable"), ("snapshots", "snapshot-unreadable"), ("tree", "pack-corrupt")]
    {
        let work = tempfile::tempdir().unwrap();
        let copy = work.path().join("repo");
        copy_tree(&repo.repo, &copy);
        let obj = objects(&repo.repo, prefix)[0].strip_prefix(&repo.repo).unwrap().to_path_buf();
        let mut bytes = fs::read(copy.join(&obj)).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        fs::write(copy.join(&obj), &bytes).unwrap();
        let mut cmd = repo.command(&["check", "--json"]);
        cmd.env("CAIRN_REPOSITORY", &copy).env("CAIRN_CACHE_DIR", work.path().join("cache"));
        let out = run_cmd(cmd);
        assert_eq!(out.status.code(), Some(1), "damaged {obj:?}\n{}", describe(&out));
        let v = parse_json(&out);
        let name = obj.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == code && f["object"].as_str().unwrap().contains(&name)),
            "damaged {obj:?}: expected a {code} finding naming it: {v}"
        );
    }

    // An unindexed pack (an interrupted backup's leftover) is a note, not an error.
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("repo");
    copy_tree(&repo.repo, &copy);
    let bytes = b"leftover pack bytes";
    let id = blake3::hash(bytes).to_hex().to_string();
    write_file(&copy.join("data").join(&id[..2]).join(&id), bytes);
    let mut cmd = repo.command(&["check", "--json"]);
    cmd.env("CAIRN_REPOSITORY", &copy).env("CAIRN_CACHE_DIR", work.path().join("cache"));
    let out = run_cmd(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(parse_json(&out)["findings"].to_string().contains("pack-unindexed"));
}

#[test]
fn repair_index_rebuilds_a_damaged_index_from_the_pack_headers() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    tree(&src);
    repo.backup(&[&src], &[]);
    let index = objects(&repo.repo, "index");
    assert_eq!(index.len(), 1);
    let mut bytes = fs::read(&index[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x08;
    fs::write(&index[0], &bytes).unwrap();
    fs::remove_dir_all(&repo.cache).unwrap();

    let (code, v) = check_json(&repo, &[]);
    assert_eq!(code, Some(1), "{v}");
    let target = repo.mkdir("before");
    assert!(!repo.run(&["restore", "latest", "--target", s(&target)]).status.success(), "restore without an index");

    // A dry run writes nothing; packs younger than an hour need --include-recent.
    let dry = repo.json(&["repair", "index", "--dry-run", "--include-recent"]);
    assert!(!dry["indexed"].as_array().unwrap().is_empty(), "{dry}");
    assert_eq!(objects(&repo.repo, "index").len(), 1, "--dry-run wrote an index file");
    let cautious = repo.json(&["repair", "index"]);
    assert!(
        cautious["indexed"].as_array().unwrap().is_empty()
            && !cautious["skipped_recent"].as_array().unwrap().is_empty(),
        "{cautious}"
    );

    let done = repo.json(&["repair", "index", "--include-recent"]);
    assert_eq!(done["superseded"].as_array().unwrap().len(), 1, "{done}");
    let (code, v) = check_json(&repo, &["--read-data"]);
    assert_eq!(code, Some(0), "after repair index: {v}");
    assert!(v["findings"].to_string().contains("index-superseded"), "{v}");
    let target = repo.mkdir("after");
    repo.restore("latest", &target);
    assert_same_contents(&src, &restored_path(&target, &src));
    // Running it again finds nothing to do.
    let again = repo.json(&["repair", "index", "--include-recent"]);
    assert!(
        again["indexed"].as_array().unwrap().is_empty() && again["index_files"].as_array().unwrap().is_empty(),
        "{again}"
    );
}

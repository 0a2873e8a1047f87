//! `repair snapshots`: after a data pack or a tree pack is lost, each damaged snapshot gets a repaired replacement
//! that keeps every intact file byte for byte, keeps damaged files with their intact chunks and names every loss by
//! path (format-spec §8.2); `check` passes on it; the original goes only with `--forget`; an intact repository is
//! left exactly as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

/// Every regular file under the repository (relative paths), leases aside: what a no-op must leave untouched.
fn stored(repo: &Repo) -> BTreeSet<PathBuf> {
    regular_files(&repo.repo)
        .iter()
        .map(|r| PathBuf::from(show(r)))
        .filter(|p| !p.starts_with("leases") && !p.starts_with("lease"))
        .collect()
}

/// A source tree of many chunks: one large file of several chunks and a few small ones, in two directories.
fn source(repo: &Repo) -> PathBuf {
    let src = repo.mkdir("src");
    write_file(&src.join("big.bin"), &random_bytes(1, 7 * 1024 * KIB));
    for i in 0..4u64 {
        write_file(&src.join(format!("one/f{i}.bin")), &random_bytes(10 + i, (150 + 100 * i as usize) * KIB));
        write_file(&src.join(format!("two/g{i}.bin")), &random_bytes(20 + i, (120 + 90 * i as usize) * KIB));
    }
    write_file(&src.join("two/empty"), b"");
    src
}

/// The lost items of a report entry: absolute path → (kind, lost ranges as (offset, length)).
fn lost_items(entry: &Value) -> BTreeMap<String, (String, Vec<(u64, u64)>)> {
    entry["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let ranges = l["ranges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["offset"].as_u64().expect("offset known"), r["length"].as_u64().expect("length known")))
                .collect();
            (l["path"].as_str().unwrap().to_string(), (l["kind"].as_str().unwrap().to_string(), ranges))
        })
        .collect()
}

/// `data` without the byte ranges in `lost`.
fn without(data: &[u8], lost: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for &(o, l) in lost {
        out.extend_from_slice(&data[at..o as usize]);
        at = (o + l) as usize;
    }
    out.extend_from_slice(&data[at..]);
    out
}

fn check_code(repo: &Repo) -> (Option<i32>, Value) {
    let out = repo.run(&["check", "--json"]);
    (out.status.code(), parse_json(&out))
}

fn error_findings(v: &Value) -> Vec<Value> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "error").cloned().collect()
}

#[test]
fn an_intact_repository_is_left_exactly_as_it_was() {
    let repo = Repo::new();
    let src = source(&repo);
    repo.backup(&[&src], &[]);
    let before = stored(&repo);
    for args in [
        &["repair", "snapshots", "--dry-run"][..],
        &["repair", "snapshots"][..],
        &["repair", "snapshots", "--forget"][..],
    ] {
        let r = repo.json(args);
        assert_eq!(num(&r, "snapshots"), 1, "{r}");
        assert_eq!(num(&r, "intact"), 1, "{r}");
        assert!(r["damaged"].as_array().unwrap().is_empty(), "{args:?}: {r}");
        assert_eq!(stored(&repo), before, "{args:?} changed the repository");
    }
    let text = repo.ok(&["repair", "snapshots"]);
    assert!(text.contains("1 intact, 0 damaged"), "{text}");
}

#[test]
fn a_lost_data_pack_keeps_every_intact_file_and_names_the_damaged_ones() {
    let repo = Repo::new();
    let src = source(&repo);
    let original = string(&repo.backup(&[&src], &[]), "snapshot_id");
    let packs = objects(&repo.repo, "data");
    assert!(packs.len() >= 2, "the fixture needs two data packs: {packs:?}");
    fs::remove_file(&packs[0]).unwrap();

    // The plan: names the snapshot and every damaged path; writes nothing.
    let before = stored(&repo);
    let plan = repo.json(&["repair", "snapshots", "--dry-run"]);
    assert_eq!(stored(&repo), before, "--dry-run wrote something");
    let entry = &plan["damaged"][0];
    assert_eq!(entry["snapshot"], original, "{plan}");
    assert!(entry["repaired"].is_null(), "{plan}");
    let lost = lost_items(entry);
    assert!(!lost.is_empty(), "{plan}");
    let text = repo.ok(&["repair", "snapshots", "--dry-run"]);
    for path in lost.keys() {
        assert!(text.contains(path.as_str()), "the text output must name {path}: {text}");
    }

    // The repair: a new snapshot tagged `repaired`, the original kept.
    let done = repo.json(&["repair", "snapshots"]);
    let entry = &done["damaged"][0];
    assert_eq!(lost_items(entry), lost, "the run finds what the plan found: {done}");
    let repaired = entry["repaired"].as_str().expect("a repaired snapshot id").to_string();
    assert_eq!(entry["forgotten"], false);
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 2, "the original stays without --forget");
    let new = snaps.iter().find(|s| s["id"] == repaired.as_str()).expect("the repaired snapshot is listed");
    let tags: Vec<&str> = new["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(tags.contains(&"repaired"), "{new}");
    assert!(tags.contains(&format!("repaired-from:{original}").as_str()), "{new}");
    for path in lost.keys() {
        assert!(tags.contains(&format!("lost:{path}").as_str()), "the snapshot must record {path}: {new}");
    }

    // Restore: every file is there; intact files byte for byte, damaged ones hold exactly their intact chunks.
    let target = repo.mkdir("restored");
    repo.restore(&repaired, &target);
    let root = restored_path(&target, &src);
    let mut intact = 0;
    for rel in regular_files(&src) {
        let abs = join_rel(&src, &rel).to_string_lossy().into_owned();
        let want = fs::read(join_rel(&src, &rel)).unwrap();
        let got = fs::read(join_rel(&root, &rel)).unwrap_or_else(|e| panic!("{abs} was dropped: {e}"));
        match lost.get(&abs) {
            None => {
                intact += 1;
                assert!(got == want, "{abs} is intact but restored differently");
            }
            Some((kind, ranges)) => {
                assert_eq!(kind, "file");
                assert!(got == without(&want, ranges), "{abs}: the repaired file must be its intact chunks in order");
            }
        }
    }
    assert!(intact > 0, "some file must be intact with two data packs");

    // check: every error concerns the original only; the repaired snapshot is clean.
    let (code, v) = check_code(&repo);
    assert_eq!(code, Some(1), "{v}");
    for f in error_findings(&v) {
        assert!(!f["snapshots"].to_string().contains(&repaired), "the repaired snapshot is damaged: {f}");
    }
    // A second run writes nothing new.
    let again = repo.json(&["repair", "snapshots"]);
    assert_eq!(again["damaged"][0]["already_repaired_by"], repaired.as_str(), "{again}");
    assert_eq!(repo.snapshots().len(), 2);

    // --forget removes the original, only after its replacement exists; then check passes.
    let gone = repo.json(&["repair", "snapshots", "--forget"]);
    assert_eq!(gone["damaged"][0]["forgotten"], true, "{gone}");
    let ids: Vec<String> = repo.snapshots().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec![repaired.clone()]);
    let (code, v) = check_code(&repo);
    assert_eq!(code, Some(0), "check on the repaired repository: {v}");
    assert!(v["findings"].to_string().contains("pack-missing"), "the lost pack is still noted: {v}");
    let r = repo.json(&["repair", "snapshots"]);
    assert_eq!(num(&r, "intact"), 1, "{r}");
}

#[test]
fn a_lost_tree_pack_becomes_empty_directories_marked_lost() {
    let repo = Repo::new();
    let src = source(&repo);
    repo.backup(&[&src], &[]);
    let first_trees: BTreeSet<PathBuf> = objects(&repo.repo, "tree").into_iter().collect();
    write_file(&src.join("two/new.txt"), b"written after the first backup\n");
    let second = string(&repo.backup(&[&src], &[]), "snapshot_id");
    // The first backup's tree pack holds every tree of snapshot 1 and the unchanged `one/` of snapshot 2.
    assert_eq!(first_trees.len(), 1, "{first_trees:?}");
    fs::remove_file(first_trees.iter().next().unwrap()).unwrap();
    fs::remove_dir_all(&repo.cache).unwrap();

    let done = repo.json(&["repair", "snapshots", "--forget"]);
    let damaged = done["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 2, "{done}");
    let of_second = damaged.iter().find(|d| d["snapshot"] == second.as_str()).unwrap();
    let lost = lost_items(of_second);
    let one = src.join("one").to_string_lossy().into_owned();
    assert_eq!(lost.keys().cloned().collect::<Vec<_>>(), vec![one.clone()], "{of_second}");
    assert_eq!(lost[&one].0, "dir");
    let of_first = damaged.iter().find(|d| d["snapshot"] != second.as_str()).unwrap();
    assert_eq!(lost_items(of_first).keys().cloned().collect::<Vec<_>>(), vec!["/".to_string()], "{of_first}");

    let repaired = of_second["repaired"].as_str().unwrap();
    let target = repo.mkdir("restored");
    repo.restore(repaired, &target);
    let root = restored_path(&target, &src);
    assert_same_contents(&src.join("two"), &root.join("two"));
    assert!(root.join("one").is_dir(), "the lost directory is kept, empty");
    assert_eq!(fs::read_dir(root.join("one")).unwrap().count(), 0);
    assert_eq!(fs::read(root.join("big.bin")).unwrap(), fs::read(src.join("big.bin")).unwrap());
    let (code, v) = check_code(&repo);
    assert_eq!(code, Some(0), "check after repair --forget: {v}");
}

#[test]
fn read_data_finds_blobs_that_do_not_verify() {
    let repo = Repo::new();
    let src = source(&repo);
    repo.backup(&[&src], &[]);
    // Same size, one bit: only reading the pack can tell.
    let pack = objects(&repo.repo, "data").remove(0);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&pack, &bytes).unwrap();

    let blind = repo.json(&["repair", "snapshots"]);
    assert_eq!(num(&blind, "intact"), 1, "without --read-data a listed pack counts as intact: {blind}");
    let done = repo.json(&["repair", "snapshots", "--read-data", "--forget"]);
    let entry = &done["damaged"][0];
    let lost = lost_items(entry);
    assert_eq!(lost.len(), 1, "one flipped bit damages one blob, so one file: {done}");
    assert!(entry["lost"][0]["ranges"][0]["reason"].as_str().unwrap().contains("blob"), "{done}");
    let target = repo.mkdir("restored");
    repo.restore(entry["repaired"].as_str().unwrap(), &target);
    let root = restored_path(&target, &src);
    for rel in regular_files(&src) {
        let abs = join_rel(&src, &rel).to_string_lossy().into_owned();
        let want = fs::read(join_rel(&src, &rel)).unwrap();
        let got = fs::read(join_rel(&root, &rel)).unwrap();
        let expect = lost.get(&abs).map_or(want.clone(), |(_, ranges)| without(&want, ranges));
        assert!(got == expect, "{abs}");
    }
    let out = repo.run(&["check", "--read-data", "--json"]);
    let v = parse_json(&out);
    for f in error_findings(&v) {
        assert!(f["snapshots"].as_array().unwrap().is_empty(), "only the damaged pack itself is left: {f}");
    }
}

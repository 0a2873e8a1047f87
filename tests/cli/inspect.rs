//! The read-only inspection commands (issue 14): `diff`, `find` and `stats`, with exact expected output on small
//! fixed trees, their `--json` documents as docs/cli-contract.md lists them, and a cold-storage run: with nothing
//! under `data/` reachable, `snapshots` (also grouped), `diff`, `find` and `stats` give the same answers; and
//! `snapshots --group-by --last`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;
use crate::contract::conforms;

/// File mtime of every fixture entry (2023-11-14 22:13:20 UTC), and a later one (a day later).
const T1: i64 = 1_700_000_000;
const T2: i64 = 1_700_086_400;

/// Sets the mtime of `src` and of everything below it to [`T1`], except the paths in `later` ([`T2`]) and those
/// `keep/` and what lies below it unless `first` (setting a time changes the ctime, which the stored node keeps:
/// keep/ would not be the same tree in every snapshot).
fn settle(src: &Path, later: &[&str], first: bool) {
    set_times(src, None, Some((T1, 0)));
    for rel in walk(src) {
        let rel = String::from_utf8(rel).unwrap();
        if rel.starts_with("keep") && !first {
            continue;
        }
        let t = if later.contains(&rel.as_str()) { T2 } else { T1 };
        set_times(&src.join(&rel), None, Some((t, 0)));
    }
}

/// The three snapshots of `find` (and the first two of `diff`): ids oldest first, and the source directory.
///   s1 (2024-01-01): edit.txt "before\n", gone.txt, keep/a.txt "alpha\n", mode.txt (0644), x (a file)
///   s2 (2024-02-01): edit.txt "after!!\n" (later mtime), gone.txt removed, mode.txt 0600, x a directory holding
///                    inner.txt, new.txt added; keep/ unchanged
///   s3 (2024-03-01): dup.txt added, with the content of keep/a.txt
/// `backup PATHS EXTRA --json` with inline content off (threshold 0, README's benchmark knob): these tests find
/// and count files by their data blobs, which a file inline in its tree node (format-spec §7.3) does not have.
fn backup_blobs(repo: &Repo, paths: &[&Path], extra: &[&str]) -> Value {
    let mut args: Vec<&str> = vec!["backup"];
    args.extend(paths.iter().map(|p| s(p)));
    args.extend(extra);
    args.push("--json");
    let mut cmd = repo.command(&args);
    cmd.env("CAIRN_BENCH_INLINE_MAX", "0");
    let out = run_cmd(cmd);
    parse_json(&expect_success(&repo.command(&args), out))
}

fn three_snapshots(repo: &Repo) -> (Vec<String>, PathBuf) {
    let src = repo.mkdir("src");
    write_file(&src.join("edit.txt"), b"before\n");
    write_file(&src.join("gone.txt"), b"gone\n");
    write_file(&src.join("keep/a.txt"), b"alpha\n");
    write_file(&src.join("mode.txt"), b"mode\n");
    write_file(&src.join("x"), b"x\n");
    for f in ["edit.txt", "gone.txt", "keep/a.txt", "mode.txt", "x"] {
        chmod(&src.join(f), 0o644);
    }
    for d in ["", "keep"] {
        chmod(&src.join(d), 0o755);
    }
    settle(&src, &[], true);
    let mut ids = vec![];
    ids.push(string(&backup_blobs(repo, &[&src], &["--time", "2024-01-01", "--host", "h1"]), "snapshot_id"));
    write_file(&src.join("edit.txt"), b"after!!\n");
    fs::remove_file(src.join("gone.txt")).unwrap();
    chmod(&src.join("mode.txt"), 0o600);
    fs::remove_file(src.join("x")).unwrap();
    write_file(&src.join("x/inner.txt"), b"in\n");
    write_file(&src.join("new.txt"), b"new file\n");
    chmod(&src.join("x"), 0o755);
    for f in ["x/inner.txt", "new.txt"] {
        chmod(&src.join(f), 0o644);
    }
    settle(&src, &["edit.txt"], false);
    ids.push(string(&backup_blobs(repo, &[&src], &["--time", "2024-02-01", "--host", "h1"]), "snapshot_id"));
    write_file(&src.join("dup.txt"), b"alpha\n");
    chmod(&src.join("dup.txt"), 0o644);
    settle(&src, &["edit.txt"], false);
    ids.push(string(&backup_blobs(repo, &[&src], &["--time", "2024-03-01", "--host", "h1"]), "snapshot_id"));
    (ids, src)
}

/// `text` with every occurrence of `src`'s path written as `SRC`.
fn masked(text: &str, src: &Path) -> String {
    text.replace(s(src), "SRC")
}

/// The node at absolute `path` in snapshot `snap`, through `cat snapshot` and `cat tree`.
fn node_at(repo: &Repo, snap: &str, path: &Path) -> Value {
    let mut tree = repo.json(&["cat", "snapshot", snap])["snapshot"]["V3"]["root"].as_str().unwrap().to_string();
    let mut node = Value::Null;
    for c in path.components().skip(1) {
        let name: Vec<Value> = c.as_os_str().as_encoded_bytes().iter().map(|b| json!(b)).collect();
        let listing = repo.json(&["cat", "tree", &tree]);
        node = listing["DirV1"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"].as_array() == Some(&name))
            .unwrap_or_else(|| panic!("{path:?} not in snapshot {snap}"))
            .clone();
        if let Some(t) = node["kind"]["Dir"]["tree"].as_str() {
            tree = t.to_string();
        }
    }
    node
}

/// The one chunk id of a small file.
fn chunk_of(repo: &Repo, snap: &str, path: &Path) -> String {
    let n = node_at(repo, snap, path);
    let ids = n["kind"]["File"]["content"]["Chunks"].as_array().unwrap_or_else(|| panic!("{n}"));
    assert_eq!(ids.len(), 1, "{path:?} is one chunk: {n}");
    ids[0].as_str().unwrap().to_string()
}

/// Every pack of the index: id → (kind, size, [(blob id, stored share)]). A blob's share is its stored length;
/// a bundle member's is its part of the bundle's stored length, in proportion to its plain length (format-spec
/// §5.5), computed here by hand: `⌊L·(o + p)/T⌋ − ⌊L·o/T⌋` for inner offset o, plain length p, body length T.
type Packs = BTreeMap<String, (String, u64, Vec<(String, u64)>)>;

fn index_packs(repo: &Repo) -> Packs {
    let mut out = Packs::new();
    for f in objects(&repo.repo, "index") {
        let v = repo.json(&["cat", "index", f.file_name().unwrap().to_str().unwrap()]);
        // Version 2 when a pack holds a bundle (format-spec §6.1).
        let file = if v["V2"].is_null() { &v["V1"] } else { &v["V2"] };
        for p in file["packs"].as_array().unwrap() {
            let list = p["blobs"].as_array().unwrap();
            let body_end = |offset: u64| {
                list.iter()
                    .filter(|b| num(b, "offset") == offset && !b["inner"].is_null())
                    .map(|b| num(b, "inner") + num(b, "plain_length"))
                    .max()
                    .unwrap()
            };
            let share = |b: &Value| match b["inner"].as_u64() {
                None => num(b, "length"),
                Some(o) => {
                    let (l, t) = (num(b, "length") as u128, body_end(num(b, "offset")) as u128);
                    (l * (o + num(b, "plain_length")) as u128 / t - l * o as u128 / t) as u64
                }
            };
            let blobs = list.iter().map(|b| (string(b, "id"), share(b))).collect();
            out.insert(string(p, "id"), (string(p, "kind"), num(p, "size"), blobs));
        }
    }
    out
}

/// The index file that names blob `id`.
fn index_of(repo: &Repo, id: &str) -> String {
    for f in objects(&repo.repo, "index") {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if repo.ok(&["cat", "index", &name]).contains(id) {
            return name;
        }
    }
    panic!("no index file names {id}")
}

/// (short snapshot id, path) of each match of `find --json`.
fn found(v: &Value, src: &Path) -> Vec<(String, String)> {
    v["matches"].as_array().unwrap().iter().map(|m| (string(m, "short_id"), masked(&string(m, "path"), src))).collect()
}

fn short(id: &str) -> String {
    id[..8].to_string()
}

#[test]
fn diff_lists_added_removed_modified_type_and_metadata_changes() {
    let repo = Repo::new();
    let (ids, src) = three_snapshots(&repo);
    let (s1, s2) = (ids[0].as_str(), ids[1].as_str());
    let out = masked(&repo.ok(&["diff", s1, s2]), &src);
    assert_eq!(
        out,
        "M  SRC/edit.txt  (7 B → 8 B)\n\
         -  SRC/gone.txt  (5 B)\n\
         +  SRC/new.txt  (9 B)\n\
         T  SRC/x/  (file → dir)\n\
         +  SRC/x/inner.txt  (3 B)\n\
         2 added, 1 removed, 1 modified, 1 type changed; 20 B added, 14 B removed\n",
        "keep/ is unchanged and mode.txt changed its mode only: neither is listed"
    );
    // With --metadata (below the source: the directories above it are the test machine's), mode.txt's mode and
    // edit.txt's mtime show.
    let out = masked(&repo.ok(&["diff", s1, s2, s(&src), "--metadata"]), &src);
    assert_eq!(
        out,
        "M  SRC/edit.txt  (7 B → 8 B; mtime)\n\
         -  SRC/gone.txt  (5 B)\n\
         U  SRC/mode.txt  (mode)\n\
         +  SRC/new.txt  (9 B)\n\
         T  SRC/x/  (file → dir)\n\
         +  SRC/x/inner.txt  (3 B)\n\
         2 added, 1 removed, 1 modified, 1 type changed, 1 metadata changed; 20 B added, 14 B removed\n"
    );
    // One path; the other way round; a path in neither snapshot.
    let x = src.join("x");
    let out = masked(&repo.ok(&["diff", s2, s1, s(&x)]), &src);
    assert_eq!(
        out,
        "T  SRC/x  (dir → file)\n-  SRC/x/inner.txt  (3 B)\n0 added, 1 removed, 0 modified, 1 type changed; 2 B added, 3 B removed\n"
    );
    let out = masked(&repo.ok(&["diff", s1, s1]), &src);
    assert_eq!(out, "0 added, 0 removed, 0 modified, 0 type changed; 0 B added, 0 B removed\n");
    let missing = src.join("no-such");
    let err = repo.expect_code(&["diff", s1, s2, s(&missing)], 1);
    assert!(stderr(&err).contains("no-such"), "{}", describe(&err));
    repo.expect_usage_error(&["diff", s1], &["NEW"]);

    let v = repo.json(&["diff", s1, s2]);
    conforms(
        "diff",
        &v,
        &json!({"old": "hex", "new": "hex",
                "entries": [{"change": "str", "path": "str", "old_type": "str?", "new_type": "str?",
                             "old_size": "n?", "new_size": "n?", "metadata": ["str"]}],
                "summary": {"added": "n", "removed": "n", "modified": "n", "type_changed": "n",
                            "metadata_changed": "n", "bytes_added": "n", "bytes_removed": "n"}}),
    );
    assert_eq!((string(&v, "old"), string(&v, "new")), (ids[0].clone(), ids[1].clone()));
    assert_eq!(
        v["summary"],
        json!({"added": 2, "removed": 1, "modified": 1, "type_changed": 1, "metadata_changed": 0,
               "bytes_added": 20, "bytes_removed": 14})
    );
    let changes: Vec<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (string(e, "change"), masked(&string(e, "path"), &src)))
        .collect();
    let want = [
        ("modified", "SRC/edit.txt"),
        ("removed", "SRC/gone.txt"),
        ("added", "SRC/new.txt"),
        ("type", "SRC/x"),
        ("added", "SRC/x/inner.txt"),
    ];
    assert_eq!(changes, want.map(|(c, p)| (c.to_string(), p.to_string())));
    assert_eq!(v["entries"][3]["old_type"], json!("file"));
    assert_eq!(v["entries"][3]["new_type"], json!("dir"));
}

#[test]
fn find_by_name_path_blob_and_pack_across_three_snapshots() {
    let repo = Repo::new();
    let (ids, src) = three_snapshots(&repo);
    let (s1, s2, s3) = (short(&ids[0]), short(&ids[1]), short(&ids[2]));
    // Globs on the name, newest snapshot first.
    let out = masked(&repo.ok(&["find", "a.txt", "dup*"]), &src);
    let want = format!(
        "snapshot {s3}  2024-03-01 00:00:00  h1\n\
         \x20 file               6  2023-11-14 22:13:20  SRC/dup.txt\n\
         \x20 file               6  2023-11-14 22:13:20  SRC/keep/a.txt\n\
         snapshot {s2}  2024-02-01 00:00:00  h1\n\
         \x20 file               6  2023-11-14 22:13:20  SRC/keep/a.txt\n\
         snapshot {s1}  2024-01-01 00:00:00  h1\n\
         \x20 file               6  2023-11-14 22:13:20  SRC/keep/a.txt\n\
         4 match(es) in 3 of 3 snapshot(s)\n"
    );
    assert_eq!(out, want);
    // A glob with / is on the path (relative: anywhere); `*` stops at /.
    let out = masked(&repo.ok(&["find", "src/x/*"]), &src);
    let want = format!(
        "snapshot {s3}  2024-03-01 00:00:00  h1\n\
         \x20 file               3  2023-11-14 22:13:20  SRC/x/inner.txt\n\
         snapshot {s2}  2024-02-01 00:00:00  h1\n\
         \x20 file               3  2023-11-14 22:13:20  SRC/x/inner.txt\n\
         2 match(es) in 2 of 3 snapshot(s)\n"
    );
    assert_eq!(out, want);
    let abs = format!("{}/*", s(&src));
    let v = repo.json(&["find", &abs, "--snapshot", &s1]);
    let paths: Vec<(String, String)> = found(&v, &src);
    let want: Vec<(String, String)> =
        ["edit.txt", "gone.txt", "keep", "mode.txt", "x"].iter().map(|p| (s1.clone(), format!("SRC/{p}"))).collect();
    assert_eq!(paths, want);
    assert_eq!(v["snapshots"], json!(1));
    conforms(
        "find",
        &v,
        &json!({"snapshots": "n", "matches": [{"snapshot": "hex", "short_id": "short", "time": "time", "host": "str",
                "path": "str", "type": "str", "size": "n", "mtime": "time?", "blobs": ["hex"]}]}),
    );
    // The mtime window: only edit.txt has the later mtime.
    let v = repo.json(&["find", "*.txt", "--oldest", "2023-11-15", "--host", "h1"]);
    let want: Vec<(String, String)> = [&s3, &s2].iter().map(|s| (s.to_string(), "SRC/edit.txt".to_string())).collect();
    assert_eq!(found(&v, &src), want);
    let v = repo.json(&["find", "edit.txt", "--newest", "2023-11-15"]);
    assert_eq!(found(&v, &src), [(s1.clone(), "SRC/edit.txt".to_string())]);

    // --blob: the chunk keep/a.txt and dup.txt share.
    let chunk = chunk_of(&repo, "latest", &src.join("keep/a.txt"));
    assert_eq!(chunk, chunk_of(&repo, "latest", &src.join("dup.txt")));
    let v = repo.json(&["find", "--blob", &chunk]);
    let want = [(&s3, "dup.txt"), (&s3, "keep/a.txt"), (&s2, "keep/a.txt"), (&s1, "keep/a.txt")]
        .map(|(s, p)| (s.to_string(), format!("SRC/{p}")));
    assert_eq!(found(&v, &src), want);
    assert!(v["matches"].as_array().unwrap().iter().all(|m| m["blobs"] == json!([chunk])), "{v}");
    // A tree blob: the directory keep/, the same tree in every snapshot (read once, found three times).
    let keep = src.join("keep");
    assert_eq!(node_at(&repo, &ids[0], &keep)["kind"], node_at(&repo, &ids[2], &keep)["kind"]);
    let keep_tree = node_at(&repo, "latest", &src.join("keep"))["kind"]["Dir"]["tree"].as_str().unwrap().to_string();
    let v = repo.json(&["find", "--blob", &keep_tree]);
    let want = [&s3, &s2, &s1].map(|s| (s.to_string(), "SRC/keep".to_string()));
    assert_eq!(found(&v, &src), want);
    assert_eq!(v["matches"][0]["type"], json!("dir"));
    // With a pattern too, both must match.
    let v = repo.json(&["find", "--blob", &chunk, "dup.txt"]);
    assert_eq!(found(&v, &src), [(s3.clone(), "SRC/dup.txt".to_string())]);

    // --pack: every file one of whose chunks the pack holds (the index names the pack's blobs).
    let packs = index_packs(&repo);
    let (pack, (_, _, blobs)) = packs.iter().find(|(_, (_, _, b))| b.iter().any(|(id, _)| *id == chunk)).unwrap();
    let in_pack: BTreeSet<&str> = blobs.iter().map(|(id, _)| id.as_str()).collect();
    let mut want = Vec::new();
    let files: [(&str, &[&str]); 3] = [
        (&ids[2], &["dup.txt", "edit.txt", "keep/a.txt", "mode.txt", "new.txt", "x/inner.txt"]),
        (&ids[1], &["edit.txt", "keep/a.txt", "mode.txt", "new.txt", "x/inner.txt"]),
        (&ids[0], &["edit.txt", "gone.txt", "keep/a.txt", "mode.txt", "x"]),
    ];
    for (snap, paths) in files {
        for p in paths {
            if in_pack.contains(chunk_of(&repo, snap, &src.join(p)).as_str()) {
                want.push((short(snap), format!("SRC/{p}")));
            }
        }
    }
    let v = repo.json(&["find", "--pack", pack]);
    assert_eq!(found(&v, &src), want);
    assert!(want.len() >= 4, "the pack holds the shared chunk: {want:?}");
    repo.expect_code(&["find", "--pack", &"0".repeat(64)], 1);
    repo.expect_usage_error(&["find", "--blob", "xyz"], &["xyz"]);
    repo.expect_usage_error(&["find"], &["PATTERN"]);
}

#[test]
fn stats_match_a_hand_count_of_a_small_tree() {
    let repo = Repo::new();
    let src = repo.mkdir("data");
    let content = random_bytes(7, 1000);
    write_file(&src.join("a.bin"), &content);
    write_file(&src.join("b.bin"), &content);
    fs::hard_link(src.join("a.bin"), src.join("c.bin")).unwrap();
    write_file(&src.join("old.bin"), &random_bytes(8, 700));
    let first = string(&backup_blobs(&repo, &[&src], &["--time", "2024-01-01", "--host", "h1"]), "snapshot_id");
    fs::remove_file(src.join("old.bin")).unwrap();
    let second = string(&backup_blobs(&repo, &[&src], &["--time", "2024-02-01", "--host", "h1"]), "snapshot_id");
    // Directories: those above the source (as stored) and the source itself.
    let dirs = src.components().count() as u64 - 1;

    // restore-size: every name is a file; the hardlink group's bytes count once.
    let out = repo.ok(&["stats", &second]);
    let want = format!(
        "Snapshots:            1\nFiles:                3\nDirectories:          {dirs}\nOther entries:        0\n\
         Restore size:         2000 B (1.95 KiB)\n\n{:<8}  {:<19}  {:<16}  {:>8}  {:>14}\n{:<8}  {:<19}  {:<16}  {:>8}  {:>14}\n",
        "ID",
        "TIME",
        "HOST",
        "FILES",
        "BYTES",
        short(&second),
        "2024-02-01 00:00:00",
        "h1",
        3,
        2000
    );
    assert_eq!(out, want);

    // dedup: 2000 bytes restored from one data blob of 1000 plain bytes.
    let v = repo.json(&["stats", &second, "--mode", "dedup"]);
    conforms(
        "stats",
        &v,
        &json!({"mode": "str", "snapshots": "n", "restore": {"files": "n", "dirs": "n", "other": "n", "bytes": "n"},
                "per_snapshot": "arr", "raw": {"blobs": "n", "data_blobs": "n", "tree_blobs": "n", "plain_bytes": "n",
                "stored_bytes": "n", "data_plain_bytes": "n", "data_stored_bytes": "n", "compression_ratio": "num?",
                "missing_blobs": "n"}, "dedup_ratio": "num?", "repository": "obj?"}),
    );
    assert_eq!(v["mode"], json!("dedup"));
    assert_eq!(v["restore"], json!({"files": 3, "dirs": dirs, "other": 0, "bytes": 2000}));
    assert_eq!(v["dedup_ratio"], json!(2.0));
    assert_eq!(v["repository"], Value::Null, "a snapshot was named");
    let packs = index_packs(&repo);
    let stored = |id: &str| packs.values().flat_map(|p| &p.2).find(|b| b.0 == id).unwrap().1;
    let chunk = chunk_of(&repo, &second, &src.join("a.bin"));
    let raw = &v["raw"];
    assert_eq!((num(raw, "data_blobs"), num(raw, "data_plain_bytes")), (1, 1000));
    // The raw sizes count a bundle whole, once (src/ops/stats.rs): a.bin shares one with old.bin.
    let segment = |id: &str| {
        let index = repo.json(&["cat", "index", &index_of(&repo, id)]);
        let file = if index["V2"].is_null() { &index["V1"] } else { &index["V2"] };
        let all: Vec<Value> =
            file["packs"].as_array().unwrap().iter().flat_map(|p| p["blobs"].as_array().unwrap().clone()).collect();
        num(all.iter().find(|b| string(b, "id") == id).unwrap(), "length")
    };
    assert_eq!(num(raw, "data_stored_bytes"), segment(&chunk));
    assert_eq!(num(raw, "tree_blobs"), dirs + 1, "one tree blob per directory and the root");
    assert_eq!(num(raw, "missing_blobs"), 0);

    // The whole repository after the first snapshot is forgotten: old.bin's blob and the first snapshot's trees
    // (every directory on the way changed) are unused; a prune returns the first snapshot's tree pack whole and
    // old.bin's blob (or its pack, if it has one alone).
    let old_chunk = chunk_of(&repo, &first, &src.join("old.bin"));
    let first_root = repo.json(&["cat", "snapshot", &first])["snapshot"]["V3"]["root"].as_str().unwrap().to_string();
    repo.ok(&["forget", "--keep-last", "1"]);
    let v = repo.json(&["stats", "--mode", "raw"]);
    let r = &v["repository"];
    conforms(
        "stats repository",
        r,
        &json!({"index_files": "n", "packs": "n", "pack_bytes": "n", "blobs": "n", "plain_bytes": "n",
                "stored_bytes": "n", "unused_blobs": "n", "unused_bytes": "n", "unused_packs": "n",
                "prune_would_return": "n"}),
    );
    let (tree_pack, old_pack) = {
        let holding = |id: &str| packs.iter().find(|(_, p)| p.2.iter().any(|b| b.0 == id)).unwrap();
        (holding(&first_root), holding(&old_chunk))
    };
    let tree_blobs = tree_pack.1 .2.len() as u64;
    assert_eq!(num(r, "unused_blobs"), tree_blobs + 1, "{v}");
    assert_eq!(num(r, "unused_packs"), 1 + u64::from(old_pack.1 .2.len() == 1), "{v}");
    let old_return = if old_pack.1 .2.len() == 1 { old_pack.1 .1 } else { stored(&old_chunk) };
    assert_eq!(num(r, "prune_would_return"), tree_pack.1 .1 + old_return, "{v}");
    assert_eq!(num(r, "packs"), packs.len() as u64);
    assert_eq!(num(r, "pack_bytes"), packs.values().map(|p| p.1).sum::<u64>());
    assert_eq!(num(r, "blobs"), packs.values().map(|p| p.2.len() as u64).sum::<u64>());
    assert_eq!(num(r, "stored_bytes"), packs.values().flat_map(|p| &p.2).map(|b| b.1).sum::<u64>());
    assert_eq!(v["raw"]["data_blobs"], json!(1), "only the remaining snapshot counts: {v}");
    repo.expect_usage_error(&["stats", "--mode", "sizes"], &["sizes"]);
}

#[test]
fn inspection_reads_nothing_under_data() {
    let repo = Repo::new();
    let (ids, src) = three_snapshots(&repo);
    let chunk = chunk_of(&repo, "latest", &src.join("keep/a.txt"));
    let pack = index_packs(&repo).into_iter().find(|(_, p)| p.2.iter().any(|b| b.0 == chunk)).unwrap().0;
    let commands: Vec<Vec<String>> = vec![
        vec!["snapshots".into()],
        vec!["snapshots".into(), "--group-by".into(), "host,paths,tags,writer".into(), "--last".into()],
        vec!["diff".into(), ids[0].clone(), ids[2].clone(), "--metadata".into()],
        vec!["find".into(), "*.txt".into()],
        vec!["find".into(), "--blob".into(), chunk.clone()],
        vec!["find".into(), "--pack".into(), pack.clone()],
        vec!["stats".into()],
        vec!["stats".into(), "--mode".into(), "raw".into()],
        vec!["stats".into(), "--mode".into(), "dedup".into(), "latest".into()],
    ];
    let before: Vec<String> = commands.iter().map(|c| repo.ok(c)).collect();
    // The archive tier: data/ is gone from reach, and the cache is new (the index is synced from index/).
    fs::rename(repo.repo.join("data"), repo.base.join("data-archived")).unwrap();
    fs::remove_dir_all(&repo.cache).unwrap();
    for (c, want) in commands.iter().zip(&before) {
        assert_eq!(&repo.ok(c), want, "{c:?} with data/ out of reach");
    }
    // What needs data does fail: the test really took data/ away.
    let out = repo.run(&["dump", "latest", s(&src.join("keep/a.txt"))]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
}

/// `snapshots --group-by` groups as retention does (one grouping function) and `--last` keeps the newest of each
/// group; text and `--json`.
#[test]
fn snapshots_group_by_lists_each_group_and_last_keeps_the_newest() {
    let repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"alpha\n");
    let backup = |host: &str, time: &str, tags: &[&str]| {
        let mut extra = vec!["--time", time, "--host", host];
        for t in tags {
            extra.extend(["--tag", t]);
        }
        short(&string(&repo.backup(&[&src], &extra), "snapshot_id"))
    };
    let (h1a, h1b, h1c) =
        (backup("h1", "2024-01-01", &[]), backup("h1", "2024-02-01", &["x"]), backup("h1", "2024-03-01", &[]));
    let h2a = backup("h2", "2024-01-15", &["x"]);
    let key = &repo.init_key_id()[..8];
    let head = "ID        TIME                  HOST              WRITER    TAGS                    SIZE  PATHS";
    let line = |id: &str, time: &str, host: &str, tags: &str| {
        format!("{id}  {time} 00:00:00   {host:<16}  {key}  {tags:<16}         6 B  SRC")
    };
    let out = masked(&repo.ok(&["snapshots", "--group-by", "host"]), &src);
    let want = [
        "group: host h1".to_string(),
        head.into(),
        line(&h1a, "2024-01-01", "h1", ""),
        line(&h1b, "2024-02-01", "h1", "x"),
        line(&h1c, "2024-03-01", "h1", ""),
        String::new(),
        "group: host h2".into(),
        head.into(),
        line(&h2a, "2024-01-15", "h2", "x"),
        "4 snapshot(s) in 2 group(s)".into(),
    ];
    assert_eq!(out, want.join("\n") + "\n");

    let out = masked(&repo.ok(&["snapshots", "--group-by", "host,tags", "--last"]), &src);
    let want = [
        "group: host h1, tags (none)".to_string(),
        head.into(),
        line(&h1c, "2024-03-01", "h1", ""),
        String::new(),
        "group: host h1, tags x".into(),
        head.into(),
        line(&h1b, "2024-02-01", "h1", "x"),
        String::new(),
        "group: host h2, tags x".into(),
        head.into(),
        line(&h2a, "2024-01-15", "h2", "x"),
        "3 snapshot(s) in 3 group(s)".into(),
    ];
    assert_eq!(out, want.join("\n") + "\n");

    // Without --group-by, --last is the newest of all; the filter applies first.
    let out = masked(&repo.ok(&["snapshots", "--last", "--host", "h2"]), &src);
    assert_eq!(out, format!("{head}\n{}\n1 snapshot(s)\n", line(&h2a, "2024-01-15", "h2", "x")));

    let v = repo.json(&["snapshots", "--group-by", "paths,writer", "--last"]);
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{v}");
    assert_eq!(groups[0]["group"], json!({"paths": [s(&src)], "writer": repo.init_key_id()}));
    let snaps: Vec<String> = groups[0]["snapshots"].as_array().unwrap().iter().map(|x| string(x, "short_id")).collect();
    assert_eq!(snaps, vec![h1c]);
    repo.expect_usage_error(&["snapshots", "--group-by", "host,colour"], &["colour"]);
}

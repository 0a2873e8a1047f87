//! docs/cli-contract.md stays true: every command's `--json` document has the keys the contract lists, with the
//! value types it gives (ids as 64 hex digits, times as RFC 3339 text). A field added to a result type shows up
//! here only if the contract is updated with it; a field renamed or retyped fails here.

use crate::common::*;
use serde_json::{json, Value};

/// Checks `v` against `spec`: an object spec lists keys that must be present (others may be too), an array spec
/// `[item]` checks every element against `item`, and a string names a type: `hex` (64 hex digits), `short` (8 hex
/// digits), `time` (RFC 3339), `str`, `n` (unsigned integer), `num`, `bool`, `arr`, `obj`, `any`; a trailing `?`
/// also allows null.
pub fn conforms(what: &str, v: &Value, spec: &Value) {
    match spec {
        Value::Object(keys) => {
            let obj = v.as_object().unwrap_or_else(|| panic!("{what}: expected an object, got {v}"));
            for (k, s) in keys {
                let field = obj.get(k).unwrap_or_else(|| panic!("{what}: no key {k:?} in {v}"));
                conforms(&format!("{what}.{k}"), field, s);
            }
        }
        Value::Array(item) => {
            let arr = v.as_array().unwrap_or_else(|| panic!("{what}: expected an array, got {v}"));
            for (i, x) in arr.iter().enumerate() {
                conforms(&format!("{what}[{i}]"), x, &item[0]);
            }
        }
        Value::String(t) => {
            let (t, nullable) = match t.strip_suffix('?') {
                Some(t) => (t, true),
                None => (t.as_str(), false),
            };
            if nullable && v.is_null() {
                return;
            }
            let hex = |n: usize| v.as_str().is_some_and(|s| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()));
            let ok = match t {
                "hex" => hex(64),
                "short" => hex(8),
                "time" => v.as_str().is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok()),
                "str" => v.is_string(),
                "n" => v.is_u64(),
                "num" => v.is_number(),
                "bool" => v.is_boolean(),
                "arr" => v.is_array(),
                "obj" => v.is_object(),
                "any" => true,
                other => panic!("bad spec type {other:?}"),
            };
            assert!(ok, "{what}: expected {t}{}, got {v}", if nullable { " or null" } else { "" });
        }
        other => panic!("bad spec {other}"),
    }
}

fn summary_spec() -> Value {
    json!({"files_new": "n", "files_changed": "n", "files_unchanged": "n", "dirs": "n", "other": "n",
           "bytes_read": "n", "bytes_processed": "n", "blobs_added": "n", "bytes_added": "n",
           "bytes_added_stored": "n"})
}

fn prune_spec() -> Value {
    json!({"dry_run": "bool",
           "plan": {"now": "time", "snapshots": "n", "packs": "n", "pack_bytes": "n", "unused_bytes": "n",
                    "sweep": "obj?", "waiting": [{"mark": "str", "packs": "n", "reason": "str", "write_wait": "bool"}],
                    "mark": "obj?", "no_mark_reason": "str?", "warnings": ["str"]},
           "report": "obj?"})
}

#[test]
fn every_json_document_has_the_keys_and_types_the_contract_lists() {
    let mut repo = Repo::uninit();
    let init = repo.json(&["init"]);
    conforms("init", &init, &json!({"repository_id": "hex", "key_id": "hex"}));
    repo.init_info = Some(init);

    let src = repo.mkdir("src");
    write_file(&src.join("a.txt"), b"alpha\n");
    write_file(&src.join("d/b.bin"), &random_bytes(1, 300 * KIB));
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let mut backup_spec = summary_spec();
    for (k, t) in [("snapshot_id", "hex?"), ("parent", "hex?"), ("dry_run", "bool")] {
        backup_spec[k] = json!(t);
    }
    backup_spec["errors"] = json!([{"path": "str", "error": "str"}]);
    backup_spec["dedup_verified"] = json!("n");
    backup_spec["dedup_rejected"] = json!("n");
    backup_spec["unattributed"] = json!("str?");
    let first = repo.json(&["backup", s(&src), "--tag", "t1"]);
    conforms("backup", &first, &backup_spec);
    write_file(&src.join("a.txt"), b"alpha, changed\n");
    let second = repo.json(&["backup", s(&src)]);
    conforms("backup", &second, &backup_spec);
    assert!(second["parent"].is_string(), "the second backup has a parent: {second}");
    let verified = repo.json(&["backup", s(&src), "--verify-dedup", "--dry-run"]);
    conforms("backup --verify-dedup", &verified, &backup_spec);
    assert!(verified["dedup_verified"].as_u64() > Some(0), "--verify-dedup reads back what it dedups: {verified}");
    assert_eq!(verified["dedup_rejected"], json!(0), "{verified}");
    conforms("backup --dry-run", &repo.json(&["backup", s(&src), "--dry-run"]), &backup_spec);

    let snaps = repo.json(&["snapshots"]);
    conforms(
        "snapshots",
        &snaps,
        &json!([{"id": "hex", "short_id": "short", "time": "time", "host": "str", "user": "str", "paths": ["str"],
                 "tags": ["str"], "parent": "hex?", "root": "hex", "source": "str", "summary": summary_spec(),
                 "writer": "hex?", "attribution": "str", "flags": ["str"]}]),
    );
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");

    let ls = repo.json(&["ls", "latest"]);
    conforms("ls", &ls, &json!([{"path": "str", "type": "str", "size": "n", "mode": "n", "mtime": "time"}]));
    let types: Vec<&str> = ls.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.contains(&"file") && types.contains(&"dir") && types.contains(&"symlink"), "{ls}");

    conforms("cat config", &repo.json(&["cat", "config"]), &json!({"number": "n", "config": "obj"}));
    conforms("cat snapshot", &repo.json(&["cat", "snapshot", "latest"]), &json!({"id": "hex", "snapshot": "obj"}));

    let keys = repo.json(&["key", "list"]);
    conforms(
        "key list",
        &keys,
        &json!([{"id": "hex", "kind": "str", "credential": "str", "created": "time", "host": "str", "user": "str",
                 "current": "bool", "certificate": "str", "hosts": ["str"]}]),
    );
    let mut add = repo.command(&["key", "add", "--json"]);
    add.env("CAIRN_NEW_PASSWORD", "second password");
    let added = parse_json(&expect_success(&repo.command(&["key", "add"]), run_cmd(add)));
    conforms("key add", &added, &json!({"key_id": "hex", "write_only": "bool", "hosts": ["str"]}));
    let mut passwd = repo.command(&["key", "passwd", "--json"]);
    passwd.env("CAIRN_NEW_PASSWORD", "third password");
    let changed = parse_json(&expect_success(&repo.command(&["key", "passwd"]), run_cmd(passwd)));
    conforms("key passwd", &changed, &json!({"key_id": "hex", "removed": "hex"}));
    repo.password = "third password".into();
    let removed = repo.json(&["key", "remove", &added["key_id"].as_str().unwrap()[..8]]);
    conforms("key remove", &removed, &json!({"removed": "hex"}));

    let forget_spec = json!({"dry_run": "bool",
        "groups": [{"host": "str?", "paths": "arr?", "tags": "arr?", "writer": "str?",
                    "snapshots": [{"id": "hex", "short_id": "short", "time": "time", "keep": "bool",
                                   "reasons": ["str"]}]}],
        "excluded": [{"id": "hex", "short_id": "short", "time": "time", "host": "str", "reasons": ["str"]}],
        "removed": ["hex"]});
    conforms("forget --dry-run", &repo.json(&["forget", "--keep-last", "1", "--dry-run"]), &forget_spec);
    let both = repo.json(&["forget", "--keep-last", "1", "--prune", "--grace", "0", "--force"]);
    conforms("forget --prune", &both, &json!({"forget": forget_spec, "prune": prune_spec()}));
    assert_eq!(both["forget"]["removed"].as_array().unwrap().len(), 1, "{both}");

    let prune = repo.json(&["prune", "--grace", "0", "--force"]);
    conforms("prune", &prune, &prune_spec());
    if let Some(sweep) = prune["plan"]["sweep"].as_object() {
        conforms(
            "prune sweep",
            &Value::Object(sweep.clone()),
            &json!({"marks": ["str"], "delete": [{"kind": "str", "id": "hex", "size": "n"}],
                    "rescued": [{"kind": "str", "id": "hex", "size": "n"}], "old_index": ["hex"],
                    "delete_bytes": "n", "verified_copies": "n",
                    "bad_copies": [{"kind": "str", "blob": "hex", "pack": "hex", "error": "str"}]}),
        );
    }
    conforms(
        "prune report",
        &prune["report"],
        &json!({"deleted_packs": "n", "deleted_bytes": "n", "replaced_index": "n", "rescued_packs": "n",
                "verified_copies": "n", "repacked_packs": "n", "repacked_blobs": "n", "repack_skipped": ["str"], "marked": "str?",
                "condemned": "n", "waits_written": "n"}),
    );
    let dry = repo.json(&["prune", "--dry-run"]);
    conforms("prune --dry-run", &dry, &prune_spec());
    if let Some(mark) = dry["plan"]["mark"].as_object() {
        conforms(
            "prune mark",
            &Value::Object(mark.clone()),
            &json!({"snapshots": ["hex"], "unused": "arr", "orphans": "arr",
                    "repack": [{"pack": {"kind": "str", "id": "hex", "size": "n"}, "used_bytes": "n",
                                "unused_bytes": "n"}], "reclaim_bytes": "n"}),
        );
    }

    let (check_code, check) = {
        let out = repo.run(&["check", "--read-data", "--json"]);
        (out.status.code(), parse_json(&out))
    };
    assert_eq!(check_code, Some(0), "{check}");
    conforms(
        "check",
        &check,
        &json!({"snapshots": "n", "index_files": "n", "data_packs": "n", "tree_packs": "n", "trees": "n",
                "data_packs_read": "n", "blobs_verified": "n", "bytes_read": "n",
                "findings": [{"severity": "str", "code": "str", "object": "str", "message": "str",
                              "snapshots": ["hex"], "paths": ["str"]}]}),
    );

    conforms(
        "repair index",
        &repo.json(&["repair", "index", "--dry-run"]),
        &json!({"indexed": ["str"], "skipped_recent": ["str"], "unreadable": [["str"]], "superseded": ["str"],
                "index_files": ["str"], "dry_run": "bool"}),
    );
    conforms(
        "repair snapshots",
        &repo.json(&["repair", "snapshots", "--dry-run"]),
        &json!({"snapshots": "n", "intact": "n", "lost_blobs": "n", "dry_run": "bool", "unreadable": [["str"]],
                "damaged": [{"snapshot": "hex", "time": "str", "host": "str", "paths": ["str"], "repaired": "hex?",
                             "already_repaired_by": "hex?", "forgotten": "bool", "lost": "arr"}]}),
    );

    let dst = Repo::new();
    let mut copy = dst.command(&["copy", "--from-repo", s(&repo.repo), "--json"]);
    copy.env("CAIRN_FROM_PASSWORD", &repo.password);
    let copied = parse_json(&expect_success(&dst.command(&["copy"]), run_cmd(copy)));
    let copy_spec = json!({"dry_run": "bool", "rechunked": "bool",
        "snapshots": [{"source": "hex", "target": "hex?", "already": "hex?"}],
        "blobs_added": "n", "bytes_added": "n", "data_blobs_read": "n", "data_bytes_read": "n"});
    conforms("copy", &copied, &copy_spec);
    assert!(copied["snapshots"][0]["target"].is_string(), "{copied}");
    // No snapshot matches: the same document, empty.
    let mut none = dst.command(&["copy", "--from-repo", s(&repo.repo), "--host", "no-such-host", "--json"]);
    none.env("CAIRN_FROM_PASSWORD", &repo.password);
    conforms("copy (nothing)", &parse_json(&expect_success(&dst.command(&["copy"]), run_cmd(none))), &copy_spec);

    // The audit ledger (format-spec §13).
    let log = repo.json(&["ledger", "log"]);
    conforms(
        "ledger log",
        &log,
        &json!([{"id": "hex", "time": "time", "kind": "str", "key_id": "hex", "parents": ["hex"], "host": "str?",
                 "user": "str?", "event": "obj?"}]),
    );
    assert!(log.as_array().unwrap().len() > 5, "{log}");
    conforms("ledger head", &repo.json(&["ledger", "head"]), &json!({"line": "str", "entries": "n", "heads": ["hex"]}));
    conforms(
        "ledger verify",
        &dst.json(&["ledger", "verify"]),
        &json!({"entries": "n", "heads": ["hex"], "snapshots": "n",
                "findings": [{"code": "str", "object": "str", "message": "str"}]}),
    );
    // snapshots --group-by and tag (last: tag changes a snapshot's id).
    let listed = json!({"id": "hex", "short_id": "short", "time": "time", "host": "str", "paths": ["str"],
                        "tags": ["str"], "writer": "hex?", "attribution": "str", "flags": ["str"]});
    let grouped = repo.json(&["snapshots", "--group-by", "host,paths,tags,writer", "--last"]);
    conforms(
        "snapshots --group-by",
        &grouped,
        &json!([{"group": {"host": "str", "paths": ["str"], "tags": ["str"], "writer": "str"}, "snapshots": [listed]}]),
    );
    assert!(!grouped.as_array().unwrap().is_empty(), "{grouped}");
    let tagged = repo.json(&["tag", "latest", "--add", "contract"]);
    conforms(
        "tag",
        &tagged,
        &json!({"dry_run": "bool", "snapshots": [{"old": "hex", "new": "hex?", "before": ["str"], "after": ["str"],
                                                  "signed": "bool", "unchanged": "bool"}]}),
    );
    assert!(tagged["snapshots"][0]["new"].is_string(), "{tagged}");
}

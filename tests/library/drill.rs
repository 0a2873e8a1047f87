//! The drill operation (`cairn::ops::drill`, format-spec §13.8): a drill restores, re-reads and compares, runs its
//! verify command with the drill's environment, seals its evidence (the JSON's BLAKE3 in a `drill` ledger entry that
//! `check_evidence` finds verified), keeps a given target and removes its temporary one, holds the drill to its RTO,
//! and writes evidence files privately without following a planted symlink.

use super::fixtures::{files, init_local, snapshot_of, write};
use cairn::ledger::Event;
use cairn::ops::drill::{self, DrillOptions, Verdict};
use cairn::ops::ledger;
use cairn::restore::NoRestoreProgress;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_drill_restores_compares_runs_its_command_and_seals_the_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, target) = (tmp.path().join("src"), tmp.path().join("target"));
    write(&src.join("a.txt"), b"alpha\n");
    write(&src.join("d/b.bin"), &super::fixtures::bytes(5, 300_000));
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let id = snapshot_of(&repo, &src);
    let snap = repo.load_snapshot(&id).unwrap();
    let out = tmp.path().join("env.txt");
    let opts = DrillOptions {
        target: Some(target.clone()),
        verify_command: Some(format!("echo \"$CAIRN_DRILL_TARGET $CAIRN_DRILL_SNAPSHOT\" > {}", out.display())),
        rto_ms: Some(3_600_000),
        job: Some("nightly".into()),
        ..Default::default()
    };
    let r = drill::drill(&repo, id, &snap, &opts, &NoRestoreProgress).unwrap();
    assert_eq!(r.verdict(), Verdict::Passed, "{}", r.text);
    let ev = &r.evidence;
    assert_eq!((ev.files, ev.compared_files), (2, 2));
    assert_eq!(ev.compared_bytes, 300_006);
    assert_eq!(ev.job.as_deref(), Some("nightly"));
    assert!(ev.margin_ms.unwrap() > 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{} {}\n", target.display(), id.to_hex()));
    // A given target is kept, with the snapshot's files in it.
    assert_eq!(r.target_removed, None);
    assert_eq!(files(&target.join(src.strip_prefix("/").unwrap())), files(&src));
    // A second drill into the same (now full) target is refused before anything is restored.
    let again = drill::drill(&repo, id, &snap, &opts, &NoRestoreProgress).unwrap_err();
    assert!(again.to_string().contains("is not empty"), "{again}");
    // Sealed: the hash is that of the JSON bytes, the JSON parses back, the ledger entry records it.
    assert_eq!(r.hash, drill::evidence_hash(&r.json));
    let back: drill::Evidence = serde_json::from_slice(&r.json).unwrap();
    assert_eq!(back.snapshot, id);
    assert_eq!(back.format, drill::EVIDENCE_FORMAT);
    let entries = ledger::log(&repo, None, Some(cairn::ledger::EntryKind::Drill)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(Some(entries[0].id), r.entry);
    match &entries[0].event {
        Some(Event::Drill { snapshot, passed, report_hash, rto_ms, job, .. }) => {
            assert_eq!((*snapshot, *passed, *report_hash, *rto_ms), (id, true, r.hash, Some(3_600_000)));
            assert_eq!(job.as_deref(), Some("nightly"));
        }
        other => panic!("{other:?}"),
    }
    let report = ledger::verify(&repo, None).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let check = drill::check_evidence(&repo, &r.json, &report.findings).unwrap();
    assert!(check.sealed());
    assert_eq!(check.entries[0].entry, r.entry.unwrap());
    let mut edited = r.json.clone();
    edited.insert(0, b' ');
    assert!(!drill::check_evidence(&repo, &edited, &report.findings).unwrap().sealed());
    // Over the RTO, and a failing command; the temporary target goes each time.
    let opts = DrillOptions { verify_command: Some("sleep 0.02".into()), rto_ms: Some(1), ..Default::default() };
    let r = drill::drill(&repo, id, &snap, &opts, &NoRestoreProgress).unwrap();
    assert_eq!(r.verdict(), Verdict::OverRto);
    assert_eq!(r.target_removed, Some(true));
    assert!(!std::path::Path::new(r.evidence.target.as_deref().unwrap()).exists());
    let opts = DrillOptions { verify_command: Some("exit 7".into()), ..Default::default() };
    let r = drill::drill(&repo, id, &snap, &opts, &NoRestoreProgress).unwrap();
    assert_eq!(r.verdict(), Verdict::Failed);
    assert_eq!(r.evidence.verify_command.as_ref().unwrap().exit_code, Some(7));
    assert_eq!(r.target_removed, Some(true));
}

#[test]
fn evidence_files_are_private_and_never_written_through_a_planted_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.txt"), b"alpha\n");
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let id = snapshot_of(&repo, &src);
    let snap = repo.load_snapshot(&id).unwrap();
    let r = drill::drill(&repo, id, &snap, &DrillOptions::default(), &NoRestoreProgress).unwrap();
    let dir = tmp.path().join("evidence");
    std::fs::create_dir(&dir).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    let stamp: String = r.evidence.started.to_rfc3339().chars().take(19).filter(|c| c.is_ascii_digit()).collect();
    let first = dir.join(format!("drill-{stamp}-{}.json", id.short()));
    std::os::unix::fs::symlink(&victim, &first).unwrap();
    let (json, txt) = drill::write_evidence(&dir, &r.evidence, &r.json, &r.text).unwrap();
    assert_eq!(json, dir.join(format!("drill-{stamp}-{}-2.json", id.short())));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert_eq!(std::fs::read(&json).unwrap(), r.json);
    assert_eq!(std::fs::read_to_string(&txt).unwrap(), r.text);
    for f in [&json, &txt] {
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn the_re_read_finds_a_restored_file_changed_after_the_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, target) = (tmp.path().join("src"), tmp.path().join("target"));
    write(&src.join("a.txt"), b"alpha\n");
    write(&src.join("d/b.bin"), &super::fixtures::bytes(9, 200_000));
    let repo = init_local(&tmp.path().join("repo"), b"pw", &tmp.path().join("cache"));
    let id = snapshot_of(&repo, &src);
    let snap = repo.load_snapshot(&id).unwrap();
    let o = cairn::restore::RestoreOptions { target: target.clone(), ..Default::default() };
    let plan = cairn::restore::plan(&repo, &snap.root(), None, &o).unwrap();
    let r = cairn::restore::execute(&repo, &plan, &o, &NoRestoreProgress).unwrap();
    assert!(r.errors.is_empty());
    assert_eq!(drill::compare_restored(&repo, &plan, &target, None).unwrap(), (2, 200_006, vec![]));
    // One byte changed (same size), one file gone.
    let restored = target.join(src.strip_prefix("/").unwrap());
    let mut b = std::fs::read(restored.join("d/b.bin")).unwrap();
    b[150_000] ^= 1;
    std::fs::write(restored.join("d/b.bin"), &b).unwrap();
    std::fs::remove_file(restored.join("a.txt")).unwrap();
    let (files, bytes, bad) = drill::compare_restored(&repo, &plan, &target, None).unwrap();
    assert_eq!((files, bytes), (0, 0));
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].0.as_deref(), Some(restored.join("a.txt").to_str().unwrap()));
    assert!(bad[0].1.starts_with("not restored"), "{bad:?}");
    assert_eq!(bad[1].0.as_deref(), Some(restored.join("d/b.bin").to_str().unwrap()));
    assert!(bad[1].1.contains("are not those of data blob"), "{bad:?}");
    // A symlink in place of a file is not followed.
    std::os::unix::fs::symlink(src.join("a.txt"), restored.join("a.txt")).unwrap();
    let (_, _, bad) = drill::compare_restored(&repo, &plan, &target, None).unwrap();
    assert!(bad[0].1.starts_with("not restored"), "{bad:?}");
    // Includes restore (and compare) only what matches.
    let opts = DrillOptions { includes: vec![format!("{}/a.txt", src.display())], ..Default::default() };
    let r = drill::drill(&repo, id, &snap, &opts, &NoRestoreProgress).unwrap();
    assert_eq!(r.verdict(), Verdict::Passed, "{}", r.text);
    assert_eq!((r.evidence.files, r.evidence.compared_files, r.evidence.compared_bytes), (1, 1, 6));
}

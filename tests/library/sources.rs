//! Several sources, one snapshot (format-spec §8.1) through the library: the version 3 manifest a backup of paths,
//! a stream and a command commits (its records, no command text in the plaintext, signed and verified), a failing
//! command that commits nothing, and version 2 snapshots whose signatures still verify beside version 3 ones.

use super::fixtures::{as_v1, bytes, opts, restore_matches, write};
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::cert::Attribution;
use cairn::codec::{attribution, object};
use cairn::crypto::Session;
use cairn::error::Error;
use cairn::id::SnapshotId;
use cairn::layout::StoredId;
use cairn::repository::{InitOptions, Repository};
use cairn::snapshot::{Snapshot, SnapshotV2, SourceRecord};
use std::path::Path;

const PASSWORD: &[u8] = b"sources";
const SECRET: &str = "PGPASSWORD=hunter2-in-the-command-line";

/// A repository in `base/repo`, opened with its password (so its key signs).
fn repo(base: &Path) -> Repository {
    let dir = base.join("repo");
    Repository::init(super::fixtures::local(&dir), PASSWORD, &InitOptions::default(), &opts(&base.join("c-init")))
        .unwrap();
    Repository::open(super::fixtures::local(&dir), PASSWORD, &opts(&base.join("cache"))).unwrap()
}

#[test]
fn a_backup_of_paths_a_stream_and_a_command_commits_one_signed_v3_manifest_without_the_command_text() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.bin"), &bytes(1, 200 * 1024));
    let repo = repo(tmp.path());
    let sources = vec![
        BackupSource::Paths(vec![src.clone()]),
        BackupSource::Command { path: "db/app.sql".into(), command: format!("{SECRET} printf 'SELECT 1;'") },
        BackupSource::Stream { path: "in/put".into(), reader: Box::new(std::io::Cursor::new(bytes(2, 5000))) },
    ];
    let r = backup(&repo, sources, &BackupOptions::default(), &NoProgress).unwrap();
    let id = r.snapshot_id.unwrap();
    let reader = repo.readable().unwrap();
    let stored = reader.backend().read(&id.path()).unwrap();
    let snap = object::decode_snapshot(reader.keys(), &id, &stored).unwrap();
    let Snapshot::V3(v3) = &snap else { panic!("writers write version 3, not {snap:?}") };
    let src_bytes = src.to_str().unwrap().as_bytes().to_vec();
    assert_eq!(
        v3.sources,
        vec![
            SourceRecord::Paths { path: src_bytes.clone() },
            SourceRecord::Command { path: "db/app.sql".into(), exit_status: 0, bytes: 9 },
            SourceRecord::Stdin { path: "in/put".into(), bytes: 5000 },
        ]
    );
    assert_eq!(v3.paths, vec![b"/db/app.sql".to_vec(), b"/in/put".to_vec(), src_bytes]);
    assert!(v3.replaces.is_empty(), "a backup replaces nothing");
    // The opened plaintext holds no part of the command line.
    let plain = postcard::to_allocvec(&snap).unwrap();
    for needle in [SECRET.as_bytes(), b"hunter2", b"printf"] {
        assert!(
            !plain.windows(needle.len()).any(|w| w == needle),
            "the manifest holds {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // Signed over the version 3 postcard without the writer block, and verified as such.
    assert!(snap.writer().is_some(), "a key opened with its password signs");
    let (att, allowed) = reader.attribute_snapshot(&id, &snap).unwrap();
    assert!(matches!(att, Attribution::Attributed { .. }) && allowed, "{att:?}");
    // Every part restores.
    let target = tmp.path().join("restored");
    restore_matches(&reader, &id, &src, &target);
    assert_eq!(std::fs::read(target.join("db/app.sql")).unwrap(), b"SELECT 1;");
    assert!(std::fs::read(target.join("in/put")).unwrap() == bytes(2, 5000), "the stream restores byte for byte");
}

#[test]
fn a_failing_command_commits_nothing_and_names_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.bin"), &bytes(3, 1000));
    let repo = repo(tmp.path());
    let sources = vec![
        BackupSource::Paths(vec![src]),
        BackupSource::Command { path: "ok.bin".into(), command: "head -c 3000000 /dev/zero".into() },
        BackupSource::Command {
            path: "redis/dump.rdb".into(),
            command: format!("{SECRET}; echo 'NOAUTH' >&2; exit 7"),
        },
    ];
    let err = backup(&repo, sources, &BackupOptions::default(), &NoProgress).unwrap_err();
    match &err {
        Error::CommandFailed { path, status, stderr } => {
            assert_eq!(
                (path.as_str(), status.as_str(), stderr.as_str()),
                ("/redis/dump.rdb", "exited with status 7", "NOAUTH")
            );
        }
        other => panic!("not CommandFailed: {other:?}"),
    }
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(err.kind().exit_code(), 1);
    let reader = repo.readable().unwrap();
    assert!(reader.backend().list("snapshots/").unwrap().is_empty(), "a failed command committed a snapshot");
}

#[test]
fn version_2_signatures_still_verify_and_cannot_be_moved_to_version_3() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.bin"), &bytes(4, 1000));
    let repo = repo(tmp.path());
    let r = backup(&repo, vec![BackupSource::Paths(vec![src])], &BackupOptions::default(), &NoProgress).unwrap();
    let reader = repo.readable().unwrap();
    let snap = reader.load_snapshot(&r.snapshot_id.unwrap()).unwrap();
    let Snapshot::V1(base) = as_v1(&snap) else { unreachable!() };
    let secret = repo.key_sign_secret().unwrap().clone();
    let put = |id: &SnapshotId, snap: &Snapshot| {
        let session = Session::new_writer(reader.keys());
        let _ = reader.backend().delete(&id.path());
        reader.backend().write_new(&id.path(), &object::encode_snapshot(reader.keys(), &session, id, snap)).unwrap();
        reader.attribute_snapshot(id, &reader.load_snapshot(id).unwrap()).unwrap().0
    };
    // A version 2 snapshot signed as writers before version 3 signed it: the V2 postcard without writer block.
    let unsigned_v2 = postcard::to_allocvec(&Snapshot::V2(SnapshotV2 { base: base.clone(), writer: None })).unwrap();
    let id = SnapshotId(cairn::crypto::random_32());
    let w = attribution::sign_snapshot(&secret, &repo.key_id(), &id, &unsigned_v2);
    let v2 = Snapshot::V2(SnapshotV2 { base, writer: Some(w) });
    let att = put(&id, &v2);
    assert!(matches!(att, Attribution::Attributed { .. }), "a signed V2 snapshot: {att:?}");
    // The same writer block on the version 3 form of the same fields, under the same id, does not verify.
    let att = put(&id, &v2.with_writer(Some(w)));
    assert!(matches!(att, Attribution::Forged(_)), "a V2 signature on V3 bytes: {att:?}");
}

//! The object size limits (format-spec §12, "Object size limits"): an object larger than its type's limit, planted
//! by anyone who can write to storage, is refused as corrupt without being read whole, and does not stop the
//! repository from opening or listing.

use crate::fixtures::{init_local, local, opts, snapshot_of, write};
use cairn::error::{Damaged, Error};
use cairn::id::{KeyId, SnapshotId};
use cairn::layout::{Object, ObjectType, StoredId};
use cairn::repository::Repository;

/// Plants a sparse object of `size` bytes at `path` of the local repository `dir` (sparse: no test writes 64 MiB).
fn plant(dir: &std::path::Path, path: &str, size: u64) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
}

#[test]
fn oversized_configs_keys_and_snapshots_are_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path().join("repo"), tmp.path().join("cache"));
    let src = tmp.path().join("src");
    write(&src.join("f"), b"data");
    let repo = init_local(&dir, b"pw", &cache);
    let real = snapshot_of(&repo, &src);
    drop(repo);
    let max = |t: ObjectType| t.max_size().unwrap();
    plant(&dir, &Object::Config(2).path(), max(ObjectType::Config) + 1);
    plant(&dir, &KeyId([0; 32]).path(), max(ObjectType::Key) + 1);
    let planted = SnapshotId([0; 32]);
    plant(&dir, &planted.path(), max(ObjectType::Snapshot) + 1);

    let repo = Repository::open(local(&dir), b"pw", &opts(&cache)).and_then(|r| r.readable()).unwrap();
    assert_eq!(repo.config_number(), 1, "the oversized config is passed over");
    match repo.load_snapshot(&planted) {
        Err(e @ Error::Corrupt { object: Damaged::Object(Object::Snapshot(id)), .. }) => {
            assert_eq!(id, planted);
            assert!(e.to_string().contains(&format!("{} bytes", max(ObjectType::Snapshot) + 1)), "{e}");
        }
        other => panic!("expected a corrupt snapshot, got {other:?}"),
    }
    let ids: Vec<_> = repo.list_snapshots().unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [real]);
}

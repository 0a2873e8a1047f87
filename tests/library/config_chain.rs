//! The config chain under damage (format-spec §9.2, issue #3): a damaged newest config leaves the highest valid
//! config that chains ruling (the repository opens and restores) and `check` reports the damaged object by name; a
//! damaged first config breaks the chain, and the open error names every config object it passed over.

use cairn::backend::local::LocalBackend;
use cairn::backend::DynBackend;
use cairn::check::{check, CheckOptions};
use cairn::codec::object;
use cairn::config::Config;
use cairn::layout::Object;
use cairn::repository::{InitOptions, OpenOptions, Repository};
use std::sync::Arc;

#[test]
fn a_damaged_config_is_reported_and_the_highest_valid_one_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let opts = |n: u32| OpenOptions {
        cache_root: Some(tmp.path().join(format!("cache{n}"))),
        no_cache: false,
        upgrade_config: false,
    };
    let backend: DynBackend = Arc::new(LocalBackend::new(&dir).unwrap());
    let repo = Repository::init(backend.clone(), b"chain", &InitOptions::default(), &opts(0))
        .and_then(|r| r.readable())
        .unwrap();
    let (keys, key_id) = (repo.keys().clone(), repo.key_id());
    // config/2: the same settings, chained to config/1.
    let first = backend.read(&Object::Config(1).path()).unwrap();
    let Config::V1(mut v1) = repo.config().clone();
    v1.previous = Some(*blake3::hash(&first).as_bytes());
    backend.write_new(&Object::Config(2).path(), &object::encode_config(&keys, 2, &Config::V1(v1)).unwrap()).unwrap();
    let open =
        |n| Repository::open_with_keys(backend.clone(), keys.clone(), key_id, &opts(n)).and_then(|r| r.readable());
    assert_eq!(open(1).unwrap().config_number(), 2);
    assert_eq!(check(&open(1).unwrap(), &CheckOptions::default()).unwrap().errors(), 0);

    // The newest config damaged: config/1 rules (documented), check names config/0000000002.
    let second = dir.join("config/0000000002");
    let mut bytes = std::fs::read(&second).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x04;
    std::fs::write(&second, &bytes).unwrap();
    let repo = open(2).unwrap();
    assert_eq!(repo.config_number(), 1, "the highest valid config that chains rules");
    let report = check(&repo, &CheckOptions::default()).unwrap();
    assert!(
        report.findings.iter().any(|f| f.code == "config-invalid" && f.object == "config/0000000002"),
        "{:#?}",
        report.findings
    );
    assert!(report.errors() > 0);

    // The first config damaged: config/2 no longer chains, nothing rules; the error names both objects.
    let first_path = dir.join("config/0000000001");
    let mut bytes = std::fs::read(&first_path).unwrap();
    bytes[12] ^= 0x01;
    std::fs::write(&first_path, &bytes).unwrap();
    let err = open(3).err().expect("no config rules").to_string();
    assert!(err.contains("config/0000000001") && err.contains("config/0000000002"), "{err}");
}

/// format-spec §12.1: a storage-only attacker who replaces the repository at a location by another one, or rolls
/// its config chain back, is noticed by a client that opened it before (the client pin: repository id, key
/// fingerprint, highest config number).
#[test]
fn the_client_pin_refuses_another_repository_and_a_config_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let cache = tmp.path().join("cache");
    let opts = OpenOptions { cache_root: Some(cache.clone()), no_cache: false, upgrade_config: true };
    let backend: DynBackend = Arc::new(LocalBackend::new(&dir).unwrap());
    let repo =
        Repository::init(backend.clone(), b"pin", &InitOptions::default(), &opts).and_then(|r| r.readable()).unwrap();
    let (keys, key_id) = (repo.keys().clone(), repo.key_id());
    let first = backend.read(&Object::Config(1).path()).unwrap();
    let Config::V1(mut v1) = repo.config().clone();
    v1.previous = Some(*blake3::hash(&first).as_bytes());
    backend.write_new(&Object::Config(2).path(), &object::encode_config(&keys, 2, &Config::V1(v1)).unwrap()).unwrap();
    drop(repo);
    let open = |b: &DynBackend, keys, key_id| Repository::open_with_keys(b.clone(), keys, key_id, &opts);
    assert_eq!(open(&backend, keys.clone(), key_id).unwrap().config_number(), 2, "the pin now holds config 2");

    // Rolled back to config 1: refused, naming the numbers.
    let saved = std::fs::read(dir.join("config/0000000002")).unwrap();
    std::fs::remove_file(dir.join("config/0000000002")).unwrap();
    let err = open(&backend, keys.clone(), key_id).err().expect("a rollback is refused").to_string();
    assert!(err.contains("went back from number 2 to 1"), "{err}");
    std::fs::write(dir.join("config/0000000002"), saved).unwrap();
    open(&backend, keys.clone(), key_id).expect("restored: opens again");

    // Another repository at the same location (its own keys open it): refused, naming the pin to remove.
    let other_dir = tmp.path().join("other");
    let other_backend: DynBackend = Arc::new(LocalBackend::new(&other_dir).unwrap());
    let other_opts =
        OpenOptions { cache_root: Some(tmp.path().join("other-cache")), no_cache: false, upgrade_config: true };
    let other = Repository::init(other_backend, b"pin", &InitOptions::default(), &other_opts).unwrap();
    let (other_keys, other_id) = (other.keys().clone(), other.key_id());
    drop(other);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&other_dir, &dir).unwrap();
    let backend: DynBackend = Arc::new(LocalBackend::new(&dir).unwrap());
    let err = open(&backend, other_keys, other_id).err().expect("a swapped repository is refused").to_string();
    assert!(err.contains("held repository") && err.contains("remove"), "{err}");
}

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

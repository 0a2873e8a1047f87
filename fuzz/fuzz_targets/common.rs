//! Shared by the fuzz targets: fixed key material, so a target can seal or MAC its input and
//! reach the decoding that runs after authentication.
#![allow(dead_code)]

use cairn::crypto::{MasterKeys, Secret};
use cairn::id::RepoId;

/// Key material made of constants: the same in every run, so crashes reproduce.
pub fn keys() -> MasterKeys {
    MasterKeys {
        repo_id: RepoId([0x11; 32]),
        id_key: Secret([0x22; 32]),
        chunk_key: Secret([0x33; 32]),
        index_key: Secret([0x44; 32]),
        writer_key: Secret([0x55; 32]),
        // Any 32 bytes are an X25519 public key; it only has to be the same for writer and reader.
        repo_public: [0x66; 32],
        repo_secret: Some(Secret([0x77; 32])),
    }
}

/// The same Ok value, or both errors: the sealed path must decide exactly as the plaintext
/// decoder does.
pub fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, a: &Result<T, String>, b: &Result<T, String>) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "{what}: the two paths decoded different values"),
        (Err(_), Err(_)) => {}
        _ => panic!("{what}: one path accepted what the other refused: {a:?} vs {b:?}"),
    }
}

//! The repository config chain (format-spec §9): `config/<n>` objects, MACed with a key derived
//! from `writer_key`, each naming the hash of its predecessor. Encodes, decodes and verifies.

use crate::chunker::ChunkerParams;
use crate::crypto::{self, context, MasterKeys};
use crate::id::RepoId;
use crate::tree::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a config object.
pub const CONFIG_MAGIC: &[u8; 8] = b"CAIRNCFG";
/// The repository format version this code writes.
pub const FORMAT_VERSION: u32 = 1;
/// The writer protocol version this code implements (DESIGN §7). A config whose
/// `min_writer_version` is higher makes this code refuse to write.
pub const WRITER_VERSION: u32 = 1;
/// Default pack size target.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;

/// A config (format-spec §9.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Config {
    /// Version 1.
    V1(ConfigV1),
}

/// Version 1 of the config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigV1 {
    /// Format version of the repository.
    pub format_version: u32,
    /// Writers older than this refuse to write.
    pub min_writer_version: u32,
    /// Repository id.
    pub repo_id: RepoId,
    /// Chunker algorithm and parameters.
    pub chunker: ChunkerParams,
    /// Target size of data packs in bytes.
    pub pack_size: u32,
    /// Default zstd level (0 = off).
    pub compression_level: i32,
    /// The repository's X25519 public key.
    pub repo_public: [u8; 32],
    /// BLAKE3 of the previous config object's stored bytes; `None` for `config/1`.
    pub previous: Option<[u8; 32]>,
    /// When this config was written.
    pub created: Time,
}

impl Config {
    /// The version-independent view.
    pub fn v1(&self) -> &ConfigV1 {
        match self {
            Config::V1(c) => c,
        }
    }
}

/// Storage path of config number `n`.
pub fn path(n: u64) -> String {
    format!("config/{n:010}")
}

/// Parses a config path back into its number.
pub fn parse_path(p: &str) -> Option<u64> {
    let n = p.strip_prefix("config/")?;
    if n.len() != 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `magic ‖ postcard(config) ‖ MAC(n ‖ preceding bytes)`.
pub fn encode(keys: &MasterKeys, n: u64, cfg: &Config) -> Vec<u8> {
    let mut out = CONFIG_MAGIC.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(cfg).expect("config encodes"));
    let tag = crypto::mac(&keys.writer_mac_key(context::CONFIG_MAC), &[&n.to_le_bytes(), &out]);
    out.extend_from_slice(&tag);
    out
}

/// Decodes a config object without checking its MAC (to show it, or before keys are open).
pub fn decode_unverified(bytes: &[u8]) -> Result<Config, String> {
    if bytes.len() < 8 + 32 || &bytes[..8] != CONFIG_MAGIC {
        return Err("not a config object (magic missing)".into());
    }
    postcard::from_bytes(&bytes[8..bytes.len() - 32]).map_err(|e| format!("decode: {e}"))
}

/// Decodes a config object and checks its MAC and that it belongs to `keys`' repository.
pub fn decode(keys: &MasterKeys, n: u64, bytes: &[u8]) -> Result<Config, String> {
    let cfg = decode_unverified(bytes)?;
    let (body, tag) = bytes.split_at(bytes.len() - 32);
    let want = crypto::mac(&keys.writer_mac_key(context::CONFIG_MAC), &[&n.to_le_bytes(), body]);
    if !crypto::mac_eq(&want, tag) {
        return Err("MAC does not verify (not written by a holder of this repository's keys)".into());
    }
    if cfg.v1().repo_id != keys.repo_id {
        return Err("belongs to another repository".into());
    }
    cfg.v1().chunker.validate()?;
    Ok(cfg)
}

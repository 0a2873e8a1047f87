//! The repository config chain (format-spec §9): `config/<n>` objects, signed with the repository
//! key (or, in repositories from before signatures, MACed with a key derived from `writer_key`),
//! each naming the hash of its predecessor. The types, paths and the unverified decoding; the
//! signature and the MAC are [`crate::codec::object`]'s.

use crate::id::RepoId;
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// First bytes of a config object in the MAC framing (format-spec §9.1; read, never written).
pub const CONFIG_MAGIC: &[u8; 8] = b"CAIRNCFG";
/// First bytes of a signed config object (format-spec §9.1).
pub const CONFIG_SIGNED_MAGIC: &[u8; 8] = b"CAIRNCF2";
/// Length of the signature that ends a signed config object.
pub const SIGNATURE_LEN: usize = 64;
/// The repository format version this code writes in a new repository (format-spec §9.1): 3,
/// whose trees may hold inline file content (§7.3, from 2) and whose packs may hold bundles
/// (§5.5, from 3).
pub const FORMAT_VERSION: u32 = 3;
/// The repository format versions this code reads and writes (format-spec §9.2).
pub const FORMAT_VERSIONS: [u32; 3] = [1, 2, 3];
/// The writer protocol version this code implements (format-spec §9.1). A config whose
/// `min_writer_version` is higher makes this code refuse to write.
pub const WRITER_VERSION: u32 = 1;
/// Default pack size target.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;
/// Length of the MAC that ends a config object.
pub const MAC_LEN: usize = 32;

/// The chunker algorithm id recorded in the config.
pub const ALGORITHM_FASTCDC2020_KEYED_GEAR: u32 = 1;

/// Chunker parameters, recorded in the config (format-spec §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Algorithm id; 1 = FastCDC 2020 with a keyed gear table.
    pub algorithm: u32,
    /// Minimum chunk size.
    pub min_size: u32,
    /// Average (target) chunk size.
    pub avg_size: u32,
    /// Maximum chunk size.
    pub max_size: u32,
    /// Normalization level, 0..=3.
    pub normalization: u8,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: ALGORITHM_FASTCDC2020_KEYED_GEAR,
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
            normalization: 1,
        }
    }
}

impl ChunkerParams {
    /// Checks the parameters against what the algorithm supports.
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.algorithm == ALGORITHM_FASTCDC2020_KEYED_GEAR
            && self.min_size >= 64
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size
            && self.avg_size >= 256
            && self.avg_size <= 4 * 1024 * 1024
            && self.max_size <= 16 * 1024 * 1024
            && self.min_size.is_multiple_of(2)
            && self.avg_size.is_multiple_of(2)
            && self.max_size.is_multiple_of(2)
            && self.normalization <= 3;
        if ok {
            Ok(())
        } else {
            Err(format!("unsupported chunker parameters {self:?}"))
        }
    }
}

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
    /// The version 1 fields; a newer version adds a match arm to each accessor below.
    pub fn v1(&self) -> &ConfigV1 {
        match self {
            Config::V1(c) => c,
        }
    }
    /// Format version of the repository.
    pub fn format_version(&self) -> u32 {
        match self {
            Config::V1(c) => c.format_version,
        }
    }
    /// Whether trees of this repository may hold inline file content (format-spec §7.3): format
    /// version 2 and above.
    pub fn inline_allowed(&self) -> bool {
        self.format_version() >= 2
    }
    /// Whether packs of this repository may hold bundles (format-spec §5.5): format version 3 and
    /// above.
    pub fn bundles_allowed(&self) -> bool {
        self.format_version() >= 3
    }
    /// Writers older than this refuse to write.
    pub fn min_writer_version(&self) -> u32 {
        match self {
            Config::V1(c) => c.min_writer_version,
        }
    }
    /// Repository id.
    pub fn repo_id(&self) -> RepoId {
        match self {
            Config::V1(c) => c.repo_id,
        }
    }
    /// Chunker algorithm and parameters.
    pub fn chunker(&self) -> ChunkerParams {
        match self {
            Config::V1(c) => c.chunker,
        }
    }
    /// Target size of data packs in bytes.
    pub fn pack_size(&self) -> u32 {
        match self {
            Config::V1(c) => c.pack_size,
        }
    }
    /// Default zstd level (0 = off).
    pub fn compression_level(&self) -> i32 {
        match self {
            Config::V1(c) => c.compression_level,
        }
    }
    /// The repository's X25519 public key.
    pub fn repo_public(&self) -> [u8; 32] {
        match self {
            Config::V1(c) => c.repo_public,
        }
    }
    /// BLAKE3 of the previous config object's stored bytes; `None` for `config/1`.
    pub fn previous(&self) -> Option<[u8; 32]> {
        match self {
            Config::V1(c) => c.previous,
        }
    }
    /// When this config was written.
    pub fn created(&self) -> Time {
        match self {
            Config::V1(c) => c.created,
        }
    }
}

/// Decodes a config object of either framing without checking its signature or MAC (to show it,
/// or before keys are open).
pub fn decode_unverified(bytes: &[u8]) -> Result<Config, String> {
    let trailer = match bytes.get(..8) {
        Some(m) if m == CONFIG_SIGNED_MAGIC => SIGNATURE_LEN,
        Some(m) if m == CONFIG_MAGIC => MAC_LEN,
        _ => return Err("not a config object (magic missing)".into()),
    };
    if bytes.len() < 8 + trailer {
        return Err("not a config object (too short)".into());
    }
    postcard::from_bytes(&bytes[8..bytes.len() - trailer]).map_err(|e| format!("decode: {e}"))
}

/// True when `bytes` carry the signed config framing (format-spec §9.1), whether or not the
/// signature verifies.
pub fn is_signed(bytes: &[u8]) -> bool {
    bytes.get(..8) == Some(&CONFIG_SIGNED_MAGIC[..])
}

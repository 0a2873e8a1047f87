//! Typed identifiers of repository objects (format-spec §2). Pure data: no I/O, no keys.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Parses 64 hex digits into 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Serialized as its 32 bytes in the stored (binary) formats and as 64 hex digits in
        /// human-readable ones (`--json`).
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a 64-digit hex id")))
                } else {
                    <[u8; 32]>::deserialize(d).map(Self)
                }
            }
        }

        impl $name {
            /// The id as 64 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex digits, for display.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// Parses 64 hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                parse_hex32(s).map(Self)
            }
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// Content id of a blob: keyed BLAKE3 of its plaintext (format-spec §3.2).
    BlobId
);
id_type!(
    /// Pack id: unkeyed BLAKE3 of the pack's stored bytes (format-spec §5).
    PackId
);
id_type!(
    /// Snapshot id: random, fixed before sealing (format-spec §8).
    SnapshotId
);
id_type!(
    /// Index file id: random, fixed before sealing (format-spec §6).
    IndexId
);
id_type!(
    /// Key file id: random (format-spec §4).
    KeyId
);
id_type!(
    /// Repository id: random, chosen at init (format-spec §3).
    RepoId
);
id_type!(
    /// Ledger entry id: keyed BLAKE3 of the entry's stored bytes (format-spec §13.2).
    EntryId
);
id_type!(
    /// A 32-byte digest recorded in the ledger (a report's BLAKE3, format-spec §13.3).
    Digest
);

/// The kind of a blob. Dedup is keyed by (kind, id), never by id alone (format-spec §5.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum BlobKind {
    /// File content.
    Data,
    /// A directory listing or an indirect chunk list.
    Tree,
}

impl BlobKind {
    /// The one-byte code used in associated data and cache keys.
    pub fn code(self) -> u8 {
        match self {
            BlobKind::Data => 1,
            BlobKind::Tree => 2,
        }
    }
    /// The inverse of [`BlobKind::code`].
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(BlobKind::Data),
            2 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

impl fmt::Display for BlobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = BlobId([7u8; 32]);
        assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(BlobId::from_hex("zz"), None);
        assert_eq!(id.short().len(), 8);
    }

    #[test]
    fn ids_are_hex_in_json_and_bytes_in_postcard() {
        let id = SnapshotId([0xab; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<SnapshotId>(&json).unwrap(), id);
        let bin = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bin, vec![0xab; 32]);
        assert_eq!(postcard::from_bytes::<SnapshotId>(&bin).unwrap(), id);
    }
}

//! The two envelopes every stored object other than a blob goes through. Sealed (format-spec
//! §3.4): `header ‖ seal(key, aad(kind, name), postcard(value))`, for snapshots, index files, pack
//! headers and key material. MACed (format-spec §3.7): `magic ‖ postcard(value) ‖ MAC(name ‖
//! magic ‖ postcard(value))`, for leases (and the configs, prune marks, lock links and waits of the
//! framing before signatures). Signed (format-spec §3.7): `magic ‖ postcard(value) ‖
//! XEdDSA(repo_secret, context ‖ name ‖ magic ‖ postcard(value))`, for configs, prune marks, lock
//! links and waits. Bytes in, bytes out; knows no object's fields.

use crate::crypto::{self, ObjectKind, Secret};
use crate::id::RepoId;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use zeroize::Zeroizing;

/// Length of the MAC that ends a MACed object.
pub const MAC_LEN: usize = 32;
/// Length of the signature that ends a signed object.
pub const SIG_LEN: usize = crate::codec::sign::SIGNATURE_LEN;
/// Length of the magic that starts a MACed or signed object.
pub const MAGIC_LEN: usize = 8;

/// `header ‖ seal(key, aad(repo, kind, name), postcard(value))`. The plaintext is wiped after.
pub fn seal<T: Serialize>(
    header: &[u8],
    key: &Secret,
    repo: &RepoId,
    kind: ObjectKind,
    name: &[u8; 32],
    value: &T,
) -> Vec<u8> {
    let plain = Zeroizing::new(postcard::to_allocvec(value).expect("stored objects encode"));
    let aad = crypto::aad(repo, kind, name);
    let mut out = header.to_vec();
    out.extend_from_slice(&crypto::seal(key, &aad, &plain));
    out
}

/// Opens the sealed part of an object (what follows its header); `None` when it does not
/// authenticate. The caller decodes the plaintext, which is wiped when dropped.
pub fn open(
    key: &Secret,
    repo: &RepoId,
    kind: ObjectKind,
    name: &[u8; 32],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let aad = crypto::aad(repo, kind, name);
    crypto::open(key, &aad, sealed).map(Zeroizing::new)
}

/// Why a MACed or signed object did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacError {
    /// Too short, or the magic is not the expected one.
    Magic,
    /// The MAC does not verify under the key and name.
    Mac,
    /// The signature does not verify under the repository's public key and the name.
    Signature,
    /// The payload is not a valid encoding.
    Decode(String),
}

impl fmt::Display for MacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MacError::Magic => f.write_str("magic missing"),
            MacError::Mac => f.write_str("MAC does not verify"),
            MacError::Signature => {
                f.write_str("signature does not verify under the repository key (not written by a full key)")
            }
            MacError::Decode(e) => write!(f, "decode: {e}"),
        }
    }
}

/// `magic ‖ postcard(value) ‖ MAC(name ‖ magic ‖ postcard(value))`.
pub fn mac_encode<T: Serialize>(magic: &[u8; MAGIC_LEN], key: &Secret, name: &[u8], value: &T) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(value).expect("stored objects encode"));
    let tag = crypto::mac(key, &[name, &out]);
    out.extend_from_slice(&tag);
    out
}

/// Decodes the payload of a MACed object without checking its MAC.
pub fn mac_decode_unverified<T: DeserializeOwned>(magic: &[u8; MAGIC_LEN], bytes: &[u8]) -> Result<T, MacError> {
    if bytes.len() < MAGIC_LEN + MAC_LEN || &bytes[..MAGIC_LEN] != magic {
        return Err(MacError::Magic);
    }
    postcard::from_bytes(&bytes[MAGIC_LEN..bytes.len() - MAC_LEN]).map_err(|e| MacError::Decode(e.to_string()))
}

/// True when the MAC that ends `bytes` verifies under `key` for `name`.
pub fn mac_verifies(key: &Secret, name: &[u8], bytes: &[u8]) -> bool {
    if bytes.len() < MAC_LEN {
        return false;
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    crypto::mac_eq(&crypto::mac(key, &[name, body]), tag)
}

/// Checks the magic and the MAC of an object stored under `name`, then decodes its payload.
pub fn mac_decode<T: DeserializeOwned>(
    magic: &[u8; MAGIC_LEN],
    key: &Secret,
    name: &[u8],
    bytes: &[u8],
) -> Result<T, MacError> {
    if bytes.len() < MAGIC_LEN + MAC_LEN || &bytes[..MAGIC_LEN] != magic {
        return Err(MacError::Magic);
    }
    if !mac_verifies(key, name, bytes) {
        return Err(MacError::Mac);
    }
    mac_decode_unverified(magic, bytes)
}

/// `magic ‖ postcard(value) ‖ XEdDSA(secret, context ‖ name ‖ magic ‖ postcard(value))`.
pub fn sig_encode<T: Serialize>(
    magic: &[u8; MAGIC_LEN],
    secret: &Secret,
    context: &str,
    name: &[u8],
    value: &T,
) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&postcard::to_allocvec(value).expect("stored objects encode"));
    let sig = crate::codec::sign::sign(secret, context, &[name, &out]);
    out.extend_from_slice(&sig);
    out
}

/// Decodes the payload of a signed object without checking its signature.
pub fn sig_decode_unverified<T: DeserializeOwned>(magic: &[u8; MAGIC_LEN], bytes: &[u8]) -> Result<T, MacError> {
    if bytes.len() < MAGIC_LEN + SIG_LEN || &bytes[..MAGIC_LEN] != magic {
        return Err(MacError::Magic);
    }
    postcard::from_bytes(&bytes[MAGIC_LEN..bytes.len() - SIG_LEN]).map_err(|e| MacError::Decode(e.to_string()))
}

/// True when the signature that ends `bytes` verifies under `public` for `context` and `name`.
pub fn sig_verifies(public: &[u8; 32], context: &str, name: &[u8], bytes: &[u8]) -> bool {
    if bytes.len() < SIG_LEN {
        return false;
    }
    let (body, sig) = bytes.split_at(bytes.len() - SIG_LEN);
    crate::codec::sign::verify(public, context, &[name, body], sig)
}

/// Checks the magic and the signature of an object stored under `name`, then decodes its payload.
pub fn sig_decode<T: DeserializeOwned>(
    magic: &[u8; MAGIC_LEN],
    public: &[u8; 32],
    context: &str,
    name: &[u8],
    bytes: &[u8],
) -> Result<T, MacError> {
    if bytes.len() < MAGIC_LEN + SIG_LEN || &bytes[..MAGIC_LEN] != magic {
        return Err(MacError::Magic);
    }
    if !sig_verifies(public, context, name, bytes) {
        return Err(MacError::Signature);
    }
    sig_decode_unverified(magic, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_binds_key_name_and_bytes() {
        let k = Secret([1; 32]);
        let b = mac_encode(b"CAIRNTST", &k, b"a/1", &(7u32, "x".to_string()));
        assert_eq!(mac_decode::<(u32, String)>(b"CAIRNTST", &k, b"a/1", &b), Ok((7, "x".into())));
        assert_eq!(mac_decode::<(u32, String)>(b"CAIRNTST", &k, b"a/2", &b), Err(MacError::Mac));
        assert_eq!(mac_decode::<(u32, String)>(b"CAIRNTST", &Secret([2; 32]), b"a/1", &b), Err(MacError::Mac));
        assert_eq!(mac_decode::<(u32, String)>(b"CAIRNXXX", &k, b"a/1", &b), Err(MacError::Magic));
        let mut t = b.clone();
        t[9] ^= 1;
        assert_eq!(mac_decode::<(u32, String)>(b"CAIRNTST", &k, b"a/1", &t), Err(MacError::Mac));
    }

    #[test]
    fn seal_binds_kind_and_name() {
        let k = Secret([1; 32]);
        let repo = RepoId([2; 32]);
        let s = seal(b"HDR", &k, &repo, ObjectKind::Index, &[3; 32], &5u64);
        assert_eq!(&s[..3], b"HDR");
        let plain = open(&k, &repo, ObjectKind::Index, &[3; 32], &s[3..]).unwrap();
        assert_eq!(postcard::from_bytes::<u64>(&plain).unwrap(), 5);
        assert!(open(&k, &repo, ObjectKind::Snapshot, &[3; 32], &s[3..]).is_none());
        assert!(open(&k, &repo, ObjectKind::Index, &[4; 32], &s[3..]).is_none());
    }
}

//! Keys, derivations and the AEAD framing (format-spec §3, §4). Owns every secret; does no I/O.
//!
//! Everything sealed in a repository is `nonce (24) ‖ ciphertext ‖ tag (16)` under
//! XChaCha20-Poly1305 with a random nonce, and associated data that binds the repository id, the
//! framing version, the object kind and the name fixed before sealing ([`aad`]).

use crate::error::{Error, Result};
use crate::id::RepoId;
pub use crate::keyfile::{KdfParams, KeySecret};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of the random nonce that starts every sealed item.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag that ends every sealed item.
pub const TAG_LEN: usize = 16;
/// Bytes a seal adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Version of the AEAD framing (format-spec §3.4).
pub const FRAMING_VERSION: u8 = 1;

/// Derivation contexts (format-spec §3.3). Changing any of these is a format change.
pub mod context {
    /// Pack headers and index files are sealed with this subkey of `index_key`.
    pub const INDEX_SEAL: &str = "cairn 2026-11 v1 index seal key";
    /// Session data key from the X25519 shared secret.
    pub const SESSION: &str = "cairn 2026-11 v1 session key";
    /// MAC key for config objects, from `writer_key`.
    pub const CONFIG_MAC: &str = "cairn 2026-11 v1 config mac";
    /// MAC key for lease objects, from `writer_key`.
    pub const LEASE_MAC: &str = "cairn 2026-11 v1 lease mac";
    /// MAC key for prune state objects, from `writer_key`.
    pub const PRUNE_MAC: &str = "cairn 2026-11 v1 prune mac";
    /// The keyed gear table of the chunker is the XOF of this string under `chunk_key`.
    pub const GEAR: &str = "cairn 2026-11 v1 gear table";
    /// Key fingerprint for client pinning.
    pub const FINGERPRINT: &str = "cairn 2026-11 v1 key fingerprint";
    /// Signed-message prefix of config objects (format-spec §3.7, §9.1).
    pub const CONFIG_SIG: &str = "cairn 2026-12 v1 config signature";
    /// Signed-message prefix of prune marks (format-spec §3.7, §10.2).
    pub const MARK_SIG: &str = "cairn 2026-12 v1 prune mark signature";
    /// Signed-message prefix of prune waits (format-spec §3.7, §10.5).
    pub const WAIT_SIG: &str = "cairn 2026-12 v1 prune wait signature";
    /// Signed-message prefix of maintenance-lock links (format-spec §3.7, §10.4).
    pub const LOCK_SIG: &str = "cairn 2026-12 v1 maintenance lock signature";
    /// The key-encryption key of a key file opened with a generated secret, from the secret and
    /// the key file's salt (format-spec §4.1).
    pub const KEY_FILE_SECRET: &str = "cairn 2026-12 v1 key file secret";
    /// A key's signing secret from its key-encryption key (format-spec §4.3).
    pub const KEY_SIGN: &str = "cairn 2026-12 v1 key signing secret";
    /// Signed-message prefix of key certificates (format-spec §4.3).
    pub const CERT_SIG: &str = "cairn 2026-12 v1 key certificate signature";
    /// Signed-message prefix of key revocations (format-spec §4.3).
    pub const REVOCATION_SIG: &str = "cairn 2026-12 v1 key revocation signature";
    /// Signed-message prefix of a snapshot's writer signature (format-spec §4.3).
    pub const SNAPSHOT_SIG: &str = "cairn 2026-12 v1 snapshot writer signature";
    /// Derives the ledger entry id key from `writer_key` (format-spec §13.2).
    pub const LEDGER_ID: &str = "cairn 2026-12 v1 ledger entry id";
    /// Prefix of the message a key signs for a ledger entry (format-spec §13.2).
    pub const LEDGER_SIG: &str = "cairn 2026-12 v1 ledger entry signature";
}

/// The kind of a sealed or MACed object; its code is bound into the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    /// A data blob.
    DataBlob = 1,
    /// A tree blob.
    TreeBlob = 2,
    /// A snapshot manifest.
    Snapshot = 3,
    /// An index file.
    Index = 4,
    /// A pack header.
    PackHeader = 5,
    /// A key file's sealed material.
    KeyFile = 6,
    /// The sealed body of a ledger entry (format-spec §13.2).
    LedgerEntry = 7,
    /// A bundle of data blobs compressed together (format-spec §5.5).
    DataBundle = 8,
}

/// A 32-byte secret that is zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize, PartialEq, Eq)]
pub struct Secret(pub [u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// 32 random bytes from the operating system.
pub fn random_32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("the operating system's random source failed");
    b
}

/// The key material a key file grants (format-spec §4.2). A write-only key has no `repo_secret`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Debug)]
pub struct MasterKeys {
    /// The repository this material belongs to.
    pub repo_id: RepoId,
    /// Keys content ids (keyed BLAKE3).
    pub id_key: Secret,
    /// Keys the chunker's gear table.
    pub chunk_key: Secret,
    /// Seals index files and pack headers (through [`context::INDEX_SEAL`]).
    pub index_key: Secret,
    /// Authenticates writers: mixed into session keys, MACs leases (and configs and prune state of
    /// the framing before signatures).
    pub writer_key: Secret,
    /// The repository's X25519 public key.
    pub repo_public: [u8; 32],
    /// The repository's X25519 secret key; only full keys hold it.
    pub repo_secret: Option<Secret>,
}

impl MasterKeys {
    /// Fresh random material for a new repository.
    pub fn generate() -> Self {
        let secret = x25519_dalek::StaticSecret::from(random_32());
        let public = x25519_dalek::PublicKey::from(&secret);
        MasterKeys {
            repo_id: RepoId(random_32()),
            id_key: Secret(random_32()),
            chunk_key: Secret(random_32()),
            index_key: Secret(random_32()),
            writer_key: Secret(random_32()),
            repo_public: public.to_bytes(),
            repo_secret: Some(Secret(secret.to_bytes())),
        }
    }

    /// The same material without the repository secret: what a write-only key holds.
    pub fn write_only(&self) -> Self {
        let mut k = self.clone();
        k.repo_secret = None;
        k
    }

    /// True when this material can read what other sessions wrote.
    pub fn can_read(&self) -> bool {
        self.repo_secret.is_some()
    }

    /// Content id of a plaintext: keyed BLAKE3 under `id_key` (format-spec §3.2).
    pub fn content_id(&self, plain: &[u8]) -> crate::id::BlobId {
        crate::id::BlobId(*blake3::keyed_hash(&self.id_key.0, plain).as_bytes())
    }

    /// The subkey that seals index files and pack headers.
    pub fn index_seal_key(&self) -> Secret {
        Secret(blake3::derive_key(context::INDEX_SEAL, &self.index_key.0))
    }

    /// A MAC key derived from `writer_key` for `context`.
    pub fn writer_mac_key(&self, context: &str) -> Secret {
        Secret(blake3::derive_key(context, &self.writer_key.0))
    }

    /// A fingerprint of the repository's identity keys, for client pinning.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut material = Zeroizing::new(Vec::with_capacity(96));
        material.extend_from_slice(&self.repo_public);
        material.extend_from_slice(&self.writer_key.0);
        material.extend_from_slice(&self.id_key.0);
        blake3::derive_key(context::FINGERPRINT, &material)
    }
}

/// The X25519 public key of `secret`: `X25519(secret, 9)` (format-spec §3.1).
pub fn public_key(secret: &Secret) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret.0)).to_bytes()
}

/// Keyed BLAKE3 MAC of `parts`, concatenated.
pub fn mac(key: &Secret, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(&key.0);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// Constant-time comparison of two MACs.
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session key of one writing run (format-spec §3.5).
#[derive(Clone)]
pub struct Session {
    /// The ephemeral X25519 public key, stored beside everything it sealed.
    pub public: [u8; 32],
    key: Secret,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", hex::encode(&self.public[..4]))
    }
}

fn session_key(shared: &[u8; 32], eph_public: &[u8; 32], keys: &MasterKeys) -> Secret {
    let mut ikm = Zeroizing::new([0u8; 128]);
    ikm[..32].copy_from_slice(shared);
    ikm[32..64].copy_from_slice(eph_public);
    ikm[64..96].copy_from_slice(&keys.repo_public);
    ikm[96..].copy_from_slice(&keys.writer_key.0);
    Secret(blake3::derive_key(context::SESSION, &ikm[..]))
}

impl Session {
    /// A new writing session: a fresh ephemeral keypair, forgotten after the key is derived.
    pub fn new_writer(keys: &MasterKeys) -> Self {
        let eph = x25519_dalek::StaticSecret::from(random_32());
        let public = x25519_dalek::PublicKey::from(&eph).to_bytes();
        let shared = eph.diffie_hellman(&x25519_dalek::PublicKey::from(keys.repo_public));
        let key = session_key(shared.as_bytes(), &public, keys);
        Session { public, key }
    }

    /// Re-derives the key of an earlier session from its public key. Needs the repository secret.
    pub fn for_reading(keys: &MasterKeys, eph_public: &[u8; 32]) -> Result<Self> {
        let Some(secret) = &keys.repo_secret else {
            return Err(Error::WriteOnlyKey { key: None });
        };
        let sk = x25519_dalek::StaticSecret::from(secret.0);
        let shared = sk.diffie_hellman(&x25519_dalek::PublicKey::from(*eph_public));
        Ok(Session { public: *eph_public, key: session_key(shared.as_bytes(), eph_public, keys) })
    }

    /// The symmetric key of this session.
    pub fn key(&self) -> &Secret {
        &self.key
    }
}

/// Associated data (format-spec §3.4): `"CAIRN" ‖ framing version ‖ kind ‖ repo id ‖ name`.
pub fn aad(repo: &RepoId, kind: ObjectKind, name: &[u8; 32]) -> [u8; 71] {
    let mut a = [0u8; 71];
    a[..5].copy_from_slice(b"CAIRN");
    a[5] = FRAMING_VERSION;
    a[6] = kind as u8;
    a[7..39].copy_from_slice(&repo.0);
    a[39..71].copy_from_slice(name);
    a
}

/// Seals `plain`, returning `nonce ‖ ciphertext ‖ tag`.
pub fn seal(key: &Secret, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&[0u8; NONCE_LEN]);
    out.extend_from_slice(plain);
    seal_prepared(key, aad, out)
}

/// Seals a buffer that already starts with [`NONCE_LEN`] placeholder bytes followed by the
/// plaintext; fills in the nonce, encrypts in place and appends the tag.
pub fn seal_prepared(key: &Secret, aad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).expect("the operating system's random source failed");
    buf[..NONCE_LEN].copy_from_slice(&nonce);
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut buf[NONCE_LEN..])
        .expect("XChaCha20-Poly1305 cannot fail for in-memory lengths");
    buf.extend_from_slice(&tag);
    buf
}

/// Opens `nonce ‖ ciphertext ‖ tag`; `None` when it does not authenticate.
pub fn open(key: &Secret, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buf = ct.to_vec();
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    cipher.decrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut buf, Tag::from_slice(tag)).ok()?;
    Some(buf)
}

/// A new random secret for a key file opened with a generated secret (format-spec §4.1).
pub fn generate_key_secret() -> KeySecret {
    KeySecret::from_bytes(random_32())
}

/// Derives the key-encryption key of a key file opened with a generated secret (format-spec
/// §4.1): `BLAKE3-derive(KEY_FILE_SECRET, secret ‖ salt)`. No memory-hard work: the secret has 256
/// bits of entropy, so there is nothing to slow a guesser down for (§12).
pub fn derive_secret_kek(secret: &KeySecret, salt: &[u8; 32]) -> Secret {
    let mut input = Zeroizing::new([0u8; 64]);
    input[..32].copy_from_slice(secret.as_bytes());
    input[32..].copy_from_slice(salt);
    Secret(blake3::derive_key(context::KEY_FILE_SECRET, &input[..]))
}

thread_local! {
    /// argon2id derivations [`derive_kek`] ran on this thread.
    static ARGON2ID_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many argon2id derivations [`derive_kek`] has run on the calling thread, so a test can show
/// that an open with a generated secret runs none (opening tries key files on the calling thread).
pub fn argon2id_runs_on_this_thread() -> u64 {
    ARGON2ID_RUNS.with(|c| c.get())
}

/// Derives the key-encryption key from a password with argon2id.
pub fn derive_kek(password: &[u8], salt: &[u8; 32], params: KdfParams) -> Result<Secret> {
    let min = KdfParams::MINIMUM;
    let max = KdfParams::MAXIMUM;
    if params.m_kib < min.m_kib || params.t < min.t || params.p < min.p {
        return Err(Error::Usage(format!("key derivation parameters {params:?} are weaker than the minimum {min:?}")));
    }
    if params.m_kib > max.m_kib || params.t > max.t || params.p > max.p {
        return Err(Error::Usage(format!("key derivation parameters {params:?} exceed the maximum {max:?}")));
    }
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| Error::Usage(format!("argon2 parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    ARGON2ID_RUNS.with(|c| c.set(c.get() + 1));
    let mut out = Secret([0u8; 32]);
    a.hash_password_into(password, salt, &mut out.0).map_err(|e| Error::Internal(format!("argon2: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = Secret([1; 32]);
        let repo = RepoId([2; 32]);
        let a = aad(&repo, ObjectKind::DataBlob, &[3; 32]);
        let s = seal(&k, &a, b"hello");
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&k, &a, &s).as_deref(), Some(&b"hello"[..]));
        let b = aad(&repo, ObjectKind::TreeBlob, &[3; 32]);
        assert!(open(&k, &b, &s).is_none(), "a data blob must not open as a tree");
        let c = aad(&repo, ObjectKind::DataBlob, &[4; 32]);
        assert!(open(&k, &c, &s).is_none(), "a blob must not move to another id");
        let mut t = s.clone();
        t[30] ^= 1;
        assert!(open(&k, &a, &t).is_none());
        assert!(open(&k, &a, &s[..10]).is_none());
    }

    #[test]
    fn sessions_agree_between_writer_and_reader() {
        let keys = MasterKeys::generate();
        let w = Session::new_writer(&keys);
        let r = Session::for_reading(&keys, &w.public).unwrap();
        assert_eq!(w.key().0, r.key().0);
        let wo = keys.write_only();
        assert!(Session::for_reading(&wo, &w.public).is_err());
        // A different writer_key gives a different session key.
        let mut other = keys.clone();
        other.writer_key = Secret([9; 32]);
        let r2 = Session::for_reading(&other, &w.public).unwrap();
        assert_ne!(w.key().0, r2.key().0);
    }

    #[test]
    fn weak_kdf_parameters_are_refused() {
        let weak = KdfParams { m_kib: 1024, t: 1, p: 1 };
        assert!(derive_kek(b"pw", &[0; 32], weak).is_err());
    }
}

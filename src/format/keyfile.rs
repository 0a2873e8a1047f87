//! Key files (format-spec §4): one per password or generated secret, the key material sealed
//! under a key-encryption key derived from it (argon2id for a password, BLAKE3 for a 256-bit
//! secret). The types, the outer decoding and the secret's text form; sealing and opening the
//! material is [`crate::codec::object`]'s. No I/O.

use crate::id::RepoId;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// First bytes of a key file.
pub const KEY_MAGIC: &[u8; 8] = b"CAIRNKEY";

/// Argon2id parameters of a key file (format-spec §4.1).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The floor: t=3, m=64 MiB, p=4.
    pub const MINIMUM: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 4 };
    /// The upper bound a reader accepts, so a planted key file can cost an open at most about
    /// a second and 1 GiB before it is skipped.
    pub const MAXIMUM: KdfParams = KdfParams { m_kib: 1024 * 1024, t: 16, p: 16 };
}

/// What a key grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Read and write everything.
    Full,
    /// Add backups; cannot read what other sessions wrote.
    WriteOnly,
}

/// A key file (format-spec §4.1). The variant says what opens it: a password (argon2id) or a
/// generated secret (BLAKE3 key derivation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyFile {
    /// Version 1, opened with a password (variant index 0).
    V1(KeyFileV1),
    /// Version 1, opened with a generated 256-bit [`KeySecret`] (variant index 1).
    SecretV1(KeyFileSecretV1),
}

/// Version 1 of a key file opened with a password (format-spec §4.1, `KeyFileV1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFileV1 {
    /// What the key grants.
    pub kind: KeyKind,
    /// The repository.
    pub repo_id: RepoId,
    /// When it was made.
    pub created: Time,
    /// Host it was made on.
    pub host: String,
    /// User who made it.
    pub user: String,
    /// argon2id parameters.
    pub kdf: KdfParams,
    /// argon2id salt.
    pub salt: [u8; 32],
    /// `seal(KEK, aad(KeyFile, key id), postcard(MasterKeys))`.
    pub sealed: Vec<u8>,
}

/// Version 1 of a key file opened with a generated secret (format-spec §4.1, `KeyFileSecretV1`):
/// the fields of [`KeyFileV1`] without `kdf`, the KEK derived from the secret and `salt` with
/// BLAKE3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFileSecretV1 {
    /// What the key grants.
    pub kind: KeyKind,
    /// The repository.
    pub repo_id: RepoId,
    /// When it was made.
    pub created: Time,
    /// Host it was made on.
    pub host: String,
    /// User who made it.
    pub user: String,
    /// Salt of the KEK derivation, random per key file.
    pub salt: [u8; 32],
    /// `seal(KEK, aad(KeyFile, key id), postcard(MasterKeys))`.
    pub sealed: Vec<u8>,
}

/// What a key file is opened with (not stored: it follows from the [`KeyFile`] variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// A password, through argon2id ([`KeyFile::V1`]).
    Password,
    /// A generated secret ([`KeySecret`], [`KeyFile::SecretV1`]).
    Secret,
}

impl Credential {
    /// `password` or `secret`, as listings write it.
    pub fn name(self) -> &'static str {
        match self {
            Credential::Password => "password",
            Credential::Secret => "secret",
        }
    }
}

/// `$e` over the variant's fields, for the fields both variants have.
macro_rules! common {
    ($self:expr, $k:ident => $e:expr) => {
        match $self {
            KeyFile::V1($k) => $e,
            KeyFile::SecretV1($k) => $e,
        }
    };
}

impl KeyFile {
    /// What opens it.
    pub fn credential(&self) -> Credential {
        match self {
            KeyFile::V1(_) => Credential::Password,
            KeyFile::SecretV1(_) => Credential::Secret,
        }
    }
    /// What the key grants.
    pub fn kind(&self) -> KeyKind {
        common!(self, k => k.kind)
    }
    /// The repository.
    pub fn repo_id(&self) -> RepoId {
        common!(self, k => k.repo_id)
    }
    /// When it was made.
    pub fn created(&self) -> Time {
        common!(self, k => k.created)
    }
    /// Host it was made on.
    pub fn host(&self) -> &str {
        common!(self, k => &k.host)
    }
    /// User who made it.
    pub fn user(&self) -> &str {
        common!(self, k => &k.user)
    }
    /// argon2id parameters; `None` for a key file opened with a generated secret.
    pub fn kdf(&self) -> Option<KdfParams> {
        match self {
            KeyFile::V1(k) => Some(k.kdf),
            KeyFile::SecretV1(_) => None,
        }
    }
    /// Salt of the KEK derivation.
    pub fn salt(&self) -> &[u8; 32] {
        common!(self, k => &k.salt)
    }
    /// The sealed key material.
    pub fn sealed(&self) -> &[u8] {
        common!(self, k => &k.sealed)
    }
}

/// What the text form of a [`KeySecret`] starts with (format-spec §4.1).
pub const SECRET_PREFIX: &str = "cairn-secret-v1-";

/// A generated 256-bit secret that opens [`KeyFile::SecretV1`] key files (format-spec §4.1). Its
/// text form is [`SECRET_PREFIX`] followed by 64 lowercase hex digits. Zeroized on drop; `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct KeySecret([u8; 32]);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(..)")
    }
}

impl KeySecret {
    /// The secret of these 32 bytes (drawn at random by whoever makes a key).
    pub fn from_bytes(bytes: [u8; 32]) -> KeySecret {
        KeySecret(bytes)
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The secret a credential holds, when the credential, with surrounding ASCII whitespace
    /// trimmed, is exactly [`SECRET_PREFIX`] followed by 64 lowercase hex digits; `None` for
    /// anything else (a password).
    pub fn parse(credential: &[u8]) -> Option<KeySecret> {
        let hex = credential.trim_ascii().strip_prefix(SECRET_PREFIX.as_bytes())?;
        // Lower case only: the `hex` crate takes both.
        if hex.len() != 64 || hex.iter().any(u8::is_ascii_uppercase) {
            return None;
        }
        let mut out = KeySecret([0; 32]);
        hex::decode_to_slice(hex, &mut out.0).ok()?;
        Some(out)
    }

    /// The text form: `cairn-secret-v1-` and 64 lowercase hex digits, no newline.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut digits = Zeroizing::new([0u8; 64]);
        hex::encode_to_slice(self.0.as_slice(), &mut digits[..]).expect("64 digits for 32 bytes");
        let mut s = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 64));
        s.push_str(SECRET_PREFIX);
        s.push_str(std::str::from_utf8(&digits[..]).expect("hex digits are ASCII"));
        s
    }
}

/// Decodes a key file without opening it.
pub fn decode(bytes: &[u8]) -> Result<KeyFile, String> {
    if bytes.len() < 8 || &bytes[..8] != KEY_MAGIC {
        return Err("not a key file (magic missing)".into());
    }
    postcard::from_bytes(&bytes[8..]).map_err(|e| format!("decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";

    fn text() -> String {
        format!("{SECRET_PREFIX}{HEX}")
    }

    #[test]
    fn the_secret_text_round_trips_and_is_trimmed_of_ascii_whitespace() {
        let s = KeySecret::parse(text().as_bytes()).expect("the text form parses");
        assert_eq!(s.as_bytes()[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(s.as_bytes()[31], 0x10);
        assert_eq!(*s.to_text(), text());
        for padded in [format!("{}\n", text()), format!("  {}\r\n", text()), format!("\t{} ", text())] {
            assert_eq!(KeySecret::parse(padded.as_bytes()), Some(s.clone()), "{padded:?}");
        }
        let random = KeySecret::from_bytes([0xa7; 32]);
        assert_eq!(KeySecret::parse(random.to_text().as_bytes()), Some(random));
        assert_eq!(format!("{s:?}"), "KeySecret(..)", "Debug never shows the secret");
    }

    #[test]
    fn anything_but_the_exact_form_is_no_secret() {
        let t = text();
        let refused = [
            // Case: the prefix and the digits are lowercase.
            t.to_uppercase(),
            format!("{SECRET_PREFIX}{}", HEX.to_uppercase()),
            format!("Cairn-secret-v1-{HEX}"),
            // Length: 63 and 65 digits, nothing at all.
            t[..t.len() - 1].to_string(),
            format!("{t}0"),
            SECRET_PREFIX.to_string(),
            String::new(),
            // Prefix: another version, missing, or spelled otherwise.
            format!("cairn-secret-v2-{HEX}"),
            HEX.to_string(),
            format!("cairn-secret-v1{HEX}0"),
            format!("xcairn-secret-v1-{HEX}"),
            // Not hex; whitespace inside; more than whitespace around.
            format!("{SECRET_PREFIX}{}g", &HEX[..63]),
            format!("{SECRET_PREFIX}{} {}", &HEX[..32], &HEX[32..]),
            format!("{t} x"),
            "correct horse battery staple".to_string(),
        ];
        for r in refused {
            assert_eq!(KeySecret::parse(r.as_bytes()), None, "{r:?}");
        }
        // Non-ASCII whitespace is not trimmed.
        assert_eq!(KeySecret::parse(format!("\u{a0}{t}").as_bytes()), None);
    }
}

//! Passwords and generated secrets of a repository as the `key` commands see them: adding one,
//! replacing the one in use, and describing a key file without opening it. Goes through [`Repository`]'s key functions and
//! the key file codec; prints nothing.

use crate::codec::object::NewCredential;
use crate::crypto::KdfParams;
use crate::error::{Error, Result};
use crate::id::{KeyId, RepoId};
pub use crate::keyfile::KeySecret;
use crate::keyfile::{self, Credential, KeyKind};
use crate::layout::{Object, StoredId};
use crate::repository::{KeyInfo, Repository};
use crate::time::Time;
use serde::Serialize;

/// A key file's public part, as `cat key` prints it: nothing secret (the salt is not).
#[derive(Clone, Debug, Serialize)]
pub struct KeyFileInfo {
    /// Its id.
    pub id: KeyId,
    /// Full or write-only.
    pub kind: KeyKind,
    /// The repository it opens.
    pub repo_id: RepoId,
    /// When it was made.
    pub created: Time,
    /// Where.
    pub host: String,
    /// By whom.
    pub user: String,
    /// What opens it: a password or a generated secret (format-spec §4.1).
    pub credential: Credential,
    /// argon2id parameters; `None` for a key file opened with a generated secret.
    pub kdf: Option<KdfParams>,
    /// Salt of the KEK derivation, hex.
    pub salt: String,
    /// Length of the sealed key material.
    pub sealed_len: usize,
}

/// A password change: the key file written for the new password and the one removed.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PasswordChange {
    /// The new key file.
    pub key_id: KeyId,
    /// The key file of the old password, now removed.
    pub removed: KeyId,
}

/// A new random secret for a key file opened with a generated secret (format-spec §4.1): what
/// [`Repository::add_secret_for_hosts`], [`Repository::change_to_secret`] and
/// [`Repository::init_with_secret`] take. Its text form ([`KeySecret::to_text`]) is the credential.
pub use crate::crypto::generate_key_secret as new_secret;

impl KeyInfo {
    /// `full` or `write-only`, as listings write the kind.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            KeyKind::Full => "full",
            KeyKind::WriteOnly => "write-only",
        }
    }

    /// `password`, `secret`, or `-` when the key file is gone, as listings write the credential.
    pub fn credential_name(&self) -> &'static str {
        self.credential.map_or("-", Credential::name)
    }
}

impl Repository {
    /// Describes key file `id` (found by [`Repository::resolve_key`]) without its password.
    pub fn key_file_info(&self, id: &KeyId) -> Result<KeyFileInfo> {
        let kf = keyfile::decode(&self.backend().read(&id.path())?).map_err(|e| Error::corrupt(Object::Key(*id), e))?;
        Ok(KeyFileInfo {
            id: *id,
            kind: kf.kind(),
            repo_id: kf.repo_id(),
            created: kf.created(),
            host: kf.host().to_string(),
            user: kf.user().to_string(),
            credential: kf.credential(),
            kdf: kf.kdf(),
            salt: hex::encode(kf.salt()),
            sealed_len: kf.sealed().len(),
        })
    }

    /// Adds a key file for `password` with the default key derivation parameters.
    pub fn add_password(&self, password: &[u8], write_only: bool) -> Result<KeyId> {
        self.add_key(password, write_only, KdfParams::MINIMUM)
    }

    /// [`Repository::add_password`] for a write-only key bound to `hosts` (format-spec §4.3):
    /// its certificate lists them, and backups for other hosts are refused. Only a full key can
    /// write a certificate, so a write-only key asking for hosts is refused.
    pub fn add_password_for_hosts(&self, password: &[u8], write_only: bool, hosts: &[String]) -> Result<KeyId> {
        self.add_credential(NewCredential::Password { password, kdf: KdfParams::MINIMUM }, write_only, hosts)
    }

    /// [`Repository::add_password_for_hosts`] for a key file opened with the generated `secret`
    /// (format-spec §4.1) instead of a password.
    pub fn add_secret_for_hosts(&self, secret: &KeySecret, write_only: bool, hosts: &[String]) -> Result<KeyId> {
        self.add_credential(NewCredential::Secret(secret), write_only, hosts)
    }

    fn add_credential(&self, credential: NewCredential<'_>, write_only: bool, hosts: &[String]) -> Result<KeyId> {
        if !hosts.is_empty() && !self.keys().can_read() {
            return Err(Error::WriteOnlyKey { key: Some(self.key_id()) });
        }
        let key = self.add_key_with(credential, write_only, hosts)?;
        self.ledger_record(crate::ledger::Event::KeyAdd { key, write_only, hosts: hosts.to_vec() })?;
        Ok(key)
    }

    /// Changes the password of the key in use: writes a key file of the same kind for `password`
    /// (certified for the same hosts), then removes the old one (so a failure in between leaves
    /// both passwords working). A write-only key is refused: it cannot certify the new key, whose
    /// snapshots would be unattributed (format-spec §4.3); a full key must add a replacement.
    pub fn change_password(&self, password: &[u8]) -> Result<PasswordChange> {
        self.replace_current_key(NewCredential::Password { password, kdf: KdfParams::MINIMUM })
    }

    /// The key file that the generated `secret` opens, if any (see
    /// [`crate::repository::find_secret_key`]).
    pub fn find_secret_key(&self, secret: &KeySecret) -> Result<Option<KeyId>> {
        crate::repository::find_secret_key(self.backend().as_ref(), secret)
    }

    /// [`Repository::change_password`] with a key file opened with the generated `secret`
    /// (format-spec §4.1) as the replacement.
    pub fn change_to_secret(&self, secret: &KeySecret) -> Result<PasswordChange> {
        self.replace_current_key(NewCredential::Secret(secret))
    }

    fn replace_current_key(&self, credential: NewCredential<'_>) -> Result<PasswordChange> {
        let old = self.key_id();
        if !self.keys().can_read() {
            return Err(Error::refused(format!(
                "key {old} is write-only and cannot certify a replacement (its snapshots would become \
                 unattributed); have a full key run `cairn key add --write-only --host HOST` for the new password \
                 and `cairn key remove {}`",
                old.short()
            )));
        }
        let hosts = match self.key_certificate(&old) {
            Ok(Some(c)) => c.hosts().to_vec(),
            _ => Vec::new(),
        };
        let new = self.add_key_with(credential, false, &hosts)?;
        self.remove_key(&old, true)?;
        self.ledger_record(crate::ledger::Event::KeyPasswd { old, new })?;
        Ok(PasswordChange { key_id: new, removed: old })
    }
}

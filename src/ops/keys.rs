//! Passwords of a repository as the `key` commands see them: adding one, changing the one in use,
//! and describing a key file without opening it. Goes through [`Repository`]'s key functions and
//! the key file codec; prints nothing.

use crate::crypto::KdfParams;
use crate::error::{Error, Result};
use crate::id::{KeyId, RepoId};
use crate::keyfile::{self, KeyKind};
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
    /// argon2id parameters.
    pub kdf: KdfParams,
    /// argon2id salt, hex.
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

impl KeyInfo {
    /// `full` or `write-only`, as listings write the kind.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            KeyKind::Full => "full",
            KeyKind::WriteOnly => "write-only",
        }
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
        if !hosts.is_empty() && !self.keys().can_read() {
            return Err(Error::WriteOnlyKey { key: Some(self.key_id()) });
        }
        let key = self.add_key_for_hosts(password, write_only, KdfParams::MINIMUM, hosts)?;
        self.ledger_record(crate::ledger::Event::KeyAdd { key, write_only, hosts: hosts.to_vec() })?;
        Ok(key)
    }

    /// Changes the password of the key in use: writes a key file of the same kind for `password`
    /// (certified for the same hosts), then removes the old one (so a failure in between leaves
    /// both passwords working). A write-only key is refused: it cannot certify the new key, whose
    /// snapshots would be unattributed (format-spec §4.3); a full key must add a replacement.
    pub fn change_password(&self, password: &[u8]) -> Result<PasswordChange> {
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
        let new = self.add_key_for_hosts(password, false, KdfParams::MINIMUM, &hosts)?;
        self.remove_key(&old, true)?;
        self.ledger_record(crate::ledger::Event::KeyPasswd { old, new })?;
        Ok(PasswordChange { key_id: new, removed: old })
    }
}

//! Key files: listing, adding and removing them (format-spec §4).

use super::Repository;
use crate::codec::object;
use crate::crypto::{self, KdfParams};
use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::keyfile::{self, KeyKind};
use crate::layout::{ObjectType, StoredId};
use crate::repository::identity::{hostname, username};
use crate::time::Time;

/// Writes the certificate of the new key `id` (format-spec §4.3): its signing public key, kind
/// and hosts, signed with the repository secret of `keys` (a full key's).
pub(crate) fn write_certificate(
    backend: &dyn crate::backend::Backend,
    keys: &crypto::MasterKeys,
    id: &KeyId,
    sign_secret: &crypto::Secret,
    kind: KeyKind,
    hosts: &[String],
) -> Result<()> {
    use crate::codec::attribution;
    let cert = crate::cert::KeyCert::V1 {
        key_id: *id,
        kind,
        hosts: hosts.to_vec(),
        key_public: attribution::key_public(sign_secret),
        created: Time::now(),
    };
    backend.write_new(&attribution::cert_path(id), &attribution::encode_cert(keys, &cert)?)
}

/// A key file as `key list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    /// Its id.
    pub id: KeyId,
    /// Full or write-only.
    pub kind: KeyKind,
    /// When it was made.
    pub created: Time,
    /// Where.
    pub host: String,
    /// By whom.
    pub user: String,
    /// The key this process opened the repository with.
    pub current: bool,
    /// Its certificate (format-spec §4.3): `certified`, `none` or `invalid`.
    pub certificate: &'static str,
    /// The hosts its certificate binds it to (empty: any host, or no certificate).
    pub hosts: Vec<String>,
}

impl Repository {
    /// The key files of the repository.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let certs = self.certificates()?;
        let mut out = Vec::new();
        for o in self.shared.backend.list(ObjectType::Key.dir())? {
            let Some(id) = KeyId::from_path(&o.path) else { continue };
            let kf =
                keyfile::decode(&self.shared.backend.read(&o.path)?).map_err(|e| Error::corrupt(id.object(), e))?;
            out.push(KeyInfo {
                id,
                kind: kf.kind(),
                created: kf.created(),
                host: kf.host().to_string(),
                user: kf.user().to_string(),
                current: id == self.shared.key_id,
                certificate: match certs.get(&id) {
                    Some(Ok(_)) => "certified",
                    Some(Err(_)) => "invalid",
                    None => "none",
                },
                hosts: match certs.get(&id) {
                    Some(Ok(c)) => c.hosts().to_vec(),
                    _ => Vec::new(),
                },
            });
        }
        out.sort_by_key(|k| k.created);
        Ok(out)
    }

    /// Adds a key file for `password`; `write_only` grants only adding backups.
    pub fn add_key(&self, password: &[u8], write_only: bool, kdf: KdfParams) -> Result<KeyId> {
        self.add_key_for_hosts(password, write_only, kdf, &[])
    }

    /// [`Self::add_key`] for a key bound to `hosts` (empty: any host). A full key also writes the
    /// new key's certificate (format-spec §4.3); a write-only key cannot, so the key it adds has
    /// none and the snapshots it writes are unattributed.
    pub fn add_key_for_hosts(
        &self,
        password: &[u8],
        write_only: bool,
        kdf: KdfParams,
        hosts: &[String],
    ) -> Result<KeyId> {
        let keys = if write_only { self.shared.keys.write_only() } else { self.shared.keys.clone() };
        if !write_only && !self.shared.keys.can_read() {
            return Err(Error::WriteOnlyKey { key: Some(self.shared.key_id) });
        }
        let id = KeyId(crypto::random_32());
        let (kf, sign_secret) = object::create_keyfile_signing(&keys, &id, password, kdf, &hostname(), &username())?;
        self.shared.backend.write_new(&id.path(), &kf)?;
        if self.shared.keys.can_read() {
            let kind = if write_only { KeyKind::WriteOnly } else { KeyKind::Full };
            write_certificate(self.shared.backend.as_ref(), &self.shared.keys, &id, &sign_secret, kind, hosts)?;
            // The next listing reads `certs/` again.
            *self.shared.certs.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Ok(id)
    }

    /// Removes a key file; the last full key cannot go, nor (unless `allow_current`) the key in use.
    pub fn remove_key(&self, id: &KeyId, allow_current: bool) -> Result<()> {
        let keys = self.list_keys()?;
        let Some(target) = keys.iter().find(|k| k.id == *id) else {
            return Err(Error::NotFound(format!("key {id}")));
        };
        if target.current && !allow_current {
            return Err(Error::refused(format!(
                "key {id} is the one in use; open the repository with another key to remove it"
            )));
        }
        let fulls = keys.iter().filter(|k| k.kind == KeyKind::Full).count();
        if target.kind == KeyKind::Full && fulls <= 1 {
            return Err(Error::refused(format!("key {id} is the last full key; removing it would lock everyone out")));
        }
        self.shared.backend.delete(&id.path())
    }

    /// Resolves a key id prefix.
    pub fn resolve_key(&self, spec: &str) -> Result<KeyId> {
        let s = spec.to_ascii_lowercase();
        let m: Vec<KeyId> =
            self.list_keys()?.into_iter().map(|k| k.id).filter(|id| id.to_hex().starts_with(&s)).collect();
        match m.len() {
            1 => Ok(m[0]),
            0 => Err(Error::NotFound(format!("key {spec}"))),
            _ => Err(Error::Usage(format!("key prefix {spec} is ambiguous"))),
        }
    }

    /// Decrypts a sealed item for `cat`: tries the index seal key.
    pub fn index_seal_key(&self) -> crypto::Secret {
        self.shared.keys.index_seal_key()
    }
}

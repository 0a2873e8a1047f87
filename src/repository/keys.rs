//! Key files: listing, adding (for a password or a generated secret) and removing (revoking)
//! them (format-spec §4, §4.3).

use super::Repository;
use crate::codec::object::{self, NewCredential};
use crate::crypto::{self, KdfParams};
use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::keyfile::{self, Credential, KeyKind};
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
    /// What opens it: a password or a generated secret (format-spec §4.1); `None` for a revoked
    /// key whose key file is gone.
    pub credential: Option<Credential>,
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
    /// When it was revoked, by a revocation that verifies (format-spec §4.3).
    pub revoked: Option<Time>,
    /// False for a revoked key whose key file is gone (then `kind`, `hosts` come from its
    /// certificate, `created` is the revocation's time, and `host`/`user` are empty).
    pub key_file: bool,
}

impl Repository {
    /// The key files of the repository, and the revoked keys whose key file is gone.
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
                credential: Some(kf.credential()),
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
                revoked: certs.revoked(&id),
                key_file: true,
            });
        }
        for (id, r) in &certs.revocations {
            let Ok(r) = r else { continue };
            if out.iter().any(|k| k.id == *id) {
                continue;
            }
            let cert = certs.get(id).and_then(|c| c.as_ref().ok());
            out.push(KeyInfo {
                id: *id,
                // Without key file nor certificate nothing else is known of it.
                kind: cert.map_or(KeyKind::WriteOnly, |c| c.kind()),
                credential: None,
                created: r.revoked(),
                host: String::new(),
                user: String::new(),
                current: *id == self.shared.key_id,
                certificate: match certs.get(id) {
                    Some(Ok(_)) => "certified",
                    Some(Err(_)) => "invalid",
                    None => "none",
                },
                hosts: cert.map_or(Vec::new(), |c| c.hosts().to_vec()),
                revoked: Some(r.revoked()),
                key_file: false,
            });
        }
        out.sort_by_key(|k| (k.created, k.id));
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
        self.add_key_with(NewCredential::Password { password, kdf }, write_only, hosts)
    }

    /// [`Self::add_key_for_hosts`] for a key file opened with `credential`: a password or a
    /// generated secret (format-spec §4.1). The key file is written first, then the certificate.
    pub fn add_key_with(&self, credential: NewCredential<'_>, write_only: bool, hosts: &[String]) -> Result<KeyId> {
        let keys = if write_only { self.shared.keys.write_only() } else { self.shared.keys.clone() };
        if !write_only && !self.shared.keys.can_read() {
            return Err(Error::WriteOnlyKey { key: Some(self.shared.key_id) });
        }
        let id = KeyId(crypto::random_32());
        let (kf, sign_secret) = object::create_keyfile_signing(&keys, &id, credential, &hostname(), &username())?;
        self.shared.backend.write_new(&id.path(), &kf)?;
        if self.shared.keys.can_read() {
            let kind = if write_only { KeyKind::WriteOnly } else { KeyKind::Full };
            write_certificate(self.shared.backend.as_ref(), &self.shared.keys, &id, &sign_secret, kind, hosts)?;
            // The next listing reads `certs/` again.
            *self.shared.certs.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Ok(id)
    }

    /// Revokes a key and removes its key file (format-spec §4.3): writes the signed revocation
    /// `revocations/<key id>` first, then deletes `keys/<key id>` (a crash in between leaves a
    /// revoked key that still opens; its snapshots dated after the revocation are flagged). Needs a
    /// full key ([`Error::WriteOnlyKey`]); the last full key cannot go, nor (unless
    /// `allow_current`) the key in use.
    pub fn remove_key(&self, id: &KeyId, allow_current: bool) -> Result<()> {
        if !self.shared.keys.can_read() {
            return Err(Error::WriteOnlyKey { key: Some(self.shared.key_id) });
        }
        let keys = self.list_keys()?;
        let Some(target) = keys.iter().find(|k| k.id == *id && k.key_file) else {
            return Err(Error::NotFound(format!("key {id}")));
        };
        if target.current && !allow_current {
            return Err(Error::refused(format!(
                "key {id} is the one in use; open the repository with another key to remove it"
            )));
        }
        let live_full = |k: &KeyInfo| k.key_file && k.revoked.is_none() && k.kind == KeyKind::Full;
        if live_full(target) && keys.iter().filter(|k| live_full(k)).count() <= 1 {
            return Err(Error::refused(format!("key {id} is the last full key; removing it would lock everyone out")));
        }
        if target.revoked.is_none() {
            self.revoke_key(id)?;
        }
        self.shared.backend.delete(&id.path())?;
        self.ledger_record(crate::ledger::Event::KeyRemove { key: *id }).map(drop)
    }

    /// Writes the revocation of `id` dated now (format-spec §4.3). One already stored that verifies
    /// is kept (it is older); one that does not (a write-only key can plant one to take the name)
    /// is replaced.
    fn revoke_key(&self, id: &KeyId) -> Result<()> {
        use crate::codec::attribution::{decode_revocation, encode_revocation, revocation_path};
        let path = revocation_path(id);
        let r = crate::cert::Revocation::V1 { key_id: *id, revoked: Time::now() };
        let bytes = encode_revocation(&self.shared.keys, &r)?;
        let backend = self.shared.backend.as_ref();
        match backend.write_new(&path, &bytes) {
            Err(e) if e.is_exists() => {
                let old = crate::backend::capped::read_capped(backend, &path, 64 * 1024);
                if !old.is_ok_and(|b| decode_revocation(&self.shared.keys, id, &b).is_ok()) {
                    backend.delete(&path)?;
                    backend.write_new(&path, &bytes)?;
                }
            }
            other => other?,
        }
        // The next listing reads `revocations/` again.
        *self.shared.certs.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Resolves a key id prefix among the key files.
    pub fn resolve_key(&self, spec: &str) -> Result<KeyId> {
        let s = spec.to_ascii_lowercase();
        let m: Vec<KeyId> = self
            .list_keys()?
            .into_iter()
            .filter(|k| k.key_file)
            .map(|k| k.id)
            .filter(|id| id.to_hex().starts_with(&s))
            .collect();
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

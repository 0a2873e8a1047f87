//! Snapshot attribution in an open repository (format-spec §4.3): the key certificates under
//! `certs/` and revocations under `revocations/` (listed and verified once per process, kept in
//! the shared state), who wrote each
//! snapshot and whether it may claim its host (a host bound to a write-only key is reserved to
//! the keys bound to it), and the [`Signer`] a session commits its snapshots with.

use super::{ReadRepository, Repository};
use crate::backend::capped::read_capped;
use crate::cert::{Attribution, KeyCert, Revocation};
use crate::codec::attribution as codec;
use crate::crypto::Secret;
use crate::error::{Error, Result};
use crate::id::{KeyId, SnapshotId};
use crate::keyfile::KeyKind;
use crate::snapshot::Snapshot;
use crate::time::Time;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// A certificate or a revocation is a few hundred bytes; anything larger is not one.
const CERT_MAX: u64 = 64 * 1024;

/// The verified certificates and revocations of a repository by key id (format-spec §4.3): `Err`
/// names why one does not verify.
#[derive(Clone, Debug, Default)]
pub struct Certificates {
    /// The certificates under `certs/`.
    pub certs: HashMap<KeyId, std::result::Result<KeyCert, String>>,
    /// The revocations under `revocations/`.
    pub revocations: HashMap<KeyId, std::result::Result<Revocation, String>>,
}

impl Certificates {
    /// The certificate of `key`, if one is stored.
    pub fn get(&self, key: &KeyId) -> Option<&std::result::Result<KeyCert, String>> {
        self.certs.get(key)
    }
    /// When `key` was revoked, by a revocation that verifies.
    pub fn revoked(&self, key: &KeyId) -> Option<Time> {
        match self.revocations.get(key) {
            Some(Ok(r)) => Some(r.revoked()),
            _ => None,
        }
    }
}

/// Reads and decodes every object under `dir` whose name is a key id; a storage failure other
/// than a vanished or oversized object is returned.
fn load_dir<T>(
    backend: &dyn crate::backend::Backend,
    dir: &str,
    decode: impl Fn(&KeyId, &[u8]) -> std::result::Result<T, String>,
) -> Result<HashMap<KeyId, std::result::Result<T, String>>> {
    let mut out = HashMap::new();
    for o in backend.list(dir)? {
        let Some(id) = o.path.strip_prefix(dir).and_then(KeyId::from_hex) else { continue };
        let decoded = match read_capped(backend, &o.path, CERT_MAX) {
            Ok(bytes) => decode(&id, &bytes),
            Err(e @ Error::Corrupt { .. }) => Err(e.to_string()),
            // Removed since the listing.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        out.insert(id, decoded);
    }
    Ok(out)
}

/// How the snapshots a session commits are attributed (format-spec §4.3): signed by the key in
/// use when it was opened with its password and its certificate verifies for that password's
/// signing key; otherwise unattributed, with the reason.
#[derive(Clone)]
pub struct Signer {
    key_id: KeyId,
    secret: Option<Secret>,
    hosts: Vec<String>,
    /// Hosts other keys are bound to, which this key (write-only, bound to none) may not claim.
    reserved: Vec<(String, KeyId)>,
    unattributed: Option<String>,
}

impl Signer {
    /// The hosts the key's certificate binds it to (empty: any host, or no certificate).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
    /// Why the snapshots will be unattributed; `None` when they are signed.
    pub fn unattributed(&self) -> Option<&str> {
        self.unattributed.as_deref()
    }
    /// Refuses a snapshot of `host` when the key's certificate binds it to other hosts
    /// ([`Error::HostNotAllowed`]).
    /// and when it is a write-only key bound to none and `host` is bound to another key (its
    /// snapshot would be flagged host-not-allowed).
    pub fn check_host(&self, host: &str) -> Result<()> {
        if !self.hosts.is_empty() && !self.hosts.iter().any(|h| h == host) {
            return Err(Error::HostNotAllowed { key: self.key_id, host: host.to_string(), hosts: self.hosts.clone() });
        }
        if let Some((_, owner)) = self.reserved.iter().find(|(h, _)| h == host) {
            return Err(Error::HostNotAllowed {
                key: self.key_id,
                host: host.to_string(),
                hosts: vec![format!("hosts not bound to another key ({host} is bound to key {owner})")],
            });
        }
        Ok(())
    }
    /// `snap` as it is stored under id `id`: version 2, with this key's writer block when it
    /// signs and `sign` asks for it, else with none.
    pub fn finish(&self, id: &SnapshotId, snap: &Snapshot, sign: bool) -> Snapshot {
        match (&self.secret, sign) {
            (Some(secret), true) => {
                let w = codec::sign_snapshot(secret, &self.key_id, id, &snap.unsigned_bytes());
                snap.with_writer(Some(w))
            }
            _ => snap.with_writer(None),
        }
    }
}

impl Repository {
    /// The certificates under `certs/` and the revocations under `revocations/`, listed, read and
    /// verified once per process. A storage failure is not remembered (the next call tries again).
    pub fn certificates(&self) -> Result<Arc<Certificates>> {
        let mut cached = self.shared.certs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*cached {
            return Ok(c.clone());
        }
        let (backend, keys) = (self.shared.backend.as_ref(), &self.shared.keys);
        let out = Arc::new(Certificates {
            certs: load_dir(backend, "certs/", |id, b| codec::decode_cert(keys, id, b))?,
            revocations: load_dir(backend, "revocations/", |id, b| codec::decode_revocation(keys, id, b))?,
        });
        *cached = Some(out.clone());
        Ok(out)
    }

    /// How the snapshots of a session of this key are attributed (format-spec §4.3). A full key
    /// opened with its password that has no certificate (a repository from before certificates)
    /// certifies itself first, for any host.
    pub fn signer(&self) -> Result<Signer> {
        let key_id = self.shared.key_id;
        // Loaded once per process, and what a session's attribution reads anyway: the key's own
        // certificate then comes from it, without a read of its own.
        self.certificates()?;
        let mut cert = self.key_certificate(&key_id);
        if let (Ok(None), Some(secret), true) = (&cert, &self.shared.sign_secret, self.shared.keys.can_read()) {
            let backend = self.shared.backend.as_ref();
            match super::keys::write_certificate(backend, &self.shared.keys, &key_id, secret, KeyKind::Full, &[]) {
                Ok(()) => {}
                // Another process of this key certified it at the same time.
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(e),
            }
            *self.shared.certs.lock().unwrap_or_else(|p| p.into_inner()) = None;
            cert = self.key_certificate(&key_id);
        }
        let (hosts, problem) = match cert {
            Ok(Some(cert)) => {
                let mismatch = match &self.shared.sign_secret {
                    None => Some("the repository was opened without the key's password".to_string()),
                    Some(s) if codec::key_public(s) != cert.key_public() => {
                        Some(format!("the certificate of key {key_id} is for another signing key"))
                    }
                    Some(_) => None,
                };
                (cert.hosts().to_vec(), mismatch)
            }
            Ok(None) => (
                Vec::new(),
                Some(format!(
                    "key {key_id} has no certificate (it was made by a write-only key or before certificates); \
                     have a full key run `key add` to make a certified key"
                )),
            ),
            Err(e @ Error::Refused { .. }) => (Vec::new(), Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let secret = if problem.is_none() { self.shared.sign_secret.clone() } else { None };
        let mut reserved = Vec::new();
        if hosts.is_empty() && !self.shared.keys.can_read() {
            for (id, c) in self.certificates()?.certs.iter() {
                if let Ok(c) = c {
                    reserved.extend(c.hosts().iter().map(|h| (h.clone(), *id)));
                }
            }
        }
        Ok(Signer { key_id, secret, hosts, reserved, unattributed: problem })
    }
}

impl ReadRepository {
    /// Who wrote snapshot `id` (format-spec §4.3), from the cached certificates, and whether it
    /// may claim its host ([`host_allowed`]).
    pub fn attribute_snapshot(&self, id: &SnapshotId, snap: &Snapshot) -> Result<(Attribution, bool)> {
        let certs = self.certificates()?;
        Ok(attribute_with(&certs, &bound_hosts(&certs), id, snap))
    }

    /// Every readable snapshot with who wrote it and whether it may claim its host, oldest first
    /// ([`ReadRepository::list_snapshots`] plus one listing of `certs/`).
    pub fn list_snapshots_attributed(&self) -> Result<Vec<(SnapshotId, Snapshot, Attribution, bool)>> {
        let certs = self.certificates()?;
        let bound = bound_hosts(&certs);
        let snaps = self.list_snapshots()?;
        // One signature check per snapshot, spread over the cores; the order is kept.
        Ok(snaps
            .into_par_iter()
            .map(|(id, s)| {
                let (a, allowed) = attribute_with(&certs, &bound, &id, &s);
                (id, s, a, allowed)
            })
            .collect())
    }
}

/// Each host some verified certificate binds a key to, with the earliest such certificate's time.
fn bound_hosts(certs: &Certificates) -> HashMap<String, Time> {
    let mut out: HashMap<String, Time> = HashMap::new();
    for c in certs.certs.values().flatten() {
        for h in c.hosts() {
            let t = out.entry(h.clone()).or_insert(c.created());
            *t = (*t).min(c.created());
        }
    }
    out
}

/// Whether a snapshot of `host` taken at `time` and attributed as `att` may claim that host
/// (format-spec §4.3): a key bound to hosts only for those; a full key for any; any other
/// writer (a write-only key bound to none, or none at all) only for a host no certificate binds,
/// or for one taken before the host was first bound.
pub fn host_allowed(att: &Attribution, host: &str, time: Time, bound: &HashMap<String, Time>) -> bool {
    match att {
        Attribution::Forged(_) => true,
        Attribution::Attributed { hosts, .. } if !hosts.is_empty() => hosts.iter().any(|h| h == host),
        Attribution::Attributed { kind: KeyKind::Full, .. } => true,
        _ => bound.get(host).is_none_or(|since| time < *since),
    }
}

fn attribute_with(
    certs: &Certificates,
    bound: &HashMap<String, Time>,
    id: &SnapshotId,
    snap: &Snapshot,
) -> (Attribution, bool) {
    let att = match snap.writer() {
        None => Attribution::Unattributed,
        Some(w) => codec::attribute_decoded(id, &snap.unsigned_bytes(), snap.host(), Some(w), certs.get(&w.key_id)),
    };
    let allowed = host_allowed(&att, snap.host(), snap.time(), bound);
    let att = match att {
        Attribution::Attributed { key_id, kind, hosts, .. } => {
            // A revoked key's snapshots dated after its revocation (format-spec §4.3).
            let revoked = certs.revoked(&key_id).filter(|t| snap.time() > *t);
            Attribution::Attributed { key_id, kind, hosts, host_allowed: allowed, revoked }
        }
        other => other,
    };
    (att, allowed)
}

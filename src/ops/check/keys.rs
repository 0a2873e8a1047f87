//! What `check` can tell about key files, revocations and config objects without their passwords
//! (format-spec §4, §4.3, §9).

use super::{Finding, Walk};
use crate::error::Result;
use crate::layout::{ObjectType, StoredId};
use crate::repository::ReadRepository;
use std::collections::HashMap;

/// Key files and config objects (format-spec §4, §9). A key file can only be opened with its own
/// password or secret, so for every key file but the one in use this checks what a reader without
/// them can: it decodes canonically, names this repository, has argon2id parameters within the
/// bounds (a key file opened with a generated secret has none), sealed key material of the length
/// its kind has, and is no copy of another key file (a copy cannot open: the seal binds the key
/// id). A flipped bit inside another key file's salt or sealed material is found only by opening it
/// with its password or secret. Every config object must verify with this repository's keys and
/// chain to its predecessor, and none in the MAC framing may sit above a signed one (format-spec
/// §9.2).
pub(super) fn keys_and_config(repo: &ReadRepository, findings: &mut Vec<Finding>) -> Result<()> {
    use crate::crypto::{KdfParams, SEAL_OVERHEAD};
    use crate::keyfile::{self, KeyKind};
    let mut seen: HashMap<Vec<u8>, String> = HashMap::new();
    for o in repo.backend().list(ObjectType::Key.dir())? {
        let path = o.path.clone();
        let bad = |msg: String| Walk::error("key-unreadable", path.clone(), msg);
        if crate::id::KeyId::from_path(&o.path).is_none() {
            continue;
        }
        let bytes = match repo.backend().read(&o.path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let kf = match keyfile::decode(&bytes) {
            Ok(k) => k,
            Err(e) => {
                findings.push(bad(e));
                continue;
            }
        };
        let k = &kf;
        let (min, max) = (KdfParams::MINIMUM, KdfParams::MAXIMUM);
        let plain_len = match k.kind() {
            KeyKind::Full => 225,
            KeyKind::WriteOnly => 193,
        };
        let problem = if postcard::to_allocvec(&kf).ok().as_deref() != bytes.get(8..) {
            Some("not in canonical form (trailing or re-encoded bytes)".to_string())
        } else if k.repo_id() != repo.keys().repo_id {
            Some(format!("names repository {}, not this one ({})", k.repo_id(), repo.keys().repo_id))
        } else if let Some(kdf) = k.kdf().filter(|p| {
            p.m_kib < min.m_kib || p.t < min.t || p.p < min.p || p.m_kib > max.m_kib || p.t > max.t || p.p > max.p
        }) {
            Some(format!("argon2id parameters {kdf:?} are out of bounds; no password can open it"))
        } else if k.sealed().len() != plain_len + SEAL_OVERHEAD {
            Some(format!(
                "its sealed key material has {} bytes, a {:?} key has {}",
                k.sealed().len(),
                k.kind(),
                plain_len + SEAL_OVERHEAD
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            findings.push(bad(p));
            continue;
        }
        let mut fingerprint = k.salt().to_vec();
        fingerprint.extend_from_slice(k.sealed());
        // Which of two identical key files is the copy cannot be told without the password: both
        // are named.
        if let Some(other) = seen.get(&fingerprint) {
            for (a, b) in [(other, &o.path), (&o.path, other)] {
                findings.push(Walk::error(
                    "key-duplicate",
                    a.clone(),
                    format!("identical to {b}: the seal binds the key id, so at most one of the two opens"),
                ));
            }
        } else {
            seen.insert(fingerprint, o.path.clone());
        }
    }

    // A revocation that does not verify is ignored by readers (format-spec §4.3).
    let certs = repo.certificates()?;
    let mut bad: Vec<_> = certs.revocations.iter().filter_map(|(id, r)| r.as_ref().err().map(|e| (id, e))).collect();
    bad.sort();
    for (id, e) in bad {
        findings.push(Walk::error(
            "revocation-invalid",
            crate::codec::attribution::revocation_path(id),
            format!("{e}: ignored, key {id} is not revoked by it (only a full key can revoke)"),
        ));
    }

    let configs = crate::repository::config_objects(repo.backend().as_ref())?;
    let mut hashes: HashMap<u64, [u8; 32]> = HashMap::new();
    let mut valid = Vec::new();
    for (n, path) in &configs {
        let bytes = match repo.backend().read(path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        hashes.insert(*n, *blake3::hash(&bytes).as_bytes());
        match crate::codec::object::decode_config(repo.keys(), *n, &bytes) {
            Ok(c) => valid.push((*n, path.clone(), c, crate::config::is_signed(&bytes))),
            Err(e) => findings.push(Walk::error("config-invalid", path.clone(), e)),
        }
    }
    let ruling = repo.config_number();
    // Once a signed config exists, a config in the MAC framing is no longer valid (format-spec
    // §9.2); those below the first signed one are the repository's history from before signatures.
    let first_signed = valid.iter().filter(|v| v.3).map(|v| v.0).min();
    for (n, path, c, signed) in valid {
        if let Some(first) = first_signed.filter(|f| !signed && n > *f) {
            findings.push(Walk::error(
                "config-invalid",
                path,
                format!(
                    "MAC-framed config above the signed config {first}: ignored (only a full key can append a config; a write-only key can make this one)"
                ),
            ));
            continue;
        }
        let chained = match c.previous() {
            None => n == 1,
            Some(h) => n.checked_sub(1).and_then(|p| hashes.get(&p)) == Some(&h),
        };
        if !chained {
            findings.push(Walk::error(
                "config-invalid",
                path,
                format!(
                    "verifies but does not chain to config {} (the ruling config is {ruling})",
                    n.saturating_sub(1)
                ),
            ));
        } else if c.repo_id() != repo.keys().repo_id {
            findings.push(Walk::error("config-invalid", path, "names another repository".into()));
        }
    }
    Ok(())
}

//! Key certificates and snapshot writer signatures (format-spec §4.3; issue 10 finding 4). Every key has a signing secret
//! derived from its key-encryption key, which only the password holder can compute; a full key that
//! creates a key (and so knows its password) certifies the key's signing public key and the hosts it
//! may write for, signed by `repo_secret`. A writer signs each snapshot with its key's signing
//! secret; a reader verifies the certificate under `repo_public`, then the signature under the
//! certificate's key. Bytes in, bytes out.

use crate::cert::{Attribution, KeyCert, Revocation, Signature64, Writer, CERT_MAGIC, REVOCATION_MAGIC};
use crate::codec::{envelope, sign};
use crate::crypto::{self, context, MasterKeys, Secret};
use crate::error::{Error, Result};
use crate::id::{KeyId, SnapshotId};

/// The storage path of the certificate of `key`: `certs/<key id, 64 hex>`.
pub fn cert_path(key: &KeyId) -> String {
    format!("certs/{}", key.to_hex())
}

/// A key's signing secret: `BLAKE3-derive(KEY_SIGN, KEK)`, used as an X25519 (XEdDSA) secret.
pub fn key_sign_secret(kek: &Secret) -> Secret {
    Secret(blake3::derive_key(context::KEY_SIGN, &kek.0))
}

/// `"CAIRNCRT" ‖ postcard(cert) ‖ SIGN(CERT_SIG, path ‖ preceding bytes)`. Needs a full key.
pub fn encode_cert(keys: &MasterKeys, cert: &KeyCert) -> Result<Vec<u8>> {
    let secret = keys.repo_secret.as_ref().ok_or(Error::WriteOnlyKey { key: None })?;
    let path = cert_path(&cert.key_id());
    Ok(envelope::sig_encode(CERT_MAGIC, secret, context::CERT_SIG, path.as_bytes(), cert))
}

/// Decodes the certificate stored for `key` and verifies it under `keys.repo_public` (any key can).
pub fn decode_cert(keys: &MasterKeys, key: &KeyId, bytes: &[u8]) -> Result<KeyCert, String> {
    let path = cert_path(key);
    let cert: KeyCert = envelope::sig_decode(CERT_MAGIC, &keys.repo_public, context::CERT_SIG, path.as_bytes(), bytes)
        .map_err(|e| format!("{path}: {e}"))?;
    if cert.key_id() != *key {
        return Err(format!("{path}: certifies another key ({})", cert.key_id()));
    }
    Ok(cert)
}

/// The storage path of the revocation of `key`: `revocations/<key id, 64 hex>`.
pub fn revocation_path(key: &KeyId) -> String {
    format!("revocations/{}", key.to_hex())
}

/// `"CAIRNRVK" ‖ postcard(revocation) ‖ SIGN(REVOCATION_SIG, path ‖ preceding bytes)`. Needs a
/// full key.
pub fn encode_revocation(keys: &MasterKeys, revocation: &Revocation) -> Result<Vec<u8>> {
    let secret = keys.repo_secret.as_ref().ok_or(Error::WriteOnlyKey { key: None })?;
    let path = revocation_path(&revocation.key_id());
    Ok(envelope::sig_encode(REVOCATION_MAGIC, secret, context::REVOCATION_SIG, path.as_bytes(), revocation))
}

/// Decodes the revocation stored for `key` and verifies it under `keys.repo_public` (any key can).
pub fn decode_revocation(keys: &MasterKeys, key: &KeyId, bytes: &[u8]) -> Result<Revocation, String> {
    let path = revocation_path(key);
    let r: Revocation =
        envelope::sig_decode(REVOCATION_MAGIC, &keys.repo_public, context::REVOCATION_SIG, path.as_bytes(), bytes)
            .map_err(|e| format!("{path}: {e}"))?;
    if r.key_id() != *key {
        return Err(format!("{path}: revokes another key ({})", r.key_id()));
    }
    Ok(r)
}

/// The message a writer signs: `SNAPSHOT_SIG ‖ snapshot id ‖ BLAKE3(unsigned) ‖ key id`, where
/// `unsigned` is the postcard of the snapshot with its writer block set to none.
fn snapshot_parts(id: &SnapshotId, unsigned: &[u8], key: &KeyId) -> [u8; 96] {
    let mut m = [0u8; 96];
    m[..32].copy_from_slice(&id.0);
    m[32..64].copy_from_slice(blake3::hash(unsigned).as_bytes());
    m[64..].copy_from_slice(&key.0);
    m
}

/// The writer block for snapshot `id` whose postcard without a writer block is `unsigned`.
pub fn sign_snapshot(sign_secret: &Secret, key: &KeyId, id: &SnapshotId, unsigned: &[u8]) -> Writer {
    let sig = sign::sign(sign_secret, context::SNAPSHOT_SIG, &[&snapshot_parts(id, unsigned, key)]);
    Writer { key_id: *key, signature: Signature64::from_bytes(&sig) }
}

/// Who wrote snapshot `id` (format-spec §4.3): `writer` is its writer block, `unsigned` its
/// postcard without it, `host` the host it claims, and `cert` the stored certificate of the
/// writer's key, if there is one.
pub fn attribute(
    keys: &MasterKeys,
    id: &SnapshotId,
    unsigned: &[u8],
    host: &str,
    writer: Option<&Writer>,
    cert: Option<&[u8]>,
) -> Attribution {
    let decoded = match (writer, cert) {
        (Some(w), Some(c)) => Some(decode_cert(keys, &w.key_id, c)),
        _ => None,
    };
    attribute_decoded(id, unsigned, host, writer, decoded.as_ref())
}

/// [`attribute`] with the writer's certificate already decoded and verified by [`decode_cert`]
/// (`None`: there is no certificate for the writer's key; `Some(Err)`: it does not verify), so a
/// listing verifies each certificate once.
pub fn attribute_decoded(
    id: &SnapshotId,
    unsigned: &[u8],
    host: &str,
    writer: Option<&Writer>,
    cert: Option<&Result<KeyCert, String>>,
) -> Attribution {
    let Some(w) = writer else { return Attribution::Unattributed };
    let cert = match cert {
        None => return Attribution::Forged(format!("no certificate {} for its writer key", cert_path(&w.key_id))),
        Some(Err(e)) => return Attribution::Forged(e.clone()),
        Some(Ok(c)) => c,
    };
    if cert.key_id() != w.key_id {
        return Attribution::Forged(format!("{}: certifies another key ({})", cert_path(&w.key_id), cert.key_id()));
    }
    let parts = snapshot_parts(id, unsigned, &w.key_id);
    if !sign::verify(&cert.key_public(), context::SNAPSHOT_SIG, &[&parts], &w.signature.to_bytes()) {
        return Attribution::Forged(format!("the writer signature of key {} does not verify", w.key_id));
    }
    let hosts = cert.hosts().to_vec();
    let host_allowed = hosts.is_empty() || hosts.iter().any(|h| h == host);
    Attribution::Attributed { key_id: w.key_id, kind: cert.kind(), hosts, host_allowed, revoked: None }
}

/// A key's signing public key from its signing secret.
pub fn key_public(sign_secret: &Secret) -> [u8; 32] {
    crypto::public_key(sign_secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyfile::KeyKind;
    use crate::time::Time;

    struct Key {
        id: KeyId,
        secret: Secret,
    }

    fn key(seed: u8) -> Key {
        Key { id: KeyId([seed; 32]), secret: key_sign_secret(&Secret([seed.wrapping_add(100); 32])) }
    }

    fn cert(keys: &MasterKeys, k: &Key, hosts: &[&str]) -> Vec<u8> {
        let c = KeyCert::V1 {
            key_id: k.id,
            kind: KeyKind::WriteOnly,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            key_public: key_public(&k.secret),
            created: Time::now(),
        };
        encode_cert(keys, &c).unwrap()
    }

    #[test]
    fn a_signed_snapshot_is_attributed_to_its_key_and_its_hosts() {
        let keys = MasterKeys::generate();
        let reader = keys.write_only();
        let web = key(1);
        let c = cert(&keys, &web, &["web-1"]);
        let id = SnapshotId([7; 32]);
        let w = sign_snapshot(&web.secret, &web.id, &id, b"snapshot");
        let got = attribute(&reader, &id, b"snapshot", "web-1", Some(&w), Some(&c));
        assert_eq!(
            got,
            Attribution::Attributed {
                key_id: web.id,
                kind: KeyKind::WriteOnly,
                hosts: vec!["web-1".into()],
                host_allowed: true,
                revoked: None
            }
        );
        // The same key writing for another host: attributed, but the host is not allowed.
        let got = attribute(&reader, &id, b"snapshot", "db-1", Some(&w), Some(&c));
        assert!(matches!(got, Attribution::Attributed { host_allowed: false, .. }), "{got:?}");
        // No writer block.
        assert_eq!(attribute(&reader, &id, b"snapshot", "web-1", None, Some(&c)), Attribution::Unattributed);
        // Another snapshot id or other bytes: the signature no longer verifies.
        assert!(matches!(
            attribute(&reader, &SnapshotId([8; 32]), b"snapshot", "web-1", Some(&w), Some(&c)),
            Attribution::Forged(_)
        ));
        assert!(matches!(attribute(&reader, &id, b"snapshoT", "web-1", Some(&w), Some(&c)), Attribution::Forged(_)));
    }

    #[test]
    fn a_write_only_key_cannot_claim_another_key_nor_certify_itself() {
        let keys = MasterKeys::generate();
        let attacker_keys = keys.write_only();
        let (victim, attacker) = (key(1), key(2));
        let victim_cert = cert(&keys, &victim, &[]);
        let id = SnapshotId([7; 32]);
        // Signed with the attacker's own signing secret, claiming the victim's key id.
        let w = sign_snapshot(&attacker.secret, &victim.id, &id, b"planted");
        assert!(matches!(
            attribute(&attacker_keys, &id, b"planted", "web-1", Some(&w), Some(&victim_cert)),
            Attribution::Forged(_)
        ));
        // A certificate the attacker makes for its own key: it cannot sign with repo_secret...
        let own = KeyCert::V1 {
            key_id: attacker.id,
            kind: KeyKind::Full,
            hosts: vec![],
            key_public: key_public(&attacker.secret),
            created: Time::now(),
        };
        assert!(matches!(encode_cert(&attacker_keys, &own), Err(Error::WriteOnlyKey { .. })));
        // ...and one signed with any other secret (here its signing secret) does not verify.
        let path = cert_path(&attacker.id);
        let forged = envelope::sig_encode(CERT_MAGIC, &attacker.secret, context::CERT_SIG, path.as_bytes(), &own);
        assert!(decode_cert(&attacker_keys, &attacker.id, &forged).is_err());
        let w = sign_snapshot(&attacker.secret, &attacker.id, &id, b"planted");
        assert!(matches!(attribute(&keys, &id, b"planted", "web-1", Some(&w), Some(&forged)), Attribution::Forged(_)));
        // No certificate at all.
        assert!(matches!(attribute(&keys, &id, b"planted", "web-1", Some(&w), None), Attribution::Forged(_)));
        // A real certificate moved to another key's name does not verify there.
        assert!(decode_cert(&keys, &attacker.id, &victim_cert).is_err());
    }

    #[test]
    fn only_repo_secret_revokes_and_a_revocation_names_its_key() {
        let keys = MasterKeys::generate();
        let attacker_keys = keys.write_only();
        let (web, other) = (key(1), key(2));
        let r = Revocation::V1 { key_id: web.id, revoked: Time { secs: 1000, nanos: 0 } };
        let bytes = encode_revocation(&keys, &r).unwrap();
        assert_eq!(&bytes[..8], REVOCATION_MAGIC);
        assert_eq!(decode_revocation(&attacker_keys, &web.id, &bytes), Ok(r.clone()));
        // Stored under another key's name it does not verify.
        assert!(decode_revocation(&keys, &other.id, &bytes).is_err());
        // A write-only key cannot sign one, and one signed by anything else does not verify.
        assert!(matches!(encode_revocation(&attacker_keys, &r), Err(Error::WriteOnlyKey { .. })));
        let path = revocation_path(&web.id);
        let forged = envelope::sig_encode(REVOCATION_MAGIC, &web.secret, context::REVOCATION_SIG, path.as_bytes(), &r);
        assert!(decode_revocation(&keys, &web.id, &forged).is_err());
        // A certificate is not a revocation.
        assert!(decode_revocation(&keys, &web.id, &cert(&keys, &web, &[])).is_err());
    }
}

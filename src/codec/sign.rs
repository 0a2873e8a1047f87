//! Signatures by the repository key (format-spec §3.7): XEdDSA over Curve25519, made with the
//! Montgomery secret `repo_secret` that only full keys hold and verified against `repo_public`,
//! which every key's material holds. Configs, prune marks, waits and maintenance-lock links are
//! signed, so a write-only key can verify them but cannot make one. Does no I/O.
//!
//! The signed message is `context ‖ name ‖ magic ‖ postcard(value)`, with one context per object
//! kind (format-spec §3.3), so a signature of one kind never verifies as another.

use crate::crypto::Secret;
use xeddsa::{Sign, Verify};

/// Length of an XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;

/// The operating system's random source, as the XEdDSA crate's random-number trait wants it.
struct OsRandom;

impl rand_core::TryRng for OsRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::getrandom(dst).expect("the operating system's random source failed");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRandom {}

fn message(context: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    m.extend_from_slice(context.as_bytes());
    for p in parts {
        m.extend_from_slice(p);
    }
    m
}

/// XEdDSA signature of `context ‖ parts…` with the X25519 secret `secret` (fresh randomness from
/// the operating system in every signature).
pub fn sign(secret: &Secret, context: &str, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
    let key = xeddsa::xed25519::PrivateKey(secret.0);
    key.sign(&message(context, parts), OsRandom)
}

/// True when `signature` is a valid XEdDSA signature of `context ‖ parts…` under the X25519
/// public key `public`. A public key that is no usable curve point verifies nothing.
pub fn verify(public: &[u8; 32], context: &str, parts: &[&[u8]], signature: &[u8]) -> bool {
    let Ok(sig) = <[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return false;
    };
    xeddsa::xed25519::PublicKey(*public).verify(&message(context, parts), &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKeys;

    const CTX: &str = "cairn 2026-12 v1 test signature";

    fn keys() -> (Secret, [u8; 32]) {
        let k = MasterKeys::generate();
        (k.repo_secret.clone().unwrap(), k.repo_public)
    }

    #[test]
    fn a_signature_verifies_under_its_public_key_only() {
        let (secret, public) = keys();
        let sig = sign(&secret, CTX, &[b"prune/mark-a", b"CAIRNPR2", b"value"]);
        assert_eq!(sig.len(), 64);
        assert!(verify(&public, CTX, &[b"prune/mark-a", b"CAIRNPR2", b"value"], &sig));
        // The parts are concatenated: how they are split does not matter, their bytes do.
        assert!(verify(&public, CTX, &[b"prune/mark-aCAIRNPR2value"], &sig));
        // Another repository's key.
        let (_, other) = keys();
        assert!(!verify(&other, CTX, &[b"prune/mark-a", b"CAIRNPR2", b"value"], &sig));
        // Two signatures of one message differ (fresh randomness) and both verify.
        let again = sign(&secret, CTX, &[b"prune/mark-a", b"CAIRNPR2", b"value"]);
        assert_ne!(sig, again);
        assert!(verify(&public, CTX, &[b"prune/mark-a", b"CAIRNPR2", b"value"], &again));
    }

    #[test]
    fn a_flipped_bit_in_message_path_context_or_signature_fails() {
        let (secret, public) = keys();
        let sig = sign(&secret, CTX, &[b"prune/mark-a", b"value"]);
        assert!(!verify(&public, CTX, &[b"prune/mark-a", b"valuf"], &sig), "message");
        assert!(!verify(&public, CTX, &[b"prune/mark-b", b"value"], &sig), "path");
        assert!(!verify(&public, "cairn 2026-12 v1 other signature", &[b"prune/mark-a", b"value"], &sig), "context");
        for byte in [0, 31, 32, 63] {
            let mut bad = sig;
            bad[byte] ^= 0x01;
            assert!(!verify(&public, CTX, &[b"prune/mark-a", b"value"], &bad), "signature byte {byte}");
        }
        assert!(!verify(&public, CTX, &[b"prune/mark-a", b"value"], &sig[..63]), "short signature");
        assert!(!verify(&[0xff; 32], CTX, &[b"prune/mark-a", b"value"], &sig), "not a key");
    }
}

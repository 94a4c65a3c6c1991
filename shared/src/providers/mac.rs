//! Keyed MACs shared by every signature scheme: one set of keys per route (rotation), every key
//! tried without an early exit, and candidates compared in constant time.

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::config::MacAlgorithm;
use crate::secrets::Secret;

/// HMAC of the concatenation of `parts`.
pub fn hmac(algorithm: MacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac>(mut mac: M, parts: &[&[u8]]) -> Vec<u8> {
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    const ANY_LENGTH: &str = "HMAC takes keys of any length";
    match algorithm {
        MacAlgorithm::Sha1 => run(
            <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect(ANY_LENGTH),
            parts,
        ),
        MacAlgorithm::Sha256 => run(
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect(ANY_LENGTH),
            parts,
        ),
        MacAlgorithm::Sha512 => run(
            <Hmac<sha2::Sha512> as Mac>::new_from_slice(key).expect(ANY_LENGTH),
            parts,
        ),
    }
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&hmac(MacAlgorithm::Sha256, key, parts));
    out
}

/// The `X-Hub-Signature-256` value GitHub and Meta send: `sha256=` + hex HMAC-SHA256 of the body.
pub(super) fn hub_signature(key: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(key, &[body])))
}

/// A hex-encoded signature as bytes, decoded into a buffer of its final size: `hex::decode`
/// collects through an iterator that grows its vector four times for a SHA-256 signature.
pub(super) fn hex_signature(text: &str) -> Option<Vec<u8>> {
    let mut bytes = vec![0; text.len() / 2];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

/// A route's signing keys, newest first.
pub(super) struct Keys(Vec<Vec<u8>>);

impl Keys {
    /// Keys that are the secrets' text itself (all providers but Standard Webhooks).
    pub(super) fn from_secrets(secrets: &[Secret]) -> Self {
        Keys(
            secrets
                .iter()
                .map(|s| s.expose().as_bytes().to_vec())
                .collect(),
        )
    }

    pub(super) fn from_bytes(keys: Vec<Vec<u8>>) -> Self {
        Keys(keys)
    }

    pub(super) fn first(&self) -> Option<&[u8]> {
        self.0.first().map(Vec::as_slice)
    }

    /// The key whose MAC over `parts` equals one of `candidates`. Every key and candidate is
    /// compared, so the time taken does not depend on which (if any) matched.
    pub(super) fn matching(
        &self,
        algorithm: MacAlgorithm,
        parts: &[&[u8]],
        candidates: &[Vec<u8>],
    ) -> Option<&[u8]> {
        let mut found = None;
        for key in &self.0 {
            let expected = hmac(algorithm, key, parts);
            let mut hit = subtle::Choice::from(0);
            for candidate in candidates {
                hit |= expected.as_slice().ct_eq(candidate.as_slice());
            }
            if bool::from(hit) && found.is_none() {
                found = Some(key.as_slice());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_signatures_decode_exactly_or_not_at_all() {
        assert_eq!(hex_signature("00ff7A"), Some(vec![0x00, 0xff, 0x7a]));
        assert_eq!(hex_signature(""), Some(vec![]));
        assert_eq!(hex_signature("abc"), None, "odd length");
        assert_eq!(hex_signature("zz"), None, "not hex");
        assert_eq!(hex_signature(" ab"), None, "callers trim, not this");
    }

    #[test]
    fn rfc_vectors_for_each_algorithm() {
        // RFC 2202 case 2 (SHA-1) and RFC 4231 case 2 (SHA-256, SHA-512): key "Jefe".
        let data: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            hex::encode(hmac(MacAlgorithm::Sha1, b"Jefe", data)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac(MacAlgorithm::Sha512, b"Jefe", data)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn matching_names_the_key_that_signed() {
        let keys = Keys::from_bytes(vec![b"new".to_vec(), b"old".to_vec()]);
        let by_old = hmac(MacAlgorithm::Sha256, b"old", &[b"m"]);
        assert_eq!(
            keys.matching(MacAlgorithm::Sha256, &[b"m"], &[vec![0; 32], by_old]),
            Some(&b"old"[..])
        );
        assert_eq!(
            keys.matching(MacAlgorithm::Sha256, &[b"x"], &[vec![0; 32]]),
            None
        );
    }
}

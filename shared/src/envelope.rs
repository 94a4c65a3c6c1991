//! The message that travels on the queue. Versioned, so a consumer never mis-reads a message written
//! by a newer producer during a rolling deploy: it refuses it and the message is retried.

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::Rules;

/// The envelope schema this build writes; it reads this one and every older one. v2 added bodies as
/// text (`{"text": …}`), so a v1 consumer refuses v2 messages (retried) instead of mis-reading them.
pub const SCHEMA_VERSION: u32 = 2;

/// SQS accepts at most 1 MiB per message; keep a margin for the message's own framing.
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024 - 1024;

/// Where the body travels. On the wire, inline bytes are `{"text": "…"}` when they are UTF-8 that
/// SQS can carry (no base64: a third smaller, and no encoding pass on the hot path), else
/// `{"inline": "<base64>"}`; both read back as [`BodyLocation::Inline`] with the exact bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyLocation {
    /// The exact bytes, inside the message.
    Inline(Bytes),
    /// Claim check: the bytes are in object storage.
    External { bucket: String, key: String },
}

/// Whether `bytes` can travel as message text: UTF-8, and none of the two non-characters SQS
/// refuses (U+FFFE, U+FFFF; JSON escaping takes care of control characters).
fn sendable_text(bytes: &[u8]) -> Option<&str> {
    // Byte searches (SIMD), not a char pattern: that one decodes every character and cost more
    // than the rest of the envelope on large bodies.
    let refused = |c: &str| memchr::memmem::find(bytes, c.as_bytes()).is_some();
    std::str::from_utf8(bytes)
        .ok()
        .filter(|_| !refused("\u{FFFE}") && !refused("\u{FFFF}"))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireBody<'a> {
    Text(std::borrow::Cow<'a, str>),
    Inline(String),
    External { bucket: String, key: String },
}

impl Serialize for BodyLocation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BodyLocation::Inline(bytes) => match sendable_text(bytes) {
                Some(text) => WireBody::Text(text.into()),
                None => WireBody::Inline(base64::engine::general_purpose::STANDARD.encode(bytes)),
            }
            .serialize(serializer),
            BodyLocation::External { bucket, key } => WireBody::External {
                bucket: bucket.clone(),
                key: key.clone(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for BodyLocation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match WireBody::deserialize(deserializer)? {
            WireBody::Text(text) => BodyLocation::Inline(Bytes::from(text.into_owned())),
            WireBody::Inline(encoded) => BodyLocation::Inline(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.as_bytes())
                    .map(Bytes::from)
                    .map_err(serde::de::Error::custom)?,
            ),
            WireBody::External { bucket, key } => BodyLocation::External { bucket, key },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Schema version; see [`SCHEMA_VERSION`].
    pub v: u32,
    /// Event id (UUIDv7: time-ordered), also returned to the sender.
    pub id: String,
    pub route: String,
    pub provider: String,
    pub received_at_ms: i64,
    /// The provider's delivery id, when a header carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// An empty-bodied "Test" ping.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_ping: bool,
    /// Name of the hydrator that turns this id-only notification into full records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hydrate: Option<String>,
    #[serde(default, skip_serializing_if = "Rules::is_empty")]
    pub rules: Rules,
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub body_len: u64,
    /// Hex SHA-256 of the exact body bytes. Empty from v2 on: the consumer computes it, off the
    /// path that makes the sender wait.
    #[serde(default)]
    pub body_sha256: String,
    pub body: BodyLocation,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message is not an envelope: {0}")]
    Malformed(String),
    #[error("envelope schema v{0} is newer than this consumer understands (v{SCHEMA_VERSION})")]
    UnsupportedVersion(u32),
}

impl Envelope {
    pub fn content_type(&self) -> Option<&str> {
        crate::request::find_header(&self.headers, "content-type")
    }

    pub fn to_message(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serializes")
    }

    pub fn from_message(text: &str) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u32,
        }
        // One parse when all is well; the version alone says why a message did not parse.
        match serde_json::from_str::<Envelope>(text) {
            Ok(envelope) if (1..=SCHEMA_VERSION).contains(&envelope.v) => Ok(envelope),
            Ok(envelope) => Err(EnvelopeError::UnsupportedVersion(envelope.v)),
            Err(error) => match serde_json::from_str::<VersionOnly>(text) {
                Ok(version) if version.v > SCHEMA_VERSION => {
                    Err(EnvelopeError::UnsupportedVersion(version.v))
                }
                _ => Err(EnvelopeError::Malformed(error.to_string())),
            },
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Envelope {
        let body = Bytes::from_static(b"\x00\x01 not utf-8 \xff");
        Envelope {
            v: SCHEMA_VERSION,
            id: "0190-test".into(),
            route: "raw".into(),
            provider: "catch-raw".into(),
            received_at_ms: 1_700_000_000_000,
            delivery_id: None,
            test_ping: false,
            hydrate: None,
            rules: Rules::default(),
            method: "POST".into(),
            path: "/".into(),
            query: "a=1".into(),
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            source_ip: Some("203.0.113.9".into()),
            body_len: body.len() as u64,
            body_sha256: sha256_hex(&body),
            body: BodyLocation::Inline(body),
        }
    }

    #[test]
    fn round_trips_binary_bodies() {
        let envelope = sample();
        let decoded = Envelope::from_message(&envelope.to_message()).unwrap();
        assert_eq!(decoded, envelope);
    }

    #[test]
    fn text_bodies_travel_as_text_and_others_as_base64() {
        let mut envelope = sample();
        let json = r#"{"a":"caf\u{e9} \"quoted\"\n"}"#;
        envelope.body = BodyLocation::Inline(Bytes::from(json));
        let message = envelope.to_message();
        assert!(message.contains(r#""body":{"text":"#), "{message}");
        assert_eq!(Envelope::from_message(&message).unwrap(), envelope);
        // U+FFFF is UTF-8 that SQS refuses: base64.
        envelope.body = BodyLocation::Inline(Bytes::from("x\u{FFFF}"));
        let message = envelope.to_message();
        assert!(message.contains(r#""body":{"inline":"#), "{message}");
        assert_eq!(Envelope::from_message(&message).unwrap(), envelope);
    }

    #[test]
    fn reads_v1_messages() {
        let v1 = r#"{"v":1,"id":"e","route":"r","provider":"catch-raw","received_at_ms":1,"method":"POST","path":"/","headers":[],"body_len":3,"body_sha256":"ab","body":{"inline":"YWJj"}}"#;
        let envelope = Envelope::from_message(v1).unwrap();
        assert_eq!(
            envelope.body,
            BodyLocation::Inline(Bytes::from_static(b"abc"))
        );
        assert_eq!(envelope.body_sha256, "ab");
    }

    #[test]
    fn refuses_newer_schema_and_garbage() {
        let newer = sample().to_message().replacen("\"v\":2", "\"v\":3", 1);
        assert!(matches!(
            Envelope::from_message(&newer),
            Err(EnvelopeError::UnsupportedVersion(3))
        ));
        let newer_shape = r#"{"v":3,"id":"e","new":"shape"}"#;
        assert!(matches!(
            Envelope::from_message(newer_shape),
            Err(EnvelopeError::UnsupportedVersion(3))
        ));
        assert!(matches!(
            Envelope::from_message("not json"),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::from_message(r#"{"v":1}"#),
            Err(EnvelopeError::Malformed(_))
        ));
    }
}

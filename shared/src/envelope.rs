//! The message that travels on the queue. Versioned, so a consumer never mis-reads a message written
//! by a newer producer during a rolling deploy: it refuses it and the message is retried.

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::Rules;

/// The envelope schema this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// SQS accepts at most 1 MiB per message; keep a margin for the message's own framing.
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024 - 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyLocation {
    /// The exact bytes, base64 in the JSON message.
    Inline(#[serde(with = "base64_bytes")] Bytes),
    /// Claim check: the bytes are in object storage.
    External { bucket: String, key: String },
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
    /// Hex SHA-256 of the exact body bytes.
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
        let version: VersionOnly =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if version.v != SCHEMA_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version.v));
        }
        serde_json::from_str(text).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

mod base64_bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
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
    fn refuses_newer_schema_and_garbage() {
        let newer = sample().to_message().replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(
            Envelope::from_message(&newer),
            Err(EnvelopeError::UnsupportedVersion(2))
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

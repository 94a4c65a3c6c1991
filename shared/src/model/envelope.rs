//! The message that travels on the queue. Versioned, so a consumer never mis-reads a message written
//! by a newer producer during a rolling deploy: it refuses it and the message is retried.
//!
//! A message is the envelope as one line of compact JSON; from v3, when the body is text SQS can
//! carry as it is, a newline and the body's exact bytes follow that line. The body then needs no
//! escaping on the sender's hot path, and the message is no longer than the body plus the header.

use std::borrow::Cow;

use base64::Engine;
use bytes::Bytes;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::model::rules::SharedRules;

/// The envelope schema this build writes; it reads this one and every older one. v2 added bodies as
/// JSON text (`{"text": …}`); v3 added bodies appended after the header line (`"body":"appended"`);
/// v4 added `sha256:body` and `sha256:query` sources to the rules (a v3 consumer would read them as
/// literals: one dedup key for every event); v5 added `replay` (a stored event run through the
/// consumer again: a v4 consumer would take it for a duplicate and drop it); v6 added `sha256:form`
/// sources and a replay's `replaces` (its stored dedup key: a v5 consumer would read the one as a
/// literal and write the other under the current rules' key).
/// An older consumer refuses a newer message instead of mis-reading it, and the message is retried.
pub const SCHEMA_VERSION: u32 = 6;

/// SQS accepts at most 1 MiB per message; keep a margin for the message's own framing.
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024 - 1024;

/// Where the body travels. Inline bytes are written after the header line when they are text SQS
/// can carry as it is; else as `{"text": "…"}` (UTF-8 with control characters, JSON escapes them) or
/// `{"inline": "<base64>"}`. All read back as [`BodyLocation::Inline`] with the exact bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyLocation {
    /// The exact bytes, inside the message.
    Inline(Bytes),
    /// Claim check: the bytes are in object storage.
    External { bucket: String, key: String },
}

/// U+FFFE and U+FFFF are UTF-8 that SQS refuses; both start with the bytes EF BF.
fn has_refused_noncharacter(bytes: &[u8]) -> bool {
    // A SIMD byte search, not a char pattern: that one decodes every character and cost more than
    // the rest of the envelope on large bodies.
    memchr::memmem::find_iter(bytes, b"\xEF\xBF")
        .any(|at| matches!(bytes.get(at + 2), Some(0xBE | 0xBF)))
}

/// Control characters other than tab, newline and carriage return, which SQS refuses.
fn has_refused_control(bytes: &[u8]) -> bool {
    // Non-short-circuiting operators over fixed chunks, so the compiler compares 16 or 32 bytes
    // per instruction; the early exit is per chunk.
    let refused = |b: u8| (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r');
    let mut chunks = bytes.chunks_exact(64);
    chunks
        .by_ref()
        .any(|chunk| chunk.iter().fold(false, |seen, &b| seen | refused(b)))
        || chunks.remainder().iter().any(|&b| refused(b))
}

/// Whether `bytes` can follow the header as they are: UTF-8 made only of characters SQS accepts
/// (#x9, #xA, #xD, #x20–#xD7FF, #xE000–#xFFFD, #x10000–#x10FFFF; UTF-8 has no surrogates).
fn appendable_text(bytes: &[u8]) -> Option<&str> {
    sendable_text(bytes).filter(|_| !has_refused_control(bytes))
}

/// Whether `bytes` can travel as a JSON string: UTF-8 without the two non-characters (JSON escaping
/// takes care of control characters).
fn sendable_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|_| !has_refused_noncharacter(bytes))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireBody<'a> {
    /// The body follows the header line (v3).
    Appended,
    Text(Cow<'a, str>),
    Inline(String),
    External {
        bucket: Cow<'a, str>,
        key: Cow<'a, str>,
    },
}

impl<'a> WireBody<'a> {
    /// The form a body takes inside the JSON (never [`WireBody::Appended`]).
    fn inside_json(body: &'a BodyLocation) -> Self {
        match body {
            BodyLocation::Inline(bytes) => match sendable_text(bytes) {
                Some(text) => WireBody::Text(text.into()),
                None => WireBody::Inline(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
            BodyLocation::External { bucket, key } => WireBody::External {
                bucket: bucket.into(),
                key: key.into(),
            },
        }
    }
}

impl Serialize for BodyLocation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireBody::inside_json(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BodyLocation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match WireBody::deserialize(deserializer)? {
            // Filled with the text after the header line by `Envelope::from_message`.
            WireBody::Appended => BodyLocation::Inline(Bytes::new()),
            WireBody::Text(text) => BodyLocation::Inline(Bytes::from(text.into_owned())),
            WireBody::Inline(encoded) => BodyLocation::Inline(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.as_bytes())
                    .map(Bytes::from)
                    .map_err(serde::de::Error::custom)?,
            ),
            WireBody::External { bucket, key } => BodyLocation::External {
                bucket: bucket.into_owned(),
                key: key.into_owned(),
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Envelope {
    /// Schema version the envelope was read as; always [`SCHEMA_VERSION`] when written.
    pub v: u32,
    /// Event id (UUIDv7: time-ordered), also returned to the sender.
    pub id: String,
    pub route: String,
    pub provider: String,
    pub received_at_ms: i64,
    /// The provider's delivery id, when a header carries it.
    #[serde(default)]
    pub delivery_id: Option<String>,
    /// An empty-bodied "Test" ping.
    #[serde(default)]
    pub test_ping: bool,
    /// A replay of a stored event (`hookcatch replay --event`, the console's Replay): it replaces
    /// the stored event instead of being a duplicate of it, and its records are applied again.
    #[serde(default)]
    pub replay: bool,
    /// A replay's stored dedup key (v6): the replay rewrites exactly the stored event it came
    /// from, whatever key the route's rules give now, so it can neither take the place of a newer
    /// event that has that key nor be stored twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Name of the hydrator that turns this id-only notification into full records.
    #[serde(default)]
    pub hydrate: Option<String>,
    #[serde(default)]
    pub rules: SharedRules,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub source_ip: Option<String>,
    pub body_len: u64,
    /// Hex SHA-256 of the exact body bytes. Empty from v2 on: the consumer computes it, off the
    /// path that makes the sender wait.
    #[serde(default)]
    pub body_sha256: String,
    pub body: BodyLocation,
}

/// The envelope as written, with its body in the given form. Hand-written rather than derived so
/// the body's form is chosen once per message (the choice scans the whole body).
struct Wire<'a> {
    envelope: &'a Envelope,
    body: WireBody<'a>,
}

impl Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.envelope;
        let mut out = serializer.serialize_struct("Envelope", 19)?;
        // The form written is this build's, whatever version the envelope was read as.
        out.serialize_field("v", &SCHEMA_VERSION)?;
        out.serialize_field("id", &e.id)?;
        out.serialize_field("route", &e.route)?;
        out.serialize_field("provider", &e.provider)?;
        out.serialize_field("received_at_ms", &e.received_at_ms)?;
        if let Some(delivery_id) = &e.delivery_id {
            out.serialize_field("delivery_id", delivery_id)?;
        }
        if e.test_ping {
            out.serialize_field("test_ping", &true)?;
        }
        if e.replay {
            out.serialize_field("replay", &true)?;
        }
        if let Some(replaces) = &e.replaces {
            out.serialize_field("replaces", replaces)?;
        }
        if let Some(hydrate) = &e.hydrate {
            out.serialize_field("hydrate", hydrate)?;
        }
        if !e.rules.is_empty() {
            out.serialize_field("rules", &e.rules)?;
        }
        out.serialize_field("method", &e.method)?;
        out.serialize_field("path", &e.path)?;
        if !e.query.is_empty() {
            out.serialize_field("query", &e.query)?;
        }
        out.serialize_field("headers", &e.headers)?;
        if let Some(source_ip) = &e.source_ip {
            out.serialize_field("source_ip", source_ip)?;
        }
        out.serialize_field("body_len", &e.body_len)?;
        if !e.body_sha256.is_empty() {
            out.serialize_field("body_sha256", &e.body_sha256)?;
        }
        // Last, so an appended body directly follows its marker.
        out.serialize_field("body", &self.body)?;
        out.end()
    }
}

/// As JSON alone (the body inside it), for anything that shows an envelope rather than queues it.
impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            envelope: self,
            body: WireBody::inside_json(&self.body),
        }
        .serialize(serializer)
    }
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
        crate::model::request::find_header(&self.headers, "content-type")
    }

    /// The queue message: the header line, then the body itself when it can travel as it is.
    pub fn to_message(&self) -> String {
        let appended = match &self.body {
            BodyLocation::Inline(bytes) => appendable_text(bytes),
            BodyLocation::External { .. } => None,
        };
        let body = match appended {
            Some(_) => WireBody::Appended,
            None => WireBody::inside_json(&self.body),
        };
        // One allocation in the common case: growing from serde_json's default 128 bytes copied the
        // message four times over (3% of a 1 KiB request).
        let mut buffer = Vec::with_capacity(self.message_size_hint(appended.map_or(0, str::len)));
        serde_json::to_writer(
            &mut buffer,
            &Wire {
                envelope: self,
                body,
            },
        )
        .expect("an envelope always serializes");
        // Only the header is checked here: the appended body was checked by `appendable_text`.
        let mut message = String::from_utf8(buffer).expect("serde_json writes UTF-8");
        if let Some(text) = appended {
            // Compact JSON has no raw newline, so the first one ends the header.
            message.push('\n');
            message.push_str(text);
        }
        message
    }

    /// Bytes the message will most likely take: what it carries, plus room for field names,
    /// escapes and a body written inside the JSON.
    fn message_size_hint(&self, appended: usize) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 6)
            .sum();
        let inside = match &self.body {
            // Base64 is the longest a body inside the JSON gets, but for escape-heavy text.
            BodyLocation::Inline(bytes) if appended == 0 => bytes.len() / 3 * 4 + 4,
            _ => 0,
        };
        let rules = if self.rules.is_empty() {
            0
        } else {
            self.rules.json_len()
        };
        let strings = self.id.len() + self.route.len() + self.path.len() + self.query.len();
        512 + strings + headers + rules + inside + 1 + appended
    }

    pub fn from_message(text: &str) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u32,
        }
        let malformed = |why: String| Err(EnvelopeError::Malformed(why));
        // One parse when all is well; the version alone says why a message did not parse.
        let mut header = serde_json::Deserializer::from_str(text).into_iter::<Envelope>();
        let mut envelope = match header.next() {
            Some(Ok(envelope)) if (1..=SCHEMA_VERSION).contains(&envelope.v) => envelope,
            Some(Ok(envelope)) => return Err(EnvelopeError::UnsupportedVersion(envelope.v)),
            Some(Err(error)) => {
                let version = serde_json::Deserializer::from_str(text)
                    .into_iter::<VersionOnly>()
                    .next();
                return match version {
                    Some(Ok(version)) if version.v > SCHEMA_VERSION => {
                        Err(EnvelopeError::UnsupportedVersion(version.v))
                    }
                    _ => malformed(error.to_string()),
                };
            }
            None => return malformed("empty message".into()),
        };
        let rest = &text[header.byte_offset()..];
        if let Some(appended) = rest.strip_prefix('\n') {
            if envelope.v < 3 || envelope.body != BodyLocation::Inline(Bytes::new()) {
                return malformed("text after a body that is not appended".into());
            }
            envelope.body = BodyLocation::Inline(Bytes::copy_from_slice(appended.as_bytes()));
        } else if !rest.is_empty() {
            return malformed("text after the envelope".into());
        }
        // Also catches an appended body cut short, or a header that says appended with none after.
        if let BodyLocation::Inline(body) = &envelope.body
            && body.len() as u64 != envelope.body_len
        {
            return malformed(format!(
                "the body is {} bytes, the envelope says {}",
                body.len(),
                envelope.body_len
            ));
        }
        Ok(envelope)
    }
}

/// Object key of a claim-checked body: under the route's id, the prefix its function may write.
pub fn body_key(route: &str, event_id: &str) -> String {
    format!("bodies/{}/{event_id}", super::route_id(route))
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
            replay: false,
            replaces: None,
            hydrate: None,
            rules: SharedRules::default(),
            method: "POST".into(),
            path: "/".into(),
            query: "a=1".into(),
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            source_ip: Some("203.0.113.9".into()),
            body_len: body.len() as u64,
            body_sha256: crate::model::request::sha256_hex(&body),
            body: BodyLocation::Inline(body),
        }
    }

    fn with_body(body: impl Into<Bytes>) -> Envelope {
        let body = body.into();
        Envelope {
            body_len: body.len() as u64,
            body: BodyLocation::Inline(body),
            ..sample()
        }
    }

    #[test]
    fn round_trips_binary_bodies() {
        let envelope = sample();
        let message = envelope.to_message();
        assert!(message.contains(r#""body":{"inline":"#), "{message}");
        assert_eq!(Envelope::from_message(&message).unwrap(), envelope);
    }

    #[test]
    fn rules_are_written_as_their_own_json_and_read_back() {
        for provider in crate::config::ProviderKind::ALL {
            let rules = crate::providers::default_rules(provider);
            let expected = serde_json::to_value(&rules).unwrap();
            // Rendered once by the ingest side, or on first write after a consumer read it.
            for shared in [
                SharedRules::rendered(rules.clone()),
                SharedRules::from(rules.clone()),
            ] {
                let envelope = Envelope {
                    rules: shared,
                    ..with_body("{}")
                };
                let message = envelope.to_message();
                let header: serde_json::Value =
                    serde_json::from_str(message.split_once('\n').unwrap().0).unwrap();
                if rules.is_empty() {
                    assert!(header.get("rules").is_none(), "{provider:?}: {header}");
                } else {
                    assert_eq!(header["rules"], expected, "{provider:?}");
                }
                let read = Envelope::from_message(&message).unwrap();
                assert_eq!(*read.rules, rules, "{provider:?}");
                assert_eq!(read, envelope);
                assert_eq!(read.to_message(), message, "{provider:?}");
            }
        }
    }

    #[test]
    fn text_bodies_follow_the_header_line_verbatim() {
        let json = "{\"a\":\"caf\u{e9} \\\"quoted\\\"\",\n\t\"b\":\"\u{1F600}\"}\r\n";
        let envelope = with_body(json);
        let message = envelope.to_message();
        let (header, body) = message.split_once('\n').unwrap();
        assert!(header.ends_with(r#","body":"appended"}"#), "{header}");
        assert_eq!(body, json);
        assert_eq!(Envelope::from_message(&message).unwrap(), envelope);
        let empty = with_body("");
        assert_eq!(Envelope::from_message(&empty.to_message()).unwrap(), empty);
    }

    #[test]
    fn text_that_sqs_refuses_as_it_is_travels_escaped_or_as_base64() {
        // A control character SQS refuses: escaped inside the JSON.
        let envelope = with_body("a\u{1}b\u{1f}");
        let message = envelope.to_message();
        assert!(
            message.contains(r#""body":{"text":"a\u0001b\u001f"}"#),
            "{message}"
        );
        assert!(!message.contains('\n'));
        assert_eq!(Envelope::from_message(&message).unwrap(), envelope);
        // U+FFFE and U+FFFF are UTF-8 that SQS refuses even escaped: base64.
        for refused in ["x\u{FFFF}", "\u{FFFE}y"] {
            let envelope = with_body(refused);
            let message = envelope.to_message();
            assert!(message.contains(r#""body":{"inline":"#), "{message}");
            assert_eq!(Envelope::from_message(&message).unwrap(), envelope);
        }
        // Neighbours of the refused characters are fine.
        let envelope = with_body("\u{FFFD}\u{FFBF}\u{7f}");
        assert!(envelope.to_message().ends_with("\n\u{FFFD}\u{FFBF}\u{7f}"));
    }

    #[test]
    fn the_control_scan_sees_every_position() {
        for len in [1, 63, 64, 65, 200] {
            for at in 0..len {
                let mut body = vec![b'x'; len];
                body[at] = 0x0b;
                assert!(has_refused_control(&body), "len {len}, at {at}");
                body[at] = b'\n';
                assert!(!has_refused_control(&body), "len {len}, at {at}");
            }
        }
    }

    #[test]
    fn reads_v1_and_v2_messages() {
        let v1 = r#"{"v":1,"id":"e","route":"r","provider":"catch-raw","received_at_ms":1,"method":"POST","path":"/","headers":[],"body_len":3,"body_sha256":"ab","body":{"inline":"YWJj"}}"#;
        let envelope = Envelope::from_message(v1).unwrap();
        assert_eq!(
            envelope.body,
            BodyLocation::Inline(Bytes::from_static(b"abc"))
        );
        assert_eq!(envelope.body_sha256, "ab");
        let v2 = r#"{"v":2,"id":"e","route":"r","provider":"catch-raw","received_at_ms":1,"method":"POST","path":"/","headers":[],"body_len":4,"body_sha256":"","body":{"text":"{\"a\""}}"#;
        let envelope = Envelope::from_message(v2).unwrap();
        assert_eq!(
            envelope.body,
            BodyLocation::Inline(Bytes::from_static(b"{\"a\""))
        );
        // Written again (a redrive, an inspection), it is a message of this build's version.
        let rewritten = Envelope::from_message(&envelope.to_message()).unwrap();
        assert_eq!(
            rewritten,
            Envelope {
                v: SCHEMA_VERSION,
                ..envelope
            }
        );
    }

    /// v4 rules may hold `sha256:` sources, which a v3 consumer would read as literals (one dedup
    /// key for every event). Every message this build writes says v4, and v3 consumers refuse any
    /// version above 3 with `UnsupportedVersion`, which is retried (the refusal below is the same
    /// check one version up), so an old consumer never reads one.
    #[test]
    fn messages_with_digest_sources_say_v4_or_later() {
        let mut envelope = with_body("{}");
        envelope.rules = crate::model::rules::Rules {
            dedup: Some(crate::model::value::ValueSource::parse("sha256:body")),
            ..Default::default()
        }
        .into();
        let message = envelope.to_message();
        assert!(
            message.starts_with(&format!("{{\"v\":{SCHEMA_VERSION},")),
            "{message}"
        );
        assert!(message.contains("\"sha256:body\""), "{message}");
        let read = Envelope::from_message(&message).unwrap();
        assert_eq!(
            read.rules.dedup,
            Some(crate::model::value::ValueSource::Digest(
                crate::model::value::Digested::Body
            ))
        );
    }

    #[test]
    fn refuses_newer_schema_garbage_and_bodies_that_do_not_match() {
        let this = format!("\"v\":{SCHEMA_VERSION}");
        let next = SCHEMA_VERSION + 1;
        let newer = with_body("{}")
            .to_message()
            .replacen(&this, &format!("\"v\":{next}"), 1);
        assert!(matches!(
            Envelope::from_message(&newer),
            Err(EnvelopeError::UnsupportedVersion(v)) if v == next
        ));
        let newer_shape = format!("{{\"v\":{next},\"id\":\"e\",\"new\":\"shape\"}}\nbody");
        assert!(matches!(
            Envelope::from_message(&newer_shape),
            Err(EnvelopeError::UnsupportedVersion(v)) if v == next
        ));
        let message = with_body("{\"a\":1}").to_message();
        let malformed = [
            "not json".to_owned(),
            r#"{"v":1}"#.to_owned(),
            String::new(),
            // cut short, or grown
            message[..message.len() - 1].to_owned(),
            format!("{message} "),
            // the header alone
            message.split_once('\n').unwrap().0.to_owned(),
            // a v2 message cannot have a body after it
            message.replacen(&this, "\"v\":2", 1),
            // nor can a body inside the JSON
            format!("{}\n", sample().to_message()),
        ];
        for text in malformed {
            assert!(
                matches!(
                    Envelope::from_message(&text),
                    Err(EnvelopeError::Malformed(_))
                ),
                "{text:?}"
            );
        }
    }

    /// A replay says so on the wire, with its stored dedup key, at v6: a v5 consumer refuses the
    /// message (and it is retried) rather than writing it under the current rules' key, and a v4
    /// one rather than reading it as a duplicate of the stored event and dropping it.
    #[test]
    fn replays_travel_as_v6_with_their_stored_key_and_older_readers_refuse_them() {
        let envelope = Envelope {
            replay: true,
            replaces: Some("o1".into()),
            ..with_body("{}")
        };
        let message = envelope.to_message();
        assert!(message.starts_with("{\"v\":6,"), "{message}");
        assert!(message.contains("\"replay\":true"), "{message}");
        assert!(message.contains("\"replaces\":\"o1\""), "{message}");
        let read = Envelope::from_message(&message).unwrap();
        assert!(read.replay);
        assert_eq!(read.replaces.as_deref(), Some("o1"));
        let plain = Envelope::from_message(&with_body("{}").to_message()).unwrap();
        assert!(!plain.replay && plain.replaces.is_none());
        // What a v5 (or v4) build does with it: its version check, which reads only `v`.
        let older_accepts = |text: &str, newest: u64| {
            let v: serde_json::Value =
                serde_json::from_str(text.split('\n').next().unwrap()).unwrap();
            (1..=newest).contains(&v["v"].as_u64().unwrap())
        };
        assert!(!older_accepts(&message, 5));
        assert!(!older_accepts(&message, 4));
    }

    /// `sha256:form` is read back as itself (a v5 consumer would take it for a literal: one key
    /// for every event, which v6 on the wire prevents).
    #[test]
    fn form_digests_survive_the_wire() {
        let mut envelope = with_body("{}");
        envelope.rules = crate::model::rules::Rules {
            dedup: Some(crate::model::value::ValueSource::parse(
                "sha256:query + sha256:form",
            )),
            ..Default::default()
        }
        .into();
        let read = Envelope::from_message(&envelope.to_message()).unwrap();
        assert_eq!(
            read.rules.dedup,
            Some(crate::model::value::ValueSource::parse(
                "sha256:query + sha256:form"
            ))
        );
        assert!(matches!(
            read.rules.dedup,
            Some(crate::model::value::ValueSource::Joined(ref parts))
                if parts[1] == crate::model::value::ValueSource::Digest(
                    crate::model::value::Digested::Form
                )
        ));
    }
}

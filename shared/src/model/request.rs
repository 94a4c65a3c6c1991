//! The raw HTTP request as it reached us, and the reply we send back.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

/// The first value of a header in (name, value) pairs, the name matched case-insensitively.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every header of `headers` as (name, value) pairs in order; names are lowercase in an `http`
/// header map, values that are not UTF-8 are replaced lossily.
pub fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The `application/x-www-form-urlencoded` pairs of `body`, exactly as `form_urlencoded::parse`
/// yields them. The crate walks every byte several times (`&`, `=`, `+`, `%`, UTF-8), which was
/// most of a 256 KiB Twilio request; here a pair without `%` or `+` that is valid UTF-8 (most of
/// them) is borrowed after vectorized scans, and any other pair is decoded by the crate.
/// At most `at_most` of a form body's decoded pairs, sorted by key then value: what Twilio signs.
pub fn sorted_form_pairs(body: &[u8], at_most: usize) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut pairs: Vec<_> = form_pairs(body).take(at_most).collect();
    // Equal pairs are identical, so an unstable sort gives the same order without a buffer.
    pairs.sort_unstable();
    pairs
}

/// Whether `content_type` says `application/x-www-form-urlencoded`.
pub fn is_form_type(content_type: &str) -> bool {
    content_type.starts_with("application/x-www-form-urlencoded")
}

pub fn form_pairs(body: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let mut rest = body;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let (sequence, tail) = match memchr::memchr(b'&', rest) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = tail;
            if sequence.is_empty() {
                continue;
            }
            if memchr::memchr2(b'%', b'+', sequence).is_none()
                && let Ok(text) = std::str::from_utf8(sequence)
            {
                let (name, value) = text.split_once('=').unwrap_or((text, ""));
                return Some((Cow::Borrowed(name), Cow::Borrowed(value)));
            }
            // One non-empty sequence without `&` is exactly one pair.
            return form_urlencoded::parse(sequence).next();
        }
    })
}

/// A request exactly as received: header names lowercased, values and body untouched.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    pub method: String,
    /// Path below the route (on a Function URL the whole path; locally the part after `/hooks/{route}`).
    pub path: String,
    /// Raw query string without the leading `?`, still percent-encoded.
    pub raw_query: String,
    /// Header (name, value) pairs in arrival order; names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: Option<String>,
    /// The URL the sender called (scheme, host, whole path; no query) as far as the front door
    /// can vouch for it: on a Function URL `https://{Host}{rawPath}`; locally only behind a
    /// trusted proxy, from its forwarded scheme and host. Twilio signs it.
    pub called_url: Option<String>,
}

impl InboundRequest {
    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// First value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.raw_query.trim_start_matches('?').as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// Whether the body is `application/x-www-form-urlencoded`.
    pub fn is_form(&self) -> bool {
        self.content_type().is_some_and(is_form_type)
    }
}

/// What a route answers: status, headers and body. Translated to a Lambda or hyper response at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

pub const JSON_UTF8: &str = "application/json;charset=utf-8";

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    /// A JSON error body that says what kind of failure it was and nothing about secrets or payloads.
    pub fn error(status: u16, code: &str) -> Self {
        let body = serde_json::json!({ "error": code }).to_string();
        Reply::new(status, JSON_UTF8, body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// The body's SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// A form body as an object of its fields (the first of a repeated name wins), with a JSON object
/// in `payload` as JSON: GitHub's form mode and Slack's interactivity send their JSON there.
pub fn form_object(body: &[u8]) -> Value {
    let mut fields = serde_json::Map::new();
    for (k, v) in form_pairs(body) {
        fields
            .entry(k.into_owned())
            .or_insert(Value::String(v.into_owned()));
    }
    if let Some(Value::String(payload)) = fields.get("payload")
        && let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(payload)
    {
        fields.insert("payload".to_owned(), parsed);
    }
    Value::Object(fields)
}

/// JSON bodies parse as JSON; form bodies become an object of their fields, so JSON pointers work
/// on both (`/payload` for a GitHub form delivery).
pub fn body_json(content_type: Option<&str>, body: &[u8]) -> Option<Value> {
    let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Some(form_object(body));
    }
    let looks_json = content_type.contains("json")
        || matches!(
            body.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
    looks_json
        .then(|| serde_json::from_slice(body).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_equal_the_crates_parse_on_every_short_input() {
        // Every string of up to 6 bytes over the bytes that matter to the grammar, plus a
        // multi-byte character, a lone continuation byte and a plain letter.
        let alphabet: [&[u8]; 9] = [
            b"&",
            b"=",
            b"%",
            b"+",
            b"2",
            b"B",
            b"a",
            "\u{e9}".as_bytes(),
            b"\x80",
        ];
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = inputs.clone();
        for _ in 0..6 {
            frontier = frontier
                .iter()
                .flat_map(|prefix| {
                    alphabet
                        .iter()
                        .map(move |piece| [prefix.as_slice(), piece].concat())
                })
                .collect();
            inputs.extend(frontier.iter().cloned());
        }
        assert_eq!(inputs.len(), (0..=6).map(|n| 9usize.pow(n)).sum::<usize>());
        for input in &inputs {
            let ours: Vec<_> = form_pairs(input).collect();
            let crates: Vec<_> = form_urlencoded::parse(input).collect();
            assert_eq!(ours, crates, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn form_pairs_borrow_what_needs_no_decoding() {
        let body = b"To=%2B15005550006&Body=Hello+there&Sid=SM1&Empty=&Flag&&Tail=x";
        let pairs: Vec<_> = form_pairs(body).collect();
        let expected = [
            ("To", "+15005550006"),
            ("Body", "Hello there"),
            ("Sid", "SM1"),
            ("Empty", ""),
            ("Flag", ""),
            ("Tail", "x"),
        ];
        assert_eq!(pairs.len(), expected.len());
        for ((name, value), (want_name, want_value)) in pairs.iter().zip(expected) {
            assert_eq!((name.as_ref(), value.as_ref()), (want_name, want_value));
        }
        assert!(matches!(pairs[2], (Cow::Borrowed(_), Cow::Borrowed(_))));
        assert!(matches!(pairs[0].1, Cow::Owned(_)));
    }

    #[test]
    fn form_payload_fields_parse_as_json() {
        let parsed = body_json(
            Some("application/x-www-form-urlencoded"),
            b"payload=%7B%22type%22%3A%22block_actions%22%7D&x=1",
        )
        .unwrap();
        assert_eq!(parsed.pointer("/payload/type").unwrap(), "block_actions");
    }

    #[test]
    fn form_bodies_become_objects_for_pointers() {
        let parsed = body_json(
            Some("application/x-www-form-urlencoded"),
            b"payload=%7B%7D&a=1&a=2",
        )
        .unwrap();
        assert_eq!(
            parsed["payload"],
            serde_json::json!({}),
            "a JSON `payload` field is parsed"
        );
        assert_eq!(parsed["a"], "1");
        assert!(body_json(Some("text/plain"), b"hello").is_none());
        assert!(body_json(None, b" {\"a\":1}").is_some());
    }
}

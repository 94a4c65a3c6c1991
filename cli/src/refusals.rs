//! The requests `serve` refused (401, 403, 405, 413, 429) kept in a bounded ring for the
//! console's `/refusals`, so that "my Test never arrived" has an answer. Strangers produce these,
//! so the ring is capped in entries and each entry in bytes, keeps no body, and shows only the
//! header and query values known to be harmless.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hookcatch::config::{AuthConfig, RouteConfig};

/// How many refusals are kept (the oldest go first).
pub const KEPT: usize = 500;

const MASK: &str = "REDACTED";

#[derive(Debug, Clone)]
pub struct Refusal {
    pub at_ms: i64,
    pub route: String,
    pub status: u16,
    /// The reason code the sender got (`signature_mismatch`, `rate_limited`, …).
    pub reason: String,
    pub source_ip: Option<String>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

/// Statuses worth keeping: what a misconfigured sender or a stranger gets.
pub fn is_refusal(status: u16) -> bool {
    matches!(status, 401 | 403 | 405 | 413 | 429)
}

/// Header values shown as they arrived: what says who sent what (types, ids, times, sizes,
/// forwarding), never a credential. Every other value is masked, whatever its name: a name is no
/// proof of harmlessness (`x-webhook-password`, `x-shopify-hmac-sha256`).
const SHOWN_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-request-id",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-api-version",
    "x-shopify-triggered-at",
    "x-slack-request-timestamp",
    "x-slack-retry-num",
    "x-slack-retry-reason",
    "webhook-id",
    "webhook-timestamp",
    "svix-id",
    "svix-timestamp",
    "i-twilio-idempotency-token",
    "x-zm-request-timestamp",
];
/// Query values shown as they arrived: providers' handshake words, never a key.
const SHOWN_QUERY: &[&str] = &["hub.mode", "crc_token", "validationToken", "bodySHA256"];

/// The most of one header value kept, of all headers, and of the path or the query: a refusal
/// says what was sent, and a stranger's 400 KiB of headers must not become the console's memory.
const VALUE_BYTES: usize = 256;
const HEADERS_BYTES: usize = 8 * 1024;
const LINE_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes on a character boundary, `…` marking a cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The path as kept.
pub fn kept_path(path: &str) -> String {
    bounded(path, LINE_BYTES)
}

/// The headers as kept: harmless values (bounded), every other one masked, and no more than
/// [`HEADERS_BYTES`] in all (a last entry says how many were left out).
pub fn masked_headers(headers: &[(String, String)], route: &RouteConfig) -> Vec<(String, String)> {
    let own = match &route.auth {
        Some(AuthConfig::ApiKey {
            header: Some(h), ..
        }) => Some(h.as_str()),
        _ => None,
    };
    let mut kept = Vec::new();
    let mut bytes = 0;
    for (at, (name, value)) in headers.iter().enumerate() {
        let name = bounded(name, VALUE_BYTES);
        let shown = SHOWN_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
            && !own.is_some_and(|own| name.eq_ignore_ascii_case(own));
        let value = if shown {
            bounded(value, VALUE_BYTES)
        } else {
            MASK.to_owned()
        };
        bytes += name.len() + value.len();
        if bytes > HEADERS_BYTES {
            kept.push((
                "…".to_owned(),
                format!("{} more headers not kept", headers.len() - at),
            ));
            break;
        }
        kept.push((name, value));
    }
    kept
}

/// The query with every value but providers' handshake words masked, bounded.
pub fn masked_query(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if SHOWN_QUERY.contains(&name.as_ref()) {
            out.append_pair(&name, &value);
        } else {
            out.append_pair(&name, MASK);
        }
    }
    bounded(&out.finish(), LINE_BYTES)
}

/// The ring, shared by `serve` (which records) and the console (which reads).
#[derive(Debug, Clone, Default)]
pub struct Refusals(Arc<Mutex<VecDeque<Refusal>>>);

impl Refusals {
    pub fn record(&self, refusal: Refusal) {
        let mut ring = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(refusal);
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<Refusal> {
        let ring = self.0.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> RouteConfig {
        serde_json::from_value(serde_json::json!({
            "name": "keyed", "provider": "catch-raw", "secrets": ["dev-only-key"],
            "auth": {"kind": "api_key", "header": "x-my-pass", "query": "zapikey"},
        }))
        .unwrap()
    }

    #[test]
    fn only_harmless_values_are_shown_and_each_is_bounded() {
        let headers = vec![
            ("X-My-Pass".to_owned(), "dev-only-key".to_owned()),
            ("authorization".to_owned(), "Bearer dev".to_owned()),
            ("x-hub-signature-256".to_owned(), "sha256=ab".to_owned()),
            ("x-webhook-password".to_owned(), "hunter2".to_owned()),
            ("x-shopify-hmac-sha256".to_owned(), "c2ln".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "u".repeat(5000)),
        ];
        let masked = masked_headers(&headers, &route());
        for (name, value) in &masked[..5] {
            assert_eq!(value, MASK, "{name}");
        }
        assert_eq!(masked[5].1, "application/json");
        assert!(masked[6].1.len() <= VALUE_BYTES + "…".len());
        let query = masked_query("a=1&zapikey=dev-only-key&password=hunter2&hub.mode=subscribe");
        assert_eq!(
            query,
            "a=REDACTED&zapikey=REDACTED&password=REDACTED&hub.mode=subscribe"
        );
        // A stranger's hundred large headers: at most 8 KiB of them.
        let many: Vec<_> = (0..100)
            .map(|n| {
                (
                    format!("x-filler-{n}-{}", "n".repeat(200)),
                    "v".repeat(7000),
                )
            })
            .collect();
        let kept = masked_headers(&many, &route());
        let bytes: usize = kept.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(bytes <= HEADERS_BYTES + 64, "{bytes}");
        assert!(kept.last().unwrap().1.contains("more headers not kept"));
        assert_eq!(bounded("héllo", 2), "h…");
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let ring = Refusals::default();
        for n in 0..KEPT + 10 {
            ring.record(Refusal {
                at_ms: n as i64,
                route: "r".into(),
                status: 401,
                reason: "x".into(),
                source_ip: None,
                method: "POST".into(),
                path: "/".into(),
                query: String::new(),
                headers: Vec::new(),
                body_len: 0,
            });
        }
        let recent = ring.recent();
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent[0].at_ms, (KEPT + 9) as i64);
    }
}

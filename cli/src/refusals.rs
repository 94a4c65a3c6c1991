//! The requests `serve` refused (401, 403, 405, 413, 429) kept in a bounded ring for the
//! console's `/refusals`, so that "my Test never arrived" has an answer. Strangers produce these,
//! so the ring is capped and keeps no body; credentials in headers and the query are masked.

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

/// Whether a header may carry a credential: the usual ones, the route's own key header, and any
/// name that says so (signatures, tokens, secrets, keys).
fn is_credential(name: &str, route: &RouteConfig) -> bool {
    let name = name.to_ascii_lowercase();
    let own = matches!(&route.auth, Some(AuthConfig::ApiKey { header: Some(h), .. }) if h.eq_ignore_ascii_case(&name));
    own || hookcatch::providers::CREDENTIAL_HEADERS.contains(&name.as_str())
        || ["signature", "token", "secret", "key", "auth"]
            .iter()
            .any(|word| name.contains(word))
}

/// The headers with credential values masked.
pub fn masked_headers(headers: &[(String, String)], route: &RouteConfig) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = if is_credential(name, route) {
                MASK.to_owned()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect()
}

/// The query with the route's key parameter (and any that looks like a credential) masked.
pub fn masked_query(query: &str, route: &RouteConfig) -> String {
    let own = match &route.auth {
        Some(AuthConfig::ApiKey { query: Some(q), .. }) => Some(q.as_str()),
        _ => None,
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if Some(name.as_ref()) == own || is_credential(&name, route) {
            out.append_pair(&name, MASK);
        } else {
            out.append_pair(&name, &value);
        }
    }
    out.finish()
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
    fn credentials_are_masked_and_the_rest_kept() {
        let headers = vec![
            ("X-My-Pass".to_owned(), "dev-only-key".to_owned()),
            ("authorization".to_owned(), "Bearer dev".to_owned()),
            ("x-hub-signature-256".to_owned(), "sha256=ab".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        let masked = masked_headers(&headers, &route());
        assert_eq!(masked[0].1, MASK);
        assert_eq!(masked[1].1, MASK);
        assert_eq!(masked[2].1, MASK);
        assert_eq!(masked[3].1, "application/json");
        let query = masked_query("a=1&zapikey=dev-only-key&api_token=t", &route());
        assert!(
            !query.contains("dev-only-key") && !query.contains("=t"),
            "{query}"
        );
        assert!(query.starts_with("a=1&"), "{query}");
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

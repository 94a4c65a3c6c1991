//! Verification: the only way to obtain a [`VerifiedRequest`], the one thing the enqueue path takes.
//!
//! Each provider implements [`Verifier`] over the exact raw bytes that arrived. A verifier either
//! accepts the request, answers it itself (handshakes, never enqueued), or refuses it with a
//! [`Refusal`] whose reason is logged but never sent to the caller.

mod catch_raw;
mod signed;

pub use signed::{TIMESTAMP_TOLERANCE_SECS, hmac_sha256, standard_webhooks_key};

use crate::config::{ProviderKind, RouteSettings};
use crate::request::{InboundRequest, Reply};

/// A request that passed its route's verification. Constructible only inside this module tree.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    request: InboundRequest,
    /// The provider's delivery id when it sends one in a header (dedup key).
    delivery_id: Option<String>,
    /// An empty "Test" ping from a settings page: recorded, flagged as a test.
    test_ping: bool,
}

impl VerifiedRequest {
    fn new(request: InboundRequest, delivery_id: Option<String>) -> Self {
        let test_ping = request.body.is_empty();
        VerifiedRequest {
            request,
            delivery_id,
            test_ping,
        }
    }

    pub fn request(&self) -> &InboundRequest {
        &self.request
    }

    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }

    pub fn is_test_ping(&self) -> bool {
        self.test_ping
    }

    pub fn into_request(self) -> InboundRequest {
        self.request
    }
}

/// What a verifier decided about an authentic request.
#[derive(Debug)]
pub enum Inspection {
    /// Authentic: enqueue it.
    Accept(VerifiedRequest),
    /// A handshake or challenge, answered synchronously and never enqueued.
    Answer(Reply),
}

/// Why a request was refused. The text is for logs; the caller sees only the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("method {0} is not accepted by this route")]
    MethodNotAllowed(String),
}

impl Refusal {
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::Unauthorized(_) => Reply::error(401, "unauthorized"),
            Refusal::MethodNotAllowed(_) => Reply::error(405, "method_not_allowed"),
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(reason) => reason,
            Refusal::MethodNotAllowed(_) => "method_not_allowed",
        }
    }
}

pub trait Verifier: Send + Sync {
    /// Checks `request` (raw bytes, headers as received) at time `now_ms`.
    fn inspect(&self, request: InboundRequest, now_ms: i64) -> Result<Inspection, Refusal>;
}

/// The verifier for a route, built once at start from its resolved settings.
pub fn verifier_for(settings: &RouteSettings) -> Box<dyn Verifier> {
    match settings.config.provider {
        ProviderKind::CatchRaw => Box::new(catch_raw::CatchRawVerifier::new(settings)),
        ProviderKind::Github
        | ProviderKind::Stripe
        | ProviderKind::Shopify
        | ProviderKind::StandardWebhooks => Box::new(signed::SignedVerifier::new(settings)),
    }
}

pub const REDACTED: &str = "REDACTED";

/// Replaces the values of the named query parameters, leaving every other byte of the query as sent.
fn redact_query(raw_query: &str, names: &[&str]) -> String {
    raw_query
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            let decoded: String = form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            if names.contains(&decoded.as_str()) {
                format!("{key}={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn redact_headers(headers: &mut [(String, String)], names: &[&str]) {
    for (name, value) in headers.iter_mut() {
        if names.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            *value = REDACTED.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_query_keeps_other_bytes() {
        assert_eq!(
            redact_query("a=%2B1&zapikey=s3cret&b", &["zapikey"]),
            "a=%2B1&zapikey=REDACTED&b"
        );
        assert_eq!(redact_query("", &["zapikey"]), "");
    }
}

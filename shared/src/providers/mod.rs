//! Verification: the only way to obtain a [`VerifiedRequest`], the one thing the enqueue path takes.
//!
//! Each provider implements [`Verifier`] over the exact raw bytes that arrived. A verifier either
//! accepts the request, answers it itself (handshakes, never enqueued), or refuses it with a
//! [`Refusal`] whose reason is logged but never sent to the caller.

mod catch_raw;
mod challenge;
mod credentials;
mod generic;
mod kit;
mod mac;
pub mod sign;
mod signed;
mod slack;
mod twilio;
mod zoho;

pub use challenge::x_signature;
pub use credentials::{CREDENTIAL_HEADERS, mask_body_secrets};
pub use mac::{hmac, hmac_sha256};
use signed::standard_webhooks_key;
pub use twilio::twilio_signature;

use crate::config::{ConfigError, ProviderKind, RouteConfig, RouteSettings};
use crate::model::request::{InboundRequest, Reply};
use crate::model::rules::Rules;

pub use crate::config::TIMESTAMP_TOLERANCE_SECS;

/// A request that passed its route's verification. Constructible only inside this module tree.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    request: InboundRequest,
    /// The provider's delivery id when it sends one in a header (dedup key).
    delivery_id: Option<String>,
    /// A settings page's Test (an empty body, or a provider's own test in its signed body):
    /// stored, flagged, and never turned into records, hydration or actions.
    test_ping: bool,
    /// Set for id-only notifications: the hydrator that fetches what they point to.
    hydrate: Option<&'static str>,
}

impl VerifiedRequest {
    fn new(request: InboundRequest, delivery_id: Option<String>) -> Self {
        let test_ping = request.body.is_empty();
        VerifiedRequest {
            request,
            delivery_id,
            test_ping,
            hydrate: None,
        }
    }

    /// Marks the request a Test when its provider's signed body says so (never from a header a
    /// replayer could add).
    fn test_if(mut self, signed_body_says_test: bool) -> Self {
        self.test_ping |= signed_body_says_test;
        self
    }

    fn id_only(mut self, hydrator: &'static str) -> Self {
        self.hydrate = Some(hydrator);
        self
    }

    pub fn hydrator(&self) -> Option<&'static str> {
        self.hydrate
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
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("method {0} is not accepted by this route")]
    MethodNotAllowed(String),
    /// A handshake whose shape the provider never sends (answered 400, since no secret is involved).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
}

impl Refusal {
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::Unauthorized(_) => Reply::error(401, "unauthorized"),
            Refusal::Forbidden(_) => Reply::error(403, "forbidden"),
            Refusal::MethodNotAllowed(_) => Reply::error(405, "method_not_allowed"),
            Refusal::BadRequest(_) => Reply::error(400, "bad_request"),
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(reason)
            | Refusal::Forbidden(reason)
            | Refusal::BadRequest(reason) => reason,
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
    let verifier: Box<dyn Verifier> = match settings.config.provider {
        ProviderKind::CatchRaw => Box::new(catch_raw::CatchRawVerifier::new(settings)),
        ProviderKind::Github
        | ProviderKind::Stripe
        | ProviderKind::Shopify
        | ProviderKind::StandardWebhooks
        | ProviderKind::Zoom => Box::new(signed::SignedVerifier::new(settings)),
        ProviderKind::Slack => Box::new(slack::SlackVerifier::new(settings)),
        ProviderKind::ZohoCrm => Box::new(zoho::ZohoVerifier::new(settings)),
        ProviderKind::Twilio => Box::new(twilio::TwilioVerifier::new(settings)),
        ProviderKind::Meta | ProviderKind::X | ProviderKind::MicrosoftGraph => {
            Box::new(challenge::ChallengeVerifier::new(settings))
        }
        ProviderKind::Generic => Box::new(generic::GenericVerifier::new(settings)),
    };
    let verifier: Box<dyn Verifier> = if settings.config.keep_credential_headers {
        verifier
    } else {
        Box::new(credentials::RedactCredentials { inner: verifier })
    };
    if settings.config.allow_ips.is_empty() {
        verifier
    } else {
        Box::new(AllowList {
            networks: settings.config.allow_ips.clone(),
            inner: verifier,
        })
    }
}

/// Where the provider puts the event type, delivery id and records, unless the route says otherwise.
pub fn default_rules(provider: ProviderKind) -> Rules {
    match provider {
        ProviderKind::CatchRaw | ProviderKind::Generic => Rules::default(),
        ProviderKind::Github
        | ProviderKind::Stripe
        | ProviderKind::Shopify
        | ProviderKind::StandardWebhooks
        | ProviderKind::Zoom => signed::default_rules(provider),
        ProviderKind::Slack => slack::default_rules(),
        ProviderKind::ZohoCrm => zoho::default_rules(),
        ProviderKind::Twilio => twilio::default_rules(),
        ProviderKind::Meta | ProviderKind::X | ProviderKind::MicrosoftGraph => {
            challenge::default_rules(provider)
        }
    }
}

/// Where a user pastes a route's URL in the provider's own settings.
pub fn paste_hint(provider: ProviderKind) -> &'static str {
    match provider {
        ProviderKind::CatchRaw => catch_raw::PASTE_HINT,
        ProviderKind::Generic => generic::PASTE_HINT,
        ProviderKind::Github
        | ProviderKind::Stripe
        | ProviderKind::Shopify
        | ProviderKind::StandardWebhooks
        | ProviderKind::Zoom => signed::paste_hint(provider),
        ProviderKind::Slack => slack::PASTE_HINT,
        ProviderKind::ZohoCrm => zoho::PASTE_HINT,
        ProviderKind::Twilio => twilio::PASTE_HINT,
        ProviderKind::Meta | ProviderKind::X | ProviderKind::MicrosoftGraph => {
            challenge::paste_hint(provider)
        }
    }
}

/// The hydrator an accepted event of `provider` with this body was marked for at verification
/// (Zoho CRM and Graph notifications carry ids only; a Stripe thin event), so that a replay of the
/// stored event hydrates as the first delivery did. A body kept in object storage (`None`) is
/// larger than any thin event.
pub fn stored_hydrator(provider: ProviderKind, body: Option<&[u8]>) -> Option<&'static str> {
    match provider {
        ProviderKind::ZohoCrm => Some("zoho-crm"),
        ProviderKind::MicrosoftGraph => Some("microsoft-graph"),
        ProviderKind::Stripe => body
            .is_some_and(signed::is_stripe_thin_event)
            .then_some("stripe"),
        _ => None,
    }
}

/// The route's own rules, falling back to its provider's defaults.
pub fn rules_for(route: &RouteConfig) -> Rules {
    let defaults = default_rules(route.provider);
    Rules {
        dedup: route.dedup.clone().or(defaults.dedup),
        event_type: route.event_type.clone().or(defaults.event_type),
        records: if route.records.is_empty() {
            defaults.records
        } else {
            route.records.clone()
        },
    }
}

/// Checks resolved secrets for the provider's format, once at start.
pub fn check_secrets(route: &RouteSettings) -> Result<(), ConfigError> {
    let fail = |reason: &str| ConfigError::Route {
        route: route.config.name.clone(),
        reason: reason.to_owned(),
    };
    if route.config.provider == ProviderKind::StandardWebhooks {
        for secret in &route.secrets {
            if standard_webhooks_key(secret.expose()).is_none_or(|k| k.is_empty()) {
                return Err(fail(
                    "a Standard Webhooks secret must be base64 (optionally after `whsec_`)",
                ));
            }
        }
    }
    let all = route
        .secrets
        .iter()
        .chain(&route.verify_tokens)
        .chain(route.channel_tokens.iter().map(|(_, t)| t));
    // Whitespace alone is as guessable as nothing (an env var set to " ", a blank SSM value).
    if all.clone().any(|s| s.expose().trim().is_empty()) {
        return Err(fail("a secret resolved to an empty or blank value"));
    }
    if route
        .channel_tokens
        .iter()
        .any(|(_, token)| token.expose().len() > 50)
    {
        return Err(fail("a Zoho channel token is at most 50 characters"));
    }
    Ok(())
}

/// Refuses requests from addresses outside the route's `allow_ips` before anything else runs.
struct AllowList {
    networks: Vec<ipnet::IpNet>,
    inner: Box<dyn Verifier>,
}

impl Verifier for AllowList {
    fn inspect(&self, request: InboundRequest, now_ms: i64) -> Result<Inspection, Refusal> {
        let address: std::net::IpAddr = request
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .ok_or(Refusal::Forbidden("source address unknown"))?;
        if !self.networks.iter().any(|net| net.contains(&address)) {
            return Err(Refusal::Forbidden("source address not allowed"));
        }
        self.inner.inspect(request, now_ms)
    }
}

fn require_method(request: &InboundRequest, allowed: &[&str]) -> Result<(), Refusal> {
    if allowed
        .iter()
        .any(|m| request.method.eq_ignore_ascii_case(m))
    {
        Ok(())
    } else {
        Err(Refusal::MethodNotAllowed(request.method.clone()))
    }
}

fn header<'a>(
    request: &'a InboundRequest,
    name: &str,
    missing: &'static str,
) -> Result<&'a str, Refusal> {
    request.header(name).ok_or(Refusal::Unauthorized(missing))
}

/// Parses a Unix-seconds timestamp header value and checks it is within `tolerance` of now.
fn within_window(text: &str, now_ms: i64, tolerance_secs: i64) -> Result<i64, Refusal> {
    let timestamp: i64 = text
        .trim()
        .parse()
        .map_err(|_| Refusal::Unauthorized("timestamp malformed"))?;
    let now = now_ms.div_euclid(1000);
    // `abs_diff` cannot overflow, whatever the sender wrote (i64::MIN included).
    if now.abs_diff(timestamp) <= tolerance_secs.unsigned_abs() {
        Ok(timestamp)
    } else if timestamp < now {
        Err(Refusal::Unauthorized("timestamp too old"))
    } else {
        Err(Refusal::Unauthorized("timestamp in the future"))
    }
}

/// A challenge echoed as text. `nosniff`, because the body is whatever the caller sent.
fn echo_reply(text: &str) -> Reply {
    let mut reply = Reply::new(200, "text/plain; charset=utf-8", text.to_owned());
    reply
        .headers
        .push(("x-content-type-options".to_owned(), "nosniff".to_owned()));
    reply
}

/// Whether `body` contains `literal` anywhere: a SIMD search that spares a verifier parsing a large
/// body for a handshake or kind it cannot be. Providers write these values plainly; one spelled
/// with escapes (JSON `\u`, percent-encoding) would be queued as an ordinary event, not lost.
fn mentions(body: &[u8], literal: &str) -> bool {
    memchr::memmem::find(body, literal.as_bytes()).is_some()
}

/// Whether the body looks like JSON (what providers that send JSON always send).
fn json_body<T: serde::de::DeserializeOwned>(request: &InboundRequest) -> Option<T> {
    serde_json::from_slice(&request.body).ok()
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
    fn timestamp_window_arithmetic_cannot_overflow() {
        let now_ms = 1_700_000_000_000;
        let now_s = now_ms / 1000;
        for hostile in [
            i64::MIN.to_string(),
            (i64::MIN + now_s).to_string(),
            i64::MAX.to_string(),
            (i64::MAX - 1).to_string(),
        ] {
            assert!(within_window(&hostile, now_ms, 300).is_err(), "{hostile}");
        }
        assert!(within_window(&i64::MIN.to_string(), i64::MAX, 300).is_err());
        assert_eq!(within_window(&now_s.to_string(), now_ms, 300), Ok(now_s));
        assert!(within_window(&(now_s - 300).to_string(), now_ms, 300).is_ok());
        assert!(within_window(&(now_s + 300).to_string(), now_ms, 300).is_ok());
        assert_eq!(
            within_window(&(now_s - 301).to_string(), now_ms, 300),
            Err(Refusal::Unauthorized("timestamp too old"))
        );
        assert_eq!(
            within_window(&(now_s + 301).to_string(), now_ms, 300),
            Err(Refusal::Unauthorized("timestamp in the future"))
        );
    }

    #[test]
    fn redact_query_keeps_other_bytes() {
        assert_eq!(
            redact_query("a=%2B1&zapikey=s3cret&b", &["zapikey"]),
            "a=%2B1&zapikey=REDACTED&b"
        );
        assert_eq!(redact_query("", &["zapikey"]), "");
    }

    #[test]
    fn blank_secrets_are_refused_at_start() {
        let config: RouteConfig =
            serde_json::from_str(r#"{"name":"gh","provider":"github"}"#).unwrap();
        for blank in ["", " ", "\t\n"] {
            let settings = RouteSettings::with_secrets(config.clone(), &[blank]);
            let error = check_secrets(&settings).unwrap_err().to_string();
            assert!(error.contains("empty or blank"), "{error}");
        }
        assert!(check_secrets(&RouteSettings::with_secrets(config, &[" dev-key "])).is_ok());
    }

    #[test]
    fn every_provider_says_where_its_url_goes() {
        for provider in ProviderKind::ALL {
            assert!(paste_hint(provider).len() > 20, "{provider:?}");
        }
    }
}

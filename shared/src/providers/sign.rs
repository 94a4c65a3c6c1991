//! Signing: what a provider does to a request before sending it, the counterpart of [`crate::providers`].
//! `hookcatch send` uses it to act as the provider, and the tests use it for sign-then-tamper.

pub use super::kit::{SignError, TestExpect, TestRequest, set_header};
use super::kit::{empty_post, remove_header};
use crate::config::{ProviderKind, RouteSettings};
use crate::model::request::InboundRequest;

/// Adds the credentials or signature headers the route's provider would send, using the route's
/// first (newest) secret, at time `now_ms`. Providers that authenticate with a token in the body
/// (zoho-crm, microsoft-graph) get it written into the JSON body. Each provider's file signs.
pub fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
    now_ms: i64,
) -> Result<(), SignError> {
    match settings.config.provider {
        ProviderKind::CatchRaw => super::catch_raw::sign(settings, request),
        ProviderKind::Github
        | ProviderKind::Stripe
        | ProviderKind::Shopify
        | ProviderKind::StandardWebhooks
        | ProviderKind::Zoom => super::signed::sign(settings, request, now_ms),
        ProviderKind::Slack => super::slack::sign(settings, request, now_ms),
        ProviderKind::Meta | ProviderKind::X | ProviderKind::MicrosoftGraph => {
            super::challenge::sign(settings, request)
        }
        ProviderKind::Twilio => super::twilio::sign(settings, request),
        ProviderKind::ZohoCrm => super::zoho::sign(settings, request),
        ProviderKind::Generic => super::generic::sign(settings, request, now_ms),
    }
}

/// The request the provider's own Test (or endpoint check) sends, each provider's file saying what:
/// GitHub a `ping`; Stripe a synthetic event of type `hookcatch.test`; Zoho a notification with
/// `ids: []` and `operation: "test"`; Slack, Zoom, Meta, X and Graph their handshake; every other
/// provider an empty body. Test-ness is read back from signed material only
/// ([`crate::providers::VerifiedRequest::is_test_ping`]).
pub fn test_request(settings: &RouteSettings, now_ms: i64) -> Result<TestRequest, SignError> {
    // A fresh value per Test: a second press is a second event, and a challenge cannot be canned.
    let nonce = uuid::Uuid::now_v7().simple().to_string();
    let stored = |request| {
        Ok(TestRequest {
            request,
            expect: TestExpect::Stored,
        })
    };
    match settings.config.provider {
        ProviderKind::Github | ProviderKind::Stripe => stored(super::signed::test_request(
            settings.config.provider,
            &nonce,
            now_ms,
        )),
        ProviderKind::Zoom => super::signed::zoom_test_request(settings, &nonce, now_ms),
        ProviderKind::Slack => Ok(super::slack::test_request(&nonce)),
        ProviderKind::ZohoCrm => stored(super::zoho::test_request(settings, &nonce, now_ms)),
        ProviderKind::Meta | ProviderKind::X | ProviderKind::MicrosoftGraph => {
            super::challenge::test_request(settings, &nonce)
        }
        ProviderKind::CatchRaw
        | ProviderKind::Shopify
        | ProviderKind::StandardWebhooks
        | ProviderKind::Twilio
        | ProviderKind::Generic => stored(empty_post(&[])),
    }
}

/// Headers a stored or sampled request carried that describe its hop (a proxy, a tunnel, Lambda's
/// Function URL) or its framing rather than the provider's request: a request sent again gets its
/// own.
pub const HOP_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-amzn-trace-id",
    "forwarded",
    "via",
];

/// What a Resend sends: the stored request (`request`, as received) with its hop headers gone,
/// under a fresh delivery id where its provider sends one in a header, signed again with the
/// route's current secret at `now_ms` (a stored signature is stale, or replay-protected).
///
/// Whether the route then stores it as a new event is its dedup rule's answer, not the resend's:
/// routes keyed on the body (GitHub, Shopify, Zoom, Meta, X and Twilio on its digest; Stripe,
/// Slack and Zoho on fields inside it) take the same body as a duplicate, as they would the provider's own
/// redelivery. [`resend_is_new`] says which.
pub fn resend_request(
    settings: &RouteSettings,
    mut request: InboundRequest,
    now_ms: i64,
) -> Result<InboundRequest, SignError> {
    request
        .headers
        .retain(|(name, _)| !HOP_HEADERS.contains(&name.to_ascii_lowercase().as_str()));
    if settings.config.provider == ProviderKind::Slack {
        remove_header(&mut request, "x-slack-retry-num");
    }
    if let Some(header) = renewed_delivery_header(settings) {
        match settings.config.provider {
            // Their signers make (and sign) a new id when the request has none.
            ProviderKind::StandardWebhooks | ProviderKind::Generic => {
                remove_header(&mut request, &header)
            }
            _ => set_header(&mut request, &header, &uuid::Uuid::now_v7().to_string()),
        }
    }
    sign(settings, &mut request, now_ms)?;
    Ok(request)
}

/// The header in which a route's provider sends its delivery id, which a resend renews.
fn renewed_delivery_header(settings: &RouteSettings) -> Option<String> {
    match settings.config.provider {
        ProviderKind::Github => Some("x-github-delivery".into()),
        ProviderKind::Shopify => Some("x-shopify-webhook-id".into()),
        ProviderKind::Twilio => Some("i-twilio-idempotency-token".into()),
        ProviderKind::StandardWebhooks => Some("webhook-id".into()),
        ProviderKind::Generic => settings
            .config
            .signature
            .as_ref()
            .and_then(|s| s.id_header.clone()),
        _ => None,
    }
}

/// Whether a resent request becomes a new event rather than a duplicate of the stored one: when
/// the route's dedup key is the delivery id the resend renews, or (with no dedup rule) the
/// delivery id or the event's own id, both new.
pub fn resend_is_new(settings: &RouteSettings) -> bool {
    use crate::model::value::ValueSource;
    match super::rules_for(&settings.config).dedup {
        None => true,
        Some(ValueSource::Header(name)) => renewed_delivery_header(settings)
            .is_some_and(|renewed| renewed.eq_ignore_ascii_case(&name)),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::providers::{Inspection, verifier_for};
    use bytes::Bytes;

    fn settings(auth: &str) -> RouteSettings {
        let config: RouteConfig = serde_json::from_str(&format!(
            r#"{{"name":"raw","provider":"catch-raw","auth":{auth},"secrets":["s1"]}}"#
        ))
        .unwrap();
        RouteSettings::with_secrets(config, &["s1", "s0"])
    }

    fn request() -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: "a=1".into(),
            headers: vec![],
            body: Bytes::from_static(b"{}"),
            source_ip: None,
            called_url: None,
        }
    }

    #[test]
    fn signed_requests_verify_for_every_provider_and_tamper_fails() {
        // The fuzz targets sign their inputs with these same routes to get past each check.
        let now_ms = 1_700_000_000_000;
        let graph_body = br#"{"value":[{"changeType":"created","resource":"Users/u1"}]}"#;
        for settings in crate::testing::fuzzing::example_routes() {
            let provider = settings.config.provider;
            let body = match provider {
                crate::ProviderKind::MicrosoftGraph => &graph_body[..],
                _ => b"{}",
            };
            let mut signed = request();
            signed.body = Bytes::copy_from_slice(body);
            sign(&settings, &mut signed, now_ms).unwrap();
            let verifier = verifier_for(&settings);
            let verdict = verifier.inspect(signed.clone(), now_ms);
            assert!(
                matches!(verdict, Ok(Inspection::Accept(_))),
                "{provider:?}: {verdict:?}"
            );
            if provider == crate::ProviderKind::CatchRaw {
                continue; // an API key covers no body; `every_auth_kind` checks it
            }
            let mut tampered = signed;
            let mut bytes = tampered.body.to_vec();
            bytes.insert(1, b' ');
            bytes[0] = b'[';
            tampered.body = bytes.into();
            assert!(
                verifier.inspect(tampered, now_ms).is_err(),
                "{provider:?}: tampered body must fail"
            );
        }
    }

    /// Every provider's Test is what its verifier takes for a test (stored with `test_ping`) or
    /// answers as the handshake it is; real deliveries are not tests, whatever their headers say.
    #[test]
    fn each_providers_test_is_a_test_and_nothing_else_is() {
        let now_ms = 1_700_000_000_000;
        for settings in crate::testing::fuzzing::example_routes() {
            let provider = settings.config.provider;
            let verifier = verifier_for(&settings);
            let prepared = test_request(&settings, now_ms).unwrap();
            let mut request = prepared.request;
            request.called_url = settings.config.public_url.clone();
            sign(&settings, &mut request, now_ms).unwrap();
            match (verifier.inspect(request, now_ms), &prepared.expect) {
                (Ok(Inspection::Accept(verified)), TestExpect::Stored) => {
                    assert!(verified.is_test_ping(), "{provider:?}")
                }
                (Ok(Inspection::Answer(reply)), TestExpect::Answer(expected)) => {
                    let body = String::from_utf8_lossy(&reply.body);
                    assert!(body.contains(expected.as_str()), "{provider:?}: {body}");
                }
                (verdict, expect) => panic!("{provider:?}: {verdict:?} for {expect:?}"),
            }
            // Two Tests are two events (or two challenges), not one redelivered.
            let again = test_request(&settings, now_ms).unwrap().request;
            let first = test_request(&settings, now_ms).unwrap().request;
            if !first.body.is_empty() || !first.raw_query.is_empty() {
                assert!(
                    again.body != first.body || again.raw_query != first.raw_query,
                    "{provider:?}"
                );
            }
        }
        // A real GitHub delivery sent again as a "ping" is still the delivery it is.
        let github = crate::testing::fuzzing::example_routes()
            .into_iter()
            .find(|s| s.config.provider == ProviderKind::Github)
            .unwrap();
        let mut real = request();
        real.body = Bytes::from_static(br#"{"action":"opened","zen":"not a ping"}"#);
        set_header(&mut real, "x-github-event", "ping");
        sign(&github, &mut real, now_ms).unwrap();
        match verifier_for(&github).inspect(real, now_ms) {
            Ok(Inspection::Accept(verified)) => assert!(!verified.is_test_ping()),
            other => panic!("{other:?}"),
        }
        // Stripe: only the synthetic type is a test, not a real event that mentions it.
        let stripe = crate::testing::fuzzing::example_routes()
            .into_iter()
            .find(|s| s.config.provider == ProviderKind::Stripe)
            .unwrap();
        let mut real = request();
        real.body = Bytes::from_static(
            br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{"description":"hookcatch.test"}}}"#,
        );
        sign(&stripe, &mut real, now_ms).unwrap();
        match verifier_for(&stripe).inspect(real, now_ms) {
            Ok(Inspection::Accept(verified)) => assert!(!verified.is_test_ping()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signed_requests_verify_for_every_auth_kind() {
        for auth in [
            r#"{"kind":"api_key","query":"zapikey"}"#,
            r#"{"kind":"api_key","header":"x-api-key"}"#,
            r#"{"kind":"basic","username":"zoho"}"#,
        ] {
            let settings = settings(auth);
            let mut signed = request();
            sign(&settings, &mut signed, 0).unwrap();
            let verdict = verifier_for(&settings).inspect(signed, 0);
            assert!(
                matches!(verdict, Ok(Inspection::Accept(_))),
                "{auth}: {verdict:?}"
            );
            let unsigned = verifier_for(&settings).inspect(request(), 0);
            assert!(unsigned.is_err(), "{auth}: unsigned must fail");
        }
    }

    /// What an accepted catch-raw request is stored as (its key redacted in place) verifies when
    /// resent: the key is replaced, not added after the redacted one the verifier would read.
    #[test]
    fn a_stored_query_key_is_replaced_when_resent() {
        let settings = settings(r#"{"kind":"api_key","query":"zapikey"}"#);
        let mut request = request();
        request.raw_query = "a=1&zapikey=s1".into();
        let Ok(Inspection::Accept(verified)) = verifier_for(&settings).inspect(request, 0) else {
            panic!("the original is accepted");
        };
        let stored = verified.request().clone();
        assert!(!stored.raw_query.contains("s1"), "{}", stored.raw_query);
        let resent = resend_request(&settings, stored, 0).unwrap();
        assert_eq!(resent.raw_query, "a=1&zapikey=s1");
        assert!(matches!(
            verifier_for(&settings).inspect(resent, 0),
            Ok(Inspection::Accept(_))
        ));
    }

    /// A resend of an accepted request, signed long ago with a secret since rotated, verifies now
    /// with the route's current secret for every provider, under a renewed delivery id where the
    /// provider sends one; whether it is a new event follows the route's dedup rule.
    #[test]
    fn a_resend_verifies_with_the_current_secret_and_a_renewed_delivery_id() {
        let then = 1_600_000_000_000;
        let now_ms = 1_700_000_000_000;
        let graph_body = br#"{"value":[{"changeType":"created","resource":"Users/u1"}]}"#;
        for settings in crate::testing::fuzzing::example_routes() {
            let provider = settings.config.provider;
            let mut stored = request();
            stored.body = match provider {
                crate::ProviderKind::MicrosoftGraph => Bytes::from_static(graph_body),
                _ => Bytes::from_static(b"{\"id\":\"evt_1\"}"),
            };
            stored.called_url = settings.config.public_url.clone();
            sign(&settings, &mut stored, then).unwrap();
            stored
                .headers
                .push(("x-forwarded-for".into(), "198.51.100.7".into()));
            stored
                .headers
                .push(("host".into(), "tunnel.example".into()));
            let before: Option<String> = renewed_delivery_header(&settings)
                .and_then(|h| stored.header(&h).map(str::to_owned));
            let resent = resend_request(&settings, stored.clone(), now_ms).unwrap();
            let verdict = verifier_for(&settings).inspect(resent.clone(), now_ms);
            let Ok(Inspection::Accept(verified)) = verdict else {
                panic!("{provider:?}: {verdict:?}");
            };
            assert!(resent.header("host").is_none() && resent.header("x-forwarded-for").is_none());
            if let Some(header) = renewed_delivery_header(&settings) {
                let renewed = resent.header(&header).map(str::to_owned);
                assert!(
                    renewed.is_some() && renewed != before,
                    "{provider:?}: {header}"
                );
                assert_eq!(
                    verified.delivery_id().map(str::to_owned),
                    renewed.map(|r| r.trim().to_owned())
                );
            }
        }
        let route = |provider: &str, extra: &str| {
            let config: RouteConfig = serde_json::from_str(&format!(
                r#"{{"name":"r","provider":"{provider}","secrets":["whsec_c2VjcmV0"]{extra}}}"#
            ))
            .unwrap();
            RouteSettings::with_secrets(config, &["whsec_c2VjcmV0"])
        };
        assert!(!resend_is_new(&route("github", "")), "the body's digest");
        assert!(
            !resend_is_new(&route("stripe", "")),
            "the event id in the body"
        );
        assert!(resend_is_new(&route("standard-webhooks", "")), "webhook-id");
        assert!(
            resend_is_new(&route("catch-raw", r#","open":true"#)),
            "the event's own id"
        );
        assert!(!resend_is_new(&route(
            "catch-raw",
            r#","open":true,"dedup":"/id""#
        )));
        assert!(!resend_is_new(&route(
            "catch-raw",
            r#","open":true,"dedup":"header:x-request-id""#
        )));
    }
}

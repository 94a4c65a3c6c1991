//! HMAC-signed providers: GitHub, Stripe, Shopify and Standard Webhooks (Svix and others).
//! Each checks the exact raw body against every configured secret (rotation), in constant time.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Inspection, Refusal, VerifiedRequest, Verifier};
use crate::config::{ProviderKind, RouteSettings};
use crate::request::InboundRequest;

/// Stripe's and Standard Webhooks' default tolerance for the signed timestamp, both directions.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Standard Webhooks secrets are base64 after an optional `whsec_` prefix, padded or not.
pub fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()
}

/// What each provider signs, and how it presents the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Github,
    Stripe,
    Shopify,
    StandardWebhooks,
}

pub struct SignedVerifier {
    scheme: Scheme,
    keys: Vec<Vec<u8>>,
}

impl SignedVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        let scheme = match settings.config.provider {
            ProviderKind::Github => Scheme::Github,
            ProviderKind::Stripe => Scheme::Stripe,
            ProviderKind::Shopify => Scheme::Shopify,
            ProviderKind::StandardWebhooks => Scheme::StandardWebhooks,
            other => unreachable!("{other:?} is not an HMAC provider"),
        };
        let keys = settings
            .secrets
            .iter()
            .filter_map(|s| match scheme {
                // Checked at start (`RouteSettings::check_secrets`); an undecodable one never matches.
                Scheme::StandardWebhooks => standard_webhooks_key(s.expose()),
                // GitHub, Stripe (the whole `whsec_…` string) and Shopify key with the text itself.
                _ => Some(s.expose().as_bytes().to_vec()),
            })
            .collect();
        SignedVerifier { scheme, keys }
    }

    /// True when any key's MAC over `parts` equals one of `candidates`; checks all, no early exit.
    fn any_matches(&self, parts: &[&[u8]], candidates: &[Vec<u8>]) -> bool {
        let mut found = subtle::Choice::from(0);
        for key in &self.keys {
            let expected = hmac_sha256(key, parts);
            for candidate in candidates {
                found |= expected.as_slice().ct_eq(candidate.as_slice());
            }
        }
        found.into()
    }
}

fn within_window(timestamp: i64, now_ms: i64) -> Result<(), Refusal> {
    let now = now_ms.div_euclid(1000);
    if now - timestamp > TIMESTAMP_TOLERANCE_SECS {
        Err(Refusal::Unauthorized("timestamp too old"))
    } else if timestamp - now > TIMESTAMP_TOLERANCE_SECS {
        Err(Refusal::Unauthorized("timestamp in the future"))
    } else {
        Ok(())
    }
}

fn header<'a>(
    request: &'a InboundRequest,
    name: &str,
    missing: &'static str,
) -> Result<&'a str, Refusal> {
    request.header(name).ok_or(Refusal::Unauthorized(missing))
}

impl Verifier for SignedVerifier {
    fn inspect(&self, request: InboundRequest, now_ms: i64) -> Result<Inspection, Refusal> {
        let body = request.body.clone();
        let delivery_id = match self.scheme {
            Scheme::Github => {
                let signature = header(&request, "x-hub-signature-256", "signature missing")?;
                let hex_part = signature
                    .strip_prefix("sha256=")
                    .ok_or(Refusal::Unauthorized("signature malformed"))?;
                let given = hex::decode(hex_part)
                    .map_err(|_| Refusal::Unauthorized("signature malformed"))?;
                if !self.any_matches(&[&body], &[given]) {
                    return Err(Refusal::Unauthorized("signature mismatch"));
                }
                request.header("x-github-delivery").map(str::to_owned)
            }
            Scheme::Stripe => {
                let header_value = header(&request, "stripe-signature", "signature missing")?;
                let mut timestamp = None;
                let mut signatures = Vec::new();
                for item in header_value.split(',') {
                    match item.trim().split_once('=') {
                        Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
                        Some(("v1", value)) => {
                            if let Ok(bytes) = hex::decode(value) {
                                signatures.push(bytes);
                            }
                        }
                        _ => {} // v0 (test-mode scheme) and unknown schemes are ignored
                    }
                }
                let timestamp =
                    timestamp.ok_or(Refusal::Unauthorized("signature timestamp missing"))?;
                if signatures.is_empty() {
                    return Err(Refusal::Unauthorized("no v1 signature"));
                }
                within_window(timestamp, now_ms)?;
                let t = timestamp.to_string();
                if !self.any_matches(&[t.as_bytes(), b".", &body], &signatures) {
                    return Err(Refusal::Unauthorized("signature mismatch"));
                }
                // Stripe's delivery id is the event id in the body (the route's dedup rule).
                None
            }
            Scheme::Shopify => {
                let signature = header(&request, "x-shopify-hmac-sha256", "signature missing")?;
                let given = base64::engine::general_purpose::STANDARD
                    .decode(signature.trim())
                    .map_err(|_| Refusal::Unauthorized("signature malformed"))?;
                if !self.any_matches(&[&body], &[given]) {
                    return Err(Refusal::Unauthorized("signature mismatch"));
                }
                request.header("x-shopify-webhook-id").map(str::to_owned)
            }
            Scheme::StandardWebhooks => {
                let id = header(&request, "webhook-id", "webhook-id missing")?;
                let timestamp_text =
                    header(&request, "webhook-timestamp", "webhook-timestamp missing")?;
                let signature = header(&request, "webhook-signature", "signature missing")?;
                let timestamp: i64 = timestamp_text
                    .trim()
                    .parse()
                    .map_err(|_| Refusal::Unauthorized("webhook-timestamp malformed"))?;
                within_window(timestamp, now_ms)?;
                let candidates: Vec<Vec<u8>> = signature
                    .split(' ')
                    .filter_map(|entry| entry.split_once(','))
                    .filter(|(version, _)| *version == "v1")
                    .filter_map(|(_, value)| {
                        base64::engine::general_purpose::STANDARD.decode(value).ok()
                    })
                    .collect();
                if candidates.is_empty() {
                    return Err(Refusal::Unauthorized("no v1 signature"));
                }
                if !self.any_matches(
                    &[
                        id.as_bytes(),
                        b".",
                        timestamp_text.trim().as_bytes(),
                        b".",
                        &body,
                    ],
                    &candidates,
                ) {
                    return Err(Refusal::Unauthorized("signature mismatch"));
                }
                Some(id.to_owned())
            }
        };
        Ok(Inspection::Accept(VerifiedRequest::new(
            request,
            delivery_id,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::secrets::Secret;
    use bytes::Bytes;

    fn verifier(provider: &str, secrets: &[&str]) -> SignedVerifier {
        let config: RouteConfig = serde_json::from_str(&format!(
            r#"{{"name":"r","provider":"{provider}","secrets":["x"]}}"#
        ))
        .unwrap();
        SignedVerifier::new(&RouteSettings {
            config,
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
        })
    }

    fn request(headers: &[(&str, &str)], body: &[u8]) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::copy_from_slice(body),
            source_ip: None,
        }
    }

    fn accepts(v: &SignedVerifier, r: InboundRequest, now_ms: i64) -> bool {
        matches!(v.inspect(r, now_ms), Ok(Inspection::Accept(_)))
    }

    // GitHub's published example (docs: "Testing the webhook payload validation").
    const GITHUB_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_official_vector_tamper_rotation_and_missing_headers() {
        let v = verifier("github", &["It's a Secret to Everybody"]);
        let signed = |body: &[u8]| {
            request(
                &[
                    ("x-hub-signature-256", GITHUB_SIG),
                    ("x-github-delivery", "d1"),
                ],
                body,
            )
        };
        match v.inspect(signed(b"Hello, World!"), 0) {
            Ok(Inspection::Accept(verified)) => assert_eq!(verified.delivery_id(), Some("d1")),
            other => panic!("{other:?}"),
        }
        assert!(
            !accepts(&v, signed(b"Hello, World?"), 0),
            "one body byte changed"
        );
        assert!(!accepts(
            &verifier("github", &["wrong"]),
            signed(b"Hello, World!"),
            0
        ));
        assert!(accepts(
            &verifier("github", &["new", "It's a Secret to Everybody"]),
            signed(b"Hello, World!"),
            0
        ));
        assert_eq!(
            v.inspect(
                request(
                    &[(
                        "x-hub-signature",
                        "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"
                    )],
                    b"Hello, World!"
                ),
                0
            )
            .unwrap_err(),
            Refusal::Unauthorized("signature missing"),
            "the legacy SHA-1 header alone is not accepted"
        );
        assert!(!accepts(
            &v,
            request(&[("x-hub-signature-256", "sha256=zz")], b"Hello, World!"),
            0
        ));
    }

    // The Standard Webhooks reference library's test vector (libraries/python/tests/test_webhooks.py).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: i64 = 1_614_265_330;
    const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn sw(id: Option<&str>, ts: Option<&str>, sig: Option<&str>) -> InboundRequest {
        let mut headers = Vec::new();
        if let Some(id) = id {
            headers.push(("webhook-id", id));
        }
        if let Some(ts) = ts {
            headers.push(("webhook-timestamp", ts));
        }
        if let Some(sig) = sig {
            headers.push(("webhook-signature", sig));
        }
        request(&headers, SW_BODY)
    }

    #[test]
    fn standard_webhooks_reference_vector_and_its_negative_cases() {
        let ts = SW_TS.to_string();
        let now = SW_TS * 1000;
        let v = verifier("standard-webhooks", &[SW_SECRET]);
        assert!(accepts(&v, sw(Some(SW_ID), Some(&ts), Some(SW_SIG)), now));
        let unprefixed = verifier("standard-webhooks", &["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert!(
            accepts(&unprefixed, sw(Some(SW_ID), Some(&ts), Some(SW_SIG)), now),
            "secret without whsec_"
        );
        let changed = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert!(!accepts(&v, sw(Some(SW_ID), Some(&ts), Some(changed)), now));
        let several = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SW_SIG} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert!(accepts(&v, sw(Some(SW_ID), Some(&ts), Some(&several)), now));
        assert!(!accepts(&v, sw(None, Some(&ts), Some(SW_SIG)), now));
        assert!(!accepts(&v, sw(Some(SW_ID), None, Some(SW_SIG)), now));
        assert!(!accepts(&v, sw(Some(SW_ID), Some(&ts), None), now));
        assert!(!accepts(
            &v,
            sw(Some(SW_ID), Some("hello"), Some(SW_SIG)),
            now
        ));
        assert!(
            !accepts(&v, sw(Some("msg_other"), Some(&ts), Some(SW_SIG)), now),
            "the id is signed"
        );
        assert!(accepts(
            &v,
            sw(Some(SW_ID), Some(&ts), Some(SW_SIG)),
            now + 300_000
        ));
        assert!(
            !accepts(&v, sw(Some(SW_ID), Some(&ts), Some(SW_SIG)), now + 301_000),
            "too old"
        );
        assert!(
            !accepts(&v, sw(Some(SW_ID), Some(&ts), Some(SW_SIG)), now - 301_000),
            "too new"
        );
    }

    // Computed with Python's hmac: HMAC-SHA256(b"whsec_test_secret", b"1700000000." + body).hexdigest()
    const STRIPE_SECRET: &str = "whsec_test_secret";
    const STRIPE_BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    const STRIPE_V1: &str = "46dc069361a7691082640523fa33fe5d6c8c88d5f5e257cdf8cf11539d166595";

    #[test]
    fn stripe_signatures_schemes_and_tolerance() {
        let v = verifier("stripe", &[STRIPE_SECRET]);
        let now = 1_700_000_000_000;
        let with = |header: &str, body: &[u8]| request(&[("stripe-signature", header)], body);
        let good = format!("t=1700000000,v1={STRIPE_V1}");
        assert!(accepts(&v, with(&good, STRIPE_BODY), now));
        let several = format!(
            "t=1700000000,v1={},v1={STRIPE_V1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
            "0".repeat(64)
        );
        assert!(
            accepts(&v, with(&several, STRIPE_BODY), now),
            "any v1 may match; v0 is ignored"
        );
        assert_eq!(
            v.inspect(
                with(&format!("t=1700000000,v0={STRIPE_V1}"), STRIPE_BODY),
                now
            )
            .unwrap_err(),
            Refusal::Unauthorized("no v1 signature")
        );
        assert!(!accepts(
            &v,
            with(&good, br#"{"id":"evt_2","type":"invoice.paid"}"#),
            now
        ));
        assert!(
            !accepts(
                &v,
                with(&format!("t=1700000001,v1={STRIPE_V1}"), STRIPE_BODY),
                now
            ),
            "t is signed"
        );
        assert!(
            !accepts(&v, with(&good, STRIPE_BODY), now + 301_000),
            "older than the tolerance"
        );
        assert!(
            !accepts(&v, with(&good, STRIPE_BODY), now - 301_000),
            "from the future"
        );
        assert!(!accepts(
            &verifier("stripe", &["whsec_other"]),
            with(&good, STRIPE_BODY),
            now
        ));
        assert!(!accepts(&v, request(&[], STRIPE_BODY), now));
    }

    // RFC 4231 test case 2, in the base64 form Shopify sends.
    #[test]
    fn shopify_base64_hmac_over_the_body() {
        let v = verifier("shopify", &["Jefe"]);
        let headers = [
            (
                "x-shopify-hmac-sha256",
                "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=",
            ),
            ("x-shopify-webhook-id", "w-1"),
        ];
        match v.inspect(request(&headers, b"what do ya want for nothing?"), 0) {
            Ok(Inspection::Accept(verified)) => assert_eq!(verified.delivery_id(), Some("w-1")),
            other => panic!("{other:?}"),
        }
        assert!(!accepts(
            &v,
            request(&headers, b"what do ya want for nothing!"),
            0
        ));
        assert!(!accepts(
            &v,
            request(&[("x-shopify-hmac-sha256", "not base64!")], b"x"),
            0
        ));
    }
}

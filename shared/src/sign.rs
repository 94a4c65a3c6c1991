//! Signing: what a provider does to a request before sending it, the counterpart of [`crate::verify`].
//! `hookcatch send` uses it to act as the provider, and the tests use it for sign-then-tamper.

use base64::Engine;

use crate::config::{AuthConfig, ProviderKind, RouteSettings};
use crate::request::InboundRequest;
use crate::verify::hmac_sha256;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("route `{0}` has no secret to sign with")]
    NoSecret(String),
}

/// Adds the credentials or signature headers the route's provider would send, using the route's
/// first (newest) secret, at time `now_ms`.
pub fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
    now_ms: i64,
) -> Result<(), SignError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let now = now_ms.div_euclid(1000).to_string();
    match settings.config.provider {
        ProviderKind::CatchRaw => sign_catch_raw(settings, request),
        ProviderKind::Github => {
            let mac = hmac_sha256(first_secret(settings)?.as_bytes(), &[&request.body]);
            set_header(
                request,
                "x-hub-signature-256",
                &format!("sha256={}", hex::encode(mac)),
            );
            Ok(())
        }
        ProviderKind::Stripe => {
            let mac = hmac_sha256(
                first_secret(settings)?.as_bytes(),
                &[now.as_bytes(), b".", &request.body],
            );
            set_header(
                request,
                "stripe-signature",
                &format!("t={now},v1={}", hex::encode(mac)),
            );
            Ok(())
        }
        ProviderKind::Shopify => {
            let mac = hmac_sha256(first_secret(settings)?.as_bytes(), &[&request.body]);
            set_header(request, "x-shopify-hmac-sha256", &b64.encode(mac));
            Ok(())
        }
        ProviderKind::StandardWebhooks => {
            let key = crate::verify::standard_webhooks_key(first_secret(settings)?)
                .ok_or_else(|| SignError::NoSecret(settings.config.name.clone()))?;
            let id = match request.header("webhook-id") {
                Some(id) => id.to_owned(),
                None => format!("msg_{}", uuid::Uuid::now_v7().simple()),
            };
            let mac = hmac_sha256(
                &key,
                &[id.as_bytes(), b".", now.as_bytes(), b".", &request.body],
            );
            set_header(request, "webhook-id", &id);
            set_header(request, "webhook-timestamp", &now);
            set_header(
                request,
                "webhook-signature",
                &format!("v1,{}", b64.encode(mac)),
            );
            Ok(())
        }
    }
}

fn first_secret(settings: &RouteSettings) -> Result<&str, SignError> {
    settings
        .secrets
        .first()
        .map(|s| s.expose())
        .ok_or_else(|| SignError::NoSecret(settings.config.name.clone()))
}

fn sign_catch_raw(settings: &RouteSettings, request: &mut InboundRequest) -> Result<(), SignError> {
    match &settings.config.auth {
        None => Ok(()),
        Some(AuthConfig::ApiKey { header, query }) => {
            let key = first_secret(settings)?;
            if let Some(header) = header {
                set_header(request, header, key);
            } else if let Some(query) = query {
                let pair: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair(query, key)
                    .finish();
                request.raw_query = if request.raw_query.is_empty() {
                    pair
                } else {
                    format!("{}&{pair}", request.raw_query)
                };
            }
            Ok(())
        }
        Some(AuthConfig::Basic { username }) => {
            let password = first_secret(settings)?;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            set_header(request, "authorization", &format!("Basic {token}"));
            Ok(())
        }
    }
}

/// Replaces a header (names compare case-insensitively) or adds it.
pub fn set_header(request: &mut InboundRequest, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    request.headers.retain(|(n, _)| *n != name);
    request.headers.push((name, value.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::secrets::Secret;
    use crate::verify::{Inspection, verifier_for};
    use bytes::Bytes;

    fn settings(auth: &str) -> RouteSettings {
        let config: RouteConfig = serde_json::from_str(&format!(
            r#"{{"name":"raw","provider":"catch-raw","auth":{auth},"secrets":["s1"]}}"#
        ))
        .unwrap();
        RouteSettings {
            config,
            secrets: vec![Secret::new("s1"), Secret::new("s0")],
        }
    }

    fn request() -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: "a=1".into(),
            headers: vec![],
            body: Bytes::from_static(b"{}"),
            source_ip: None,
        }
    }

    #[test]
    fn signed_requests_verify_for_every_signed_provider_and_tamper_fails() {
        let now_ms = 1_700_000_000_000;
        for (provider, secret) in [
            ("github", "gh-secret"),
            ("stripe", "whsec_stripe"),
            ("shopify", "shop-secret"),
            (
                "standard-webhooks",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ] {
            let config: RouteConfig = serde_json::from_str(&format!(
                r#"{{"name":"r","provider":"{provider}","secrets":["x"]}}"#
            ))
            .unwrap();
            let settings = RouteSettings {
                config,
                secrets: vec![Secret::new(secret)],
            };
            let mut signed = request();
            sign(&settings, &mut signed, now_ms).unwrap();
            let verifier = verifier_for(&settings);
            let verdict = verifier.inspect(signed.clone(), now_ms);
            assert!(
                matches!(verdict, Ok(Inspection::Accept(_))),
                "{provider}: {verdict:?}"
            );
            let mut tampered = signed;
            tampered.body = Bytes::from_static(b"{ }");
            assert!(
                verifier.inspect(tampered, now_ms).is_err(),
                "{provider}: tampered body must fail"
            );
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
}

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
    #[error("route `{0}`: Twilio signs the URL it calls; set `public_url` or the URL called")]
    NoUrl(String),
}

/// Adds the credentials or signature headers the route's provider would send, using the route's
/// first (newest) secret, at time `now_ms`. Providers that authenticate with a token in the body
/// (zoho-crm, microsoft-graph) get it written into the JSON body.
pub fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
    now_ms: i64,
) -> Result<(), SignError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let now = now_ms.div_euclid(1000).to_string();
    let body_mac = |request: &InboundRequest| -> Result<[u8; 32], SignError> {
        Ok(hmac_sha256(
            first_secret(settings)?.as_bytes(),
            &[&request.body],
        ))
    };
    match settings.config.provider {
        ProviderKind::CatchRaw => sign_catch_raw(settings, request),
        ProviderKind::Github | ProviderKind::Meta => {
            // Meta's subscription GET carries no signature (its verify token is in the query).
            if settings.config.provider == ProviderKind::Meta
                && request.method.eq_ignore_ascii_case("GET")
            {
                return Ok(());
            }
            let mac = body_mac(request)?;
            let value = format!("sha256={}", hex::encode(mac));
            set_header(request, "x-hub-signature-256", &value);
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
            let mac = body_mac(request)?;
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
        ProviderKind::Slack | ProviderKind::Zoom => {
            let mac = hmac_sha256(
                first_secret(settings)?.as_bytes(),
                &[b"v0:", now.as_bytes(), b":", &request.body],
            );
            let (timestamp_header, signature_header) =
                if settings.config.provider == ProviderKind::Slack {
                    ("x-slack-request-timestamp", "x-slack-signature")
                } else {
                    ("x-zm-request-timestamp", "x-zm-signature")
                };
            set_header(request, timestamp_header, &now);
            set_header(
                request,
                signature_header,
                &format!("v0={}", hex::encode(mac)),
            );
            Ok(())
        }
        ProviderKind::X => {
            if request.method.eq_ignore_ascii_case("GET") {
                return Ok(()); // the CRC GET is unsigned; its answer is the proof
            }
            let mac = body_mac(request)?;
            let value = format!("sha256={}", b64.encode(mac));
            set_header(request, "x-twitter-webhooks-signature", &value);
            Ok(())
        }
        ProviderKind::Twilio => sign_twilio(settings, request),
        ProviderKind::ZohoCrm => {
            let (channel_id, token) = settings
                .channel_tokens
                .first()
                .ok_or_else(|| SignError::NoSecret(settings.config.name.clone()))?;
            rewrite_json(request, |body| {
                body["channel_id"] = channel_id.clone().into();
                body["token"] = token.expose().into();
            });
            sign_catch_raw(settings, request)
        }
        ProviderKind::MicrosoftGraph => {
            if request.query_param("validationToken").is_some() {
                return Ok(()); // subscription validation: nothing is signed
            }
            let state = first_secret(settings)?.to_owned();
            rewrite_json(request, |body| {
                if let Some(items) = body.get_mut("value").and_then(|v| v.as_array_mut()) {
                    for item in items.iter_mut().filter(|i| i.is_object()) {
                        item["clientState"] = state.clone().into();
                    }
                }
            });
            Ok(())
        }
        ProviderKind::Generic => {
            if let Some(signature) = &settings.config.signature {
                let id = match &signature.id_header {
                    Some(name) => {
                        let id = request
                            .header(name)
                            .map(str::to_owned)
                            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
                        set_header(request, name, &id);
                        id
                    }
                    None => String::new(),
                };
                if let Some(name) = &signature.timestamp_header {
                    set_header(request, name, &now);
                }
                let payload =
                    crate::verify::signed_payload(&signature.payload, &request.body, &now, &id);
                let mac = crate::verify::hmac(
                    signature.algorithm,
                    first_secret(settings)?.as_bytes(),
                    &[&payload],
                );
                let value = format!(
                    "{}{}",
                    signature.prefix,
                    crate::verify::encode_signature(signature, &mac)
                );
                set_header(request, &signature.header, &value);
            }
            sign_catch_raw(settings, request)
        }
    }
}

/// Twilio signs the URL it calls plus the sorted form parameters; a JSON body is bound through a
/// `bodySHA256` query parameter added to that URL first.
fn sign_twilio(settings: &RouteSettings, request: &mut InboundRequest) -> Result<(), SignError> {
    if !request.is_form() && !request.body.is_empty() && request.query_param("bodySHA256").is_none()
    {
        let pair = format!("bodySHA256={}", crate::envelope::sha256_hex(&request.body));
        request.raw_query = if request.raw_query.is_empty() {
            pair
        } else {
            format!("{}&{pair}", request.raw_query)
        };
    }
    let url = crate::verify::twilio_signed_url(settings.config.public_url.as_deref(), request)
        .ok_or_else(|| SignError::NoUrl(settings.config.name.clone()))?;
    let params = crate::verify::twilio_signed_params(request);
    let signature =
        crate::verify::twilio_signature(first_secret(settings)?.as_bytes(), &url, &params);
    set_header(request, "x-twilio-signature", &signature);
    Ok(())
}

/// Edits a JSON object body in place (a non-object body is replaced by an object).
fn rewrite_json(request: &mut InboundRequest, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut body: serde_json::Value = serde_json::from_slice(&request.body)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    edit(&mut body);
    request.body = serde_json::to_vec(&body)
        .expect("a JSON value serializes")
        .into();
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
    use crate::verify::{Inspection, verifier_for};
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
        for settings in crate::fuzzing::example_routes() {
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

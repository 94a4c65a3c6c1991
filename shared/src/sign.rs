//! Signing: what a provider does to a request before sending it, the counterpart of [`crate::verify`].
//! `hookcatch send` uses it to act as the provider, and the tests use it for sign-then-tamper.

use base64::Engine;

use crate::config::{AuthConfig, ProviderKind, RouteSettings};
use crate::request::InboundRequest;

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
    _now_ms: i64,
) -> Result<(), SignError> {
    match settings.config.provider {
        ProviderKind::CatchRaw => sign_catch_raw(settings, request),
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

//! catch-raw: accepts any method and content type; optionally behind an API key or HTTP Basic.

use super::kit::{SignError, first_secret, set_header};
use base64::Engine;

use super::{Inspection, Refusal, VerifiedRequest, Verifier, redact_headers, redact_query};
use crate::config::{AuthConfig, RouteSettings};
use crate::model::request::InboundRequest;
use crate::secrets::Secret;

pub struct CatchRawVerifier {
    auth: Option<AuthConfig>,
    secrets: Vec<Secret>,
}

impl CatchRawVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        CatchRawVerifier {
            auth: settings.config.auth.clone(),
            secrets: settings.secrets.clone(),
        }
    }

    fn any_secret_matches(&self, candidate: &[u8]) -> bool {
        // Check every secret (no early exit), so timing does not reveal which one matched.
        self.secrets
            .iter()
            .fold(false, |found, s| s.matches(candidate) | found)
    }

    /// Checks the route's `auth` (if any) and redacts the credential; shared by generic and zoho-crm.
    pub(super) fn check(&self, request: &mut InboundRequest) -> Result<(), Refusal> {
        match &self.auth {
            None => Ok(()),
            Some(AuthConfig::ApiKey { header, query }) => {
                let from_header = header
                    .as_deref()
                    .and_then(|h| request.header(h))
                    .map(str::to_owned);
                let from_query = query.as_deref().and_then(|q| request.query_param(q));
                let presented = from_header
                    .or(from_query)
                    .ok_or(Refusal::Unauthorized("api key missing"))?;
                if !self.any_secret_matches(presented.as_bytes()) {
                    return Err(Refusal::Unauthorized("api key mismatch"));
                }
                // Keep the key out of everything stored downstream.
                if let Some(h) = header {
                    redact_headers(&mut request.headers, &[h.as_str()]);
                }
                if let Some(q) = query {
                    request.raw_query = redact_query(&request.raw_query, &[q.as_str()]);
                }
                Ok(())
            }
            Some(AuthConfig::Basic { username }) => {
                let header = request
                    .header("authorization")
                    .ok_or(Refusal::Unauthorized("basic credentials missing"))?;
                let encoded = header
                    .strip_prefix("Basic ")
                    .or_else(|| header.strip_prefix("basic "))
                    .ok_or(Refusal::Unauthorized("authorization is not basic"))?;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| Refusal::Unauthorized("basic credentials malformed"))?;
                let text = String::from_utf8(decoded)
                    .map_err(|_| Refusal::Unauthorized("basic credentials malformed"))?;
                let (user, password) = text
                    .split_once(':')
                    .ok_or(Refusal::Unauthorized("basic credentials malformed"))?;
                let user_ok = Secret::new(username.clone()).matches(user.as_bytes());
                let password_ok = self.any_secret_matches(password.as_bytes());
                if !(user_ok & password_ok) {
                    return Err(Refusal::Unauthorized("basic credentials mismatch"));
                }
                redact_headers(&mut request.headers, &["authorization"]);
                Ok(())
            }
        }
    }
}

impl Verifier for CatchRawVerifier {
    fn inspect(&self, mut request: InboundRequest, _now_ms: i64) -> Result<Inspection, Refusal> {
        self.check(&mut request)?;
        Ok(Inspection::Accept(VerifiedRequest::new(request, None)))
    }
}

/// Adds the route's `auth` credential (API key in a header or the query, or Basic), if any.
pub(super) fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
) -> Result<(), SignError> {
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
                // A stored request carries the key redacted: the verifier reads the first one.
                let mut kept: Vec<&str> = request
                    .raw_query
                    .split('&')
                    .filter(|segment| {
                        !segment.is_empty()
                            && form_urlencoded::parse(segment.as_bytes())
                                .next()
                                .is_none_or(|(name, _)| name != query.as_str())
                    })
                    .collect();
                kept.push(&pair);
                request.raw_query = kept.join("&");
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

/// Where a catch-raw route's URL goes in the sender's settings.
pub(super) const PASTE_HINT: &str = "any \"webhook URL\" field: Zapier's Catch Raw Hook target, a Zoho REST-API function's URL, a form's notification URL";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use bytes::Bytes;

    fn verifier(auth: Option<AuthConfig>, secrets: &[&str]) -> CatchRawVerifier {
        let config: RouteConfig =
            serde_json::from_str(r#"{"name":"raw","provider":"catch-raw","open":true}"#).unwrap();
        CatchRawVerifier::new(&RouteSettings::with_secrets(
            RouteConfig { auth, ..config },
            secrets,
        ))
    }

    fn request(query: &str, headers: &[(&str, &str)]) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: query.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::from_static(b"\x00\xffbinary"),
            source_ip: None,
            called_url: None,
        }
    }

    fn accepted(result: Result<Inspection, Refusal>) -> VerifiedRequest {
        match result {
            Ok(Inspection::Accept(v)) => v,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    #[test]
    fn open_route_accepts_anything_byte_for_byte() {
        let v = accepted(verifier(None, &[]).inspect(request("", &[]), 0));
        assert_eq!(&v.request().body[..], b"\x00\xffbinary");
        assert!(!v.is_test_ping());
    }

    #[test]
    fn api_key_in_query_or_header_with_rotation_and_redaction() {
        let auth = AuthConfig::ApiKey {
            header: Some("x-api-key".into()),
            query: Some("zapikey".into()),
        };
        let v = verifier(Some(auth.clone()), &["new-key", "old-key"]);
        let ok = accepted(v.inspect(request("zapikey=old-key&a=1", &[]), 0));
        assert_eq!(ok.request().raw_query, "zapikey=REDACTED&a=1");
        let ok = accepted(v.inspect(request("", &[("x-api-key", "new-key")]), 0));
        assert_eq!(ok.request().header("x-api-key"), Some("REDACTED"));
        assert_eq!(
            v.inspect(request("zapikey=wrong", &[]), 0).unwrap_err(),
            Refusal::Unauthorized("api key mismatch")
        );
        assert_eq!(
            v.inspect(request("", &[]), 0).unwrap_err(),
            Refusal::Unauthorized("api key missing")
        );
    }

    #[test]
    fn basic_auth_checks_user_and_password() {
        let v = verifier(
            Some(AuthConfig::Basic {
                username: "zoho".into(),
            }),
            &["pw"],
        );
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("zoho:pw")
        );
        let ok = accepted(v.inspect(request("", &[("authorization", &good)]), 0));
        assert_eq!(ok.request().header("authorization"), Some("REDACTED"));
        for bad in ["zoho:nope", "other:pw", "zohopw"] {
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(bad)
            );
            assert!(
                v.inspect(request("", &[("authorization", &header)]), 0)
                    .is_err(),
                "{bad}"
            );
        }
        assert!(
            v.inspect(request("", &[("authorization", "Basic !!!")]), 0)
                .is_err()
        );
        assert!(
            v.inspect(request("", &[("authorization", "Bearer x")]), 0)
                .is_err()
        );
    }
}

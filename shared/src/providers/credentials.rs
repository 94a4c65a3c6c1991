//! Credentials never rest in plain sight: credential headers are redacted from every accepted
//! request before it is queued (unless its route keeps them), and the secrets a provider writes into
//! its bodies (Zoho's channel `token`, Graph's `clientState`) are masked wherever a body is shown.
//! Stored bodies stay exact: their SHA-256 is the product's promise.

use serde_json::value::RawValue;

use super::{Inspection, REDACTED, Refusal, Verifier, redact_headers};
use crate::config::ProviderKind;
use crate::model::request::InboundRequest;

/// Headers that carry a caller's credential on any route: bearer tokens, cookies, API keys, AWS
/// session tokens. Signatures are not among them: they are bound to their bytes and timestamps.
pub const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-amz-security-token",
];

/// Redacts [`CREDENTIAL_HEADERS`] from what its inner verifier accepted; the verifier itself saw
/// them as sent.
pub(super) struct RedactCredentials {
    pub(super) inner: Box<dyn Verifier>,
}

impl Verifier for RedactCredentials {
    fn inspect(&self, request: InboundRequest, now_ms: i64) -> Result<Inspection, Refusal> {
        match self.inner.inspect(request, now_ms)? {
            Inspection::Accept(mut verified) => {
                redact_headers(&mut verified.request.headers, &CREDENTIAL_HEADERS);
                Ok(Inspection::Accept(verified))
            }
            answer @ Inspection::Answer(_) => Ok(answer),
        }
    }
}

/// The body as it may be shown: `None` when it holds none of its provider's body secrets (show the
/// stored bytes), else the text with each secret's JSON value replaced by `"REDACTED"` and every
/// other byte as stored.
pub fn mask_body_secrets(provider: ProviderKind, body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let secrets = match provider {
        ProviderKind::ZohoCrm => super::zoho::body_secrets(text),
        ProviderKind::MicrosoftGraph => super::challenge::graph_body_secrets(text),
        _ => Vec::new(),
    };
    splice_redacted(text, &secrets)
}

/// Replaces each value (a slice of `text`, in document order) by `"REDACTED"`.
fn splice_redacted(text: &str, values: &[&RawValue]) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let mut masked = String::with_capacity(text.len());
    let mut copied = 0;
    for value in values {
        let start = value.get().as_ptr() as usize - text.as_ptr() as usize;
        masked.push_str(&text[copied..start]);
        masked.push('"');
        masked.push_str(REDACTED);
        masked.push('"');
        copied = start + value.get().len();
    }
    masked.push_str(&text[copied..]);
    Some(masked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RouteConfig, RouteSettings};
    use crate::providers::verifier_for;
    use crate::testing::request;

    fn route(json: &str) -> RouteSettings {
        let config: RouteConfig = serde_json::from_str(json).unwrap();
        RouteSettings::with_secrets(config, &["dev-test-key"])
    }

    fn accepted(settings: &RouteSettings, headers: &[(&str, &str)]) -> InboundRequest {
        let request = request("POST", "", headers, b"{\"a\":1}");
        match verifier_for(settings).inspect(request, 0).unwrap() {
            Inspection::Accept(verified) => verified.into_request(),
            Inspection::Answer(reply) => panic!("answered {}", reply.status),
        }
    }

    const SENT: [(&str, &str); 6] = [
        ("authorization", "Bearer s3cr3t-bearer"),
        ("proxy-authorization", "Basic cHJveHk6cGFzcw=="),
        ("cookie", "sid=s3cr3t-session"),
        ("x-api-key", "s3cr3t-key"),
        ("x-amz-security-token", "s3cr3t-session-token"),
        ("x-request-id", "kept"),
    ];

    #[test]
    fn credential_headers_are_redacted_on_every_route_unless_it_keeps_them() {
        let open = route(r#"{"name":"raw","provider":"catch-raw","open":true}"#);
        let stored = accepted(&open, &SENT);
        for (name, _) in &SENT[..5] {
            assert_eq!(stored.header(name), Some(REDACTED), "{name}");
        }
        assert_eq!(stored.header("x-request-id"), Some("kept"));
        assert_eq!(&stored.body[..], b"{\"a\":1}", "the body is untouched");

        let keeping = route(
            r#"{"name":"raw","provider":"catch-raw","open":true,"keep_credential_headers":true}"#,
        );
        let stored = accepted(&keeping, &SENT);
        assert_eq!(stored.header("authorization"), Some("Bearer s3cr3t-bearer"));
        assert_eq!(stored.header("cookie"), Some("sid=s3cr3t-session"));
    }

    #[test]
    fn a_keeping_route_still_redacts_its_own_credential() {
        let keeping = route(
            r#"{"name":"raw","provider":"catch-raw","keep_credential_headers":true,
                "auth":{"kind":"api_key","header":"x-hook-key"}}"#,
        );
        let stored = accepted(
            &keeping,
            &[("x-hook-key", "dev-test-key"), ("cookie", "sid=kept")],
        );
        assert_eq!(stored.header("x-hook-key"), Some(REDACTED));
        assert_eq!(stored.header("cookie"), Some("sid=kept"));
    }

    #[test]
    fn body_secrets_are_masked_for_display_and_every_other_byte_kept() {
        let zoho = br#"{"server_time":1, "token" : "s3cr3t-token","channel_id":"1","ids":["2"]}"#;
        assert_eq!(
            mask_body_secrets(ProviderKind::ZohoCrm, zoho).unwrap(),
            r#"{"server_time":1, "token" : "REDACTED","channel_id":"1","ids":["2"]}"#
        );
        let graph = br#"{"value":[{"clientState":"s3cr3t-a","id":"1"},{"resource":"r","clientState":"s3cr3t-b"}]}"#;
        assert_eq!(
            mask_body_secrets(ProviderKind::MicrosoftGraph, graph).unwrap(),
            r#"{"value":[{"clientState":"REDACTED","id":"1"},{"resource":"r","clientState":"REDACTED"}]}"#
        );
        // Nothing to mask: the stored bytes are shown as they are.
        assert_eq!(
            mask_body_secrets(ProviderKind::ZohoCrm, br#"{"ids":[]}"#),
            None
        );
        assert_eq!(mask_body_secrets(ProviderKind::CatchRaw, zoho), None);
        assert_eq!(mask_body_secrets(ProviderKind::ZohoCrm, b"\xff\xfe"), None);
    }
}

//! generic: a sender that needs configuration, not code. Any combination of an HMAC signature
//! (algorithm, header, prefix, hex or base64, what is signed, an optional timestamp window), an API
//! key or HTTP Basic (`auth`), and the route-wide source-IP allow-list.

use super::kit::{SignError, first_secret, set_header};
use base64::Engine;

use super::catch_raw::CatchRawVerifier;
use super::mac::Keys;
use super::{Inspection, Refusal, VerifiedRequest, Verifier, header, within_window};
use crate::config::{RouteSettings, SignatureConfig, SignatureEncoding};
use crate::model::request::InboundRequest;

pub struct GenericVerifier {
    auth: Option<CatchRawVerifier>,
    signature: Option<(SignatureConfig, Keys)>,
}

impl GenericVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        GenericVerifier {
            auth: settings
                .config
                .auth
                .is_some()
                .then(|| CatchRawVerifier::new(settings)),
            signature: settings
                .config
                .signature
                .clone()
                .map(|config| (config, Keys::from_secrets(&settings.secrets))),
        }
    }
}

/// The bytes a configured signature covers: `payload` with `{body}`, `{timestamp}` and `{id}`
/// filled in.
pub fn signed_payload(template: &str, body: &[u8], timestamp: &str, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + body.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start..];
        let (value, used): (&[u8], usize) = if after.starts_with("{body}") {
            (body, "{body}".len())
        } else if after.starts_with("{timestamp}") {
            (timestamp.as_bytes(), "{timestamp}".len())
        } else if after.starts_with("{id}") {
            (id.as_bytes(), "{id}".len())
        } else {
            (b"{", 1)
        };
        out.extend_from_slice(value);
        rest = &after[used..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// Encodes a MAC the way `config` says it is written (without the prefix).
pub fn encode_signature(config: &SignatureConfig, mac: &[u8]) -> String {
    match config.encoding {
        SignatureEncoding::Hex => hex::encode(mac),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(mac),
    }
}

fn check_signature(
    config: &SignatureConfig,
    keys: &Keys,
    request: &InboundRequest,
    now_ms: i64,
) -> Result<(), Refusal> {
    let value = header(request, &config.header, "signature missing")?.trim();
    let encoded = value
        .strip_prefix(config.prefix.as_str())
        .ok_or(Refusal::Unauthorized("signature prefix missing"))?;
    let given = match config.encoding {
        SignatureEncoding::Hex => super::mac::hex_signature(encoded.trim()),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok(),
    }
    .ok_or(Refusal::Unauthorized("signature malformed"))?;
    let timestamp = match &config.timestamp_header {
        Some(name) => {
            let text = header(request, name, "timestamp missing")?.trim();
            within_window(text, now_ms, config.tolerance_secs)?;
            text
        }
        None => "",
    };
    let id = match &config.id_header {
        Some(name) => header(request, name, "id missing")?.trim(),
        None => "",
    };
    let payload = signed_payload(&config.payload, &request.body, timestamp, id);
    keys.matching(config.algorithm, &[&payload], &[given])
        .map(|_| ())
        .ok_or(Refusal::Unauthorized("signature mismatch"))
}

impl Verifier for GenericVerifier {
    fn inspect(&self, mut request: InboundRequest, now_ms: i64) -> Result<Inspection, Refusal> {
        if let Some((config, keys)) = &self.signature {
            check_signature(config, keys, &request, now_ms)?;
        }
        if let Some(auth) = &self.auth {
            auth.check(&mut request)?;
        }
        let delivery_id = self
            .signature
            .as_ref()
            .and_then(|(c, _)| c.id_header.as_deref())
            .and_then(|name| request.header(name))
            // The id as signed (trimmed): another spelling of one signed id is no new delivery.
            .map(|id| id.trim().to_owned());
        Ok(Inspection::Accept(VerifiedRequest::new(
            request,
            delivery_id,
        )))
    }
}

/// Signs as the route's `signature` describes, then adds its `auth`.
pub(super) fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
    now_ms: i64,
) -> Result<(), SignError> {
    let now = now_ms.div_euclid(1000).to_string();
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
        let payload = signed_payload(&signature.payload, &request.body, &now, &id);
        let mac = super::hmac(
            signature.algorithm,
            first_secret(settings)?.as_bytes(),
            &[&payload],
        );
        let value = format!("{}{}", signature.prefix, encode_signature(signature, &mac));
        set_header(request, &signature.header, &value);
    }
    super::catch_raw::sign(settings, request)
}

/// Where a generic route's URL goes in the sender's settings.
pub(super) const PASTE_HINT: &str =
    "the sender's webhook or endpoint URL setting, with the signing secret it shows you";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::secrets::Secret;

    fn verifier(route: serde_json::Value, secrets: &[&str]) -> GenericVerifier {
        let mut route = route;
        route["name"] = "g".into();
        route["provider"] = "generic".into();
        let config: RouteConfig = serde_json::from_value(route).unwrap();
        config.validate().unwrap();
        GenericVerifier::new(&RouteSettings::with_secrets(config, secrets))
    }

    fn post(headers: &[(&str, &str)], body: &str) -> InboundRequest {
        let mut request = crate::testing::request("POST", "", headers, body.as_bytes());
        request.source_ip = Some("198.51.100.7".into());
        request
    }

    #[test]
    fn configured_as_github_it_accepts_githubs_published_vector() {
        let v = verifier(
            serde_json::json!({"secrets":["x"],"signature":{"header":"x-hub-signature-256","prefix":"sha256="}}),
            &["It's a Secret to Everybody"],
        );
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(
            v.inspect(
                post(&[("x-hub-signature-256", signature)], "Hello, World!"),
                0
            )
            .is_ok()
        );
        assert!(
            v.inspect(
                post(&[("x-hub-signature-256", signature)], "Hello, World?"),
                0
            )
            .is_err()
        );
        assert!(v.inspect(post(&[], "Hello, World!"), 0).is_err());
    }

    #[test]
    fn configured_as_standard_webhooks_layout_with_sha512_base64_and_a_window() {
        // Python: base64.b64encode(hmac.new(b"k", b"m1.1700000000.{}", hashlib.sha512).digest())
        let v = verifier(
            serde_json::json!({"secrets":["x"],"signature":{
                "header":"x-sig","algorithm":"sha512","encoding":"base64",
                "payload":"{id}.{timestamp}.{body}","timestamp_header":"x-ts","id_header":"x-id"}}),
            &["k"],
        );
        let mac = super::super::hmac(
            crate::config::MacAlgorithm::Sha512,
            b"k",
            &[b"m1.1700000000.{}"],
        );
        let signature = base64::engine::general_purpose::STANDARD.encode(mac);
        let headers = [
            ("x-sig", signature.as_str()),
            ("x-ts", "1700000000"),
            ("x-id", "m1"),
        ];
        let Ok(Inspection::Accept(verified)) = v.inspect(post(&headers, "{}"), 1_700_000_000_000)
        else {
            panic!("signed request passes")
        };
        assert_eq!(verified.delivery_id(), Some("m1"), "the id header dedups");
        assert!(
            v.inspect(post(&headers, "{}"), 1_700_000_301_000).is_err(),
            "stale"
        );
        assert!(
            v.inspect(post(&headers, "{}"), 1_699_999_699_000).is_err(),
            "future"
        );
        let other_id = [
            ("x-sig", signature.as_str()),
            ("x-ts", "1700000000"),
            ("x-id", "m2"),
        ];
        assert!(v.inspect(post(&other_id, "{}"), 1_700_000_000_000).is_err());
        // The id as signed is the delivery id: a respelling that trims to it is the same delivery.
        let respelled = [
            ("x-sig", signature.as_str()),
            ("x-ts", "1700000000"),
            ("x-id", "m1\u{85}"),
        ];
        let Ok(Inspection::Accept(verified)) = v.inspect(post(&respelled, "{}"), 1_700_000_000_000)
        else {
            panic!("the trimmed id is the signed one")
        };
        assert_eq!(verified.delivery_id(), Some("m1"));
    }

    #[test]
    fn sha1_hex_with_basic_auth_and_an_ip_allow_list() {
        let route = serde_json::json!({
            "secrets":["pw"],
            "signature":{"header":"x-sig","algorithm":"sha1"},
            "auth":{"kind":"basic","username":"zoho"},
            "allow_ips":["198.51.100.0/24"]
        });
        let config: RouteConfig = serde_json::from_value({
            let mut r = route.clone();
            r["name"] = "g".into();
            r["provider"] = "generic".into();
            r
        })
        .unwrap();
        let verifier =
            crate::providers::verifier_for(&RouteSettings::new(config, vec![Secret::new("pw")]));
        let mac = hex::encode(super::super::hmac(
            crate::config::MacAlgorithm::Sha1,
            b"pw",
            &[b"{}"],
        ));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("zoho:pw")
        );
        let ok = post(&[("x-sig", &mac), ("authorization", &basic)], "{}");
        assert!(verifier.inspect(ok.clone(), 0).is_ok());
        let mut outside = ok.clone();
        outside.source_ip = Some("203.0.113.9".into());
        assert_eq!(
            verifier.inspect(outside, 0).unwrap_err(),
            Refusal::Forbidden("source address not allowed")
        );
        let no_auth = post(&[("x-sig", &mac)], "{}");
        assert!(verifier.inspect(no_auth, 0).is_err());
    }

    #[test]
    fn payload_template_fills_placeholders() {
        assert_eq!(
            signed_payload("v0:{timestamp}:{body}{x}", b"B", "9", ""),
            b"v0:9:B{x}".to_vec()
        );
    }

    #[test]
    fn an_open_generic_route_is_refused_at_start() {
        let config: RouteConfig =
            serde_json::from_str(r#"{"name":"g","provider":"generic"}"#).unwrap();
        assert!(config.validate().is_err());
    }
}

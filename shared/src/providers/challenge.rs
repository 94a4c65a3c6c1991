//! Providers that prove the endpoint with a challenge answered synchronously (never enqueued):
//! - meta: GET `hub.mode=subscribe` with our `hub.verify_token` → the raw `hub.challenge`;
//!   POSTs signed `X-Hub-Signature-256: sha256=<hex>` with the app secret.
//! - x: GET `crc_token` → `{"response_token":"sha256=<base64 HMAC>"}` (the answer is the proof);
//!   POSTs signed `x-twitter-webhooks-signature: sha256=<base64>` with the consumer secret.
//! - microsoft-graph: `validationToken` in the query → echoed as text/plain; notifications carry the
//!   subscription's `clientState` in every item, compared in constant time. Id-only: hydrated.

use super::kit::{SignError, TestExpect, TestRequest, first_secret, rewrite_json, set_header};
use base64::Engine;
use serde::Deserialize;

use super::mac::Keys;
use super::{
    Inspection, Refusal, VerifiedRequest, Verifier, echo_reply, header, json_body, require_method,
};
use crate::config::{MacAlgorithm, ProviderKind, RouteSettings};
use crate::model::document::AtMost;
use crate::model::request::{InboundRequest, JSON_UTF8, Reply};
use crate::model::rules::Rules;
use crate::model::value::ValueSource;
use crate::secrets::Secret;

pub struct ChallengeVerifier {
    provider: ProviderKind,
    keys: Keys,
    secrets: Vec<Secret>,
    verify_tokens: Vec<Secret>,
}

impl ChallengeVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        ChallengeVerifier {
            provider: settings.config.provider,
            keys: Keys::from_secrets(&settings.secrets),
            secrets: settings.secrets.clone(),
            verify_tokens: settings.verify_tokens.clone(),
        }
    }

    fn body_signature(
        &self,
        request: &InboundRequest,
        name: &str,
        decode: fn(&str) -> Option<Vec<u8>>,
    ) -> Result<(), Refusal> {
        let signature = header(request, name, "signature missing")?;
        let given = signature
            .strip_prefix("sha256=")
            .and_then(decode)
            .ok_or(Refusal::Unauthorized("signature malformed"))?;
        self.keys
            .matching(MacAlgorithm::Sha256, &[&request.body], &[given])
            .map(|_| ())
            .ok_or(Refusal::Unauthorized("signature mismatch"))
    }

    fn meta(&self, request: InboundRequest) -> Result<Inspection, Refusal> {
        require_method(&request, &["GET", "POST"])?;
        if request.method.eq_ignore_ascii_case("GET") {
            if request.query_param("hub.mode").as_deref() != Some("subscribe") {
                return Err(Refusal::Unauthorized("hub.mode is not subscribe"));
            }
            let token = request
                .query_param("hub.verify_token")
                .ok_or(Refusal::Unauthorized("hub.verify_token missing"))?;
            let known = self
                .verify_tokens
                .iter()
                .fold(false, |found, t| t.matches(token.as_bytes()) | found);
            if !known {
                return Err(Refusal::Unauthorized("hub.verify_token mismatch"));
            }
            let challenge = request
                .query_param("hub.challenge")
                .ok_or(Refusal::Unauthorized("hub.challenge missing"))?;
            return Ok(Inspection::Answer(echo_reply(&challenge)));
        }
        self.body_signature(&request, "x-hub-signature-256", super::mac::hex_signature)?;
        Ok(Inspection::Accept(VerifiedRequest::new(request, None)))
    }

    fn x(&self, request: InboundRequest) -> Result<Inspection, Refusal> {
        require_method(&request, &["GET", "POST"])?;
        if request.method.eq_ignore_ascii_case("GET") {
            let token = request
                .query_param("crc_token")
                .ok_or(Refusal::Unauthorized("crc_token missing"))?;
            if !is_crc_token(&token) {
                return Err(Refusal::BadRequest("crc_token outside X's alphabet"));
            }
            let key = self
                .keys
                .first()
                .ok_or(Refusal::Unauthorized("no consumer secret"))?;
            let body = serde_json::json!({ "response_token": x_signature(key, token.as_bytes()) });
            return Ok(Inspection::Answer(Reply::new(
                200,
                JSON_UTF8,
                body.to_string(),
            )));
        }
        // X posts compact JSON objects; a CRC token never holds `{`, so no CRC answer is a POST
        // signature.
        if request.body.first() != Some(&b'{') {
            return Err(Refusal::Unauthorized("body is not a JSON object"));
        }
        self.body_signature(&request, "x-twitter-webhooks-signature", |b| {
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })?;
        Ok(Inspection::Accept(VerifiedRequest::new(request, None)))
    }

    fn graph(&self, request: InboundRequest) -> Result<Inspection, Refusal> {
        require_method(&request, &["POST"])?;
        // Subscription validation: Graph POSTs `?validationToken=…` and wants it back within 10 s.
        // Echoed unauthenticated, so only a bounded line of printable text.
        if let Some(token) = request.query_param("validationToken") {
            if token.is_empty()
                || token.len() > MAX_VALIDATION_TOKEN_LEN
                || token.chars().any(char::is_control)
            {
                return Err(Refusal::BadRequest("validationToken malformed"));
            }
            return Ok(Inspection::Answer(echo_reply(&token)));
        }
        #[derive(Deserialize)]
        struct Notifications {
            // Bounded before the secret is checked: `[{},{},…]` would be millions of items.
            value: AtMost<Item, MAX_GRAPH_NOTIFICATIONS>,
        }
        #[derive(Deserialize)]
        struct Item {
            #[serde(rename = "clientState")]
            client_state: Option<String>,
        }
        let notifications: Notifications = json_body(&request).ok_or(Refusal::Unauthorized(
            "not a Graph notification, or more than 1000 in one",
        ))?;
        let notifications = notifications.value.0;
        if notifications.is_empty() {
            return Err(Refusal::Unauthorized("no notifications"));
        }
        for item in &notifications {
            let state = item
                .client_state
                .as_deref()
                .ok_or(Refusal::Unauthorized("clientState missing"))?;
            let known = self
                .secrets
                .iter()
                .fold(false, |found, s| s.matches(state.as_bytes()) | found);
            if !known {
                return Err(Refusal::Unauthorized("clientState mismatch"));
            }
        }
        Ok(Inspection::Accept(
            VerifiedRequest::new(request, None).id_only("microsoft-graph"),
        ))
    }
}

/// Most notifications read from one Graph delivery (Graph batches far fewer).
pub const MAX_GRAPH_NOTIFICATIONS: usize = 1000;

/// The longest Graph validation token echoed: Graph's are about 100 characters.
const MAX_VALIDATION_TOKEN_LEN: usize = 1024;

/// The longest CRC token answered: X's are short random strings (a UUID in its docs).
const MAX_CRC_TOKEN_LEN: usize = 255;

/// Whether `token` (query-decoded) is a CRC token X could send: 1-255 characters of letters,
/// digits and `_ - = + / .`. The CRC answer is an HMAC of the token under the same key that signs
/// POST bodies, so the alphabet keeps every token apart from every JSON object (which starts
/// with `{`), whatever encoding or leading whitespace a caller tries.
fn is_crc_token(token: &str) -> bool {
    (1..=MAX_CRC_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-=+/.".contains(&b))
}

/// X's signature of `bytes`: `sha256=` + base64 HMAC-SHA256 under the consumer secret. A POST
/// carries it for its body, and a CRC answer is it for the token: the reason the two inputs must
/// never overlap.
pub fn x_signature(key: &[u8], bytes: &[u8]) -> String {
    let mac = super::hmac(MacAlgorithm::Sha256, key, &[bytes]);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    )
}

impl Verifier for ChallengeVerifier {
    fn inspect(&self, request: InboundRequest, _now_ms: i64) -> Result<Inspection, Refusal> {
        match self.provider {
            ProviderKind::Meta => self.meta(request),
            ProviderKind::X => self.x(request),
            ProviderKind::MicrosoftGraph => self.graph(request),
            other => unreachable!("{other:?} has no challenge verifier"),
        }
    }
}

/// Where each of these providers puts its event type (none sends a delivery id).
pub(super) fn default_rules(provider: ProviderKind) -> Rules {
    let source = |text: &str| Some(ValueSource::parse(text));
    match provider {
        // Neither signs a timestamp: a replay of the same bytes is a duplicate.
        ProviderKind::X => Rules {
            dedup: source("sha256:body"),
            ..Rules::default()
        },
        ProviderKind::Meta => Rules {
            dedup: source("sha256:body"),
            event_type: source("/object"),
            ..Rules::default()
        },
        ProviderKind::MicrosoftGraph => Rules {
            event_type: source("/value/0/changeType | /value/0/lifecycleEvent"),
            ..Rules::default()
        },
        other => unreachable!("{other:?} has no challenge verifier"),
    }
}

/// Every notification's `clientState`, which Graph echoes: masked wherever the body is shown.
pub(super) fn graph_body_secrets(text: &str) -> Vec<&serde_json::value::RawValue> {
    #[derive(Deserialize)]
    struct Item<'a> {
        #[serde(borrow, default, rename = "clientState")]
        client_state: Option<&'a serde_json::value::RawValue>,
    }
    #[derive(Deserialize)]
    struct Delivery<'a> {
        #[serde(borrow, default)]
        value: Vec<Item<'a>>,
    }
    serde_json::from_str::<Delivery>(text)
        .map(|delivery| {
            delivery
                .value
                .into_iter()
                .filter_map(|item| item.client_state)
                .collect()
        })
        .unwrap_or_default()
}

/// Signs as these providers do: Meta and X sign POST bodies (their GET handshakes carry no
/// signature); Graph puts the subscription's clientState into every notification.
pub(super) fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
) -> Result<(), SignError> {
    let is_get = request.method.eq_ignore_ascii_case("GET");
    match settings.config.provider {
        ProviderKind::Meta if !is_get => {
            let value =
                super::mac::hub_signature(first_secret(settings)?.as_bytes(), &request.body);
            set_header(request, "x-hub-signature-256", &value);
        }
        ProviderKind::X if !is_get => {
            let value = x_signature(first_secret(settings)?.as_bytes(), &request.body);
            set_header(request, "x-twitter-webhooks-signature", &value);
        }
        // Subscription validation signs nothing.
        ProviderKind::MicrosoftGraph if request.query_param("validationToken").is_none() => {
            let state = first_secret(settings)?.to_owned();
            rewrite_json(request, |body| {
                if let Some(items) = body.get_mut("value").and_then(|v| v.as_array_mut()) {
                    for item in items.iter_mut().filter(|i| i.is_object()) {
                        item["clientState"] = state.clone().into();
                    }
                }
            });
        }
        _ => {}
    }
    Ok(())
}

/// Each provider's endpoint check: Meta's `hub.challenge` GET with the route's verify token, X's
/// CRC GET (answered with the token's HMAC), Graph's `validationToken` POST (echoed).
pub(super) fn test_request(
    settings: &RouteSettings,
    nonce: &str,
) -> Result<TestRequest, SignError> {
    let mut request = super::kit::empty_post(&[]);
    let expect = match settings.config.provider {
        ProviderKind::Meta => {
            let token = settings
                .verify_tokens
                .first()
                .ok_or_else(|| SignError::NoSecret(settings.config.name.clone()))?;
            request.method = "GET".into();
            request.raw_query = form_urlencoded::Serializer::new(String::new())
                .append_pair("hub.mode", "subscribe")
                .append_pair("hub.verify_token", token.expose())
                .append_pair("hub.challenge", nonce)
                .finish();
            nonce.to_owned()
        }
        ProviderKind::X => {
            request.method = "GET".into();
            request.raw_query = format!("crc_token={nonce}");
            x_signature(first_secret(settings)?.as_bytes(), nonce.as_bytes())
        }
        _ => {
            request.raw_query = format!("validationToken={nonce}");
            nonce.to_owned()
        }
    };
    Ok(TestRequest {
        request,
        expect: TestExpect::Answer(expect),
    })
}

/// Where each of these providers takes the route's URL.
pub(super) fn paste_hint(provider: ProviderKind) -> &'static str {
    match provider {
        ProviderKind::Meta => {
            "Meta App Dashboard → your app → Webhooks → Callback URL, with the route's verify token"
        }
        ProviderKind::X => {
            "X developer portal → your app's Account Activity API environment → register the webhook URL (X sends the CRC check at once)"
        }
        ProviderKind::MicrosoftGraph => {
            "`notificationUrl` of the subscription you create with POST /subscriptions, with `clientState` set to the route's secret"
        }
        other => unreachable!("{other:?} has no challenge verifier"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;

    fn verifier(route: serde_json::Value, resolved: &[&str]) -> ChallengeVerifier {
        let config: RouteConfig = serde_json::from_value(route).unwrap();
        config.validate().unwrap();
        ChallengeVerifier::new(&RouteSettings::new(
            config,
            resolved.iter().map(|s| Secret::new(*s)).collect(),
        ))
    }

    fn request(method: &str, query: &str, headers: &[(&str, &str)], body: &str) -> InboundRequest {
        crate::testing::request(method, query, headers, body.as_bytes())
    }

    fn meta() -> ChallengeVerifier {
        verifier(
            serde_json::json!({"name":"m","provider":"meta","secrets":["a"],"verify_tokens":["v"]}),
            &["app-secret", "my-verify-token"],
        )
    }

    #[test]
    fn meta_subscription_answers_the_raw_challenge_only_for_our_token() {
        let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token";
        let Ok(Inspection::Answer(reply)) = meta().inspect(request("GET", query, &[], ""), 0)
        else {
            panic!("the subscription GET is answered")
        };
        assert_eq!((reply.status, &reply.body[..]), (200, &b"1158201444"[..]));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        for bad in [
            "hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
            "hub.mode=subscribe&hub.challenge=1",
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=my-verify-token",
            "hub.mode=subscribe&hub.verify_token=my-verify-token",
        ] {
            assert!(
                meta().inspect(request("GET", bad, &[], ""), 0).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn meta_posts_are_signed_with_the_app_secret() {
        let body = r#"{"object":"page","entry":[{"id":"1","time":1}]}"#;
        let mac = super::super::hmac_sha256(b"app-secret", &[body.as_bytes()]);
        let signature = format!("sha256={}", hex::encode(mac));
        let ok = meta().inspect(
            request("POST", "", &[("x-hub-signature-256", &signature)], body),
            0,
        );
        assert!(matches!(ok, Ok(Inspection::Accept(_))));
        let tampered = meta().inspect(
            request(
                "POST",
                "",
                &[("x-hub-signature-256", &signature)],
                &body.replace('1', "2"),
            ),
            0,
        );
        assert!(tampered.is_err());
        // Signed with the verify token instead of the app secret: refused.
        let wrong = super::super::hmac_sha256(b"my-verify-token", &[body.as_bytes()]);
        let header_value = format!("sha256={}", hex::encode(wrong));
        assert!(
            meta()
                .inspect(
                    request("POST", "", &[("x-hub-signature-256", &header_value)], body),
                    0
                )
                .is_err()
        );
        assert!(matches!(
            meta().inspect(request("PUT", "", &[], body), 0),
            Err(Refusal::MethodNotAllowed(_))
        ));
    }

    fn x() -> ChallengeVerifier {
        verifier(
            serde_json::json!({"name":"x","provider":"x","secrets":["c"]}),
            &["consumer-secret"],
        )
    }

    #[test]
    fn x_crc_answer_matches_an_independent_hmac() {
        // Python: base64.b64encode(hmac.new(b"consumer-secret", b"challenge_string",
        //   hashlib.sha256).digest())
        let Ok(Inspection::Answer(reply)) =
            x().inspect(request("GET", "crc_token=challenge_string", &[], ""), 0)
        else {
            panic!("the CRC is answered")
        };
        let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            json["response_token"],
            "sha256=S/mG8E9n5SjoGuCqHguvP8K8uuu5ogCPF0dOpIdyZlk="
        );
        assert_eq!(reply.header("content-type"), Some(JSON_UTF8));
        assert!(x().inspect(request("GET", "", &[], ""), 0).is_err());
    }

    #[test]
    fn x_crc_answers_the_published_shape_of_token() {
        // Python: base64.b64encode(hmac.new(b"consumer-secret",
        //   b"9b4507b3-9040-4669-9ca3-6b94edb50553", hashlib.sha256).digest())
        let Ok(Inspection::Answer(reply)) = x().inspect(
            request(
                "GET",
                "crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553",
                &[],
                "",
            ),
            0,
        ) else {
            panic!("a UUID token is answered")
        };
        let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            json["response_token"],
            "sha256=NhN+8FRk3FiSPXyqxXmpVRtiLiWoawvOgUBuXwGUTL4="
        );
    }

    /// The oracle round trip: whatever a caller asks the CRC endpoint to sign, the answer never
    /// passes as the signature of a POST with that text as its body.
    #[test]
    fn x_crc_answers_never_sign_a_post() {
        let forged = r#"{"for_user_id":"2244994945","direct_message_events":[]}"#;
        let encoded: String = form_urlencoded::byte_serialize(forged.as_bytes()).collect();
        let long = "a".repeat(MAX_CRC_TOKEN_LEN + 1);
        for query in [
            format!("crc_token={encoded}"),
            format!("crc_token=%20{encoded}"),
            format!("crc_token=+{encoded}"),
            format!("crc_token=%0A{encoded}"),
            format!("crc_token=%09{encoded}"),
            format!("crc_token=%EF%BB%BF{encoded}"),
            format!("crc_token={}", forged.replace('"', "%22")),
            "crc_token=%7B%22a%22%3A1%7D".to_owned(),
            "crc_token=%5B1%5D".to_owned(),
            "crc_token=".to_owned(),
            format!("crc_token={long}"),
        ] {
            let answer = x().inspect(request("GET", &query, &[], ""), 0);
            assert_eq!(
                answer.unwrap_err(),
                Refusal::BadRequest("crc_token outside X's alphabet"),
                "{query}"
            );
        }
        // Tokens that are answered cannot be POST bodies: the body must be a JSON object.
        for token in ["abc123", "a-b_c=d+e/f.g", &"z".repeat(MAX_CRC_TOKEN_LEN)] {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("crc_token", token)
                .finish();
            let Ok(Inspection::Answer(reply)) = x().inspect(request("GET", &query, &[], ""), 0)
            else {
                panic!("{token} is answered")
            };
            let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            let signature = json["response_token"].as_str().unwrap().to_owned();
            let post = x().inspect(
                request(
                    "POST",
                    "",
                    &[("x-twitter-webhooks-signature", &signature)],
                    token,
                ),
                0,
            );
            assert_eq!(
                post.unwrap_err(),
                Refusal::Unauthorized("body is not a JSON object"),
                "{token}"
            );
        }
    }

    #[test]
    fn x_posts_carry_a_base64_signature() {
        let body = r#"{"for_user_id":"1","tweet_create_events":[]}"#;
        let sign = |text: &str| x_signature(b"consumer-secret", text.as_bytes());
        let post = |signature: &str, body: &str| {
            x().inspect(
                request(
                    "POST",
                    "",
                    &[("x-twitter-webhooks-signature", signature)],
                    body,
                ),
                0,
            )
        };
        assert!(matches!(post(&sign(body), body), Ok(Inspection::Accept(_))));
        assert!(post(&sign(body), "{}").is_err());
        // Correctly signed, but not an object: X never sends these.
        for other in [" {}", "\n{}", "[]", "abc"] {
            assert!(post(&sign(other), other).is_err(), "{other}");
        }
    }

    fn graph() -> ChallengeVerifier {
        verifier(
            serde_json::json!({"name":"g","provider":"microsoft-graph","secrets":["s"]}),
            &["secretClientValue"],
        )
    }

    #[test]
    fn graph_validation_echoes_the_decoded_token() {
        let Ok(Inspection::Answer(reply)) = graph().inspect(
            request(
                "POST",
                "validationToken=Validation%3a+Testing+client+application+reachability",
                &[],
                "",
            ),
            0,
        ) else {
            panic!("validation is answered")
        };
        assert_eq!(
            &reply.body[..],
            b"Validation: Testing client application reachability"
        );
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    #[test]
    fn graph_validation_is_echoed_only_for_a_post_with_a_bounded_printable_token() {
        let token = "Validation%3a+Testing";
        let get = graph().inspect(
            request("GET", &format!("validationToken={token}"), &[], ""),
            0,
        );
        assert!(matches!(get, Err(Refusal::MethodNotAllowed(_))));
        let long = "a".repeat(MAX_VALIDATION_TOKEN_LEN + 1);
        for bad in [
            format!("validationToken={long}"),
            "validationToken=".to_owned(),
            "validationToken=a%0Ab".to_owned(),
            "validationToken=a%1B%5B2Jb".to_owned(),
        ] {
            assert_eq!(
                graph()
                    .inspect(request("POST", &bad, &[], ""), 0)
                    .unwrap_err(),
                Refusal::BadRequest("validationToken malformed"),
                "{bad}"
            );
        }
        let longest = "a".repeat(MAX_VALIDATION_TOKEN_LEN);
        assert!(matches!(
            graph().inspect(
                request("POST", &format!("validationToken={longest}"), &[], ""),
                0
            ),
            Ok(Inspection::Answer(_))
        ));
    }

    #[test]
    fn graph_notifications_need_our_client_state_in_every_item() {
        // Shaped like the change notification in Microsoft's "Receive change notifications" docs.
        let item = |state: &str| {
            format!(
                r##"{{"subscriptionId":"s1","clientState":"{state}","changeType":"created","resource":"Users/u1/Messages/m1","resourceData":{{"@odata.type":"#Microsoft.Graph.Message","id":"m1"}},"tenantId":"t1"}}"##
            )
        };
        let good = format!(r#"{{"value":[{}]}}"#, item("secretClientValue"));
        let Ok(Inspection::Accept(verified)) = graph().inspect(request("POST", "", &[], &good), 0)
        else {
            panic!("a notification with our clientState passes")
        };
        assert_eq!(verified.hydrator(), Some("microsoft-graph"));
        assert_eq!(
            super::super::stored_hydrator(crate::ProviderKind::MicrosoftGraph, None),
            verified.hydrator(),
            "a replay of the stored event hydrates as this delivery did"
        );
        let mixed = format!(
            r#"{{"value":[{},{}]}}"#,
            item("secretClientValue"),
            item("forged")
        );
        for bad in [
            mixed.as_str(),
            r#"{"value":[]}"#,
            "",
            "nope",
            r#"{"value":[{}]}"#,
        ] {
            assert!(
                graph().inspect(request("POST", "", &[], bad), 0).is_err(),
                "{bad}"
            );
        }
        // Up to the cap every item is checked; one more is refused before any is kept.
        let many = |n: usize| {
            let items = vec![item("secretClientValue"); n].join(",");
            format!(r#"{{"value":[{items}]}}"#)
        };
        let at_cap = many(MAX_GRAPH_NOTIFICATIONS);
        assert!(
            graph()
                .inspect(request("POST", "", &[], &at_cap), 0)
                .is_ok()
        );
        let over = many(MAX_GRAPH_NOTIFICATIONS + 1);
        assert!(matches!(
            graph().inspect(request("POST", "", &[], &over), 0),
            Err(Refusal::Unauthorized(reason)) if reason.contains("more than 1000")
        ));
    }
}

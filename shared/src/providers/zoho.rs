//! Zoho CRM Notifications API. Zoho signs nothing: a notification carries the `token` chosen when
//! its channel was enabled, echoed in the body next to `channel_id`. The token is compared in
//! constant time with the one configured for that channel; an unknown channel is refused. A route
//! may add a secret in the notify URL's query string (`auth`), checked first and redacted.

use super::kit::{SignError, json_post, rewrite_json};
use crate::model::rules::Rules;
use crate::model::value::ValueSource;
use serde::Deserialize;

use super::catch_raw::CatchRawVerifier;
use super::{Inspection, Refusal, VerifiedRequest, Verifier, json_body, require_method};
use crate::config::RouteSettings;
use crate::model::request::InboundRequest;
use crate::secrets::Secret;

pub struct ZohoVerifier {
    auth: Option<CatchRawVerifier>,
    channels: Vec<(String, Secret)>,
}

impl ZohoVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        ZohoVerifier {
            auth: settings
                .config
                .auth
                .is_some()
                .then(|| CatchRawVerifier::new(settings)),
            channels: settings.channel_tokens.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Notification {
    #[serde(deserialize_with = "crate::config::string_or_number")]
    channel_id: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    ids: Option<Vec<serde::de::IgnoredAny>>,
}

impl Notification {
    /// `hookcatch routes test`'s notification: no ids, operation `test` (Zoho sends neither).
    fn is_test(&self) -> bool {
        self.operation.as_deref() == Some("test") && self.ids.as_ref().is_some_and(Vec::is_empty)
    }
}

impl Verifier for ZohoVerifier {
    fn inspect(&self, mut request: InboundRequest, _now_ms: i64) -> Result<Inspection, Refusal> {
        require_method(&request, &["POST"])?;
        if let Some(auth) = &self.auth {
            auth.check(&mut request)?;
        }
        let notification: Notification =
            json_body(&request).ok_or(Refusal::Unauthorized("not a Zoho CRM notification"))?;
        let test = notification.is_test();
        let token = notification
            .token
            .ok_or(Refusal::Unauthorized("token missing"))?;
        let expected = self
            .channels
            .iter()
            .find(|(id, _)| *id == notification.channel_id)
            .map(|(_, token)| token)
            .ok_or(Refusal::Unauthorized("unknown channel"))?;
        if !expected.matches(token.as_bytes()) {
            return Err(Refusal::Unauthorized("token mismatch"));
        }
        Ok(Inspection::Accept(
            VerifiedRequest::new(request, None)
                .id_only("zoho-crm")
                .test_if(test),
        ))
    }
}

/// The channel's `token`, which the body carries: masked wherever the body is shown.
pub(super) fn body_secrets(text: &str) -> Vec<&serde_json::value::RawValue> {
    #[derive(Deserialize)]
    struct Secrets<'a> {
        #[serde(borrow, default)]
        token: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Secrets>(text)
        .ok()
        .and_then(|secrets| secrets.token)
        .into_iter()
        .collect()
}

/// Zoho sends no delivery id; one notification is one channel, time, operation and ids.
pub(super) fn default_rules() -> Rules {
    Rules {
        dedup: Some(ValueSource::parse(
            "/channel_id + /server_time + /operation + /ids",
        )),
        event_type: Some(ValueSource::parse("/module + /operation")),
        ..Rules::default()
    }
}

/// Writes the channel's id and token into the body, as Zoho does, plus the route's own `auth`.
pub(super) fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
) -> Result<(), SignError> {
    let (channel_id, token) = settings
        .channel_tokens
        .first()
        .ok_or_else(|| SignError::NoSecret(settings.config.name.clone()))?;
    rewrite_json(request, |body| {
        body["channel_id"] = channel_id.clone().into();
        body["token"] = token.expose().into();
    });
    super::catch_raw::sign(settings, request)
}

/// A notification with `ids: []` and `operation: "test"`, for the first channel's module; [`sign`]
/// fills in the channel and its token.
pub(super) fn test_request(settings: &RouteSettings, nonce: &str, now_ms: i64) -> InboundRequest {
    let module = settings
        .config
        .channels
        .first()
        .and_then(|c| c.events.first())
        .and_then(|e| e.split('.').next())
        .unwrap_or("Leads")
        .to_owned();
    json_post(
        &[],
        serde_json::json!({
            "server_time": now_ms,
            "query_params": {},
            "module": module,
            "resource_uri": "",
            "ids": [],
            "affected_fields": [],
            "operation": "test",
            "hookcatch_test": nonce,
        }),
    )
}

/// Where a Zoho CRM route's URL goes.
pub(super) const PASTE_HINT: &str = "the notify_url of the channel you enable with Zoho CRM's Notifications API (`hookcatch zoho renew --notify-url URL`)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use bytes::Bytes;

    fn verifier(extra: &str) -> ZohoVerifier {
        let config: RouteConfig = serde_json::from_str(&format!(
            r#"{{"name":"z","provider":"zoho-crm","channels":[
                {{"id":"1000000068001","token":"t1"}},{{"id":1000000068002,"token":"t2"}}]{extra}}}"#
        ))
        .unwrap();
        config.validate().unwrap();
        let mut resolved: Vec<Secret> = config
            .secrets
            .iter()
            .map(|_| Secret::new("query-secret"))
            .collect();
        resolved.extend([
            Secret::new("TOKEN_FOR_VERIFICATION_OF_1000000068001"),
            Secret::new("TOKEN_FOR_VERIFICATION_OF_1000000068002"),
        ]);
        ZohoVerifier::new(&RouteSettings::new(config, resolved))
    }

    fn post(query: &str, body: &str) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: query.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::copy_from_slice(body.as_bytes()),
            source_ip: None,
            called_url: None,
        }
    }

    // The insert sample from Zoho's Notifications API docs (v7).
    const INSERT: &str = r#"{"server_time":1718117126473,"query_params":{},"module":"Leads","resource_uri":"https://www.zohoapis.com/crm/v2/Leads","ids":["5725767000003000064"],"affected_fields":[],"operation":"insert","channel_id":"1000000068001","token":"TOKEN_FOR_VERIFICATION_OF_1000000068001"}"#;

    #[test]
    fn documented_sample_accepted_as_id_only() {
        let Ok(Inspection::Accept(verified)) = verifier("").inspect(post("", INSERT), 0) else {
            panic!("the documented notification is accepted")
        };
        assert_eq!(verified.hydrator(), Some("zoho-crm"));
        assert_eq!(
            super::super::stored_hydrator(crate::ProviderKind::ZohoCrm, Some(INSERT.as_bytes())),
            verified.hydrator(),
            "a replay of the stored event hydrates as this delivery did"
        );
    }

    #[test]
    fn token_is_bound_to_its_channel() {
        let v = verifier("");
        // Channel id as a number, with its own token.
        let numeric = r#"{"channel_id":1000000068002,"token":"TOKEN_FOR_VERIFICATION_OF_1000000068002","ids":["1"]}"#;
        assert!(v.inspect(post("", numeric), 0).is_ok());
        // Another channel's token, an unknown channel, a wrong or missing token.
        for (body, reason) in [
            (
                r#"{"channel_id":"1000000068002","token":"TOKEN_FOR_VERIFICATION_OF_1000000068001"}"#,
                "token mismatch",
            ),
            (
                r#"{"channel_id":"999","token":"TOKEN_FOR_VERIFICATION_OF_1000000068001"}"#,
                "unknown channel",
            ),
            (
                r#"{"channel_id":"1000000068001","token":"x"}"#,
                "token mismatch",
            ),
            (r#"{"channel_id":"1000000068001"}"#, "token missing"),
            ("", "not a Zoho CRM notification"),
            ("not json", "not a Zoho CRM notification"),
        ] {
            assert_eq!(
                v.inspect(post("", body), 0).unwrap_err(),
                Refusal::Unauthorized(reason),
                "{body}"
            );
        }
    }

    #[test]
    fn optional_query_secret_checked_and_redacted() {
        let v = verifier(r#","secrets":["x"],"auth":{"kind":"api_key","query":"key"}"#);
        assert!(v.inspect(post("", INSERT), 0).is_err());
        assert!(v.inspect(post("key=wrong", INSERT), 0).is_err());
        let Ok(Inspection::Accept(verified)) = v.inspect(post("key=query-secret&a=1", INSERT), 0)
        else {
            panic!("the right query secret passes")
        };
        assert_eq!(verified.request().raw_query, "key=REDACTED&a=1");
    }
}

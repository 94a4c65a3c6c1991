//! One typed configuration, loaded and validated once at start.
//!
//! A route entry has the same keys everywhere: a `[[routes]]` table in `hookcatch.toml` for the local
//! binary, and the JSON in `HOOKCATCH_ROUTE` for a route Lambda. Secrets are references
//! ([`SecretRef`]), resolved once at init by [`crate::secrets`].

mod deployed;
mod env;
mod hydrate;
mod resolved;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::rules::{RecordRule, Rules, SharedRules, any_condition_holds};
use crate::model::value::ValueSource;
use crate::secrets::SecretRef;
pub use deployed::{MAX_DEPLOYED_ROUTES, RouteParameters, SsmLayout, logical_id, route_id};
pub use env::{ConsumerEnv, EnvLookup, IngestEnv, RouteSource};
pub use hydrate::{
    GraphRenew, HttpAuth, HttpHydration, HttpRequestTemplate, HydrateConfig, ZohoHydration,
    ZohoRenew,
};
pub use resolved::RouteSettings;

/// Default tolerance for a signed timestamp, both directions (Stripe, Standard Webhooks, Slack, Zoom).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Function URLs take at most 6 MB of request payload; that is the default cap for a body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("route `{route}`: {reason}")]
    Route { route: String, reason: String },
}

/// Which verification and extraction scheme a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// Accept anything (optionally behind an API key or HTTP Basic) and store exactly what arrived.
    CatchRaw,
    /// `X-Hub-Signature-256` over the body; dedup on `X-GitHub-Delivery`.
    Github,
    /// `Stripe-Signature` (`t=…,v1=…`) over `{t}.{body}`; dedup on the event id.
    Stripe,
    /// Base64 `X-Shopify-Hmac-Sha256` over the body; dedup on `X-Shopify-Webhook-Id`.
    Shopify,
    /// `webhook-id`/`webhook-timestamp`/`webhook-signature` (Svix and many others).
    StandardWebhooks,
    /// Slack Events API, slash commands and interactivity: `v0` signature, `url_verification`.
    Slack,
    /// Zoho CRM Notifications API: a per-channel `token` in the body; id-only, hydrated.
    ZohoCrm,
    /// `X-Twilio-Signature`: HMAC-SHA1 over the public URL and the sorted form parameters.
    Twilio,
    /// `x-zm-signature` over `v0:{timestamp}:{body}`; `endpoint.url_validation`.
    Zoom,
    /// Facebook, Instagram, WhatsApp: `hub.challenge` GET, `X-Hub-Signature-256` POSTs.
    Meta,
    /// X (Twitter) Account Activity: `crc_token` GET, `x-twitter-webhooks-signature` POSTs.
    X,
    /// Microsoft Graph change notifications: `validationToken` echo, `clientState`; id-only.
    MicrosoftGraph,
    /// Configurable HMAC, API key, HTTP Basic and source-IP checks, for any other sender.
    Generic,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 13] = [
        ProviderKind::CatchRaw,
        ProviderKind::Github,
        ProviderKind::Stripe,
        ProviderKind::Shopify,
        ProviderKind::StandardWebhooks,
        ProviderKind::Slack,
        ProviderKind::ZohoCrm,
        ProviderKind::Twilio,
        ProviderKind::Zoom,
        ProviderKind::Meta,
        ProviderKind::X,
        ProviderKind::MicrosoftGraph,
        ProviderKind::Generic,
    ];

    /// The provider a stored event names (its `as_str`), if this build knows it.
    pub fn from_name(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|p| p.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::CatchRaw => "catch-raw",
            ProviderKind::Github => "github",
            ProviderKind::Stripe => "stripe",
            ProviderKind::Shopify => "shopify",
            ProviderKind::StandardWebhooks => "standard-webhooks",
            ProviderKind::Slack => "slack",
            ProviderKind::ZohoCrm => "zoho-crm",
            ProviderKind::Twilio => "twilio",
            ProviderKind::Zoom => "zoom",
            ProviderKind::Meta => "meta",
            ProviderKind::X => "x",
            ProviderKind::MicrosoftGraph => "microsoft-graph",
            ProviderKind::Generic => "generic",
        }
    }

    /// Whether the provider authenticates with the route's `secrets` (so at least one is required).
    pub fn is_signed(self) -> bool {
        !matches!(
            self,
            ProviderKind::CatchRaw | ProviderKind::ZohoCrm | ProviderKind::Generic
        )
    }

    /// Whether `auth` (API key or Basic) may protect the route.
    fn takes_auth(self) -> bool {
        matches!(
            self,
            ProviderKind::CatchRaw | ProviderKind::ZohoCrm | ProviderKind::Generic
        )
    }
}

/// Optional protection for routes whose senders cannot sign (catch-raw, Zoho functions, Zapier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A key from `secrets`, sent in a header, a query parameter (Zoho's `zapikey`), or either.
    ApiKey {
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        query: Option<String>,
    },
    /// HTTP Basic with this user name and any password from `secrets`.
    Basic { username: String },
}

/// How the route answers an accepted request (Zoho's REST-function response spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseShape {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default = "default_content_type")]
    pub content_type: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template; `{{event_id}}` is replaced by the event id. Default: `{"status":"queued","id":…}`.
    #[serde(default)]
    pub body: Option<String>,
}

fn default_status() -> u16 {
    200
}

fn default_content_type() -> String {
    crate::model::request::JSON_UTF8.to_owned()
}

impl Default for ResponseShape {
    fn default() -> Self {
        ResponseShape {
            status: default_status(),
            content_type: default_content_type(),
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

/// MAC algorithms a configurable (generic) route can check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// A configurable HMAC signature (generic routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureConfig {
    /// Header carrying the signature, e.g. `x-signature`.
    pub header: String,
    #[serde(default)]
    pub algorithm: MacAlgorithm,
    #[serde(default)]
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    /// What is signed, with `{body}`, `{timestamp}` and `{id}` placeholders. Default `{body}`.
    #[serde(default = "default_signed_payload")]
    pub payload: String,
    /// Header with the Unix-seconds timestamp that `{timestamp}` stands for; its window is enforced.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Header with the message id that `{id}` stands for.
    #[serde(default)]
    pub id_header: Option<String>,
    #[serde(default = "default_tolerance_secs")]
    pub tolerance_secs: i64,
}

fn default_signed_payload() -> String {
    "{body}".to_owned()
}

fn default_tolerance_secs() -> i64 {
    TIMESTAMP_TOLERANCE_SECS
}

/// A Zoho CRM notification channel: its id, the `token` set when it was enabled, and the
/// `events` it watches (used when the channel is enabled or renewed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoChannel {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub token: SecretRef,
    /// `{module}.{operation}` entries, a list or comma-separated (`Leads.all,Contacts.edit`).
    #[serde(default, deserialize_with = "hydrate::list_or_comma_separated")]
    pub events: Vec<String>,
}

/// Zoho sends `channel_id` as a string although it is declared a long; accept either everywhere.
pub fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, found {other}"
        ))),
    }
}

/// A token bucket: `per_second` requests a second on average, `burst` at once (default: one
/// second's worth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: u32,
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateLimit {
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.per_second)
    }
}

/// One inbound route, as written by the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// URL-safe name: `/hooks/{name}` locally; the key prefix of its events and records.
    pub name: String,
    pub provider: ProviderKind,
    /// Accepted secrets, newest first; several during a rotation.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub response: ResponseShape,
    /// Delivery id for deduplication: `header:x-delivery-id` or a JSON pointer. Default: none
    /// (every request is its own event) unless the provider defines one.
    #[serde(default)]
    pub dedup: Option<ValueSource>,
    #[serde(default)]
    pub event_type: Option<ValueSource>,
    /// Records kept from each event; the first rule that applies is used. Replaces the provider's.
    #[serde(default)]
    pub records: Vec<RecordRule>,
    /// Bodies larger than this are refused with 413.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Source addresses or networks allowed to call the route (any provider); empty: anyone.
    #[serde(default)]
    pub allow_ips: Vec<ipnet::IpNet>,
    /// catch-raw: accept requests from anyone, with no key and no address list. Never implied: a
    /// route without protection does not load unless it says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
    /// Store `Authorization`, `Cookie`, `X-Api-Key` and the other credential headers as sent.
    /// Never implied: by default they are redacted before anything is queued.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_credential_headers: bool,
    /// meta: the `hub.verify_token` values accepted on the subscription GET.
    #[serde(default)]
    pub verify_tokens: Vec<SecretRef>,
    /// zoho-crm: the channels this route accepts, each with its token.
    #[serde(default)]
    pub channels: Vec<ZohoChannel>,
    /// twilio: the URL configured in Twilio, which it signs (the Host behind a custom domain or
    /// proxy differs). Default: `https://{Host}{path}`, right for a Function URL.
    #[serde(default)]
    pub public_url: Option<String>,
    /// generic: the HMAC signature to check.
    #[serde(default)]
    pub signature: Option<SignatureConfig>,
    /// How the consumer hydrates this route's id-only notifications (zoho-crm).
    #[serde(default)]
    pub hydrate: Option<HydrateConfig>,
    /// Local mode only: requests per second this route takes before answering 429 with
    /// `Retry-After`. On AWS the bound is the route function's reserved concurrency, and Lambda's
    /// own throttle answers (without `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// AWS only: the route function's reserved concurrency, which `hookcatch deploy` sets after
    /// `sam deploy` (the most requests the route runs at once, and capacity no other function can
    /// take). Ignored locally, where `rate_limit` is the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
    /// Keys that differ when the route is deployed (`public_url`, a hydrator's `notify_url`,
    /// `allow_ips`), merged over the route as a JSON merge patch by [`RouteConfig::for_aws`].
    /// Ignored locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<serde_json::Value>,
}

impl RouteConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |reason: &str| ConfigError::Route {
            route: self.name.clone(),
            reason: reason.to_owned(),
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(fail("name must be 1-64 characters of a-z, 0-9, `-` or `_`"));
        }
        if !(100..=599).contains(&self.response.status) {
            return Err(fail("response.status must be between 100 and 599"));
        }
        let provider = self.provider;
        match &self.auth {
            Some(AuthConfig::ApiKey {
                header: None,
                query: None,
            }) => {
                return Err(fail("auth api_key needs `header`, `query` or both"));
            }
            Some(_) if !provider.takes_auth() => {
                return Err(fail(
                    "`auth` is for catch-raw, generic and zoho-crm routes; signed providers use `secrets`",
                ));
            }
            Some(_) if self.secrets.is_empty() => {
                return Err(fail("auth is configured but `secrets` is empty"));
            }
            _ => {}
        }
        if provider.is_signed() && self.secrets.is_empty() {
            return Err(fail(match provider {
                ProviderKind::MicrosoftGraph => {
                    "microsoft-graph: `secrets` needs the subscription's clientState"
                }
                _ => "this provider signs its requests: `secrets` needs the signing secret",
            }));
        }
        let only_for = |present: bool, wanted: ProviderKind, key: &str| {
            if present && provider != wanted {
                Err(fail(&format!(
                    "`{key}` is only for {} routes",
                    wanted.as_str()
                )))
            } else {
                Ok(())
            }
        };
        only_for(
            !self.verify_tokens.is_empty(),
            ProviderKind::Meta,
            "verify_tokens",
        )?;
        only_for(!self.channels.is_empty(), ProviderKind::ZohoCrm, "channels")?;
        only_for(
            self.public_url.is_some(),
            ProviderKind::Twilio,
            "public_url",
        )?;
        only_for(self.signature.is_some(), ProviderKind::Generic, "signature")?;
        if provider == ProviderKind::Meta && self.verify_tokens.is_empty() {
            return Err(fail(
                "meta: `verify_tokens` needs the hub.verify_token you chose",
            ));
        }
        if provider == ProviderKind::ZohoCrm && self.channels.is_empty() {
            return Err(fail(
                "zoho-crm: `channels` needs each channel's id and token",
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(fail("public_url must be an http(s) URL"));
        }
        if let Some(hydrate) = &self.hydrate {
            hydrate.validate(Some(provider)).map_err(|e| fail(&e))?;
        }
        if let Some(limit) = &self.rate_limit
            && (limit.per_second == 0 || limit.burst() == 0)
        {
            return Err(fail("rate_limit: per_second and burst must be at least 1"));
        }
        if self.reserved_concurrency == Some(0) {
            return Err(fail(
                "reserved_concurrency = 0 would refuse every request: remove the route instead",
            ));
        }
        if self.aws.is_some() {
            // The deployed form must load too: a broken `aws` table is caught where it is written.
            self.with_aws_overrides()?;
        }
        let protected = self.auth.is_some() || !self.allow_ips.is_empty();
        if provider == ProviderKind::CatchRaw && !protected && !self.open {
            return Err(fail(
                "catch-raw: anyone could post to this route; protect it with `auth` or `allow_ips`, \
                 or accept that with `open = true`",
            ));
        }
        if self.open && (provider != ProviderKind::CatchRaw || protected) {
            return Err(fail(
                "`open = true` is for catch-raw routes without `auth` or `allow_ips`",
            ));
        }
        if provider == ProviderKind::Generic {
            if self.signature.is_none() && self.auth.is_none() && self.allow_ips.is_empty() {
                return Err(fail(
                    "generic: configure `signature`, `auth` or `allow_ips` (an open route is catch-raw)",
                ));
            }
            if let Some(signature) = &self.signature {
                if self.secrets.is_empty() {
                    return Err(fail("generic: `signature` needs the key in `secrets`"));
                }
                if !signature.payload.contains("{body}") {
                    return Err(fail("signature.payload must contain `{body}`"));
                }
                // `{id}{body}` would let bytes move between the id and the body under one MAC.
                if signature.payload.contains("}{") {
                    return Err(fail(
                        "signature.payload needs a separator between placeholders (`{id}.{body}`)",
                    ));
                }
                if signature.payload.contains("{timestamp}") != signature.timestamp_header.is_some()
                {
                    return Err(fail(
                        "signature: `{timestamp}` in payload and `timestamp_header` go together",
                    ));
                }
                if signature.payload.contains("{id}") != signature.id_header.is_some() {
                    return Err(fail(
                        "signature: `{id}` in payload and `id_header` go together",
                    ));
                }
                if !(1..=3600).contains(&signature.tolerance_secs) {
                    return Err(fail(
                        "signature.tolerance_secs must be between 1 and 3600 seconds",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    /// Every secret reference of the route, in the order [`RouteSettings::new`] expects them
    /// resolved: `secrets`, `verify_tokens`, each channel's token, then the hydrator's.
    pub fn secret_refs(&self) -> Vec<SecretRef> {
        self.secrets
            .iter()
            .chain(&self.verify_tokens)
            .chain(self.channels.iter().map(|c| &c.token))
            .chain(self.hydrate.iter().flat_map(HydrateConfig::secret_refs))
            .cloned()
            .collect()
    }

    /// Rewrites every secret reference (tests store literal secrets in SSM this way).
    pub fn map_secret_refs(&mut self, mut f: impl FnMut(&SecretRef) -> SecretRef) {
        for secret in self.secrets.iter_mut().chain(&mut self.verify_tokens) {
            *secret = f(secret);
        }
        for channel in &mut self.channels {
            channel.token = f(&channel.token);
        }
        for secret in self
            .hydrate
            .iter_mut()
            .flat_map(HydrateConfig::secret_refs_mut)
        {
            *secret = f(secret);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn ingest_env_reads_route_json() {
        let env = env_of(&[
            (
                "HOOKCATCH_ROUTE",
                r#"{"name":"raw","provider":"catch-raw","auth":{"kind":"api_key","query":"zapikey"},"secrets":["ssm:/hc/raw"]}"#,
            ),
            ("HOOKCATCH_QUEUE_URL", "http://q"),
        ]);
        let parsed = IngestEnv::from_env(&env).unwrap();
        assert!(matches!(&parsed.route, RouteSource::Inline(r) if r.name == "raw"));
        assert_eq!(parsed.enqueue_timeout, Duration::from_secs(2));
        assert!(parsed.bucket.is_none());
    }

    #[test]
    fn ingest_env_refuses_plain_secrets() {
        let env = env_of(&[
            (
                "HOOKCATCH_ROUTE",
                r#"{"name":"raw","provider":"catch-raw","auth":{"kind":"basic","username":"u"},"secrets":["hunter2"]}"#,
            ),
            ("HOOKCATCH_QUEUE_URL", "http://q"),
        ]);
        let err = IngestEnv::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("ssm:"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the error must not echo the secret: {err}"
        );
    }

    #[test]
    fn an_unprotected_catch_raw_route_json_must_say_open() {
        let env = |route: &'static str| {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                ("HOOKCATCH_ROUTE", route),
                ("HOOKCATCH_QUEUE_URL", "http://q"),
            ]));
            IngestEnv::from_env(&env_of(pairs))
        };
        let error = env(r#"{"name":"raw","provider":"catch-raw"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("open = true"), "{error}");
        assert!(env(r#"{"name":"raw","provider":"catch-raw","open":true}"#).is_ok());
    }

    #[test]
    fn missing_queue_url_is_named() {
        let env = env_of(&[(
            "HOOKCATCH_ROUTE",
            r#"{"name":"raw","provider":"catch-raw","open":true}"#,
        )]);
        let err = IngestEnv::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("HOOKCATCH_QUEUE_URL"), "{err}");
    }

    #[test]
    fn route_validation_catches_mistakes() {
        let mut route: RouteConfig =
            serde_json::from_str(r#"{"name":"Bad Name","provider":"catch-raw","open":true}"#)
                .unwrap();
        assert!(route.validate().is_err());
        route.name = "ok".into();
        route.auth = Some(AuthConfig::Basic {
            username: "u".into(),
        });
        assert!(
            route
                .validate()
                .unwrap_err()
                .to_string()
                .contains("secrets")
        );
        let unknown = serde_json::from_str::<RouteConfig>(
            r#"{"name":"x","provider":"catch-raw","secret":"typo"}"#,
        );
        assert!(unknown.is_err(), "unknown keys are refused, not ignored");
        for tolerance in [-300, 0, 3601, i64::MAX] {
            let generic: RouteConfig = serde_json::from_value(serde_json::json!({
                "name": "g", "provider": "generic", "secrets": ["k"],
                "signature": {"header": "x-sig", "payload": "{timestamp}.{body}",
                              "timestamp_header": "x-ts", "tolerance_secs": tolerance}
            }))
            .unwrap();
            let error = generic.validate().unwrap_err().to_string();
            assert!(error.contains("tolerance_secs"), "{tolerance}: {error}");
        }
        let adjacent: RouteConfig = serde_json::from_value(serde_json::json!({
            "name": "g", "provider": "generic", "secrets": ["k"],
            "signature": {"header": "x-sig", "payload": "{id}{body}", "id_header": "x-id"}
        }))
        .unwrap();
        let error = adjacent.validate().unwrap_err().to_string();
        assert!(error.contains("separator"), "{error}");
    }

    #[test]
    fn http_hydrator_mistakes_are_named() {
        let base = serde_json::json!({
            "kind": "http", "base_url": "https://api.example.test",
            "auth": {"type": "api-key", "header": "x-api-key", "key": "ssm:/k"},
            "requests": [{"name": "thing", "path": "/things/{id}", "type": "thing", "id": "/id"}]
        });
        let check = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut json = base.clone();
            change(&mut json);
            serde_json::from_value::<HydrateConfig>(json)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate(None))
        };
        check(&|_| {}).unwrap();
        type Change<'a> = &'a dyn Fn(&mut serde_json::Value);
        let cases: [(Change<'_>, &str); 7] = [
            (&|j| j["base_url"] = "api.example.test".into(), "base_url"),
            (&|j| j["auth"]["query"] = "key".into(), "one of them"),
            (&|j| j["requests"] = serde_json::json!([]), "at least one"),
            (
                &|j| j["requests"][0]["path"] = "things/{id}".into(),
                "starts with `/`",
            ),
            (
                &|j| j["requests"][0]["path"] = "/x/{module}".into(),
                "unknown placeholder",
            ),
            (
                &|j| j["requests"][0]["method"] = "DELETE".into(),
                "GET or POST",
            ),
            (
                &|j| {
                    let again = j["requests"][0].clone();
                    j["requests"].as_array_mut().unwrap().push(again);
                },
                "named twice",
            ),
        ];
        for (change, expected) in cases {
            let error = check(change).unwrap_err();
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
        let typo = check(&|j| j["requests"][0]["paht"] = "/x".into()).unwrap_err();
        assert!(typo.contains("paht"), "{typo}");
        let zoho_elsewhere = serde_json::json!({"kind": "zoho-crm", "client_id": "c",
            "client_secret": "ssm:/s", "refresh_token": "ssm:/r"});
        let zoho: HydrateConfig = serde_json::from_value(zoho_elsewhere).unwrap();
        assert!(zoho.validate(Some(ProviderKind::Stripe)).is_err());
        assert!(zoho.validate(Some(ProviderKind::ZohoCrm)).is_ok());
    }

    #[test]
    fn hydrators_send_credentials_over_https_or_to_this_machine_only() {
        let http = |base_url: &str| {
            let config: HydrateConfig = serde_json::from_value(serde_json::json!({
                "kind": "http", "base_url": base_url,
                "requests": [{"name": "n", "path": "/e/{id}", "type": "t", "id": "/id"}]
            }))
            .unwrap();
            config.validate(None)
        };
        assert!(http("https://api.example.com").is_ok());
        assert!(http("http://127.0.0.1:8080").is_ok());
        let error = http("http://api.example.com").unwrap_err();
        assert!(error.contains("https"), "{error}");
        let zoho: HydrateConfig = serde_json::from_value(serde_json::json!({"kind": "zoho-crm",
            "client_id": "c", "client_secret": "ssm:/s", "refresh_token": "ssm:/r",
            "accounts_url": "http://accounts.zoho.com"}))
        .unwrap();
        assert!(zoho.validate(None).is_err());
    }

    #[test]
    fn consumer_env_skips_null_hydrators_and_validates_the_rest() {
        let env = env_of(&[
            ("HOOKCATCH_TABLE", "t"),
            (
                "HOOKCATCH_HYDRATORS",
                r#"{"stripe":null,"x":{"kind":"http","base_url":"https://a.test","requests":[{"name":"n","path":"/e/{id}","type":"t","id":"/id"}]}}"#,
            ),
        ]);
        let parsed = ConsumerEnv::from_env(&env).unwrap();
        assert_eq!(parsed.hydrators.keys().collect::<Vec<_>>(), ["x"]);
        let invalid = env_of(&[
            ("HOOKCATCH_TABLE", "t"),
            (
                "HOOKCATCH_HYDRATORS",
                r#"{"x":{"kind":"http","base_url":"https://a.test","requests":[]}}"#,
            ),
        ]);
        let error = ConsumerEnv::from_env(&invalid).unwrap_err().to_string();
        assert!(error.contains("x: hydrate.requests"), "{error}");
        let plain = env_of(&[
            ("HOOKCATCH_TABLE", "t"),
            (
                "HOOKCATCH_HYDRATORS",
                r#"{"x":{"kind":"http","base_url":"https://a.test","auth":{"type":"bearer","token":"sk_live_plain"},"requests":[{"name":"n","path":"/e/{id}","type":"t","id":"/id"}]}}"#,
            ),
        ]);
        assert!(
            ConsumerEnv::from_env(&plain).is_err(),
            "plain secrets are refused on AWS"
        );
    }

    #[test]
    fn consumer_env_defaults() {
        let env = env_of(&[
            ("HOOKCATCH_TABLE", "t"),
            ("HOOKCATCH_CONSUMER_CONCURRENCY", "0"),
        ]);
        let parsed = ConsumerEnv::from_env(&env).unwrap();
        assert_eq!(parsed.event_retention_days, 30);
        assert_eq!(parsed.concurrency, 1);
        let bad = env_of(&[
            ("HOOKCATCH_TABLE", "t"),
            ("HOOKCATCH_EVENT_RETENTION_DAYS", "x"),
        ]);
        assert!(ConsumerEnv::from_env(&bad).is_err());
    }
}

//! One typed configuration, loaded and validated once at start.
//!
//! A route entry has the same keys everywhere: a `[[routes]]` table in `hookcatch.toml` for the local
//! binary, and the JSON in `HOOKCATCH_ROUTE` for a route Lambda. Secrets are references
//! ([`SecretRef`]), resolved once at init by [`crate::secrets`].

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::extract::ValueSource;
use crate::secrets::SecretRef;

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

    /// Where the provider puts the event type and the delivery id, unless the route says otherwise.
    pub fn default_rules(self) -> Rules {
        let source = |text: &str| Some(ValueSource::parse(text));
        match self {
            ProviderKind::CatchRaw | ProviderKind::Generic | ProviderKind::X => Rules::default(),
            ProviderKind::Github => Rules {
                event_type: source("header:x-github-event"),
                ..Rules::default()
            },
            ProviderKind::Stripe => Rules {
                dedup: source("/id"),
                event_type: source("/type"),
                ..Rules::default()
            },
            ProviderKind::Shopify => Rules {
                event_type: source("header:x-shopify-topic"),
                ..Rules::default()
            },
            ProviderKind::StandardWebhooks => Rules {
                event_type: source("/type"),
                ..Rules::default()
            },
            ProviderKind::Slack => Rules {
                dedup: source("/event_id"),
                // Events API, then slash commands, then interactivity (`payload=` JSON).
                event_type: source("/event/type | /type | /command | /payload/type"),
                records: slack_record_rules(),
            },
            ProviderKind::ZohoCrm => Rules {
                // Zoho sends no delivery id; one notification is one channel, time, operation and ids.
                dedup: source("/channel_id + /server_time + /operation + /ids"),
                event_type: source("/module + /operation"),
                ..Rules::default()
            },
            ProviderKind::Twilio => Rules {
                dedup: source("header:i-twilio-idempotency-token"),
                event_type: source("/MessageStatus | /SmsStatus | /CallStatus | /EventType"),
                ..Rules::default()
            },
            ProviderKind::Zoom => Rules {
                dedup: source("/event + /event_ts"),
                event_type: source("/event"),
                ..Rules::default()
            },
            ProviderKind::Meta => Rules {
                event_type: source("/object"),
                ..Rules::default()
            },
            ProviderKind::MicrosoftGraph => Rules {
                event_type: source("/value/0/changeType | /value/0/lifecycleEvent"),
                ..Rules::default()
            },
        }
    }
}

/// Slack sends whole entities: keep the latest user, channel and message as records.
/// The first rule whose `when` matches is used, so message edits and deletions come before messages.
fn slack_record_rules() -> Vec<RecordRule> {
    let source = ValueSource::parse;
    let rule = |when: &[&str], record_type: &str, id: &str, version: &str, data: &str| RecordRule {
        when: when.iter().map(|w| (*w).to_owned()).collect(),
        record_type: source(record_type),
        id: source(id),
        version: Some(source(version)),
        data: (!data.is_empty()).then(|| data.to_owned()),
        deleted: false,
    };
    vec![
        rule(
            &["user_change", "team_join"],
            "user",
            "/event/user/id",
            "/event/user/updated | /event_time",
            "/event/user",
        ),
        rule(
            &["channel_created", "channel_rename"],
            "channel",
            "/event/channel/id",
            "/event_time",
            "/event/channel",
        ),
        RecordRule {
            deleted: true,
            ..rule(
                &["channel_deleted"],
                "channel",
                "/event/channel",
                "/event_time",
                "",
            )
        },
        rule(
            &["/event/subtype=message_changed"],
            "message",
            "/event/channel + /event/message/ts",
            "/event/ts",
            "/event/message",
        ),
        RecordRule {
            deleted: true,
            ..rule(
                &["/event/subtype=message_deleted"],
                "message",
                "/event/channel + /event/deleted_ts",
                "/event/ts",
                "",
            )
        },
        rule(
            &["message"],
            "message",
            "/event/channel + /event/ts",
            "/event/ts",
            "/event",
        ),
    ]
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
    crate::request::JSON_UTF8.to_owned()
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

/// Where a record's type, id and version come from, so a full-record provider needs config, not code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRule {
    /// When the rule applies: event types (`channel_*` matches a prefix) or `/pointer=value` tests;
    /// any one matching is enough. Empty: always. A route's first matching rule is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
    /// A literal type name, or a source such as `/object` or `header:x-topic`.
    #[serde(rename = "type")]
    pub record_type: ValueSource,
    pub id: ValueSource,
    /// Newer-wins ordering; without it, the later received event wins.
    #[serde(default)]
    pub version: Option<ValueSource>,
    /// JSON pointer to the record's data inside the body; default: the whole body.
    #[serde(default)]
    pub data: Option<String>,
    /// The event removes the record: a tombstone (deleted flag, no data) is written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl RecordRule {
    /// Whether this rule applies to an event of `event_type` with body `json`.
    pub fn applies(&self, event_type: Option<&str>, json: Option<&serde_json::Value>) -> bool {
        self.when.is_empty() || any_condition_holds(&self.when, event_type, json)
    }
}

/// Whether any of `conditions` holds: an event type (`prefix*` matches a prefix) or a
/// `/pointer=value` test on `json`. No conditions: false.
pub fn any_condition_holds(
    conditions: &[String],
    event_type: Option<&str>,
    json: Option<&serde_json::Value>,
) -> bool {
    conditions
        .iter()
        .any(|condition| match condition.split_once('=') {
            Some((pointer, expected)) if pointer.starts_with('/') => json
                .and_then(|j| j.pointer(pointer))
                .and_then(|v| v.as_str())
                .is_some_and(|v| v == expected),
            _ => event_type.is_some_and(|t| match condition.strip_suffix('*') {
                Some(prefix) => t.starts_with(prefix),
                None => t == condition,
            }),
        })
}

/// The per-event processing rules the consumer applies. They travel inside the envelope, so the
/// consumer needs no copy of every route's configuration and a config change applies per event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<ValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<ValueSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordRule>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.dedup.is_none() && self.event_type.is_none() && self.records.is_empty()
    }
}

/// A route's rules as its envelopes carry them: one copy shared by every envelope, with its JSON
/// written once. Slack's record rules alone are longer than a small event, and cloning and
/// serializing them per request was a third of that route's ingest time.
#[derive(Clone, Default)]
pub struct SharedRules(Arc<RenderedRules>);

#[derive(Default)]
struct RenderedRules {
    rules: Rules,
    /// Filled when first written: at once by the ingest side, never by a consumer that only reads.
    json: OnceLock<Box<RawValue>>,
}

impl SharedRules {
    /// Rules that will be written many times: their JSON is rendered now, off the request path.
    pub fn rendered(rules: Rules) -> Self {
        let shared = SharedRules::from(rules);
        shared.json();
        shared
    }

    /// The length of the rules' JSON, for sizing a message before writing it.
    pub fn json_len(&self) -> usize {
        self.json().get().len()
    }

    fn json(&self) -> &RawValue {
        self.0.json.get_or_init(|| {
            serde_json::value::to_raw_value(&self.0.rules).expect("rules always serialize")
        })
    }
}

impl From<Rules> for SharedRules {
    fn from(rules: Rules) -> Self {
        SharedRules(Arc::new(RenderedRules {
            rules,
            json: OnceLock::new(),
        }))
    }
}

impl std::ops::Deref for SharedRules {
    type Target = Rules;
    fn deref(&self) -> &Rules {
        &self.0.rules
    }
}

impl PartialEq for SharedRules {
    fn eq(&self, other: &Self) -> bool {
        self.0.rules == other.0.rules
    }
}

impl std::fmt::Debug for SharedRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.rules.fmt(f)
    }
}

impl Serialize for SharedRules {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedRules {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Rules::deserialize(deserializer).map(SharedRules::from)
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
    crate::verify::TIMESTAMP_TOLERANCE_SECS
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
    #[serde(default, deserialize_with = "list_or_comma_separated")]
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

/// How the consumer fetches what a route's id-only notifications point to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HydrateConfig {
    /// Zoho CRM's REST API with an OAuth refresh token.
    ZohoCrm(ZohoHydration),
    /// Any HTTP API, described by configuration: a connection, an authorization and named request
    /// templates (Stripe thin events, Microsoft Graph resources, an in-house API).
    Http(HttpHydration),
}

impl HydrateConfig {
    /// The hydrator's secret references, in the order [`crate::hydrate::build`] takes them.
    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        match self {
            HydrateConfig::ZohoCrm(zoho) => [&zoho.client_secret, &zoho.refresh_token]
                .into_iter()
                .chain(
                    zoho.renew
                        .iter()
                        .flat_map(|r| r.channels.iter().map(|c| &c.token)),
                )
                .collect(),
            HydrateConfig::Http(http) => http.auth.secret_refs(),
        }
    }

    fn secret_refs_mut(&mut self) -> Vec<&mut SecretRef> {
        match self {
            HydrateConfig::ZohoCrm(zoho) => [&mut zoho.client_secret, &mut zoho.refresh_token]
                .into_iter()
                .chain(
                    zoho.renew
                        .iter_mut()
                        .flat_map(|r| r.channels.iter_mut().map(|c| &mut c.token)),
                )
                .collect(),
            HydrateConfig::Http(http) => http.auth.secret_refs_mut(),
        }
    }

    /// Checks what serde cannot: limits, URLs, and that templates name what they use.
    /// `provider` is the route's, where known (the consumer Lambda knows only route names).
    pub fn validate(&self, provider: Option<ProviderKind>) -> Result<(), String> {
        let http_url = |name: &str, url: &str| {
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(())
            } else {
                Err(format!("hydrate.{name} must be an http(s) URL"))
            }
        };
        match self {
            HydrateConfig::ZohoCrm(zoho) => {
                if provider.is_some_and(|p| p != ProviderKind::ZohoCrm) {
                    return Err("`hydrate` of kind zoho-crm is for zoho-crm routes".into());
                }
                if zoho.fields.len() > 50 {
                    return Err("hydrate.fields: Zoho takes at most 50 fields".into());
                }
                http_url("accounts_url", &zoho.accounts_url)
            }
            HydrateConfig::Http(http) => {
                http_url("base_url", &http.base_url)?;
                if let HttpAuth::Oauth2RefreshToken { token_url, .. }
                | HttpAuth::Oauth2ClientCredentials { token_url, .. } = &http.auth
                {
                    http_url("auth.token_url", token_url)?;
                }
                if let HttpAuth::ApiKey { header, query, .. } = &http.auth
                    && header.is_some() == query.is_some()
                {
                    return Err("hydrate.auth: an api-key goes in a `header` or a `query` parameter (one of them)".into());
                }
                if http.requests.is_empty() {
                    return Err("hydrate.requests: name at least one request".into());
                }
                let mut names = std::collections::BTreeSet::new();
                for request in &http.requests {
                    if !names.insert(request.name.as_str()) {
                        return Err(format!(
                            "hydrate.requests: `{}` is named twice",
                            request.name
                        ));
                    }
                    if !request.path.starts_with('/') {
                        return Err(format!(
                            "hydrate.requests.{}: `path` starts with `/` (it follows base_url)",
                            request.name
                        ));
                    }
                    if !matches!(request.method.as_str(), "GET" | "POST") {
                        return Err(format!(
                            "hydrate.requests.{}: method is GET or POST",
                            request.name
                        ));
                    }
                    for text in std::iter::once(&request.path).chain(request.query.values()) {
                        crate::hydrate::Template::parse(text)
                            .map_err(|e| format!("hydrate.requests.{}: {e}", request.name))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A configured HTTP hydrator: where the API is, how to authorize, what to fetch for what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHydration {
    /// The API's base URL (`https://api.stripe.com`, `https://graph.microsoft.com/v1.0`).
    pub base_url: String,
    #[serde(default)]
    pub auth: HttpAuth,
    /// Headers sent with every call (`Stripe-Version`, `Accept`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON pointer to an array in the notification whose elements are hydrated one by one
    /// (Graph's `/value`); default: the notification is one item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// Tried in order for each item; the first whose `when` matches is used. An item no request
    /// matches yields no record.
    pub requests: Vec<HttpRequestTemplate>,
    /// Calls at once from one consumer.
    #[serde(default = "http_concurrency")]
    pub concurrency: usize,
    #[serde(default = "zoho_timeout_ms")]
    pub timeout_ms: u64,
}

fn http_concurrency() -> usize {
    4
}

/// How calls to a configured API are authorized. Secrets are references, as everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HttpAuth {
    #[default]
    None,
    /// `Authorization: Bearer {token}` (Stripe's secret or restricted key).
    Bearer { token: SecretRef },
    /// A key in a header or in a query parameter.
    ApiKey {
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        query: Option<String>,
        key: SecretRef,
    },
    Basic {
        username: String,
        password: SecretRef,
    },
    /// An access token from a refresh token, shared and refreshed like Zoho's.
    Oauth2RefreshToken {
        token_url: String,
        client_id: String,
        client_secret: SecretRef,
        refresh_token: SecretRef,
        #[serde(default)]
        scope: Option<String>,
    },
    /// An access token for the app itself (Microsoft Graph application permissions).
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretRef,
        #[serde(default)]
        scope: Option<String>,
    },
}

impl HttpAuth {
    fn secret_refs(&self) -> Vec<&SecretRef> {
        match self {
            HttpAuth::None => vec![],
            HttpAuth::Bearer { token } => vec![token],
            HttpAuth::ApiKey { key, .. } => vec![key],
            HttpAuth::Basic { password, .. } => vec![password],
            HttpAuth::Oauth2RefreshToken {
                client_secret,
                refresh_token,
                ..
            } => vec![client_secret, refresh_token],
            HttpAuth::Oauth2ClientCredentials { client_secret, .. } => vec![client_secret],
        }
    }

    fn secret_refs_mut(&mut self) -> Vec<&mut SecretRef> {
        match self {
            HttpAuth::None => vec![],
            HttpAuth::Bearer { token } => vec![token],
            HttpAuth::ApiKey { key, .. } => vec![key],
            HttpAuth::Basic { password, .. } => vec![password],
            HttpAuth::Oauth2RefreshToken {
                client_secret,
                refresh_token,
                ..
            } => vec![client_secret, refresh_token],
            HttpAuth::Oauth2ClientCredentials { client_secret, .. } => vec![client_secret],
        }
    }
}

/// One named call: when it applies to an item, where to send it, and what record it yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestTemplate {
    pub name: String,
    /// As a record rule's `when`, tested on the item: event types (`prefix*`) or
    /// `/pointer=value`. Empty: always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
    #[serde(default = "http_get")]
    pub method: String,
    /// Appended to `base_url`. Placeholders: `{id}` (the record id), `{type}` (the event type), or
    /// any source in braces, looked up in the item: `{/resource}`, `{header:x-shop}`. Each value is
    /// percent-encoded; a `/pointer*` placeholder keeps its slashes (Graph's resource paths).
    pub path: String,
    /// Query parameters, with the same placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The record type: a literal or a source in the item.
    #[serde(rename = "type")]
    pub record_type: ValueSource,
    /// The record id: a source in the item.
    pub id: ValueSource,
    /// Item conditions (as `when`) under which the record is gone: a tombstone, without a call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_when: Vec<String>,
    /// JSON pointer to the record inside the response; default: the whole response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// JSON pointer to the record's version inside the record (`/updated`, `/lastModifiedDateTime`);
    /// default: the notification's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn http_get() -> String {
    "GET".to_owned()
}

/// Zoho CRM hydration: the OAuth client of a self client or server app, and what to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoHydration {
    /// The accounts server of the org's data center (`https://accounts.zoho.eu`, `….in`, …).
    #[serde(default = "zoho_accounts_us")]
    pub accounts_url: String,
    /// The API base; default: the `api_domain` named by the token response.
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default = "zoho_api_version")]
    pub api_version: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    pub refresh_token: SecretRef,
    /// Field API names to fetch (at most 50), as a list or comma-separated: records of one module
    /// are then fetched up to 50 ids per call. Empty: every field, one call per record.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub fields: Vec<String>,
    /// Calls to Zoho at once from one consumer.
    #[serde(default = "zoho_concurrency")]
    pub concurrency: usize,
    #[serde(default = "zoho_timeout_ms")]
    pub timeout_ms: u64,
    /// Channels the consumer Lambda renews on its schedule, pointing them at `notify_url`
    /// (locally, `hookcatch zoho renew` renews the route's `channels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew: Option<ZohoRenew>,
}

/// What a scheduled renewal enables again, before Zoho lets the channels expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoRenew {
    pub notify_url: String,
    pub channels: Vec<ZohoChannel>,
    /// Channel life asked for: at most 7 on Zoho API v4 and later, 1 on v2–v3.
    #[serde(default = "zoho_channel_days")]
    pub days: i64,
}

fn zoho_channel_days() -> i64 {
    7
}

/// A list, or one comma-separated string (what a CloudFormation parameter can hold).
fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Fields {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Fields::deserialize(d)? {
        Fields::List(list) => list,
        Fields::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn zoho_accounts_us() -> String {
    "https://accounts.zoho.com".to_owned()
}
fn zoho_api_version() -> String {
    "v8".to_owned()
}
fn zoho_concurrency() -> usize {
    5
}
fn zoho_timeout_ms() -> u64 {
    10_000
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

    /// The route's own rules, falling back to its provider's defaults.
    pub fn rules(&self) -> Rules {
        let defaults = self.provider.default_rules();
        Rules {
            dedup: self.dedup.clone().or(defaults.dedup),
            event_type: self.event_type.clone().or(defaults.event_type),
            records: if self.records.is_empty() {
                defaults.records
            } else {
                self.records.clone()
            },
        }
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

/// A route with its secrets resolved: what a verifier is built from.
#[derive(Clone)]
pub struct RouteSettings {
    pub config: RouteConfig,
    /// Resolved `secrets`, newest first.
    pub secrets: Vec<crate::secrets::Secret>,
    /// Resolved `verify_tokens` (meta).
    pub verify_tokens: Vec<crate::secrets::Secret>,
    /// Each zoho-crm channel id with its resolved token.
    pub channel_tokens: Vec<(String, crate::secrets::Secret)>,
    /// The hydrator's resolved secrets, in [`HydrateConfig`]'s order.
    pub hydrate_secrets: Vec<crate::secrets::Secret>,
}

impl RouteSettings {
    /// `resolved` holds the values of [`RouteConfig::secret_refs`], in that order.
    pub fn new(config: RouteConfig, resolved: Vec<crate::secrets::Secret>) -> Self {
        let mut values = resolved.into_iter();
        let secrets = values.by_ref().take(config.secrets.len()).collect();
        let verify_tokens = values.by_ref().take(config.verify_tokens.len()).collect();
        let channel_tokens = config
            .channels
            .iter()
            .zip(values.by_ref())
            .map(|(channel, token)| (channel.id.clone(), token))
            .collect();
        let hydrate_secrets = values.collect();
        RouteSettings {
            config,
            secrets,
            verify_tokens,
            channel_tokens,
            hydrate_secrets,
        }
    }

    /// Settings with `secrets` replaced by these literal values and every other secret reference
    /// literal too (tests and examples).
    #[cfg(any(test, feature = "fakes"))]
    pub fn with_secrets(mut config: RouteConfig, secrets: &[&str]) -> Self {
        config.secrets = secrets.iter().map(|s| SecretRef::parse(s)).collect();
        let resolved = config
            .secret_refs()
            .into_iter()
            .map(|r| match r {
                SecretRef::Literal(value) => crate::secrets::Secret::new(value),
                other => panic!("with_secrets needs literal secrets, not {other:?}"),
            })
            .collect();
        RouteSettings::new(config, resolved)
    }

    /// Checks resolved secrets for the provider's format, once at start.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        let fail = |reason: &str| ConfigError::Route {
            route: self.config.name.clone(),
            reason: reason.to_owned(),
        };
        if self.config.provider == ProviderKind::StandardWebhooks {
            for secret in &self.secrets {
                if crate::verify::standard_webhooks_key(secret.expose())
                    .is_none_or(|k| k.is_empty())
                {
                    return Err(fail(
                        "a Standard Webhooks secret must be base64 (optionally after `whsec_`)",
                    ));
                }
            }
        }
        let all = self
            .secrets
            .iter()
            .chain(&self.verify_tokens)
            .chain(self.channel_tokens.iter().map(|(_, t)| t));
        if all.clone().any(|s| s.expose().is_empty()) {
            return Err(fail("a secret resolved to an empty value"));
        }
        if self
            .channel_tokens
            .iter()
            .any(|(_, token)| token.expose().len() > 50)
        {
            return Err(fail("a Zoho channel token is at most 50 characters"));
        }
        Ok(())
    }
}

impl std::fmt::Debug for RouteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.secrets.len()
            + self.verify_tokens.len()
            + self.channel_tokens.len()
            + self.hydrate_secrets.len();
        f.debug_struct("RouteSettings")
            .field("config", &self.config)
            .field("secrets", &format_args!("[{count} redacted]"))
            .finish()
    }
}

/// Reads an environment variable through a lookup function, so tests need not touch the process env.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn required(env: EnvLookup<'_>, name: &'static str) -> Result<String, ConfigError> {
    env(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn optional_number<T: std::str::FromStr>(
    env: EnvLookup<'_>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("`{v}` is not a number"),
        }),
    }
}

fn optional(env: EnvLookup<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

/// Everything a route Lambda reads from its environment.
#[derive(Debug, Clone)]
pub struct IngestEnv {
    pub route: RouteConfig,
    pub queue_url: String,
    /// Bucket for bodies too large to travel inside one queue message.
    pub bucket: Option<String>,
    /// Upper bound for enqueueing (all attempts): the route must answer within its provider's deadline.
    pub enqueue_timeout: Duration,
}

impl IngestEnv {
    pub const ROUTE: &'static str = "HOOKCATCH_ROUTE";
    pub const QUEUE_URL: &'static str = "HOOKCATCH_QUEUE_URL";
    pub const BUCKET: &'static str = "HOOKCATCH_BUCKET";
    pub const ENQUEUE_TIMEOUT_MS: &'static str = "HOOKCATCH_ENQUEUE_TIMEOUT_MS";

    pub fn from_env(env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let route_json = required(env, Self::ROUTE)?;
        let route: RouteConfig =
            serde_json::from_str(&route_json).map_err(|e| ConfigError::Invalid {
                name: Self::ROUTE,
                reason: e.to_string(),
            })?;
        route.validate()?;
        // A deployed function must not carry secrets in plain environment values.
        if let Some(plain) = route.secret_refs().iter().find(|s| !s.is_external()) {
            return Err(ConfigError::Route {
                route: route.name.clone(),
                reason: format!(
                    "on AWS, secrets must be `ssm:` references, not {}",
                    plain.kind_name()
                ),
            });
        }
        Ok(IngestEnv {
            route,
            queue_url: required(env, Self::QUEUE_URL)?,
            bucket: optional(env, Self::BUCKET),
            enqueue_timeout: Duration::from_millis(optional_number(
                env,
                Self::ENQUEUE_TIMEOUT_MS,
                2_000u64,
            )?),
        })
    }
}

/// Everything the consumer Lambda reads from its environment.
#[derive(Debug, Clone)]
pub struct ConsumerEnv {
    pub table: String,
    pub bucket: Option<String>,
    /// Days an event item is kept (DynamoDB TTL); 0 keeps events forever.
    pub event_retention_days: u32,
    /// Messages of one batch processed at the same time.
    pub concurrency: usize,
    /// Hydrators by route name (`HOOKCATCH_HYDRATORS`, a JSON object); secrets as `ssm:` references.
    pub hydrators: BTreeMap<String, HydrateConfig>,
    /// The events queue, to postpone retryable failures with a growing delay (optional).
    pub queue_url: Option<String>,
}

impl ConsumerEnv {
    pub const TABLE: &'static str = "HOOKCATCH_TABLE";
    pub const BUCKET: &'static str = "HOOKCATCH_BUCKET";
    pub const RETENTION_DAYS: &'static str = "HOOKCATCH_EVENT_RETENTION_DAYS";
    pub const CONCURRENCY: &'static str = "HOOKCATCH_CONSUMER_CONCURRENCY";
    pub const HYDRATORS: &'static str = "HOOKCATCH_HYDRATORS";
    pub const QUEUE_URL: &'static str = "HOOKCATCH_QUEUE_URL";

    pub fn from_env(env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        Ok(ConsumerEnv {
            table: required(env, Self::TABLE)?,
            bucket: optional(env, Self::BUCKET),
            event_retention_days: optional_number(env, Self::RETENTION_DAYS, 30u32)?,
            concurrency: optional_number(env, Self::CONCURRENCY, 10usize)?.max(1),
            queue_url: optional(env, Self::QUEUE_URL),
            hydrators: match optional(env, Self::HYDRATORS) {
                None => BTreeMap::new(),
                Some(json) => {
                    let invalid = |reason: String| ConfigError::Invalid {
                        name: Self::HYDRATORS,
                        reason,
                    };
                    // `null` entries are routes without a hydrator (what a template condition
                    // leaves behind).
                    let hydrators: BTreeMap<String, Option<HydrateConfig>> =
                        serde_json::from_str(&json).map_err(|e| invalid(e.to_string()))?;
                    let hydrators: BTreeMap<String, HydrateConfig> = hydrators
                        .into_iter()
                        .filter_map(|(route, config)| Some((route, config?)))
                        .collect();
                    for (route, config) in &hydrators {
                        config
                            .validate(None)
                            .map_err(|e| invalid(format!("{route}: {e}")))?;
                    }
                    let plain = hydrators
                        .values()
                        .flat_map(HydrateConfig::secret_refs)
                        .find(|s| !s.is_external());
                    if let Some(plain) = plain {
                        return Err(ConfigError::Invalid {
                            name: Self::HYDRATORS,
                            reason: format!(
                                "on AWS, secrets must be `ssm:` references, not {}",
                                plain.kind_name()
                            ),
                        });
                    }
                    hydrators
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(parsed.route.name, "raw");
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
    fn missing_queue_url_is_named() {
        let env = env_of(&[(
            "HOOKCATCH_ROUTE",
            r#"{"name":"raw","provider":"catch-raw"}"#,
        )]);
        let err = IngestEnv::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("HOOKCATCH_QUEUE_URL"), "{err}");
    }

    #[test]
    fn route_validation_catches_mistakes() {
        let mut route: RouteConfig =
            serde_json::from_str(r#"{"name":"Bad Name","provider":"catch-raw"}"#).unwrap();
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

//! One typed configuration, loaded and validated once at start.
//!
//! A route entry has the same keys everywhere: a `[[routes]]` table in `hookcatch.toml` for the local
//! binary, and the JSON in `HOOKCATCH_ROUTE` for a route Lambda. Secrets are references
//! ([`SecretRef`]), resolved once at init by [`crate::secrets`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::CatchRaw => "catch-raw",
            ProviderKind::Github => "github",
            ProviderKind::Stripe => "stripe",
            ProviderKind::Shopify => "shopify",
            ProviderKind::StandardWebhooks => "standard-webhooks",
        }
    }

    /// Whether requests are signed with the route's secrets (so at least one is required).
    pub fn is_signed(self) -> bool {
        !matches!(self, ProviderKind::CatchRaw)
    }

    /// Where the provider puts the event type and the delivery id, unless the route says otherwise.
    pub fn default_rules(self) -> Rules {
        let source = |text: &str| Some(ValueSource::parse(text));
        match self {
            ProviderKind::CatchRaw => Rules::default(),
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
        }
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
}

/// The per-event processing rules the consumer applies. They travel inside the envelope, so the
/// consumer needs no copy of every route's configuration and a config change applies per event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<ValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<ValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordRule>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.dedup.is_none() && self.event_type.is_none() && self.record.is_none()
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
    #[serde(default)]
    pub record: Option<RecordRule>,
    /// Bodies larger than this are refused with 413.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
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
        match &self.auth {
            Some(AuthConfig::ApiKey {
                header: None,
                query: None,
            }) => {
                return Err(fail("auth api_key needs `header`, `query` or both"));
            }
            Some(_) if self.secrets.is_empty() => {
                return Err(fail("auth is configured but `secrets` is empty"));
            }
            Some(_) if self.provider.is_signed() => {
                return Err(fail(
                    "`auth` is for catch-raw routes; signed providers use `secrets`",
                ));
            }
            _ => {}
        }
        if self.provider.is_signed() && self.secrets.is_empty() {
            return Err(fail(
                "this provider signs its requests: `secrets` needs the signing secret",
            ));
        }
        Ok(())
    }

    /// The route's own rules, falling back to its provider's defaults.
    pub fn rules(&self) -> Rules {
        let defaults = self.provider.default_rules();
        Rules {
            dedup: self.dedup.clone().or(defaults.dedup),
            event_type: self.event_type.clone().or(defaults.event_type),
            record: self.record.clone().or(defaults.record),
        }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }
}

/// A route with its secrets resolved: what a verifier is built from.
#[derive(Clone)]
pub struct RouteSettings {
    pub config: RouteConfig,
    pub secrets: Vec<crate::secrets::Secret>,
}

impl RouteSettings {
    /// Checks resolved secrets for the provider's format, once at start.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        if self.config.provider == ProviderKind::StandardWebhooks {
            for secret in &self.secrets {
                if crate::verify::standard_webhooks_key(secret.expose())
                    .is_none_or(|k| k.is_empty())
                {
                    return Err(ConfigError::Route {
                        route: self.config.name.clone(),
                        reason:
                            "a Standard Webhooks secret must be base64 (optionally after `whsec_`)"
                                .into(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for RouteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSettings")
            .field("config", &self.config)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
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
        if let Some(plain) = route.secrets.iter().find(|s| !s.is_external()) {
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
}

impl ConsumerEnv {
    pub const TABLE: &'static str = "HOOKCATCH_TABLE";
    pub const BUCKET: &'static str = "HOOKCATCH_BUCKET";
    pub const RETENTION_DAYS: &'static str = "HOOKCATCH_EVENT_RETENTION_DAYS";
    pub const CONCURRENCY: &'static str = "HOOKCATCH_CONSUMER_CONCURRENCY";

    pub fn from_env(env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        Ok(ConsumerEnv {
            table: required(env, Self::TABLE)?,
            bucket: optional(env, Self::BUCKET),
            event_retention_days: optional_number(env, Self::RETENTION_DAYS, 30u32)?,
            concurrency: optional_number(env, Self::CONCURRENCY, 10usize)?.max(1),
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

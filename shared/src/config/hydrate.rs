//! How the consumer fetches what a route's id-only notifications point to: the `hydrate` key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ProviderKind, ZohoChannel};
use crate::model::value::ValueSource;
use crate::secrets::SecretRef;

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

    pub(super) fn secret_refs_mut(&mut self) -> Vec<&mut SecretRef> {
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
            if crate::tls::is_safe_outbound_url(url) {
                Ok(())
            } else {
                Err(format!(
                    "hydrate.{name} must be an https URL (plain http only to this machine: \
                     127.0.0.1, [::1] or localhost)"
                ))
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
                if let Some(api_url) = &zoho.api_url {
                    http_url("api_url", api_url)?;
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
                if let Some(renew) = &http.renew {
                    if !(720..=43_200).contains(&renew.minutes) {
                        return Err("hydrate.renew.minutes: between 720 (the 12 hours between \
                                    renewals) and 43 200"
                            .into());
                    }
                    let plain = |id: &String| {
                        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    };
                    if renew.subscriptions.is_empty() || !renew.subscriptions.iter().all(plain) {
                        return Err("hydrate.renew.subscriptions: one or more subscription ids \
                                    (letters, digits and `-`)"
                            .into());
                    }
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
                    if request.path.contains("*}") && request.allow_paths.is_empty() {
                        return Err(format!(
                            "hydrate.requests.{}: a `{{/pointer*}}` path lets the sender choose what \
                             is fetched: list the paths it may reach in `allow_paths`",
                            request.name
                        ));
                    }
                    if let Some(bad) = request
                        .allow_paths
                        .iter()
                        .find(|p| !p.starts_with('/') || p.trim_end_matches('/').is_empty())
                    {
                        return Err(format!(
                            "hydrate.requests.{}: allow_paths `{bad}` must start with `/` and name \
                             a path (`/` alone allows every path)",
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
                        crate::model::template::Template::parse(text)
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
    /// Microsoft Graph subscriptions kept alive: each renewal (the consumer Lambda's schedule, twice
    /// a day; `serve` at start and then twice a day) PATCHes `{base_url}/subscriptions/{id}` with an
    /// `expirationDateTime` `minutes` ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew: Option<GraphRenew>,
}

/// Graph subscriptions to renew, and for how long each time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphRenew {
    pub subscriptions: Vec<String>,
    /// Each renewal's lifetime: at most the resource's maximum (Graph refuses more), and more than
    /// the 12 hours between renewals.
    #[serde(default = "graph_renew_minutes")]
    pub minutes: u32,
}

fn graph_renew_minutes() -> u32 {
    4230
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

    pub(super) fn secret_refs_mut(&mut self) -> Vec<&mut SecretRef> {
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
    /// The paths the request may reach (`/users/{id}/messages`): the filled path must start with one
    /// of them, ASCII case ignored, ending at a `/`. Required when `path` takes a whole path from the
    /// item (`{/pointer*}`): the sender would otherwise choose what the route's token fetches or
    /// tombstones. Tombstones are held to them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_paths: Vec<String>,
    /// JSON pointer to the record's id inside the fetched record (`/id`): the record is keyed by
    /// what the API returned, not by the notification's word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_id: Option<String>,
}

impl HttpRequestTemplate {
    /// Whether the filled `path` (as sent, percent-encoded) is one `allow_paths` admits; any path
    /// when none are configured.
    pub fn allows(&self, path: &str) -> bool {
        self.allow_paths.is_empty()
            || self.allow_paths.iter().any(|prefix| {
                let prefix = prefix.trim_end_matches('/');
                path.len() >= prefix.len()
                    && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
                    && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/' | b'?'))
            })
    }
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
pub(super) fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
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

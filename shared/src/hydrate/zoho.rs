//! Zoho CRM hydration. A notification names a module, an operation and record ids; the consumer
//! fetches those records through the CRM API and stores them, newest `Modified_Time` winning.
//!
//! - All ids of one module in a batch are fetched together: up to 50 per call when `fields` are
//!   configured (the list endpoint requires them), else one call per record, `concurrency` at once.
//!   An id named by several notifications is fetched once.
//! - `delete` needs no call: it leaves a tombstone. So does a record the API no longer returns.
//! - One access token for every task and every consumer ([`TokenSource`]); a 401 refreshes it
//!   once and retries. 429, 5xx and timeouts fail only the notifications that needed that module,
//!   as retryable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::token::{OAuthRefresh, TokenSource, read_json, send};
use crate::clock::Clock;
use crate::config::ZohoHydration;
use crate::model::document::AtMost;
use crate::model::value::RecordVersion;
use crate::ports::{HydrateError, HydrationItem, Hydrator, RecordItem, TokenCache};
use crate::secrets::Secret;

/// A notification naming more ids than this is not hydrated: it fails (not retryably) and waits in
/// the dead-letter queue, where the alarm points at it, instead of spending thousands of API
/// credits and DynamoDB writes on one message. Zoho's own bulk APIs stop at 100 records per call.
pub const MAX_IDS_PER_NOTIFICATION: usize = 1000;

/// The list endpoint takes at most this many ids per call.
const IDS_PER_CALL: usize = 50;

pub struct ZohoHydrator {
    route: String,
    api_url: Option<String>,
    api_version: String,
    fields: Vec<String>,
    concurrency: usize,
    http: reqwest::Client,
    tokens: TokenSource,
    clock: Arc<dyn Clock>,
    /// What the scheduled renewal enables again, with each channel's resolved token.
    renewal: Option<(crate::config::ZohoRenew, Vec<Secret>)>,
}

#[derive(Deserialize)]
struct Notification {
    module: String,
    operation: String,
    /// One more than the most accepted, so that an oversized list is named, not built whole.
    #[serde(default)]
    ids: AtMost<Value, { MAX_IDS_PER_NOTIFICATION + 1 }>,
    #[serde(default)]
    server_time: Option<i64>,
}

/// Letters, digits and `_`: Zoho's module API names (`Leads`, `Custom_Module1`) and record ids
/// (digits) are such names, and none is a path of its own (`..`).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Notification {
    /// Whether its module and every id are plain names, safe to put in a request path.
    fn names_are_plain(&self) -> bool {
        plain_name(&self.module)
            && self
                .ids
                .0
                .iter()
                .filter_map(id_text)
                .all(|id| plain_name(&id))
    }
}

fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

type ModuleResult = Result<HashMap<String, Value>, HydrateError>;

impl ZohoHydrator {
    pub fn new(
        route: &str,
        config: &ZohoHydration,
        client_secret: Secret,
        refresh_token: Secret,
        tokens: Arc<dyn TokenCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = super::http_client(config.timeout_ms);
        let refresh = OAuthRefresh {
            token_url: format!(
                "{}/oauth/v2/token",
                config.accounts_url.trim_end_matches('/')
            ),
            client_id: config.client_id.clone(),
            client_secret,
            refresh_token: Some(refresh_token),
            scope: None,
        };
        ZohoHydrator {
            route: route.to_owned(),
            api_url: config
                .api_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            api_version: config.api_version.clone(),
            fields: config.fields.clone(),
            concurrency: config.concurrency.max(1),
            tokens: TokenSource::new(
                format!("zoho-crm#{route}#{}", config.client_id),
                refresh,
                http.clone(),
                tokens,
                clock.clone(),
            ),
            http,
            clock,
            renewal: None,
        }
    }

    /// Renews these channels when [`Hydrator::renew_subscriptions`] runs (the consumer's schedule).
    pub fn with_renewal(mut self, renew: crate::config::ZohoRenew, tokens: Vec<Secret>) -> Self {
        self.renewal = Some((renew, tokens));
        self
    }

    /// Token refreshes this process made.
    pub fn refresh_count(&self) -> u64 {
        self.tokens.refresh_count()
    }

    /// GET `/crm/{version}/{path}`: `None` for 204 (nothing found).
    async fn get(&self, path: &str) -> Result<Option<Value>, HydrateError> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// A CRM API call: `None` for 204. A 401 refreshes the token once and tries again.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, HydrateError> {
        let mut rejected: Option<String> = None;
        loop {
            let token = self.tokens.token(rejected.as_deref()).await?;
            let base = self
                .api_url
                .clone()
                .unwrap_or_else(|| token.api_domain.trim_end_matches('/').to_owned());
            // The token's `api_domain` is the accounts server's word: the token goes nowhere else
            // than https (or this machine).
            if !crate::tls::is_safe_outbound_url(&base) {
                return Err(HydrateError::Failed(format!(
                    "the API domain `{base}` is not https"
                )));
            }
            let url = format!("{base}/crm/{}/{path}", self.api_version);
            let mut request = self.http.request(method.clone(), &url).header(
                "authorization",
                format!("Zoho-oauthtoken {}", token.access_token),
            );
            if let Some(body) = &body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let response = send(request).await?;
            let status = response.status().as_u16();
            match status {
                204 => return Ok(None),
                200 | 201 => {
                    return read_json(response, "Zoho answer").await.map(Some);
                }
                401 if rejected.is_none() => {
                    tracing::info!(route = %self.route, "Zoho refused the access token; refreshing once");
                    rejected = Some(token.access_token);
                }
                429 => return Err(HydrateError::RateLimited),
                500..=599 => return Err(HydrateError::Transient(format!("Zoho HTTP {status}"))),
                _ => {
                    // Zoho's errors: {"code": …} or, for bulk calls, {"watch"|"data": [{"code": …}]}.
                    let answer = read_json::<Value>(response, "Zoho error")
                        .await
                        .unwrap_or(Value::Null);
                    let code = [
                        &answer["code"],
                        &answer["watch"][0]["code"],
                        &answer["data"][0]["code"],
                    ]
                    .into_iter()
                    .find_map(|c| c.as_str())
                    .unwrap_or_default()
                    .to_owned();
                    return Err(if code == "OAUTH_SCOPE_MISMATCH" {
                        HydrateError::Failed(format!(
                            "Zoho HTTP {status} {code}: the refresh token's scopes do not cover \
                             this call (fetching records needs ZohoCRM.modules.READ; enabling or \
                             renewing channels ZohoCRM.notifications.ALL or .CREATE)"
                        ))
                    } else if status == 401 {
                        HydrateError::Transient(format!("Zoho refused a fresh token: {code}"))
                    } else {
                        HydrateError::Failed(format!("Zoho HTTP {status} {code}"))
                    });
                }
            }
        }
    }

    /// The records of `ids` in `module` that the API returns, by id.
    async fn fetch_module(&self, module: &str, ids: &BTreeSet<String>) -> ModuleResult {
        let module_path: String = form_urlencoded::byte_serialize(module.as_bytes()).collect();
        let ids: Vec<&String> = ids.iter().collect();
        let calls: Vec<String> = if self.fields.is_empty() {
            ids.iter()
                .map(|id| {
                    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
                    format!("{module_path}/{id}")
                })
                .collect()
        } else {
            ids.chunks(IDS_PER_CALL)
                .map(|chunk| {
                    let query = form_urlencoded::Serializer::new(String::new())
                        .append_pair(
                            "ids",
                            &chunk
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                        )
                        .append_pair("fields", &self.fields.join(","))
                        .finish();
                    format!("{module_path}?{query}")
                })
                .collect()
        };
        let responses = futures::stream::iter(calls)
            .map(|path| async move { self.get(&path).await })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut found = HashMap::new();
        for response in responses {
            let Some(body) = response? else { continue };
            for record in body["data"].as_array().into_iter().flatten() {
                if let Some(id) = record.get("id").and_then(id_text) {
                    found.insert(id, record.clone());
                }
            }
        }
        Ok(found)
    }

    fn record(
        &self,
        item: &HydrationItem<'_>,
        module: &str,
        id: String,
        found: Option<&Value>,
        notified_at: i64,
    ) -> RecordItem {
        let now = self.clock.now_ms();
        let (version, data, deleted) = match found {
            Some(record) => (
                record
                    .get("Modified_Time")
                    .and_then(RecordVersion::from_json)
                    .unwrap_or_else(|| RecordVersion::Number(notified_at.to_string())),
                record.clone(),
                false,
            ),
            None => (
                RecordVersion::Number(notified_at.to_string()),
                Value::Null,
                true,
            ),
        };
        RecordItem {
            route: self.route.clone(),
            record_type: module.to_owned(),
            record_id: id,
            version,
            data,
            deleted,
            event_id: item.envelope.id.clone(),
            updated_at_ms: now,
        }
    }
}

#[async_trait::async_trait]
impl Hydrator for ZohoHydrator {
    async fn hydrate_batch(
        &self,
        items: &[HydrationItem<'_>],
    ) -> Vec<Result<Vec<RecordItem>, HydrateError>> {
        let notifications: Vec<Option<Notification>> = items
            .iter()
            .map(|item| serde_json::from_slice(item.body).ok())
            .collect();
        let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for notification in notifications.iter().flatten() {
            if notification.operation != "delete"
                && notification.ids.0.len() <= MAX_IDS_PER_NOTIFICATION
                && notification.names_are_plain()
            {
                wanted
                    .entry(notification.module.as_str())
                    .or_default()
                    .extend(notification.ids.0.iter().filter_map(id_text));
            }
        }
        let fetched: HashMap<&str, ModuleResult> =
            futures::future::join_all(wanted.iter().map(|(module, ids)| async move {
                (*module, self.fetch_module(module, ids).await)
            }))
            .await
            .into_iter()
            .collect();
        let calls: usize = wanted.values().map(BTreeSet::len).sum();
        tracing::debug!(route = %self.route, notifications = items.len(), records = calls, "hydrated a batch");

        items
            .iter()
            .zip(&notifications)
            .map(|(item, notification)| {
                let notification = notification.as_ref().ok_or_else(|| {
                    HydrateError::Failed("body is not a Zoho CRM notification".into())
                })?;
                if !notification.names_are_plain() {
                    return Err(HydrateError::Failed(
                        "the notification's module or ids are not plain names (letters, digits \
                         and `_`): nothing fetched"
                            .into(),
                    ));
                }
                if notification.ids.0.len() > MAX_IDS_PER_NOTIFICATION {
                    return Err(HydrateError::Failed(format!(
                        "the notification lists {} ids, more than {MAX_IDS_PER_NOTIFICATION}; \
                         left unhydrated for a look in the dead-letter queue",
                        notification.ids.0.len()
                    )));
                }
                // `server_time` is the sender's word, unsigned: it may order events, never
                // outrank the receipt (a forged 9e15 would make a tombstone no edit can beat).
                let received = item.envelope.received_at_ms;
                let notified_at = notification
                    .server_time
                    .map_or(received, |t| t.min(received));
                let ids = notification.ids.0.iter().filter_map(id_text);
                if notification.operation == "delete" {
                    return Ok(ids
                        .map(|id| self.record(item, &notification.module, id, None, notified_at))
                        .collect());
                }
                let found = match fetched.get(notification.module.as_str()) {
                    Some(Ok(found)) => found,
                    Some(Err(error)) => return Err(error.clone()),
                    None => unreachable!("every module named is fetched"),
                };
                Ok(ids
                    .map(|id| {
                        let record = found.get(&id);
                        self.record(item, &notification.module, id, record, notified_at)
                    })
                    .collect())
            })
            .collect()
    }

    async fn renew_subscriptions(&self) -> Vec<Result<String, HydrateError>> {
        let Some((renew, tokens)) = &self.renewal else {
            return Vec::new();
        };
        let channels: Vec<WatchChannel<'_>> = renew
            .channels
            .iter()
            .zip(tokens)
            .map(|(channel, token)| WatchChannel {
                id: &channel.id,
                token: token.expose(),
                events: &channel.events,
            })
            .collect();
        self.watch(&channels, &renew.notify_url, renew.days)
            .await
            .into_iter()
            .map(|outcome| {
                outcome.map(|done| format!("channel {} until {}", done.channel_id, done.expires))
            })
            .collect()
    }
}

/// The outcome of enabling (or renewing) one notification channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOutcome {
    pub channel_id: String,
    /// When Zoho says the channel now expires.
    pub expires: String,
}

/// A channel to enable: its id, the token Zoho will echo, and the events it watches.
pub struct WatchChannel<'a> {
    pub id: &'a str,
    pub token: &'a str,
    pub events: &'a [String],
}

/// `2026-11-29T19:03:58+00:00`: the form Zoho's `channel_expiry` takes.
fn zoho_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl ZohoHydrator {
    /// Enables or renews notification channels (`POST /crm/{version}/actions/watch`), asking for
    /// `days` of life: Zoho keeps a channel at most one day on API v2–v3 and a week from v4 on.
    /// One call per channel, so one refusal does not hide the others.
    pub async fn watch(
        &self,
        channels: &[WatchChannel<'_>],
        notify_url: &str,
        days: i64,
    ) -> Vec<Result<WatchOutcome, HydrateError>> {
        let expiry = zoho_time(self.clock.now_ms() + days * 86_400_000);
        let mut outcomes = Vec::with_capacity(channels.len());
        for channel in channels {
            let body = serde_json::json!({"watch": [{
                "channel_id": channel.id,
                "events": channel.events,
                "channel_expiry": expiry,
                "token": channel.token,
                "notify_url": notify_url,
                "notify_on_related_action": false,
            }]});
            let outcome = self
                .send(reqwest::Method::POST, "actions/watch", Some(body))
                .await
                .map_err(|error| match error {
                    HydrateError::Failed(m) => {
                        HydrateError::Failed(format!("channel {}: {m}", channel.id))
                    }
                    HydrateError::Transient(m) => {
                        HydrateError::Transient(format!("channel {}: {m}", channel.id))
                    }
                    HydrateError::RateLimited => HydrateError::RateLimited,
                })
                .and_then(|answer| {
                    let answer = answer.unwrap_or(Value::Null);
                    let entry = &answer["watch"][0];
                    if entry["status"] == "success" {
                        let expires = entry["details"]["events"][0]["channel_expiry"]
                            .as_str()
                            .unwrap_or(&expiry)
                            .to_owned();
                        Ok(WatchOutcome {
                            channel_id: channel.id.to_owned(),
                            expires,
                        })
                    } else {
                        Err(HydrateError::Failed(format!(
                            "Zoho refused channel {}: {} {}",
                            channel.id, entry["code"], entry["message"]
                        )))
                    }
                });
            match &outcome {
                Ok(done) => {
                    tracing::info!(route = %self.route, channel = %done.channel_id, expires = %done.expires, "notification channel renewed")
                }
                Err(error) => {
                    tracing::error!(route = %self.route, channel = %channel.id, %error, "notification channel renewal FAILED: notifications stop when it expires")
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }
}

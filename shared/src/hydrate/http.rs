//! A hydrator described by configuration (Cenit's "connection + authorization + named request"):
//! for each item of a notification, the first request template whose `when` matches is filled
//! from the item and sent; the answer (or the part `data` points to) becomes the record.
//!
//! - Identical calls in one batch are sent once, at most `concurrency` at once.
//! - 404 and 410 mean the record is gone: a tombstone. So does a matching `deleted_when`, without
//!   a call.
//! - OAuth tokens come from a [`TokenSource`] (shared, refreshed under a lease); a 401 refreshes
//!   once and retries. 429, 5xx and timeouts fail only the items' messages, as retryable.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;

use super::token::{OAuthRefresh, TokenSource, read_json, send};
use crate::clock::Clock;
use crate::config::{HttpAuth, HttpHydration, HttpRequestTemplate, any_condition_holds};
use crate::model::document::Document;
use crate::model::template::{Fill, Template};
use crate::model::value::{RecordVersion, Source};
use crate::ports::{HydrateError, HydrationItem, Hydrator, RecordItem, TokenCache};
use crate::secrets::Secret;

enum Authorizer {
    None,
    Header(String, Secret),
    Query(String, Secret),
    Basic(String, Secret),
    OAuth(Box<TokenSource>),
}

struct Request {
    config: HttpRequestTemplate,
    method: reqwest::Method,
    path: Template,
    query: Vec<(String, Template)>,
}

/// Largest notification body a request template reads, and most items in its `items` array.
pub const MAX_HYDRATED_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_HYDRATED_ITEMS: usize = 1000;

pub struct HttpHydrator {
    route: String,
    base_url: String,
    headers: Vec<(String, String)>,
    items: Option<String>,
    requests: Vec<Request>,
    renew: Option<crate::config::GraphRenew>,
    concurrency: usize,
    http: reqwest::Client,
    auth: Authorizer,
    clock: Arc<dyn Clock>,
}

/// What one item needs: a tombstone, or the answer of one (shared) call.
enum Need {
    Tombstone,
    Fetch(usize),
}

struct Planned {
    request: usize,
    record_type: String,
    record_id: String,
    need: Need,
}

/// A call's answer: the JSON, or `None` when the API says the record is gone.
type Answer = Result<Option<Value>, HydrateError>;

impl HttpHydrator {
    /// `secrets` are the resolved references of `config.auth`, in their order.
    pub fn new(
        route: &str,
        config: &HttpHydration,
        secrets: &[Secret],
        tokens: Arc<dyn TokenCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = super::http_client(config.timeout_ms);
        let secret = |i: usize| {
            secrets
                .get(i)
                .cloned()
                .expect("every auth secret is resolved")
        };
        let oauth = |token_url: &str, client_id: &str, refresh_token, scope: &Option<String>| {
            Authorizer::OAuth(Box::new(TokenSource::new(
                format!("http#{route}#{client_id}"),
                OAuthRefresh {
                    token_url: token_url.to_owned(),
                    client_id: client_id.to_owned(),
                    client_secret: secret(0),
                    refresh_token,
                    scope: scope.clone(),
                },
                http.clone(),
                tokens,
                clock.clone(),
            )))
        };
        let auth = match &config.auth {
            HttpAuth::None => Authorizer::None,
            HttpAuth::Bearer { .. } => Authorizer::Header(
                "authorization".into(),
                Secret::new(format!("Bearer {}", secret(0).expose())),
            ),
            HttpAuth::ApiKey {
                header: Some(header),
                ..
            } => Authorizer::Header(header.clone(), secret(0)),
            HttpAuth::ApiKey { query, .. } => {
                Authorizer::Query(query.clone().unwrap_or_default(), secret(0))
            }
            HttpAuth::Basic { username, .. } => Authorizer::Basic(username.clone(), secret(0)),
            HttpAuth::Oauth2RefreshToken {
                token_url,
                client_id,
                scope,
                ..
            } => oauth(token_url, client_id, Some(secret(1)), scope),
            HttpAuth::Oauth2ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            } => oauth(token_url, client_id, None, scope),
        };
        let requests = config
            .requests
            .iter()
            .map(|r| Request {
                method: reqwest::Method::from_bytes(r.method.as_bytes())
                    .expect("a validated method"),
                path: Template::parse(&r.path).expect("a validated template"),
                query: r
                    .query
                    .iter()
                    .map(|(k, v)| (k.clone(), Template::parse(v).expect("a validated template")))
                    .collect(),
                config: r.clone(),
            })
            .collect();
        HttpHydrator {
            route: route.to_owned(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            items: config.items.clone(),
            requests,
            renew: config.renew.clone(),
            concurrency: config.concurrency.max(1),
            http,
            auth,
            clock,
        }
    }

    /// What `item` needs, appending the calls it needs to `calls` (shared with other items).
    fn plan(
        &self,
        item: &HydrationItem<'_>,
        calls: &mut Vec<(reqwest::Method, String)>,
        index: &mut HashMap<(reqwest::Method, String), usize>,
    ) -> Result<Vec<Planned>, HydrateError> {
        let envelope = item.envelope;
        // An event a verifier marked id-only must be hydrated; any other event of the route is
        // hydrated only where a request applies to it.
        let required = envelope.hydrate.is_some();
        let unusable = |what: String| {
            if required {
                Err(HydrateError::Failed(what))
            } else {
                Ok(Vec::new())
            }
        };
        // Built whole (the items are walked as values), so only up to a bound: a route without a
        // signature (catch-raw) can hydrate too.
        if item.body.len() > MAX_HYDRATED_BODY_BYTES {
            return unusable(format!(
                "the notification is over {} KiB",
                MAX_HYDRATED_BODY_BYTES / 1024
            ));
        }
        let Some(json) = crate::model::request::body_json(envelope.content_type(), item.body)
        else {
            return unusable("the notification is not JSON".into());
        };
        let whole = Source {
            headers: &envelope.headers,
            raw_query: &envelope.query,
            body: item.body,
            body_sha256: None,
            json: Some(Document::Value(&json)),
        };
        let event_type = envelope
            .rules
            .event_type
            .as_ref()
            .and_then(|t| t.lookup_text(&whole));
        let elements: Vec<&Value> = match &self.items {
            None => vec![&json],
            Some(pointer) => match json.pointer(pointer) {
                Some(Value::Array(elements)) if elements.len() > MAX_HYDRATED_ITEMS => {
                    return unusable(format!(
                        "the notification has {} items in `{pointer}`, more than {MAX_HYDRATED_ITEMS}",
                        elements.len()
                    ));
                }
                Some(Value::Array(elements)) => elements.iter().collect(),
                _ => return unusable(format!("the notification has no `{pointer}` array")),
            },
        };
        let mut planned = Vec::new();
        for element in elements {
            let holds = |conditions: &[String]| {
                any_condition_holds(
                    conditions,
                    event_type.as_deref(),
                    Some(Document::Value(element)),
                )
            };
            let Some(position) = self
                .requests
                .iter()
                .position(|r| r.config.when.is_empty() || holds(&r.config.when))
            else {
                continue;
            };
            let request = &self.requests[position];
            let failed = |what: String| {
                HydrateError::Failed(format!("request `{}`: {what}", request.config.name))
            };
            let source = Source {
                headers: &envelope.headers,
                raw_query: &envelope.query,
                body: item.body,
                body_sha256: None,
                json: Some(Document::Value(element)),
            };
            let record_type = request
                .config
                .record_type
                .lookup_text(&source)
                .ok_or_else(|| failed("the item has no record type".into()))?;
            let record_id = request
                .config
                .id
                .lookup_text(&source)
                .ok_or_else(|| failed("the item has no record id".into()))?;
            let fill = Fill {
                record_id: &record_id,
                event_type: event_type.as_deref(),
                item: source,
            };
            let path = request.path.render(&fill, true).map_err(failed)?;
            // Tombstones too: a deletion outside the allowed paths is no one's to write.
            if !request.config.allows(&path) {
                return Err(failed(format!("`{path}` is outside allow_paths")));
            }
            let need = if holds(&request.config.deleted_when) {
                Need::Tombstone
            } else {
                let mut url = format!("{}{}", self.base_url, path);
                if !request.query.is_empty() {
                    let mut query = form_urlencoded::Serializer::new(String::new());
                    for (name, value) in &request.query {
                        query.append_pair(name, &value.render(&fill, false).map_err(failed)?);
                    }
                    url.push('?');
                    url.push_str(&query.finish());
                }
                let key = (request.method.clone(), url);
                let next = calls.len();
                let at = *index.entry(key.clone()).or_insert(next);
                if at == next {
                    calls.push(key);
                }
                Need::Fetch(at)
            };
            planned.push(Planned {
                request: position,
                record_type,
                record_id,
                need,
            });
        }
        if required && planned.is_empty() {
            tracing::warn!(route = %self.route, event_id = %envelope.id, "id-only event matched no hydration request; stored without records");
        }
        Ok(planned)
    }

    /// One call, authorized; a 401 with an OAuth token refreshes it once and tries again.
    async fn call(&self, method: &reqwest::Method, url: &str, body: Option<&Value>) -> Answer {
        let mut rejected: Option<String> = None;
        loop {
            let url = match &self.auth {
                Authorizer::Query(name, key) => {
                    let pair = form_urlencoded::Serializer::new(String::new())
                        .append_pair(name, key.expose())
                        .finish();
                    let joiner = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{joiner}{pair}")
                }
                _ => url.to_owned(),
            };
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("accept", "application/json");
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            let mut token_used = None;
            request = match &self.auth {
                Authorizer::None | Authorizer::Query(..) => request,
                Authorizer::Header(name, value) => request.header(name, value.expose()),
                Authorizer::Basic(user, password) => {
                    request.basic_auth(user, Some(password.expose()))
                }
                Authorizer::OAuth(tokens) => {
                    let token = tokens.token(rejected.as_deref()).await?;
                    let request = request.bearer_auth(&token.access_token);
                    token_used = Some(token.access_token);
                    request
                }
            };
            let response = send(request).await?;
            let status = response.status().as_u16();
            match status {
                200..=299 if status != 204 => {
                    return read_json(response, "API answer").await.map(Some);
                }
                204 | 404 | 410 => return Ok(None),
                401 if rejected.is_none() && token_used.is_some() => {
                    tracing::info!(route = %self.route, "the API refused the access token; refreshing once");
                    rejected = token_used;
                }
                429 => return Err(HydrateError::RateLimited),
                500..=599 => return Err(HydrateError::Transient(format!("API HTTP {status}"))),
                _ => return Err(HydrateError::Failed(format!("API HTTP {status}"))),
            }
        }
    }
}

#[async_trait::async_trait]
impl Hydrator for HttpHydrator {
    /// Every event of the route: the request templates' `when` decides what is fetched, so a
    /// catch-raw or generic route can hydrate too.
    fn wants(&self, _envelope: &crate::model::envelope::Envelope) -> bool {
        true
    }

    /// Graph subscriptions (`renew`): each one's expiry moved `minutes` ahead, one call each, so
    /// one refusal does not hide the others.
    async fn renew_subscriptions(&self) -> Vec<Result<String, HydrateError>> {
        let Some(renew) = &self.renew else {
            return Vec::new();
        };
        let until_ms = self.clock.now_ms() + i64::from(renew.minutes) * 60_000;
        let until =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(until_ms) * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
        let body = serde_json::json!({ "expirationDateTime": until });
        let mut outcomes = Vec::with_capacity(renew.subscriptions.len());
        for id in &renew.subscriptions {
            let url = format!("{}/subscriptions/{id}", self.base_url);
            let outcome = match self.call(&reqwest::Method::PATCH, &url, Some(&body)).await {
                Ok(Some(_)) => Ok(format!("Graph subscription {id} until {until}")),
                Ok(None) => Err(HydrateError::Failed(format!(
                    "Graph subscription {id} is gone: create it again"
                ))),
                Err(error) => Err(error),
            };
            match &outcome {
                Ok(done) => tracing::info!(route = %self.route, %done, "subscription renewed"),
                Err(error) => {
                    tracing::error!(route = %self.route, subscription = %id, %error, "Graph subscription renewal FAILED: notifications stop when it expires")
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn hydrate_batch(
        &self,
        items: &[HydrationItem<'_>],
    ) -> Vec<Result<Vec<RecordItem>, HydrateError>> {
        let mut calls = Vec::new();
        let mut index = HashMap::new();
        let plans: Vec<Result<Vec<Planned>, HydrateError>> = items
            .iter()
            .map(|item| self.plan(item, &mut calls, &mut index))
            .collect();
        let mut answers: Vec<Option<Answer>> = vec![None; calls.len()];
        let mut finished = futures::stream::iter(
            // Owned copies: a future borrowing from the iterator is not `Send` for every lifetime.
            calls
                .iter()
                .cloned()
                .enumerate()
                .map(
                    |(at, (method, url))| async move { (at, self.call(&method, &url, None).await) },
                ),
        )
        .buffer_unordered(self.concurrency);
        while let Some((at, answer)) = finished.next().await {
            answers[at] = Some(answer);
        }
        tracing::debug!(route = %self.route, notifications = items.len(), calls = calls.len(), "hydrated a batch");

        let now = self.clock.now_ms();
        items
            .iter()
            .zip(plans)
            .map(|(item, plan)| {
                plan?
                    .into_iter()
                    .filter_map(|planned| {
                        let request = &self.requests[planned.request].config;
                        let answer = match planned.need {
                            Need::Tombstone => None,
                            Need::Fetch(at) => match answers[at].clone().expect("every call was answered") {
                                Ok(answer) => answer,
                                Err(error) => return Some(Err(error)),
                            },
                        };
                        let data = answer.and_then(|answer| match &request.data {
                            Some(pointer) => answer.pointer(pointer).cloned(),
                            None => Some(answer),
                        });
                        // A tombstone is versioned at receipt (a deletion is final); a fetched
                        // state without its configured version is not written: a receive time
                        // would outrank every later version of another unit, and freeze it.
                        let version = match (&data, request.version.as_deref()) {
                            (None, _) | (Some(_), None) => {
                                RecordVersion::Number(item.envelope.received_at_ms.to_string())
                            }
                            (Some(data), Some(pointer)) => match data.pointer(pointer).and_then(RecordVersion::from_json) {
                                Some(version) => version,
                                None => {
                                    tracing::warn!(route = %self.route, record_type = %planned.record_type, "fetched record has no version at its pointer; not written");
                                    return None;
                                }
                            },
                        };
                        // The id the API returned, where configured: a notification naming one
                        // record's id beside another's resource cannot write across them.
                        let record_id = match (&data, request.fetched_id.as_deref()) {
                            (Some(data), Some(pointer)) => match data.pointer(pointer) {
                                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                                Some(id @ Value::Number(_)) => id.to_string(),
                                _ => {
                                    tracing::warn!(route = %self.route, record_type = %planned.record_type, "fetched record has no id at its pointer; not written");
                                    return None;
                                }
                            },
                            _ => planned.record_id,
                        };
                        Some(Ok(RecordItem {
                            route: self.route.clone(),
                            record_type: planned.record_type,
                            record_id,
                            version,
                            deleted: data.is_none(),
                            data: data.unwrap_or(Value::Null),
                            event_id: item.envelope.id.clone(),
                            updated_at_ms: now,
                        }))
                    })
                    .collect()
            })
            .collect()
    }
}

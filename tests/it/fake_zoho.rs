//! A fake Zoho (accounts server + CRM API) on loopback, answering in the shapes of Zoho's docs, with
//! counters and faults on demand.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "1000.TESTCLIENT";
pub const CLIENT_SECRET: &str = "test-only-zoho-client-secret";
pub const REFRESH_TOKEN: &str = "1000.test-only-refresh-token";

#[derive(Default)]
pub struct Zoho {
    /// Records by (module, id).
    pub records: BTreeMap<(String, String), Value>,
    /// Tokens the API accepts now.
    pub live_tokens: Vec<String>,
    pub tokens_issued: usize,
    /// CRM calls made, each with the ids it asked for.
    pub calls: Vec<(String, Vec<String>)>,
    /// Statuses returned (in order) by the next CRM calls for a module instead of data.
    pub faults: BTreeMap<String, VecDeque<u16>>,
    /// Delay before each CRM answer.
    pub delay: Duration,
    /// This server's own URL, returned as `api_domain`.
    pub base_url: String,
    /// Bodies of `actions/watch` calls.
    pub watches: Vec<Value>,
    /// The scopes of the refresh token, given to every access token issued from it.
    pub scopes: String,
    /// Each issued token's scopes.
    pub token_scopes: BTreeMap<String, String>,
    pub in_flight: usize,
    pub max_in_flight: usize,
}

pub type Shared = Arc<Mutex<Zoho>>;

pub struct FakeZoho {
    pub state: Shared,
    pub url: String,
}

impl FakeZoho {
    pub async fn start() -> FakeZoho {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/oauth/v2/token", post(token))
            .route("/crm/v8/actions/watch", post(watch))
            .route("/crm/v8/{module}", get(list))
            .route("/crm/v8/{module}/{id}", get(one))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let url = format!("http://{addr}");
        {
            let mut zoho = state.lock().unwrap();
            zoho.base_url = url.clone();
            zoho.scopes = "ZohoCRM.modules.READ,ZohoCRM.notifications.ALL".into();
        }
        FakeZoho { state, url }
    }

    pub fn put(&self, module: &str, id: &str, name: &str, modified: &str) {
        self.state.lock().unwrap().records.insert(
            (module.to_owned(), id.to_owned()),
            json!({"id": id, "Last_Name": name, "Email": format!("{id}@example.com"),
                   "Owner": {"name": "Patricia Boyle", "id": "5725767000000411001"},
                   "Modified_Time": modified}),
        );
    }

    /// The refresh token's scopes from now on (comma-separated, as Zoho writes them).
    pub fn grant_scopes(&self, scopes: &str) {
        self.state.lock().unwrap().scopes = scopes.to_owned();
    }

    /// Every issued token stops working (as when they expire mid-batch).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().live_tokens.clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().tokens_issued
    }

    pub fn calls(&self) -> Vec<(String, Vec<String>)> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn fail_next(&self, module: &str, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(module.to_owned())
            .or_default()
            .extend(statuses);
    }

    /// The hydration config pointing at this fake (both servers are this one).
    pub fn hydrate_config(&self, fields: bool) -> Value {
        let mut config = json!({
            "kind": "zoho-crm",
            "accounts_url": self.url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "timeout_ms": 2000
        });
        if fields {
            config["fields"] = json!(["Last_Name", "Email", "Owner", "Modified_Time"]);
        }
        config
    }
}

async fn token(
    State(state): State<Shared>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let valid = form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("refresh_token").map(String::as_str) == Some(REFRESH_TOKEN);
    if !valid {
        // Zoho answers a bad grant with 200 and an error field.
        return Json(json!({"error": "invalid_code"})).into_response();
    }
    let mut zoho = state.lock().unwrap();
    zoho.tokens_issued += 1;
    let token = format!("1000.access-{}", zoho.tokens_issued);
    zoho.live_tokens.push(token.clone());
    let scopes = zoho.scopes.clone();
    zoho.token_scopes.insert(token.clone(), scopes.clone());
    // api_domain points back at this server, so the hydrator must use what the token response says.
    Json(json!({"access_token": token, "expires_in": 3600, "api_domain": zoho.base_url, "token_type": "Bearer", "scope": scopes}))
        .into_response()
}

/// Checks the token and faults; returns an early answer, or None to go on.
async fn gate(
    state: &Shared,
    headers: &HeaderMap,
    module: &str,
    ids: Vec<String>,
) -> Option<Response> {
    let delay = {
        let mut zoho = state.lock().unwrap();
        zoho.in_flight += 1;
        zoho.max_in_flight = zoho.max_in_flight.max(zoho.in_flight);
        zoho.delay
    };
    tokio::time::sleep(delay).await;
    let mut zoho = state.lock().unwrap();
    zoho.in_flight -= 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
        .unwrap_or_default()
        .to_owned();
    if !zoho.live_tokens.contains(&token) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"})),
            )
                .into_response(),
        );
    }
    zoho.calls.push((module.to_owned(), ids));
    if let Some(status) = zoho.faults.get_mut(module).and_then(VecDeque::pop_front) {
        let code = if status == 429 {
            "TOO_MANY_REQUESTS"
        } else {
            "INTERNAL_ERROR"
        };
        return Some(
            (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"code": code, "details": {}, "message": code, "status": "error"})),
            )
                .into_response(),
        );
    }
    None
}

async fn list(
    State(state): State<Shared>,
    Path(module): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let ids: Vec<String> = query
        .get("ids")
        .map(|ids| ids.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(early) = gate(&state, &headers, &module, ids.clone()).await {
        return early;
    }
    let Some(fields) = query.get("fields") else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "REQUIRED_PARAM_MISSING", "details": {"param": "fields"}, "message": "One of the expected parameter is missing", "status": "error"})),
        )
            .into_response();
    };
    if ids.len() > 50 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "LIMIT_EXCEEDED"})),
        )
            .into_response();
    }
    let fields: Vec<&str> = fields.split(',').collect();
    let zoho = state.lock().unwrap();
    let data: Vec<Value> = ids
        .iter()
        .filter_map(|id| zoho.records.get(&(module.clone(), id.clone())))
        .map(|record| {
            let mut picked = json!({"id": record["id"]});
            for field in &fields {
                if let Some(value) = record.get(*field) {
                    picked[*field] = value.clone();
                }
            }
            picked
        })
        .collect();
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(
        json!({"data": data, "info": {"per_page": 50, "count": data.len(), "more_records": false}}),
    )
    .into_response()
}

async fn one(
    State(state): State<Shared>,
    Path((module, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(early) = gate(&state, &headers, &module, vec![id.clone()]).await {
        return early;
    }
    let zoho = state.lock().unwrap();
    match zoho.records.get(&(module, id)) {
        Some(record) => Json(json!({"data": [record]})).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `POST /crm/v8/actions/watch`, answered as Zoho's enable docs show; an event of an unknown module
/// is refused with INVALID_DATA.
async fn watch(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(early) = gate(&state, &headers, "actions/watch", Vec::new()).await {
        return early;
    }
    // Enabling a channel needs a notifications scope; ZohoCRM.modules.* does not grant it.
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
        .unwrap_or_default();
    let scopes = state
        .lock()
        .unwrap()
        .token_scopes
        .get(token)
        .cloned()
        .unwrap_or_default();
    if !scopes
        .split(',')
        .any(|s| s == "ZohoCRM.notifications.ALL" || s == "ZohoCRM.notifications.CREATE")
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message": "invalid oauth scope to access this URL", "status": "error"})),
        )
            .into_response();
    }
    state.lock().unwrap().watches.push(body.clone());
    let entry = &body["watch"][0];
    let events: Vec<&str> = entry["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if events
        .iter()
        .any(|e| !e.starts_with("Leads.") && !e.starts_with("Contacts."))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"watch": [{"code": "INVALID_DATA", "details": {"param": "events"}, "message": "invalid data", "status": "error"}]})),
        )
            .into_response();
    }
    Json(json!({"watch": [{"code": "SUCCESS", "details": {"events": [{
        "channel_expiry": entry["channel_expiry"], "resource_uri": "https://www.zohoapis.com/crm/v2/Leads",
        "resource_id": "5725767000000002175", "resource_name": "Leads", "channel_id": entry["channel_id"]}]},
        "message": "Successfully subscribed for actions-watch of the given module", "status": "success"}]}))
    .into_response()
}

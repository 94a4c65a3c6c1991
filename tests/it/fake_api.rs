//! A fake JSON API on loopback for configured (`kind = "http"`) hydrators: resources by path, a
//! bearer key or an OAuth client-credentials token endpoint, faults on demand, and a count of calls
//! in flight.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "test-only-graph-app";
pub const CLIENT_SECRET: &str = "test-only-graph-client-secret";
pub const API_KEY: &str = "sk_test_only_hookcatch_fake_key";

#[derive(Default)]
pub struct Api {
    /// JSON answers by path (without the query).
    pub resources: BTreeMap<String, Value>,
    /// Tokens the API accepts now: the API key, or issued access tokens.
    pub live_tokens: Vec<String>,
    pub tokens_issued: usize,
    /// Token endpoint forms received.
    pub token_forms: Vec<BTreeMap<String, String>>,
    /// Calls that passed authorization: path and query, and the headers of interest.
    pub calls: Vec<(String, Option<String>)>,
    pub stripe_versions: Vec<Option<String>>,
    /// Statuses returned (in order) by the next calls for a path.
    pub faults: BTreeMap<String, VecDeque<u16>>,
    /// `302 Found` to a location, by path (an open redirect, or a compromised API).
    pub redirects: BTreeMap<String, String>,
    /// Requests received at all, authorized or not.
    pub requests: usize,
    pub delay: Duration,
    pub in_flight: usize,
    pub max_in_flight: usize,
}

pub type Shared = Arc<Mutex<Api>>;

pub struct FakeApi {
    pub state: Shared,
    pub url: String,
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let state: Shared = Arc::default();
        state.lock().unwrap().live_tokens.push(API_KEY.to_owned());
        let app = Router::new()
            .route("/tenant/oauth2/v2.0/token", post(token))
            .fallback(resource)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeApi {
            state,
            url: format!("http://{addr}"),
        }
    }

    pub fn put(&self, path: &str, value: Value) {
        self.state
            .lock()
            .unwrap()
            .resources
            .insert(path.to_owned(), value);
    }

    pub fn fail_next(&self, path: &str, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(path.to_owned())
            .or_default()
            .extend(statuses);
    }

    /// Issued access tokens stop working (the API key keeps working).
    pub fn expire_tokens(&self) {
        self.state
            .lock()
            .unwrap()
            .live_tokens
            .retain(|t| t == API_KEY);
    }

    pub fn calls(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn token_url(&self) -> String {
        format!("{}/tenant/oauth2/v2.0/token", self.url)
    }
}

async fn token(
    State(state): State<Shared>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let mut api = state.lock().unwrap();
    api.token_forms.push(form.clone());
    let valid = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !valid {
        // What Microsoft's identity platform answers a bad secret with.
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    api.tokens_issued += 1;
    let token = format!("eyJ0eXAi.test-access-{}", api.tokens_issued);
    api.live_tokens.push(token.clone());
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}))
        .into_response()
}

struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

async fn resource(State(state): State<Shared>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let token = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
        .unwrap_or_default();
    let stripe_version = header("stripe-version");
    let delay = {
        let mut api = state.lock().unwrap();
        api.requests += 1;
        api.in_flight += 1;
        api.max_in_flight = api.max_in_flight.max(api.in_flight);
        api.delay
    };
    let _guard = InFlight(state.clone());
    tokio::time::sleep(delay).await;
    let mut api = state.lock().unwrap();
    if !api.live_tokens.contains(&token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}})),
        )
            .into_response();
    }
    api.calls.push((path.clone(), query));
    api.stripe_versions.push(stripe_version);
    if let Some(location) = api.redirects.get(&path) {
        return (StatusCode::FOUND, [("location", location.clone())]).into_response();
    }
    if let Some(status) = api.faults.get_mut(&path).and_then(VecDeque::pop_front) {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"code": "fault", "message": "injected"}})),
        )
            .into_response();
    }
    match api.resources.get(&path) {
        Some(value) => Json(value.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "ResourceNotFound", "message": "not found"}})),
        )
            .into_response(),
    }
}

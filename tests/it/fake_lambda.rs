//! Lambda's `GetAccountSettings` on loopback, in front of moto, which serves the rest of Lambda but
//! not that call: the account's concurrency quota is the test's, and what is unreserved is computed
//! from the reservations moto holds. Every other request goes on to moto unchanged.

use std::sync::Arc;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use hookcatch_cli::stack::reservations::Lambda;
use hookcatch_cli::stack::sigv4::SignedClient;

struct Account {
    quota: u32,
    /// moto is shared by every test: only functions named with this prefix are this account's.
    prefix: String,
    moto: SignedClient,
    lambda: Lambda,
    upstream: String,
    client: reqwest::Client,
}

pub struct FakeLambdaAccount {
    pub url: String,
}

impl FakeLambdaAccount {
    pub async fn start(quota: u32, prefix: &str) -> FakeLambdaAccount {
        crate::support::aws_endpoint();
        let sdk = hookcatch::aws::sdk_config(std::time::Duration::from_secs(10)).await;
        let account = Account {
            quota,
            prefix: prefix.to_owned(),
            moto: SignedClient::new(&sdk, "lambda").unwrap(),
            lambda: Lambda::new(&sdk).unwrap(),
            upstream: crate::support::aws_endpoint(),
            client: hookcatch::tls::https_client_builder()
                .no_proxy()
                .build()
                .unwrap(),
        };
        let app = Router::new().fallback(handle).with_state(Arc::new(account));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeLambdaAccount { url }
    }
}

async fn handle(State(account): State<Arc<Account>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap();
    if !parts.uri.path().starts_with("/2016-08-19/account-settings") {
        return crate::fault_proxy::forward_to(&account.client, &account.upstream, &parts, body)
            .await;
    }
    let (_, listed) = account
        .moto
        .send("GET", "/2015-03-31/functions/", &[], b"")
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed).unwrap();
    let mut reserved = 0;
    for function in listed["Functions"].as_array().unwrap() {
        let name = function["FunctionName"].as_str().unwrap();
        if name.starts_with(&account.prefix) {
            reserved += account
                .lambda
                .reserved_concurrency(name)
                .await
                .unwrap()
                .unwrap_or(0);
        }
    }
    axum::Json(serde_json::json!({
        "AccountLimit": {
            "ConcurrentExecutions": account.quota,
            "UnreservedConcurrentExecutions": account.quota - reserved,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "TotalCodeSize": 80530636800u64,
        },
        "AccountUsage": {"FunctionCount": listed["Functions"].as_array().unwrap().len(), "TotalCodeSize": 0},
    }))
    .into_response()
}

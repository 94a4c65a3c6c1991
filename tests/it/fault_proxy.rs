//! A fault-injecting HTTP proxy on loopback in front of the AWS-compatible server: moto cannot
//! throttle, stall or go away, so the SDK clients under test talk to this proxy, which forwards to
//! moto unless told to fail. Faults apply to the whole proxy (down, stalled, throttling) or only to
//! requests whose body contains a marker, so one message of a batch can fail while the others pass.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Connections are accepted and closed at once: the service is unreachable.
    Down,
    /// Requests are held far past any client timeout and never forwarded.
    Stall,
    /// Requests are answered with the service's throttling error and never forwarded.
    Throttle,
}

#[derive(Default)]
struct Faults {
    everything: Option<Fault>,
    /// (marker, fault): requests whose body contains the marker get the fault.
    marked: Vec<(String, Fault)>,
    forwarded: usize,
    injected: usize,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    faults: Arc<Mutex<Faults>>,
}

impl FaultProxy {
    /// Starts a proxy in front of the test command's AWS endpoint.
    pub async fn start() -> FaultProxy {
        let upstream = crate::support::aws_endpoint();
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let listener = DroppingListener {
            inner: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            faults: faults.clone(),
        };
        let url = format!("http://{}", listener.inner.local_addr().unwrap());
        let forward = Forward {
            upstream,
            client: hookcatch::tls::https_client_builder()
                .no_proxy()
                .build()
                .unwrap(),
            faults: faults.clone(),
        };
        let app = Router::new().fallback(proxy).with_state(Arc::new(forward));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FaultProxy { url, faults }
    }

    /// Applies `fault` to every request (or lifts it with `None`).
    pub fn set(&self, fault: Option<Fault>) {
        self.faults.lock().unwrap().everything = fault;
    }

    /// Applies `fault` to every request whose body contains `marker`, until [`FaultProxy::clear`].
    pub fn when_body_contains(&self, marker: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .marked
            .push((marker.to_owned(), fault));
    }

    pub fn clear(&self) {
        let mut faults = self.faults.lock().unwrap();
        faults.everything = None;
        faults.marked.clear();
    }

    /// (requests forwarded to the server, requests failed on purpose)
    pub fn counts(&self) -> (usize, usize) {
        let faults = self.faults.lock().unwrap();
        (faults.forwarded, faults.injected)
    }
}

/// Accepts connections and, while the proxy is down, closes them before reading a byte.
struct DroppingListener {
    inner: tokio::net::TcpListener,
    faults: Arc<Mutex<Faults>>,
}

impl axum::serve::Listener for DroppingListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                continue;
            };
            let mut faults = self.faults.lock().unwrap();
            if faults.everything == Some(Fault::Down) {
                faults.injected += 1;
                drop(stream);
                continue;
            }
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

struct Forward {
    upstream: String,
    client: reqwest::Client,
    faults: Arc<Mutex<Faults>>,
}

async fn proxy(State(forward): State<Arc<Forward>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap();
    let fault = {
        let mut faults = forward.faults.lock().unwrap();
        let text = String::from_utf8_lossy(&body);
        let fault = faults.everything.or_else(|| {
            faults
                .marked
                .iter()
                .find(|(marker, _)| text.contains(marker.as_str()))
                .map(|(_, fault)| *fault)
        });
        match fault {
            Some(_) => faults.injected += 1,
            None => faults.forwarded += 1,
        }
        fault
    };
    match fault {
        // A connection accepted before the proxy went down: hold it like a stall.
        Some(Fault::Stall | Fault::Down) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            status_only(StatusCode::GATEWAY_TIMEOUT)
        }
        Some(Fault::Throttle) => throttled(&parts.headers),
        None => forward_to(&forward.client, &forward.upstream, &parts, body).await,
    }
}

/// Sends a request received by a fake on to `upstream` (moto), and returns moto's answer.
pub async fn forward_to(
    client: &reqwest::Client,
    upstream: &str,
    parts: &http::request::Parts,
    body: bytes::Bytes,
) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut request = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return status_only(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).unwrap()
}

/// The throttling error of the service the request was for (AWS JSON protocol), which the SDK
/// classifies as throttling and retries with backoff before giving up.
fn throttled(headers: &HeaderMap) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let kind = if target.starts_with("DynamoDB") {
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    } else {
        "com.amazonaws.sqs#ThrottlingException"
    };
    let body = serde_json::json!({"__type": kind, "message": "injected by the test's fault proxy"});
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-query-error", "ThrottlingException;Sender")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn status_only(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap()
}

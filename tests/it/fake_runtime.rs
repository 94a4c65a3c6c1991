//! A small fake of the Lambda Runtime API on loopback, serving one function process, and the
//! release `bootstrap` binaries `sam build` packaged (`sam local` needs a container engine, which
//! this machine lacks). Used by the bootstrap test and the Lambda bench.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::support::repo_root;

type Pending = HashMap<String, oneshot::Sender<Result<serde_json::Value, String>>>;

struct RuntimeState {
    next: Mutex<mpsc::Receiver<(String, String)>>,
    /// Notified when the function first asks for an invocation (its init is done).
    polled: Notify,
    pending: Mutex<Pending>,
    init_error: Mutex<Option<String>>,
}

/// A fake Runtime API serving one function process.
pub struct FakeRuntime {
    address: String,
    events: mpsc::Sender<(String, String)>,
    state: Arc<RuntimeState>,
}

impl FakeRuntime {
    pub async fn start() -> FakeRuntime {
        let (events, receiver) = mpsc::channel(16);
        let state = Arc::new(RuntimeState {
            next: Mutex::new(receiver),
            polled: Notify::new(),
            pending: Mutex::default(),
            init_error: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeRuntime {
            address,
            events,
            state,
        }
    }

    /// Waits until the function polls for its first invocation: its init is done.
    pub async fn wait_for_poll(&self) {
        self.state.polled.notified().await;
    }

    pub async fn invoke(&self, payload: &serde_json::Value) -> serde_json::Value {
        self.try_invoke(payload)
            .await
            .unwrap_or_else(|error| panic!("invocation failed: {error}"))
    }

    /// The function's response, or the invocation error it reported.
    pub async fn try_invoke(
        &self,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let id = uuid::Uuid::now_v7().to_string();
        let (done, result) = oneshot::channel();
        self.state.pending.lock().await.insert(id.clone(), done);
        self.events.send((id, payload.to_string())).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(30), result).await {
            Ok(Ok(outcome)) => outcome,
            _ => panic!(
                "no response from the function; init error: {:?}",
                self.state.init_error.lock().await
            ),
        }
    }
}

async fn next_invocation(State(state): State<Arc<RuntimeState>>) -> (HeaderMap, String) {
    state.polled.notify_one();
    let (id, payload) = state.next.lock().await.recv().await.unwrap_or_default();
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&id).unwrap(),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:hookcatch-test"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (headers, payload)
}

async fn invocation_response(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: String,
) -> &'static str {
    if let Some(done) = state.pending.lock().await.remove(&id) {
        let _ = done.send(serde_json::from_str(&body).map_err(|e| e.to_string()));
    }
    "{}"
}

async fn invocation_error(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: String,
) -> &'static str {
    if let Some(done) = state.pending.lock().await.remove(&id) {
        let _ = done.send(Err(body));
    }
    "{}"
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: String) -> &'static str {
    *state.init_error.lock().await = Some(body);
    "{}"
}

/// Where `sam build` put a function's bootstrap, as its built template says (functions with the
/// same code share one folder). The test command sets `HOOKCATCH_SAM_BUILD_DIR`.
pub fn bootstrap(function: &str) -> PathBuf {
    let dir = std::env::var("HOOKCATCH_SAM_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".aws-sam/build"));
    let built = std::fs::read_to_string(dir.join("template.yaml")).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run the README's test command, which runs `sam build` first",
            dir.display()
        )
    });
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&built).unwrap();
    let code = template["Resources"][function]["Properties"]["CodeUri"]
        .as_str()
        .or_else(|| looped_code_uri(&template, function))
        .unwrap_or_else(|| panic!("{function} has no CodeUri in the built template"));
    let path = dir.join(code).join("bootstrap");
    assert!(
        path.is_file(),
        "{} is missing: run the README's test command, which runs `sam build` first",
        path.display()
    );
    path
}

/// The CodeUri of a function generated by a `Fn::ForEach` loop (`Route${RouteId}` for
/// `Routegithub`): the built template keeps the loop for CloudFormation to expand.
fn looped_code_uri<'a>(template: &'a serde_yaml_ng::Value, function: &str) -> Option<&'a str> {
    let resources = template["Resources"].as_mapping()?;
    resources
        .iter()
        .filter(|(key, _)| key.as_str().is_some_and(|k| k.starts_with("Fn::ForEach::")))
        .filter_map(|(_, the_loop)| the_loop[2].as_mapping())
        .flat_map(|body| body.iter())
        .find(|(key, _)| {
            let key = key.as_str().unwrap_or_default();
            match (key.find("${"), key.find('}')) {
                (Some(start), Some(end)) => {
                    function.len() > key.len() - (end + 1 - start)
                        && function.starts_with(&key[..start])
                        && function.ends_with(&key[end + 1..])
                }
                _ => false,
            }
        })
        .and_then(|(_, resource)| resource["Properties"]["CodeUri"].as_str())
}

/// Lines the process wrote to stdout (its JSON logs and EMF metric documents), as they arrive.
pub type Stdout = Arc<std::sync::Mutex<Vec<String>>>;

/// Starts a release bootstrap against `runtime`, collecting its stdout.
pub fn spawn(
    function: &str,
    runtime: &FakeRuntime,
    env: &HashMap<String, String>,
) -> (tokio::process::Child, Stdout) {
    use tokio::io::AsyncBufReadExt;

    let mut child = command(function, runtime, env)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn bootstrap");
    let lines = Stdout::default();
    let sink = lines.clone();
    let stdout = child.stdout.take().expect("piped stdout");
    // Drained continuously, so a chatty process never blocks on a full pipe.
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

fn command(
    function: &str,
    runtime: &FakeRuntime,
    env: &HashMap<String, String>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bootstrap(function));
    command
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .kill_on_drop(true);
    command
}

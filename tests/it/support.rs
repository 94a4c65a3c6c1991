//! A private AWS stack per test (table, queue + DLQ, bucket) on the loopback AWS server, and helpers
//! that drive the handlers the way Lambda would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;

/// The loopback AWS endpoint the test command started. Tests fail loudly without it rather than
/// reaching for real AWS.
pub fn aws_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost") => {
            url
        }
        _ => panic!(
            "AWS_ENDPOINT_URL must point at the local AWS-compatible server on loopback; \
             run the README's test command (scripts/test), which starts it"
        ),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `hookcatch` binary that this test run built: target/debug/deps/it-<hash> → target/debug/hookcatch.
pub fn hookcatch_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("hookcatch");
    assert!(
        path.is_file(),
        "{} is not built; run the whole workspace's tests",
        path.display()
    );
    path
}

/// Runs the `hookcatch` binary with `args` and `env`: whether it succeeded, its stdout and stderr.
pub async fn run_hookcatch(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = tokio::process::Command::new(hookcatch_binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A console's address as `http://host:port` (no token) and the `Cookie` header its token sets,
/// from the URL it printed (`http://host:port/?token=…`): what a browser holds after one click.
pub struct ConsoleLogin {
    pub base: String,
    pub cookie: String,
}

pub fn console_login(url: &str) -> ConsoleLogin {
    let (base, token) = url
        .split_once("/?token=")
        .unwrap_or_else(|| panic!("a console URL carries its token: {url}"));
    let port = base.rsplit(':').next().unwrap();
    ConsoleLogin {
        base: base.to_owned(),
        cookie: format!("hookcatch_console_{port}={token}"),
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A new directory under the system's temporary one holding `files` (path, text), folders made.
pub fn tree(prefix: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(unique(prefix));
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    root
}

pub struct Stack {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub queue_url: String,
    pub dlq_url: String,
    pub table: String,
    pub bucket: String,
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key")
}

impl Stack {
    /// Creates fresh resources; `max_receive` is the redrive limit to the DLQ.
    pub async fn create(max_receive: u32) -> Stack {
        aws_endpoint();
        let sdk = hookcatch::aws::sdk_config(std::time::Duration::from_secs(10)).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let ssm = aws_sdk_ssm::Client::new(&sdk);

        let dlq_url = sqs
            .create_queue()
            .queue_name(unique("dlq"))
            .send()
            .await
            .expect("create DLQ")
            .queue_url
            .expect("DLQ url");
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive.to_string(),
        });
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("events"))
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(QueueAttributeName::VisibilityTimeout, "0")
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");

        let table = unique("events");
        dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(
                ["pk", "ix", "ix_sk"]
                    .into_iter()
                    .map(|name| {
                        AttributeDefinition::builder()
                            .attribute_name(name)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .expect("attribute")
                    })
                    .collect(),
            ))
            .key_schema(key("pk", KeyType::Hash))
            // The template's event index (`EventIndex=on`, its default).
            .global_secondary_indexes(
                aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
                    .index_name(hookcatch::aws::EVENT_INDEX)
                    .key_schema(key("ix", KeyType::Hash))
                    .key_schema(key("ix_sk", KeyType::Range))
                    .projection(
                        aws_sdk_dynamodb::types::Projection::builder()
                            .projection_type(aws_sdk_dynamodb::types::ProjectionType::Include)
                            .set_non_key_attributes(Some(
                                ["id", "route", "type", "received", "test", "body_len"]
                                    .map(String::from)
                                    .to_vec(),
                            ))
                            .build(),
                    )
                    .build()
                    .expect("index"),
            )
            .send()
            .await
            .expect("create table");

        let bucket = unique("bodies");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");

        Stack {
            sqs,
            dynamodb,
            s3,
            ssm,
            queue_url,
            dlq_url,
            table,
            bucket,
        }
    }

    /// Stores a SecureString and returns its name.
    pub async fn put_secret(&self, value: &str) -> String {
        let name = format!("/{}", unique("hookcatch-test"));
        self.put_secret_named(&name, value).await;
        name
    }

    /// Stores a SecureString under `name` (a route's `secrets/NAME`, as `secrets set --aws` does).
    pub async fn put_secret_named(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("put parameter");
    }

    /// The environment a route Lambda of this stack gets.
    pub fn ingest_env(&self, route_json: &str) -> HashMap<String, String> {
        HashMap::from([
            ("HOOKCATCH_ROUTE".to_owned(), route_json.to_owned()),
            ("HOOKCATCH_QUEUE_URL".to_owned(), self.queue_url.clone()),
            ("HOOKCATCH_BUCKET".to_owned(), self.bucket.clone()),
            // Generous, so a loaded CI machine cannot turn a slow local server into a 503; the
            // timeout path itself is tested against a dead endpoint and a stalled fake queue.
            (
                "HOOKCATCH_ENQUEUE_TIMEOUT_MS".to_owned(),
                "10000".to_owned(),
            ),
        ])
    }

    /// The environment the consumer Lambda of this stack gets.
    pub fn consumer_env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("HOOKCATCH_TABLE".to_owned(), self.table.clone()),
            ("HOOKCATCH_BUCKET".to_owned(), self.bucket.clone()),
            ("HOOKCATCH_EVENT_INDEX".to_owned(), "on".to_owned()),
        ])
    }

    pub async fn ingestor(&self, route_json: &str) -> hookcatch::Ingestor {
        let env = self.ingest_env(route_json);
        hookcatch::runtime::lambda::ingestor_from_env(&|name| env.get(name).cloned())
            .await
            .expect("ingestor from env")
    }

    pub async fn consumer(&self) -> hookcatch::Consumer {
        let env = self.consumer_env();
        hookcatch::runtime::lambda::consumer_from_env(&|name| env.get(name).cloned())
            .await
            .expect("consumer from env")
    }

    pub fn store(&self) -> hookcatch::aws::DynamoStore {
        hookcatch::aws::DynamoStore::new(self.dynamodb.clone(), &self.table)
    }

    /// Receives up to 10 messages as an SQS event in the shape Lambda's poller delivers.
    pub async fn receive_batch(&self, queue_url: &str) -> (serde_json::Value, Vec<String>) {
        let output = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let mut records = Vec::new();
        let mut handles = Vec::new();
        for message in output.messages() {
            handles.push(message.receipt_handle().unwrap_or_default().to_owned());
            records.push(serde_json::json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                "awsRegion": "us-east-1",
            }));
        }
        (serde_json::json!({ "Records": records }), handles)
    }

    /// Writes a route's deployed configuration for stack `stack_name` (what `deploy` pushes).
    pub async fn put_route_config(&self, stack_name: &str, config: &str) {
        let route: serde_json::Value = serde_json::from_str(config).unwrap();
        let layout = hookcatch::config::SsmLayout::new(stack_name).unwrap();
        self.ssm
            .put_parameter()
            .name(layout.config_name(route["name"].as_str().unwrap()))
            .value(config)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    /// Moves the next message of the events queue to the DLQ, as SQS does after the last failed
    /// receive.
    pub async fn dead_letter_next(&self) {
        let (message, handles) = loop {
            let (message, handles) = self.receive_batch(&self.queue_url).await;
            if !handles.is_empty() {
                break (message, handles);
            }
        };
        let body = message["Records"][0]["body"].as_str().unwrap().to_owned();
        self.sqs
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&handles[0])
            .send()
            .await
            .unwrap();
    }

    /// Receives `count` messages from the events queue and hands them to a consumer bootstrap as
    /// one SQS batch, which must fail none of them.
    pub async fn consume_all(&self, consumer: &crate::fake_runtime::FakeRuntime, count: usize) {
        let mut records = Vec::new();
        while records.len() < count {
            let (batch, _) = self.receive_batch(&self.queue_url).await;
            records.extend(batch["Records"].as_array().unwrap().iter().cloned());
        }
        let response = consumer
            .invoke(&serde_json::json!({ "Records": records }))
            .await;
        assert_eq!(
            response["batchItemFailures"],
            serde_json::json!([]),
            "{response}"
        );
    }

    /// Runs the consumer handler over one received batch and, as Lambda's SQS poller does, deletes
    /// the messages that were not reported as failed. Returns how many it got and the failed ids.
    pub async fn consume_once(&self, consumer: &hookcatch::Consumer) -> (usize, Vec<String>) {
        let (event, handles) = self.receive_batch(&self.queue_url).await;
        let ids: Vec<String> = event["Records"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|m| m["messageId"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let payload: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(event).expect("SQS event shape");
        let response = hookcatch_consumer::handle(
            consumer,
            lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
        )
        .await
        .expect("consumer handler");
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for (id, handle) in ids.iter().zip(handles) {
            if !failed.contains(id) {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        (ids.len(), failed)
    }

    /// Event items of one route, read by a scan (test-sized tables only).
    pub async fn event_items(&self, route: &str) -> Vec<HashMap<String, AttributeValue>> {
        let output = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan");
        output
            .items()
            .iter()
            .filter(|item| {
                item.get("kind")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("event")
                    && item
                        .get("route")
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        == Some(route)
            })
            .cloned()
            .collect()
    }

    pub async fn queue_depth(&self, queue_url: &str) -> usize {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let attributes = output.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| {
            attributes
                .get(name)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn attribute")
}

/// Loads a Function URL sample from `events/`, optionally edited, decoded from JSON text as the
/// route Lambda's runtime decodes its payload.
/// The catch-raw `shop` route of the stack tests: dedup on `/id`, type at `/kind`, one `order`
/// record whose data is the pointer `data` (`/order/total`, then `/order` after a rule change).
pub fn shop_route(data: &str) -> String {
    format!(
        r#"{{"name":"shop","provider":"catch-raw","open":true,"dedup":"/id","event_type":"/kind",
        "records":[{{"type":"order","id":"/order/id","version":"/order/v","data":"{data}"}}]}}"#
    )
}

/// Sends `body` to `ingestor` as a Function URL request, which it must accept; the event's id.
pub async fn post_catch_raw(ingestor: &hookcatch::Ingestor, body: &'static str) -> String {
    let request = function_url_request("catch-raw-json.json", move |event| {
        event["body"] = body.into();
    });
    let response = hookcatch_ingest::handle(ingestor, request).await.unwrap();
    assert_eq!(response.status_code, 200);
    reply_json(&response)["id"].as_str().unwrap().to_owned()
}

/// A route's Function URL on loopback: each HTTP request becomes the Function URL event Lambda
/// would pass, handled by `ingestor`. Returns the URL (with its trailing `/`, as Outputs give it).
pub async fn function_url_on_loopback(ingestor: hookcatch::Ingestor) -> String {
    use base64::Engine;
    let ingestor = std::sync::Arc::new(ingestor);
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let ingestor = ingestor.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut headers = serde_json::Map::new();
            for (name, value) in &parts.headers {
                let value = value.to_str().unwrap_or_default();
                headers
                    .entry(name.as_str())
                    .and_modify(|v| *v = format!("{},{value}", v.as_str().unwrap()).into())
                    .or_insert_with(|| value.into());
            }
            let event = function_url_request("catch-raw-json.json", |event| {
                event["rawPath"] = parts.uri.path().into();
                event["rawQueryString"] = parts.uri.query().unwrap_or_default().into();
                event["requestContext"]["http"]["method"] = parts.method.as_str().into();
                event["requestContext"]["http"]["path"] = parts.uri.path().into();
                event["headers"] = headers.into();
                event["body"] = base64::engine::general_purpose::STANDARD
                    .encode(&body)
                    .into();
                event["isBase64Encoded"] = true.into();
            });
            let response = hookcatch_ingest::handle(&ingestor, event).await.unwrap();
            axum::response::IntoResponse::into_response((
                axum::http::StatusCode::from_u16(response.status_code as u16).unwrap(),
                response.body.unwrap_or_default(),
            ))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

pub fn function_url_request(
    file: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> hookcatch_ingest::FunctionUrlEvent {
    let mut event = load_event(file);
    edit(&mut event);
    serde_json::from_str(&event.to_string()).expect("Function URL event")
}

pub fn load_event(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("events").join(file)).expect("read event");
    serde_json::from_str(&text).expect("event JSON")
}

pub fn reply_json(response: &hookcatch_ingest::LambdaFunctionUrlResponse) -> serde_json::Value {
    serde_json::from_str(response.body.as_deref().unwrap_or_default()).expect("JSON reply")
}

/// The samples in `events/` that are route requests (`consumer-…` ones are the consumer's), sorted.
pub fn route_samples() -> Vec<PathBuf> {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("consumer-")
        })
        .collect();
    samples.sort();
    samples
}

/// The route a sample belongs to: the longest route name that prefixes its file name
/// (`{route}-….json`). The example config's development secrets sign the samples.
pub fn route_of<'a>(
    path: &Path,
    routes: &'a [hookcatch::RouteSettings],
) -> &'a hookcatch::RouteSettings {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    routes
        .iter()
        .filter(|r| name.starts_with(&format!("{}-", r.config.name)))
        .max_by_key(|r| r.config.name.len())
        .unwrap_or_else(|| panic!("{name}: no route in hookcatch.toml"))
}

/// `serve` running the example `hookcatch.toml` as shipped, on an ephemeral port and a fresh
/// data directory.
pub struct ExampleServe {
    pub running: hookcatch_cli::serve::Running,
    pub base: String,
    pub settings: Vec<hookcatch::RouteSettings>,
    pub data: PathBuf,
}

pub async fn serve_example() -> ExampleServe {
    let data = std::env::temp_dir()
        .join(unique("hookcatch-example"))
        .join("data");
    let mut file =
        hookcatch_cli::project::config::ConfigFile::load(&repo_root().join("hookcatch.toml"))
            .unwrap();
    file.serve.addr = "127.0.0.1:0".parse().unwrap();
    file.serve.data = data.clone();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    ExampleServe {
        base: format!("http://{}", running.addr),
        running,
        settings: file.resolve().await.unwrap(),
        data,
    }
}

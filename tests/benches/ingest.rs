//! The ingest hot path, per provider, for 1 KiB and 256 KiB bodies:
//! - `e2e`: a Function URL event as Lambda delivers it (JSON text) → decoded as the route Lambda
//!   decodes it → verified → envelope → the serialized queue message (the queue discards it) → the
//!   Function URL response, serialized for the runtime;
//! - `decode` / `decode_complete`: the event decoding alone, as lambda_runtime runs it, into the
//!   route function's payload and into the complete `aws_lambda_events` type;
//! - `verify_envelope`: the same from the decoded request on;
//! - `hmac_ceiling`: HMAC-SHA256 of the body alone with the same crate, the speed limit of any
//!   signed route.
//!
//! `cargo bench --workspace --bench ingest` (see BENCHMARKS.md).

// Bench setup code: a failed unwrap stops the bench, which is the point.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use hookcatch::clock::Clock;
use hookcatch::ports::{Queue, QueueError};
use hookcatch::{InboundRequest, Ingestor, RouteSettings};
use hookcatch_cli::send;

/// A queue that takes every message and keeps none (the bench measures the work before it).
struct Discard;

#[async_trait]
impl Queue for Discard {
    fn max_message_bytes(&self) -> usize {
        hookcatch::model::envelope::SQS_MAX_MESSAGE_BYTES
    }
    async fn send(&self, message: String) -> Result<(), QueueError> {
        std::hint::black_box(message);
        Ok(())
    }
}

struct Fixed(i64);

impl Clock for Fixed {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

const NOW_MS: i64 = 1_795_374_237_000;

/// The payload decoded as lambda_runtime decodes it for the handler (its `deserializer` module):
/// serde_json from the event bytes, through `serde_path_to_error`.
fn as_lambda_runtime_decodes<T: serde::de::DeserializeOwned>(event: &str) -> T {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(event.as_bytes()))
        .unwrap()
}

/// The sample's body grown to `size` bytes: a padding field in JSON, a padding parameter in a form.
fn padded(request: &mut InboundRequest, size: usize) {
    let body = request.body.to_vec();
    let missing = size.saturating_sub(body.len() + 12);
    let pad = "x".repeat(missing);
    let grown = if request.is_form() {
        format!("{}&Padding={pad}", String::from_utf8(body).unwrap())
    } else {
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["padding"] = pad.into();
        json.to_string()
    };
    request.body = grown.into();
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file =
        hookcatch_cli::project::config::ConfigFile::load(&root.join("hookcatch.toml")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let settings: Vec<RouteSettings> = runtime.block_on(file.resolve()).unwrap();
    let samples = [
        ("catch-raw", "catch-raw-json.json"),
        ("github", "github-json.json"),
        ("stripe", "stripe-json.json"),
        ("shopify", "shopify-json.json"),
        ("standard-webhooks", "standard-webhooks-json.json"),
        ("slack", "slack-events-json.json"),
        ("zoho-crm", "zoho-crm-json.json"),
        ("twilio", "twilio-sms-form-base64.json"),
        ("zoom", "zoom-json.json"),
        ("meta", "meta-json.json"),
        ("x", "x-json.json"),
        ("microsoft-graph", "microsoft-graph-json.json"),
        ("generic", "generic-json.json"),
    ];
    for (route_name, sample) in samples {
        let route = settings
            .iter()
            .find(|r| r.config.name == route_name)
            .unwrap_or_else(|| panic!("hookcatch.toml has a {route_name} route"));
        let ingestor = Ingestor::new(
            route,
            Arc::new(Discard),
            None,
            Arc::new(Fixed(NOW_MS)),
            Duration::from_secs(2),
        );
        let mut group = c.benchmark_group(route_name);
        for (size_name, size) in [("1KiB", 1024), ("256KiB", 256 * 1024)] {
            let mut request = send::request_from_event(&root.join("events").join(sample)).unwrap();
            padded(&mut request, size);
            hookcatch::providers::sign::sign(route, &mut request, NOW_MS).unwrap();
            let event = send::function_url_event(&request).to_string();
            // The bench is worthless if the request is refused: check once.
            let reply = runtime.block_on(ingestor.handle(request.clone()));
            assert_eq!(reply.status / 100, 2, "{route_name} {size_name}: {reply:?}");
            group.throughput(Throughput::Bytes(request.body.len() as u64));
            group.bench_function(format!("e2e/{size_name}"), |b| {
                b.iter(|| {
                    let event: hookcatch_ingest::FunctionUrlPayload =
                        as_lambda_runtime_decodes(&event);
                    let response = runtime
                        .block_on(hookcatch_ingest::handle(&ingestor, event.0))
                        .unwrap();
                    serde_json::to_vec(&response).unwrap()
                })
            });
            // The event decoding alone: the route function's view, and the complete type it
            // replaced (BENCHMARKS.md §1).
            group.bench_function(format!("decode/{size_name}"), |b| {
                b.iter(|| as_lambda_runtime_decodes::<hookcatch_ingest::FunctionUrlPayload>(&event))
            });
            group.bench_function(format!("decode_complete/{size_name}"), |b| {
                b.iter(|| {
                    as_lambda_runtime_decodes::<
                        aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest,
                    >(&event)
                })
            });
            group.bench_function(format!("verify_envelope/{size_name}"), |b| {
                b.iter_batched(
                    || request.clone(),
                    |inbound| runtime.block_on(ingestor.handle(inbound)),
                    BatchSize::SmallInput,
                )
            });
            let body = request.body.clone();
            group.bench_function(format!("hmac_ceiling/{size_name}"), |b| {
                b.iter(|| {
                    let mut mac =
                        Hmac::<sha2::Sha256>::new_from_slice(b"a webhook signing secret").unwrap();
                    mac.update(&body);
                    mac.finalize().into_bytes()
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);

//! Cold start and per-invocation cost of the release Lambda binaries (`sam build` output), run
//! under the fake Lambda Runtime API on loopback with SQS and DynamoDB on moto. Reports, per
//! function: spawn → init done (first `/next` poll) and spawn → first response over several cold
//! starts; then latency per invocation (runtime API round trip included), CPU time per invocation
//! (from the process's scheduler statistics) and peak RSS after N invocations.
//!
//! Needs moto (`AWS_ENDPOINT_URL`) and `sam build`: run through `scripts/bench`.

// Bench setup code: a failed unwrap stops the bench, which is the point.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../it/fake_runtime.rs"]
mod fake_runtime;
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

use fake_runtime::{FakeRuntime, spawn};
use support::{Stack, load_event};

const COLD_STARTS: usize = 10;
const INVOCATIONS: usize = 500;

/// Nanoseconds the process has been on a CPU, all threads (`/proc/{pid}/task/*/schedstat`).
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Peak resident set size in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Report {
    name: &'static str,
    init: Vec<Duration>,
    first: Vec<Duration>,
    latency: Vec<Duration>,
    cpu_per_invocation_us: f64,
    peak_rss_kib: u64,
}

impl Report {
    fn print(mut self) {
        for v in [&mut self.init, &mut self.first, &mut self.latency] {
            v.sort();
        }
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} ms | {:.2} ms | {:.0} µs | {:.1} MiB |",
            self.name,
            percentile(&self.init, 0.5).as_secs_f64() * 1e3,
            percentile(&self.first, 0.5).as_secs_f64() * 1e3,
            percentile(&self.first, 1.0).as_secs_f64() * 1e3,
            percentile(&self.latency, 0.5).as_secs_f64() * 1e3,
            percentile(&self.latency, 0.99).as_secs_f64() * 1e3,
            self.cpu_per_invocation_us,
            self.peak_rss_kib as f64 / 1024.0,
        );
    }
}

/// Cold starts, then `INVOCATIONS` warm invocations of one process, each payload from `next`.
async fn measure(
    name: &'static str,
    function: &str,
    env: &HashMap<String, String>,
    mut next: impl FnMut(usize) -> serde_json::Value,
) -> Report {
    let mut init = Vec::new();
    let mut first = Vec::new();
    for i in 0..COLD_STARTS {
        let runtime = FakeRuntime::start().await;
        let started = Instant::now();
        let child = spawn(function, &runtime, env).0;
        runtime.wait_for_poll().await;
        init.push(started.elapsed());
        runtime.invoke(&next(i)).await;
        first.push(started.elapsed());
        drop(child);
    }
    let runtime = FakeRuntime::start().await;
    let child = spawn(function, &runtime, env).0;
    let pid = child.id().unwrap();
    runtime.invoke(&next(0)).await;
    let cpu_before = cpu_ns(pid);
    let mut latency = Vec::with_capacity(INVOCATIONS);
    for i in 0..INVOCATIONS {
        let payload = next(i);
        let started = Instant::now();
        runtime.invoke(&payload).await;
        latency.push(started.elapsed());
    }
    let cpu = cpu_ns(pid) - cpu_before;
    Report {
        name,
        init,
        first,
        latency,
        cpu_per_invocation_us: cpu as f64 / INVOCATIONS as f64 / 1e3,
        peak_rss_kib: peak_rss_kib(pid),
    }
}

/// A Function URL event of the github sample, signed with `secret`, with its own delivery id.
fn github_event(secret: &str, route_json: &str, delivery: usize) -> serde_json::Value {
    let root = support::repo_root();
    let mut request =
        hookcatch_cli::send::request_from_event(&root.join("events/github-json.json")).unwrap();
    hookcatch::providers::sign::set_header(
        &mut request,
        "x-github-delivery",
        &format!("bench-delivery-{delivery}"),
    );
    let settings = hookcatch::RouteSettings::new(
        serde_json::from_str(route_json).unwrap(),
        vec![hookcatch::secrets::Secret::new(secret)],
    );
    hookcatch::providers::sign::sign(&settings, &mut request, 0).unwrap();
    hookcatch_cli::send::function_url_event(&request)
}

/// An SQS batch of `size` queued github events, as the event source mapping delivers it.
fn sqs_batch(first: usize, size: usize) -> serde_json::Value {
    let template = load_event("consumer-sqs-batch.json")["Records"][0].clone();
    let records: Vec<serde_json::Value> = (first..first + size)
        .map(|n| {
            let body = serde_json::json!({"action": "opened", "number": n, "pull_request": {"id": n, "title": "bench"}})
                .to_string();
            let envelope = hookcatch::Envelope {
                v: hookcatch::model::envelope::SCHEMA_VERSION,
                id: uuid::Uuid::now_v7().to_string(),
                route: "github".into(),
                provider: "github".into(),
                received_at_ms: 1_795_374_237_000,
                delivery_id: Some(format!("bench-{n}-{}", uuid::Uuid::now_v7())),
                test_ping: false,
                replay: false,
                replaces: None,
                hydrate: None,
                rules: hookcatch::providers::default_rules(hookcatch::ProviderKind::Github).into(),
                method: "POST".into(),
                path: "/".into(),
                query: String::new(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-github-event".into(), "pull_request".into()),
                ],
                source_ip: None,
                body_len: body.len() as u64,
                body_sha256: hookcatch::model::request::sha256_hex(body.as_bytes()),
                body: hookcatch::model::envelope::BodyLocation::Inline(body.into()),
            };
            let mut record = template.clone();
            record["messageId"] = uuid::Uuid::now_v7().to_string().into();
            record["body"] = envelope.to_message().into();
            record
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[tokio::main]
async fn main() {
    let stack = Stack::create(3).await;
    let secret = "bench-only-github-secret";
    let parameter = stack.put_secret(secret).await;
    let route = serde_json::json!({
        "name": "github", "provider": "github", "secrets": [format!("ssm:{parameter}")]
    })
    .to_string();
    let ingest_env = stack.ingest_env(&route);
    let consumer_env = stack.consumer_env();
    println!(
        "{COLD_STARTS} cold starts, then {INVOCATIONS} warm invocations of one process (128 MB set, not enforced)"
    );
    println!(
        "| function | init (spawn → ready) p50 | first response p50 | first response max | warm latency p50 | p99 | CPU per invocation | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let events: Vec<serde_json::Value> = (0..INVOCATIONS)
        .map(|n| github_event(secret, &route, n))
        .collect();
    measure(
        "ingest (github, 1 event)",
        "Routegithub",
        &ingest_env,
        |n| events[n % events.len()].clone(),
    )
    .await
    .print();
    let mut next = 0;
    measure(
        "consumer (SQS batch of 10)",
        "ConsumerFunction",
        &consumer_env,
        |_| {
            next += 10;
            sqs_batch(next, 10)
        },
    )
    .await
    .print();
}

//! Local mode under load: `hookcatch serve` (in process, the SQLite store in a temporary folder,
//! every acknowledgement committed with `synchronous=FULL`) against a bare HTTP server that does no
//! work, both driven by the same load generator on loopback: 64 connections, small signed JSON.
//! Then the consume core draining what was acknowledged, against the same store.
//!
//! `cargo bench -p hookcatch-tests --bench serve` (see BENCHMARKS.md).

// Bench setup code: a failed unwrap stops the bench, which is the point.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookcatch::clock::{Clock, SystemClock};
use hookcatch::{Consumer, InboundRequest};
use hookcatch_cli::store::{Claimed, LocalStore};

const CONNECTIONS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);

struct LoadResult {
    /// Every 2xx answer, warm-up included (each one an acknowledged event).
    acknowledged: usize,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl LoadResult {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        self.latencies[((self.latencies.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// `CONNECTIONS` clients, each with its own keep-alive connection, sending `request` back to back
/// for `MEASURE` after `WARM_UP`; only 2xx answers count. Each body is made unique (a `seq` member)
/// and signed anew with `secret`, as GitHub does: GitHub events are keyed by their body's digest,
/// so a body sent twice would be one event.
async fn load(url: &str, request: &InboundRequest, secret: &[u8]) -> LoadResult {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = hookcatch::tls::https_client_builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let mut builder_headers = reqwest::header::HeaderMap::new();
        for (name, value) in &request.headers {
            if name == "host" || name == "content-length" {
                continue;
            }
            builder_headers.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(value).unwrap(),
            );
        }
        let body = request.body.clone();
        let secret = secret.to_vec();
        let connection = tasks.len();
        let url = url.to_owned();
        let (stop, measuring) = (stop.clone(), measuring.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut acknowledged = 0usize;
            let mut seq = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                seq += 1;
                let mut unique = format!("{{\"seq\":\"{connection}-{seq}\",").into_bytes();
                unique.extend_from_slice(&body[1..]);
                let signature = hex::encode(hookcatch::providers::hmac_sha256(&secret, &[&unique]));
                let response = client
                    .post(&url)
                    .headers(builder_headers.clone())
                    .header("x-hub-signature-256", format!("sha256={signature}"))
                    .body(unique)
                    .send()
                    .await;
                let ok = match response {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                acknowledged += usize::from(ok);
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(started.elapsed());
                    } else {
                        failures += 1;
                    }
                }
            }
            (latencies, failures, acknowledged)
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(MEASURE).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut acknowledged = 0;
    for task in tasks {
        let (l, f, a) = task.await.unwrap();
        latencies.extend(l);
        failures += f;
        acknowledged += a;
    }
    assert_eq!(failures, 0, "every request is answered 2xx");
    LoadResult {
        acknowledged,
        requests: latencies.len(),
        elapsed,
        latencies,
    }
}

fn report(name: &str, result: &mut LoadResult, ceiling: Option<f64>) {
    let rate = result.per_second();
    let share = ceiling.map_or(String::new(), |c| format!("{:.0}%", 100.0 * rate / c));
    println!(
        "| {name} | {:.0} | {:.2} ms | {:.2} ms | {share} |",
        rate,
        result.percentile(0.5).as_secs_f64() * 1e3,
        result.percentile(0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut file = hookcatch_cli::config::ConfigFile::load(&root.join("hookcatch.toml")).unwrap();
    let settings = file.resolve().await.unwrap();
    let github = settings.iter().find(|r| r.config.name == "github").unwrap();
    let mut request =
        hookcatch_cli::send::request_from_event(&root.join("events/github-json.json")).unwrap();
    // The load signs each (unique) body itself, with the route's secret.
    request
        .headers
        .retain(|(name, _)| name != "x-github-delivery" && name != "x-hub-signature-256");
    let secret = github.secrets[0].expose().as_bytes().to_vec();
    println!(
        "body {} bytes, {CONNECTIONS} connections, {} s measured after {} s warm-up",
        request.body.len(),
        MEASURE.as_secs(),
        WARM_UP.as_secs()
    );
    println!("| server | requests/s | p50 | p99 | of bare |");
    println!("|---|---|---|---|---|");

    let bare = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_addr = listener.local_addr().unwrap();
    let bare_server = tokio::spawn(async move { axum::serve(listener, bare).await });
    let mut bare_result = load(&format!("http://{bare_addr}/"), &request, &secret).await;
    report("bare HTTP server (no work)", &mut bare_result, None);
    bare_server.abort();

    let data = std::env::temp_dir().join(format!("hookcatch-bench-{}", uuid::Uuid::now_v7()));
    file.serve.addr = "127.0.0.1:0".parse().unwrap();
    file.serve.data = data.clone();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let url = format!("http://{}/hooks/github", running.addr);
    let mut served = load(&url, &request, &secret).await;
    report(
        "hookcatch serve (durable ack, worker running)",
        &mut served,
        Some(bare_result.per_second()),
    );
    running.stop().await.unwrap();

    // Every acknowledged request is durable: stored as an event, or still queued.
    let store = LocalStore::open(&data).unwrap();
    let queued = store.queue_entries().await.unwrap().len();
    let stored = store
        .list_events(None, None, usize::MAX)
        .await
        .unwrap()
        .len();
    println!(
        "acknowledged {}, stored {stored} + still queued {queued}",
        served.acknowledged
    );
    assert_eq!(
        stored + queued,
        served.acknowledged,
        "nothing acknowledged was lost"
    );

    // The consume core draining the backlog from the same store, as the `serve` worker does:
    // claim 10, process them concurrently, acknowledge each.
    let consumer = Consumer::new(Arc::new(store.clone()), None, Arc::new(SystemClock), 30, 10);
    let started = Instant::now();
    let mut drained = 0;
    loop {
        let claimed = store.claim(10, SystemClock.now_ms(), 60_000).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        let messages = claimed.iter().map(Claimed::to_message).collect();
        let failures = consumer.process_batch_detailed(messages).await;
        assert!(failures.is_empty(), "{failures:?}");
        for entry in claimed {
            store.ack(entry.seq).await.unwrap();
            drained += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "consume core + local store: {drained} messages in {:.2} s = {:.0} messages/s (batches of 10)",
        elapsed.as_secs_f64(),
        drained as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&data);
}

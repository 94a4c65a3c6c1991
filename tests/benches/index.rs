//! A Query of one hour of one route through the event index, against moto on loopback: a table
//! holding two hours of a busy and a quiet route (stored times one second apart per route, so
//! the hour is a known count), read in pages of 50 with the cursor, as `events list --aws --route
//! R --since 1h` and the console page through it. Reports pages, events, and time per page.
//!
//! `scripts/bench` starts moto; alone: `cargo bench -p hookcatch-tests --bench index` with moto on
//! `AWS_ENDPOINT_URL` (BENCHMARKS.md §6).

// Bench setup code: a failed unwrap stops the bench, which is the point.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hookcatch::clock::Clock;
use hookcatch::ports::{EventItem, EventStore, StoredBody};
use hookcatch::testing::fakes::FixedClock;

#[allow(dead_code)]
#[path = "../it/fake_runtime.rs"]
mod fake_runtime;
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

/// Events per route: one a second for two hours.
const PER_ROUTE: i64 = 7_200;
const PAGE: usize = 50;
const RUNS: usize = 5;

fn event(route: &str, n: i64) -> EventItem {
    let body = format!(r#"{{"id":"{route}-{n}","order":{{"id":{n},"total":12.5}}}}"#);
    EventItem {
        route: route.into(),
        dedup_key: format!("{route}-{n}"),
        delivery_id: None,
        event_id: uuid::Uuid::now_v7().to_string(),
        provider: "catch-raw".into(),
        event_type: Some("order.updated".into()),
        received_at_ms: 0,
        test_ping: false,
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        source_ip: None,
        body_len: body.len() as u64,
        body_sha256: hookcatch::model::request::sha256_hex(body.as_bytes()),
        body: StoredBody::Inline(Bytes::from(body)),
        parts: None,
        records: vec![],
        expires_at: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = support::Stack::create(3).await;
    let sdk = hookcatch::aws::sdk_config(Duration::from_secs(10)).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let now_ms = hookcatch::clock::SystemClock.now_ms();
    let start_ms = now_ms - 2 * 3_600_000;

    // Each write stamps its stored time from its own clock: 16 writers at a time.
    let started = Instant::now();
    let writes = ["busy", "quiet"].into_iter().flat_map(|route| {
        let step = if route == "busy" { 1 } else { 10 };
        (0..PER_ROUTE / step).map(move |n| (route, n * step))
    });
    let count = futures::stream::iter(writes)
        .map(|(route, second)| {
            let clock = Arc::new(FixedClock::new(start_ms + second * 1_000 + 1));
            let store = hookcatch::aws::DynamoStore::new(client.clone(), stack.table.clone())
                .with_event_index(clock);
            async move { store.put_event(&event(route, second)).await.unwrap() }
        })
        .buffer_unordered(16)
        .count()
        .await;
    println!(
        "{count} events written in {:.1} s (busy: one a second, quiet: one every ten)",
        started.elapsed().as_secs_f64()
    );

    let store = hookcatch::aws::DynamoStore::new(client.clone(), stack.table.clone());
    let since = Some(now_ms - 3_600_000);
    for route in ["busy", "quiet"] {
        let expected = if route == "busy" { 3_600 } else { 360 };
        let mut page_times = Vec::new();
        let mut walks = Vec::new();
        let mut pages = 0;
        for _ in 0..RUNS {
            let walk = Instant::now();
            let (mut after, mut seen, mut last) = (None::<String>, 0, i64::MAX);
            pages = 0;
            loop {
                let page_started = Instant::now();
                let page = store
                    .query_events(route, since, None, PAGE, after.as_deref())
                    .await
                    .unwrap();
                page_times.push(page_started.elapsed());
                pages += 1;
                for (_, stored_ms) in &page.events {
                    assert!(*stored_ms <= last, "newest first");
                    last = *stored_ms;
                }
                seen += page.events.len();
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(
                seen, expected,
                "route {route}: the hour's events, once each"
            );
            walks.push(walk.elapsed());
        }
        page_times.sort();
        walks.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {route} | {expected} | {pages} | {:.1} / {:.1} / {:.1} ms | {:.0} ms |",
            ms(page_times[0]),
            ms(page_times[page_times.len() / 2]),
            ms(page_times[page_times.len() * 99 / 100]),
            ms(walks[walks.len() / 2]),
        );
    }
}

//! The console's response time on a store of 100 000 events (10 routes, 20 event types, spread
//! over a week): `/` and each of its filters, the next page by cursor, the live list's rows
//! fragment and an event's detail, over loopback HTTP as a browser asks for them.
//!
//! `cargo bench -p hookcatch-tests --bench console` (see BENCHMARKS.md §7).

// Bench setup code: a failed unwrap stops the bench, which is the point.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookcatch::ports::{EventItem, EventStore, StoredBody};
use hookcatch_cli::store::LocalStore;

const EVENTS: usize = 100_000;
const ROUTES: usize = 10;
const TYPES: usize = 20;
const RUNS: usize = 40;
const WEEK_MS: i64 = 7 * 86_400_000;

fn event(n: usize, now_ms: i64) -> EventItem {
    let body = format!(
        r#"{{"id":"evt-{n}","type":"order.t{}","order":{{"id":{n},"total":12.5,"note":"{}"}}}}"#,
        n % TYPES,
        "x".repeat(400)
    );
    EventItem {
        route: format!("route{}", n % ROUTES),
        dedup_key: format!("evt-{n}"),
        delivery_id: None,
        event_id: uuid::Uuid::now_v7().to_string(),
        provider: "catch-raw".into(),
        event_type: Some(format!("order.t{}", n % TYPES)),
        received_at_ms: now_ms - WEEK_MS + (n as i64 * WEEK_MS / EVENTS as i64),
        test_ping: false,
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        source_ip: Some("127.0.0.1".into()),
        body_len: body.len() as u64,
        body_sha256: hookcatch::model::request::sha256_hex(body.as_bytes()),
        body: StoredBody::Inline(Bytes::from(body)),
        parts: None,
        records: vec![format!("order/{n}")],
        expires_at: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir =
        std::env::temp_dir().join(format!("hookcatch-console-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = LocalStore::open(&dir).unwrap();
    let now_ms = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
    let started = Instant::now();
    let store_arc = Arc::new(store.clone());
    let mut tasks = Vec::new();
    for worker in 0..64 {
        let store = store_arc.clone();
        tasks.push(tokio::spawn(async move {
            for n in (worker..EVENTS).step_by(64) {
                store.put_event(&event(n, now_ms)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!("{EVENTS} events stored in {:.1?}", started.elapsed());
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let settings =
        hookcatch_cli::console::ConsoleSettings::new("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let cookie = format!("hookcatch_console_{{PORT}}={}", settings.token);
    let config: String = (0..ROUTES)
        .map(|r| {
            format!("[[routes]]\nname = \"route{r}\"\nprovider = \"catch-raw\"\nopen = true\n")
        })
        .collect();
    let context = hookcatch_cli::console::Context {
        store: store.clone(),
        refusals: Default::default(),
        handshakes: Default::default(),
        config: hookcatch_cli::project::config::ConfigFile::parse(&config, "bench").unwrap(),
        hooks_addr: "127.0.0.1:9".parse().unwrap(),
        data_dir: dir.display().to_string(),
    };
    let console = hookcatch_cli::console::start(settings, context, stopped)
        .await
        .unwrap();
    let base = format!("http://{}", console.addr);
    let cookie = cookie.replace("{PORT}", &console.addr.port().to_string());
    let client = hookcatch::tls::https_client_builder()
        .default_headers(
            [(reqwest::header::COOKIE, cookie.parse().unwrap())]
                .into_iter()
                .collect(),
        )
        .build()
        .unwrap();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let started = Instant::now();
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            let body = response.text().await.unwrap();
            (started.elapsed(), body)
        }
    };
    // The second page's cursor, and an event id in the middle of the week.
    let (_, first) = get("/".into()).await;
    let after = first
        .split("after=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let id = first
        .split("/events/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let day_ago = hookcatch_cli::term::time_text(now_ms - 86_400_000);
    let two_days_ago = hookcatch_cli::term::time_text(now_ms - 2 * 86_400_000);
    let pages = [
        ("`/` (newest 50)", "/".to_owned()),
        ("route", "/?route=route3".to_owned()),
        ("type", "/?type=order.t7".to_owned()),
        ("status stored", "/?status=stored".to_owned()),
        ("status dead (none)", "/?status=dead".to_owned()),
        (
            "one day, two days ago",
            format!("/?since={two_days_ago}&until={day_ago}"),
        ),
        (
            "route + type + time",
            format!("/?route=route3&type=order.t3&since={two_days_ago}"),
        ),
        ("type with no match", "/?type=nothing".to_owned()),
        ("next page (cursor)", format!("/?after={after}")),
        ("live rows fragment", "/rows".to_owned()),
        ("event detail", format!("/events/{id}")),
    ];
    println!("\n| page | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, path) in pages {
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            times.push(get(path.clone()).await.0);
        }
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3
        );
    }
    drop(console);
    let _ = std::fs::remove_dir_all(&dir);
}

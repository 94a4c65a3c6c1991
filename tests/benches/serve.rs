//! Local mode keeps up: `hookcatch serve` (its own runtime, two workers as on this machine's two
//! cores, the SQLite store committing every acknowledgement with `synchronous=FULL`) under a load
//! generator on loopback (its own runtime, two workers, as `wrk -t2`), one route:
//!
//! 1. the bare ceiling: `GET /healthz` of the same server, 64 connections;
//! 2. 64 connections POSTing unique ~0.7 KiB orders for 30 s: acknowledgements per second, events
//!    stored per second *during* the load (read from the database as a user's reader would), then
//!    how long the backlog takes to drain, and that every acknowledged event is stored once with
//!    its record;
//! 3. 32 connections for 10 s: each acknowledged event's delay until it is visible in the
//!    database, found by polling it every 2 ms.
//!
//! `cargo bench -p hookcatch-tests --bench serve` (see BENCHMARKS.md §4).

// Bench setup code: a failed unwrap stops the bench, which is the point.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOAD_CONNECTIONS: usize = 64;
const LATENCY_CONNECTIONS: usize = 32;
const WARM_UP: Duration = Duration::from_secs(2);
const LOAD: Duration = Duration::from_secs(30);
const LATENCY_RUN: Duration = Duration::from_secs(10);
/// How long to wait for the backlog after the load (`BENCH_DRAIN_LIMIT_S`, default 900): a build
/// that cannot keep up is measured with a shorter wait and reported as not drained.
fn drain_limit() -> Duration {
    let seconds = std::env::var("BENCH_DRAIN_LIMIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(900);
    Duration::from_secs(seconds)
}

const CONFIG: &str = r#"
[serve]
addr = "127.0.0.1:0"
data = "data"

[[routes]]
name = "load"
provider = "catch-raw"
open = true
dedup = "/id"
event_type = "/event"
records = [{ type = "order", id = "/order/id", version = "/order/v", data = "/order" }]
"#;

/// A unique order of about 0.7 KiB, the event id and the order id both `id`.
fn order(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"order.updated","order":{{"id":"{id}","v":1,"total":12.5,"items":[{{"sku":"A-1","qty":2,"price":4.0}},{{"sku":"B-7","qty":1,"price":4.5}}],"note":"{}"}}}}"#,
        "x".repeat(600)
    )
}

#[derive(Clone, Copy)]
enum Request {
    Healthz,
    Order,
}

/// What one run of the load generator saw.
struct Run {
    /// 2xx answers inside the measured window.
    measured: usize,
    /// Every 2xx answer, warm-up included: each one an acknowledged event.
    acknowledged: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// The moment each order was acknowledged, by its id (latency runs only).
    acked_at: HashMap<String, Instant>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.measured as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort();
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `connections` keep-alive clients sending back to back for `measure` after `WARM_UP`; at the
/// start of the window `on_window` runs (to read the store's count at that moment).
async fn load(
    base: &str,
    request: Request,
    connections: usize,
    measure: Duration,
    keep_ack_times: bool,
    prefix: &str,
    on_window: impl FnOnce(),
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for connection in 0..connections {
        // The same builder the CLI uses (it installs the TLS provider reqwest is built without).
        let client = hookcatch::tls::https_client_builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (stop, measuring) = (stop.clone(), measuring.clone());
        let base = base.to_owned();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut run = Run {
                measured: 0,
                acknowledged: 0,
                failures: 0,
                elapsed: Duration::ZERO,
                latencies: Vec::new(),
                acked_at: HashMap::new(),
            };
            let mut seq = 0usize;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let id = format!("{prefix}-{connection}-{seq}");
                let started = Instant::now();
                let sent = match request {
                    Request::Healthz => client.get(format!("{base}/healthz")).send().await,
                    Request::Order => {
                        client
                            .post(format!("{base}/hooks/load"))
                            .header("content-type", "application/json")
                            .body(order(&id))
                            .send()
                            .await
                    }
                };
                let ok = match sent {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                let answered = Instant::now();
                run.acknowledged += usize::from(ok);
                if ok && keep_ack_times {
                    run.acked_at.insert(id, answered);
                }
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        run.measured += 1;
                        run.latencies.push(answered - started);
                    } else {
                        run.failures += 1;
                    }
                } else if !ok {
                    run.failures += 1;
                }
            }
            run
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    on_window();
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut total = Run {
        measured: 0,
        acknowledged: 0,
        failures: 0,
        elapsed,
        latencies: Vec::new(),
        acked_at: HashMap::new(),
    };
    for task in tasks {
        let run = task.await.unwrap();
        total.measured += run.measured;
        total.acknowledged += run.acknowledged;
        total.failures += run.failures;
        total.latencies.extend(run.latencies);
        total.acked_at.extend(run.acked_at);
    }
    total
}

/// A reader of the data directory, as `hookcatch events list` or the console reads it.
fn reader(data: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("hookcatch.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn count(conn: &rusqlite::Connection, sql: &str) -> usize {
    conn.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap() as usize
}

fn stored(conn: &rusqlite::Connection) -> usize {
    count(conn, "SELECT count(*) FROM events")
}

/// Polls the events table every 2 ms for rows it has not seen; returns when each dedup key (the
/// order id) was first seen.
fn watch_events(
    data: PathBuf,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let conn = reader(&data);
        let mut last: i64 = conn
            .query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |r| {
                r.get(0)
            })
            .unwrap();
        let mut statement = conn
            .prepare("SELECT rowid, dedup_key FROM events WHERE rowid > ?1 ORDER BY rowid")
            .unwrap();
        while !stop.load(Ordering::Relaxed) {
            let rows: Vec<(i64, String)> = statement
                .query_map([last], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let now = Instant::now();
            let mut seen = seen.lock().unwrap();
            for (rowid, key) in rows {
                last = last.max(rowid);
                seen.insert(key, now);
            }
            drop(seen);
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

fn main() {
    let dir = std::env::temp_dir().join(format!("hookcatch-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("hookcatch.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let mut file = hookcatch_cli::project::config::ConfigFile::load(&config_path).unwrap();
    let data = dir.join("data");
    file.serve.data = data.clone();

    // The server on its own runtime, as `hookcatch serve` runs (one worker per core).
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve")
        .enable_all()
        .build()
        .unwrap();
    let running = server_runtime
        .block_on(hookcatch_cli::serve::start(&file, &file.serve))
        .unwrap();
    let base = format!("http://{}", running.addr);

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .unwrap();
    let window_start = AtomicUsize::new(0);
    client_runtime.block_on(async {
        println!(
            "one catch-raw route, unique {}-byte orders; {LOAD_CONNECTIONS} connections for {} s, then {LATENCY_CONNECTIONS} for {} s, each after {} s of warm-up",
            order("c-0-0").len(),
            LOAD.as_secs(),
            LATENCY_RUN.as_secs(),
            WARM_UP.as_secs(),
        );

        // 1. The bare ceiling.
        let mut bare = load(&base, Request::Healthz, LOAD_CONNECTIONS, LOAD, false, "h", || {}).await;
        assert_eq!(bare.failures, 0);
        println!(
            "| bare `GET /healthz` | {:.0}/s | p50 {} | p99 {} |",
            bare.per_second(),
            ms(percentile(&mut bare.latencies, 0.5)),
            ms(percentile(&mut bare.latencies, 0.99)),
        );

        // 2. Unique orders at 64 connections; what is stored during the window, then the drain.
        let conn = reader(&data);
        let mut loaded = load(&base, Request::Order, LOAD_CONNECTIONS, LOAD, false, "o", || {
            window_start.store(stored(&conn), Ordering::SeqCst);
        })
        .await;
        let ended = Instant::now();
        let stored_in_window = stored(&conn) - window_start.load(Ordering::SeqCst);
        assert_eq!(loaded.failures, 0, "every request is answered 2xx");
        let acks = loaded.per_second();
        let stores = stored_in_window as f64 / loaded.elapsed.as_secs_f64();
        println!(
            "| durable acks | {acks:.0}/s = {:.1}% of bare | p50 {} | p99 {} |",
            100.0 * acks / bare.per_second(),
            ms(percentile(&mut loaded.latencies, 0.5)),
            ms(percentile(&mut loaded.latencies, 0.99)),
        );
        println!(
            "| events stored during the load | {stores:.0}/s = {:.1}% of the ack rate |",
            100.0 * stores / acks
        );
        let drain_limit = drain_limit();
        let drained = loop {
            let now = stored(&conn);
            if now >= loaded.acknowledged {
                break Some(ended.elapsed());
            }
            if ended.elapsed() > drain_limit {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let backlog = loaded.acknowledged - stored(&conn).min(loaded.acknowledged);
        match drained {
            Some(took) => println!(
                "| backlog drained after the load | {:.2} s |",
                took.as_secs_f64()
            ),
            None => println!(
                "| backlog NOT drained after {} s: {backlog} left |",
                drain_limit.as_secs()
            ),
        }
        // Nothing lost, nothing twice: every acknowledged order is one event and one record.
        let events = stored(&conn);
        let records = count(&conn, "SELECT count(*) FROM records WHERE route = 'load'");
        let queued = count(&conn, "SELECT count(*) FROM queue");
        println!(
            "acknowledged {}, events {events}, records {records}, still queued {queued}",
            loaded.acknowledged
        );
        if drained.is_some() {
            assert_eq!(events, loaded.acknowledged, "every acknowledged event stored once");
            assert_eq!(records, loaded.acknowledged, "every order's record written");
            assert_eq!(queued, 0);
        } else {
            assert_eq!(events + queued, loaded.acknowledged, "nothing acknowledged was lost");
        }

        // 3. Acknowledgement -> visible, at 32 connections.
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let watcher = watch_events(data.clone(), stop.clone(), seen.clone());
        let latency_run = load(&base, Request::Order, LATENCY_CONNECTIONS, LATENCY_RUN, true, "l", || {}).await;
        assert_eq!(latency_run.failures, 0);
        let waited = Instant::now();
        while seen.lock().unwrap().len() < latency_run.acked_at.len()
            && waited.elapsed() < drain_limit
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        let seen = seen.lock().unwrap();
        let mut delays: Vec<Duration> = latency_run
            .acked_at
            .iter()
            .filter_map(|(id, acked)| Some(seen.get(id)?.saturating_duration_since(*acked)))
            .collect();
        let count = delays.len();
        let invisible = latency_run.acked_at.len() - count;
        if invisible > 0 {
            println!(
                "{invisible} of {} acknowledged orders were NOT visible {} s after the run",
                latency_run.acked_at.len(),
                drain_limit.as_secs()
            );
        }
        if count > 0 {
            println!(
                "| {LATENCY_CONNECTIONS} connections: {:.0} acks/s; ack → visible (n = {count}) | p50 {} | p99 {} | max {} |",
                latency_run.per_second(),
                ms(percentile(&mut delays, 0.5)),
                ms(percentile(&mut delays, 0.99)),
                ms(percentile(&mut delays, 1.0)),
            );
        }
    });
    server_runtime.block_on(running.stop()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

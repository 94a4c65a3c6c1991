//! `hookcatch serve`: every route at `/hooks/{route}` through the same ingest core as the route
//! Lambdas and the same consume core as the consumer Lambda, on the local store. An event that
//! needs no hydration is stored in the transaction that acknowledges it; a worker takes the rest
//! from the local queue (hydration, retries, dead letters, replays).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

mod at_once;
mod hooks;
mod limits;
pub mod reload;
mod retention;
mod wiring;
mod worker;

use axum::Router;
use axum::routing::{any, get};
use hookcatch::clock::{Clock, SystemClock};

use arc_swap::ArcSwap;
use hookcatch::{Ingestor, Reply};
use tokio::sync::{Notify, watch};

use crate::handshakes::Handshakes;
use crate::project::config::{ConfigFile, ServeConfig};
use crate::refusals::Refusals;
use crate::store::{DataDirLock, LocalStore};
use hooks::{hook, hook_with_path, reply};
use limits::RouteLimit;
use reload::{Live, Triggers, reload_on_change};
use wiring::Built;
use worker::{renew_subscriptions, run_worker};

pub(crate) struct App {
    /// Swapped whole when the configuration is reloaded; a request keeps the map it started with.
    pub(super) routes: ArcSwap<HashMap<String, Ingestor>>,
    /// The routes with a `rate_limit`, swapped with them (a reload starts each bucket full).
    pub(super) limits: ArcSwap<HashMap<String, RouteLimit>>,
    /// Recent refused requests, for the console.
    pub(super) refusals: Refusals,
    /// Handshakes answered in the last hour, for the console.
    pub(super) handshakes: Handshakes,
    /// How many proxies of the user's append `X-Forwarded-*` entries; None trusts none.
    pub(super) trusted_proxy_hops: Option<usize>,
}

/// Starts serving; returns the bound address and a handle that resolves when the server stopped.
pub struct Running {
    pub addr: SocketAddr,
    /// The console's URL to open (with its token), when it runs.
    pub console_url: Option<String>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and the worker's current batch.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.shutdown.send(true);
        self.server.await.map_err(|e| e.to_string())?
    }

    /// Waits until the server ends (after a shutdown signal).
    pub async fn wait(self) -> Result<(), String> {
        self.server.await.map_err(|e| e.to_string())?
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

pub async fn start(config: &ConfigFile, serve: &ServeConfig) -> Result<Running, String> {
    let lock = DataDirLock::acquire(&serve.data)?;
    let store = LocalStore::open(&serve.data).map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let built = Built::from(config, serve, &store, &clock).await?;
    let recovered = store.recover_leases().await.map_err(|e| e.to_string())?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "events claimed by a previous run that did not finish are due again"
        );
    }
    let consumer = Arc::new(ArcSwap::new(built.consumer));
    let app = Arc::new(App {
        routes: ArcSwap::from_pointee(built.routes),
        limits: ArcSwap::from_pointee(built.limits),
        refusals: Refusals::default(),
        handshakes: Handshakes::default(),
        trusted_proxy_hops: serve.trust_forwarded.then_some(serve.trusted_proxy_hops),
    });
    let renew_now = Arc::new(Notify::new());
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { ([("content-type", "application/json")], r#"{"status":"ok"}"#) }),
        )
        .route("/hooks/{route}", any(hook))
        .route("/hooks/{route}/{*rest}", any(hook_with_path))
        .fallback(|| async { reply(Reply::error(404, "unknown_route")) })
        .with_state(app.clone());

    let listener = tokio::net::TcpListener::bind(serve.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", serve.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (shutdown, stopped) = watch::channel(false);
    if let Some(path) = &config.source {
        match Triggers::watch(path) {
            Ok(triggers) => {
                let live = Live {
                    app: app.clone(),
                    consumer: consumer.clone(),
                    renew_now: renew_now.clone(),
                    store: store.clone(),
                    clock: clock.clone(),
                    serve: serve.clone(),
                    file_serve: config.serve.clone(),
                };
                tokio::spawn(reload_on_change(
                    path.clone(),
                    triggers,
                    live,
                    stopped.clone(),
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "routes will not reload when the file changes: restart serve after editing it");
            }
        }
    }
    tokio::spawn(retention::sweep_expired(
        store.clone(),
        serve.event_retention_days,
        stopped.clone(),
    ));
    tokio::spawn(renew_subscriptions(
        consumer.clone(),
        renew_now,
        stopped.clone(),
    ));
    let console = if serve.console {
        let settings = crate::console::ConsoleSettings::kept_in(
            serve.console_addr,
            crate::console::token_from_env(),
            &serve.data.join("console-token"),
        )?;
        let context = crate::console::Context {
            store: store.clone(),
            refusals: app.refusals.clone(),
            handshakes: app.handshakes.clone(),
            config: config.clone(),
            hooks_addr: addr,
            data_dir: serve.data.display().to_string(),
        };
        match crate::console::start(settings, context, stopped.clone()).await {
            Ok(started) => Some(started),
            // Webhooks matter more than the view of them: serve on, and say why there is none.
            Err(error) => {
                tracing::warn!(%error, "running without the console (set --console-addr)");
                None
            }
        }
    } else {
        None
    };
    let console_url = console.as_ref().map(|c| c.url.clone());
    let console_addr = console.as_ref().map(|c| c.addr);
    let worker = tokio::spawn(run_worker(store, consumer, serve.clone(), stopped.clone()));
    let server_stopped = stopped.clone();
    // Before the first connection: this raises the open-file limit the cap is drawn from.
    let limits = crate::server::Limits::hooks();
    let server = tokio::spawn(async move {
        crate::server::serve(listener, router, limits, server_stopped).await;
        // Requests are finished; let the worker finish its batch, then give up the directory.
        let _ = worker.await;
        if let Some(console) = console {
            let _ = console.server.await;
        }
        drop(lock);
        Ok(())
    });
    let running = crate::store::RunningServe {
        hooks: addr,
        console: console_addr,
    };
    if let Err(error) = running.write(&serve.data) {
        tracing::warn!(%error, "other hookcatch commands will use hookcatch.toml's addresses");
    }
    tracing::info!(%addr, "hookcatch serve listening");
    Ok(Running {
        addr,
        console_url,
        shutdown,
        server,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use at_once::StoringQueue;
    use axum::http::HeaderMap;
    use hookcatch::Consumer;
    use hooks::{forwarded_client, forwarded_url};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;
    use worker::work_once;

    struct StepClock(AtomicI64);

    impl Clock for StepClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// An order for the `orders` route, its event id `id`, record `order/{order}` at version `v`.
    fn order(id: &str, order: &str, v: u32) -> hookcatch::InboundRequest {
        hookcatch::InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(r#"{{"id":"{id}","order":{{"id":"{order}","v":{v}}}}}"#).into(),
            source_ip: None,
            called_url: None,
        }
    }

    /// The `orders` route: dedup by `/id`, one `order` record per event, versioned by `/order/v`.
    const ORDERS: &str = r#"
[[routes]]
name = "orders"
provider = "catch-raw"
open = true
dedup = "/id"
records = [{ type = "order", id = "/order/id", version = "/order/v", data = "/order" }]
"#;

    /// The store's database in `dir`, where writing record `poison` fails as a full disk or a
    /// constraint would make a real SQLite write fail.
    fn poisoned(dir: &std::path::Path) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(dir.join("hookcatch.db")).unwrap();
        db.execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON records WHEN NEW.record_id = 'poison'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
        db
    }

    /// The one failing message, due again after its first backoff, fails a second time: dead at
    /// `max_attempts` = 2.
    async fn fails_again_and_dies(store: &LocalStore, consumer: &Consumer, clock: &StepClock) {
        clock.0.fetch_add(2_000, Ordering::SeqCst);
        assert_eq!(work_once(store, consumer, 2, clock).await.unwrap(), 1);
        let dead = store.queue_entries().await.unwrap();
        assert!(dead[0].dead && dead[0].attempts == 2, "{dead:?}");
    }

    fn failed_by_poison(entry: &crate::store::QueueEntry) -> bool {
        let error = entry.last_error.as_deref().unwrap_or_default();
        error.contains("injected failure")
    }

    fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
        db.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// Batching changed how writes are committed, not what they mean: within a batch and across
    /// batches, dedup and newer-wins hold; a message whose record write fails is retried alone,
    /// and dead-lettered after `max_attempts`.
    #[tokio::test]
    async fn a_batch_keeps_dedup_newer_wins_retries_and_dead_letters() {
        let dir = std::env::temp_dir().join(format!("hookcatch-batch-{}", uuid::Uuid::now_v7()));
        let config = ConfigFile::parse(ORDERS, "test.toml").unwrap();
        let settings = config.resolve().await.unwrap();
        let store = LocalStore::open(&dir).unwrap();
        let clock = Arc::new(StepClock(AtomicI64::new(SystemClock.now_ms() + 60_000)));
        let ingest = Ingestor::new(
            &settings[0],
            Arc::new(store.clone()),
            None,
            clock.clone(),
            Duration::from_secs(10),
        );
        let consumer = Consumer::new(Arc::new(store.clone()), None, clock.clone(), 0, 16);
        // (The clock runs a minute ahead of the queue's, which stamps entries with the real time.)
        let db = poisoned(&dir);
        let send = |request| async { assert_eq!(ingest.handle(request).await.status, 200) };

        // One batch: a newer version before an older one of the same record, a redelivery, and
        // one message whose record write fails.
        send(order("a1", "x", 2)).await;
        send(order("a2", "x", 1)).await;
        send(order("a1", "x", 2)).await;
        send(order("p1", "poison", 1)).await;
        send(order("b1", "y", 1)).await;
        assert_eq!(
            work_once(&store, &consumer, 2, clock.as_ref())
                .await
                .unwrap(),
            5
        );
        assert_eq!(count(&db, "SELECT count(*) FROM events"), 3, "a1, a2, b1");
        assert_eq!(
            count(&db, "SELECT count(*) FROM events WHERE dedup_key = 'p1'"),
            0
        );
        assert_eq!(
            count(
                &db,
                "SELECT CAST(version_text AS INTEGER) FROM records WHERE record_id = 'x'"
            ),
            2,
            "the newer version won inside the batch"
        );
        let left = store.queue_entries().await.unwrap();
        assert_eq!(left.len(), 1, "only the failed message stays queued");
        assert!(!left[0].dead && left[0].attempts == 1);
        assert!(failed_by_poison(&left[0]), "{left:?}");

        // The next batch: a redelivery of a1 and an older x stay without effect; the failed
        // message is not due yet (it backs off).
        send(order("a1", "x", 2)).await;
        send(order("a3", "x", 1)).await;
        assert_eq!(
            work_once(&store, &consumer, 2, clock.as_ref())
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM events"),
            4,
            "a3 added, a1 once"
        );
        assert_eq!(
            count(
                &db,
                "SELECT CAST(version_text AS INTEGER) FROM records WHERE record_id = 'x'"
            ),
            2
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM records JOIN events USING (event_id) WHERE record_id = 'x'
                 AND dedup_key = 'a1'"
            ),
            1,
            "the record names the stored event that wrote it, not a redelivery"
        );

        fails_again_and_dies(&store, &consumer, &clock).await;
        assert_eq!(
            work_once(&store, &consumer, 2, clock.as_ref())
                .await
                .unwrap(),
            0
        );

        // Once the cause is gone, a replay stores it.
        db.execute_batch("DROP TRIGGER poison").unwrap();
        store.requeue(None, clock.now_ms()).await.unwrap();
        assert_eq!(
            work_once(&store, &consumer, 2, clock.as_ref())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM events WHERE dedup_key = 'p1'"),
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM records WHERE record_id = 'poison'"
            ),
            1
        );
        assert!(store.queue_entries().await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Marks every event of its route id-only and makes one record per event (its event id).
    struct EveryEvent;

    #[async_trait::async_trait]
    impl hookcatch::ports::Hydrator for EveryEvent {
        fn wants(&self, _: &hookcatch::model::envelope::Envelope) -> bool {
            true
        }

        async fn hydrate_batch(
            &self,
            items: &[hookcatch::ports::HydrationItem<'_>],
        ) -> Vec<Result<Vec<hookcatch::ports::RecordItem>, hookcatch::ports::HydrateError>>
        {
            items
                .iter()
                .map(|item| {
                    Ok(vec![hookcatch::ports::RecordItem {
                        route: item.envelope.route.clone(),
                        record_type: "fetched".into(),
                        record_id: item.envelope.id.clone(),
                        version: hookcatch::model::value::RecordVersion::Number("1".into()),
                        data: serde_json::json!({ "fetched": true }),
                        deleted: false,
                        event_id: item.envelope.id.clone(),
                        updated_at_ms: item.envelope.received_at_ms,
                    }])
                })
                .collect()
        }
    }

    /// An event that needs no hydration is stored when it is acknowledged, with dedup and
    /// newer-wins as the worker keeps them; one whose writes fail is queued with the error and
    /// goes on through the worker's retries and dead letter; a route with a hydrator queues.
    #[tokio::test]
    async fn an_event_needing_no_hydration_is_stored_with_its_acknowledgement() {
        let dir = std::env::temp_dir().join(format!("hookcatch-at-once-{}", uuid::Uuid::now_v7()));
        let ids = "\n[[routes]]\nname = \"ids\"\nprovider = \"catch-raw\"\nopen = true\n";
        let config = ConfigFile::parse(&format!("{ORDERS}{ids}"), "test.toml").unwrap();
        let settings = config.resolve().await.unwrap();
        let store = LocalStore::open(&dir).unwrap();
        let clock = Arc::new(StepClock(AtomicI64::new(SystemClock.now_ms() + 60_000)));
        let consumer = Arc::new(
            Consumer::new(Arc::new(store.clone()), None, clock.clone(), 0, 16)
                .with_hydrator("ids", Arc::new(EveryEvent)),
        );
        let queue = Arc::new(StoringQueue {
            store: store.clone(),
            consumer: consumer.clone(),
        });
        let ingest = |route| {
            Ingestor::new(
                route,
                queue.clone(),
                None,
                clock.clone(),
                Duration::from_secs(10),
            )
        };
        let (orders, ids) = (ingest(&settings[0]), ingest(&settings[1]));
        let db = poisoned(&dir);
        let version_of_x = || {
            count(
                &db,
                "SELECT CAST(version_text AS INTEGER) FROM records WHERE record_id = 'x'",
            )
        };
        let send = |request| async { assert_eq!(orders.handle(request).await.status, 200) };

        send(order("a1", "x", 2)).await;
        assert_eq!(
            count(&db, "SELECT count(*) FROM events"),
            1,
            "stored at its 200"
        );
        assert_eq!(version_of_x(), 2);
        send(order("a2", "x", 1)).await;
        send(order("a1", "x", 2)).await;
        assert_eq!(count(&db, "SELECT count(*) FROM events"), 2, "a1 once, a2");
        assert_eq!(version_of_x(), 2, "the older version did not win");
        assert!(store.queue_entries().await.unwrap().is_empty());

        send(order("p1", "poison", 1)).await;
        let left = store.queue_entries().await.unwrap();
        assert_eq!(left.len(), 1, "the failed one is queued, acknowledged");
        assert_eq!(left[0].attempts, 0);
        assert!(failed_by_poison(&left[0]), "{left:?}");
        assert_eq!(
            count(&db, "SELECT count(*) FROM events WHERE dedup_key = 'p1'"),
            0,
            "nothing of it is left half-written"
        );
        // The worker retries it with backoff, and dead-letters it at max_attempts = 2.
        assert_eq!(
            work_once(&store, &consumer, 2, clock.as_ref())
                .await
                .unwrap(),
            1
        );
        fails_again_and_dies(&store, &consumer, &clock).await;

        // A route whose events are hydrated goes through the queue: its worker calls the API.
        assert_eq!(ids.handle(order("i1", "z", 1)).await.status, 200);
        assert_eq!(
            count(&db, "SELECT count(*) FROM events WHERE route = 'ids'"),
            0
        );
        assert_eq!(store.queue_entries().await.unwrap().len(), 2);
        assert_eq!(
            work_once(&store, &consumer, 2, clock.as_ref())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM records WHERE record_type = 'fetched'"
            ),
            1
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_client_is_the_entry_the_first_trusted_proxy_appended() {
        let written = headers(&[("x-forwarded-for", "10.1.1.1, 203.0.113.9")]);
        assert_eq!(
            forwarded_client(&written, 1).as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(forwarded_client(&written, 2).as_deref(), Some("10.1.1.1"));
        assert_eq!(
            forwarded_client(&written, 3),
            None,
            "fewer hops than proxies"
        );
        // Several header lines are one list, in order.
        let lines = headers(&[
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-for", "198.51.100.4, 203.0.113.9"),
        ]);
        assert_eq!(forwarded_client(&lines, 2).as_deref(), Some("198.51.100.4"));
        assert_eq!(forwarded_client(&headers(&[]), 1), None);
        let garbage = headers(&[("x-forwarded-for", "10.1.1.1, not-an-ip")]);
        assert_eq!(forwarded_client(&garbage, 1), None);
        let v6 = headers(&[("x-forwarded-for", "2001:db8::1")]);
        assert_eq!(forwarded_client(&v6, 1).as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn the_called_url_is_the_nearest_proxys_scheme_and_host_and_the_whole_path() {
        let proxied = headers(&[
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "evil.example, abc.ngrok.app"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            forwarded_url(&proxied, "/hooks/twilio/voice").as_deref(),
            Some("https://abc.ngrok.app/hooks/twilio/voice")
        );
        let host_only = headers(&[("host", "abc.ngrok.app")]);
        assert_eq!(
            forwarded_url(&host_only, "/hooks/twilio").as_deref(),
            Some("https://abc.ngrok.app/hooks/twilio")
        );
        for bad in [
            headers(&[("host", "a.example/evil?")]),
            headers(&[("host", "a.example"), ("x-forwarded-proto", "ftp")]),
            headers(&[("x-forwarded-host", "a b")]),
            headers(&[]),
        ] {
            assert_eq!(forwarded_url(&bad, "/hooks/twilio"), None, "{bad:?}");
        }
    }
}

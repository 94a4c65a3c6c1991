//! `hookcatch serve` on an ephemeral port: samples sent with `send` become events and records, bad
//! credentials store nothing, and a SIGKILL under load loses no acknowledged event.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookcatch::ports::EventStore;
use hookcatch_cli::project::config::ConfigFile;
use hookcatch_cli::send;
use hookcatch_cli::store::LocalStore;

use crate::support::{
    free_port, hookcatch_binary, repo_root, route_of, route_samples, serve_example, unique,
};

const KEY: &str = "dev-test-orders-key";

fn config(data: &Path) -> String {
    format!(
        r#"
[serve]
addr = "127.0.0.1:0"
data = "{}"
max_attempts = 3

[[routes]]
name = "catch-raw"
provider = "catch-raw"
open = true

[[routes]]
name = "orders"
provider = "catch-raw"
auth = {{ kind = "api_key", query = "zapikey", header = "x-api-key" }}
secrets = ["{KEY}"]
dedup = "header:x-delivery-id"
records = [{{ type = "order", id = "/order/id", version = "/order/updated_at", data = "/order" }}]

[[routes]]
name = "github"
provider = "github"
secrets = ["test-github-secret"]

[[routes]]
name = "stripe"
provider = "stripe"
secrets = ["whsec_test_stripe"]

[[routes]]
name = "shopify"
provider = "shopify"
secrets = ["test-shopify-secret"]

[[routes]]
name = "standard-webhooks"
provider = "standard-webhooks"
secrets = ["whsec_dGVzdC1zdGFuZGFyZC13ZWJob29rcy1rZXktMjQ="]
"#,
        data.display()
    )
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("hookcatch-local"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn samples_sent_with_send_become_events_and_records() {
    let dir = temp_dir();
    let file = ConfigFile::parse(&config(&dir.join("data")), "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let settings = file.resolve().await.unwrap();

    let samples = [
        "catch-raw-json.json",
        "catch-raw-form-base64.json",
        "catch-raw-multipart-base64.json",
    ];
    let mut sent = 0;
    for route in &settings {
        // catch-raw routes get every catch-raw sample; a signed provider its own sample.
        let provider = route.config.provider.as_str();
        let route_samples: Vec<String> = if provider == "catch-raw" {
            samples.iter().map(|s| (*s).to_owned()).collect()
        } else {
            vec![format!("{provider}-json.json")]
        };
        for sample in &route_samples {
            sent += 1;
            let mut request =
                send::request_from_event(&repo_root().join("events").join(sample)).unwrap();
            send::sign(route, &mut request).unwrap();
            let url = format!("{base}/hooks/{}", route.config.name);
            let (status, body) = send::send(&request, &url).await.unwrap();
            assert_eq!(status, 200, "{} {sample}: {body}", route.config.name);
        }
    }
    // Unsigned (no key) and wrongly signed requests to the protected route: refused, nothing stored.
    let mut unsigned =
        send::request_from_event(&repo_root().join("events/catch-raw-json.json")).unwrap();
    assert_eq!(
        send::send(&unsigned, &format!("{base}/hooks/orders"))
            .await
            .unwrap()
            .0,
        401
    );
    unsigned.raw_query = "zapikey=wrong".into();
    assert_eq!(
        send::send(&unsigned, &format!("{base}/hooks/orders"))
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        send::send(&unsigned, &format!("{base}/hooks/missing"))
            .await
            .unwrap()
            .0,
        404
    );

    let store = LocalStore::open(&dir.join("data")).unwrap();
    // Each event is committed before its queue entry is acknowledged: wait for both. With exactly
    // `sent` events and an empty queue, nothing refused was queued or stored.
    wait_until(
        "every accepted sample to be stored and acknowledged",
        || async {
            store
                .list_events(None, None, None, 100)
                .await
                .unwrap()
                .len()
                == sent
                && store.queue_entries().await.unwrap().is_empty()
        },
    )
    .await;
    let record = store
        .get_record("orders", "order", "1001")
        .await
        .unwrap()
        .expect("order record");
    assert_eq!(record.data["total"], "42.50");
    let events = store
        .list_events(Some("orders".into()), None, None, 100)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.headers.iter().all(|(_, v)| !v.contains(KEY)) && !e.query.contains(KEY)),
        "the key is never stored"
    );
    let multipart = store
        .list_events(Some("catch-raw".into()), None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .find_map(|e| e.parts)
        .expect("multipart parts");
    assert_eq!(multipart[1]["file_name"], "report.csv");

    let health = send::send(
        &hookcatch::InboundRequest {
            method: "GET".into(),
            ..unsigned
        },
        &format!("{base}/healthz"),
    )
    .await
    .unwrap();
    assert_eq!(health.0, 200);
    running.stop().await.unwrap();
}

/// The example `hookcatch.toml` as shipped: every route answers its own samples in `serve`,
/// handshakes are answered and never stored, everything else becomes exactly one event.
#[tokio::test]
async fn every_example_route_answers_its_samples_in_serve() {
    let example = serve_example().await;
    let (base, settings) = (&example.base, &example.settings);
    let samples = route_samples();
    let mut stored = 0;
    let mut covered = HashSet::new();
    for path in &samples {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let route = route_of(path, settings);
        let mut request = send::request_from_event(path).unwrap();
        send::sign(route, &mut request).unwrap();
        let url = format!("{base}/hooks/{}", route.config.name);
        let (status, body) = send::send(&request, &url).await.unwrap();
        assert_eq!(status, 200, "{name}: {body}");
        if name.contains("-handshake") {
            assert!(!body.contains("queued"), "{name}: {body}");
        } else {
            assert!(body.contains("queued"), "{name}: {body}");
            stored += 1;
        }
        covered.insert(route.config.name.clone());
    }
    let missing: Vec<_> = settings
        .iter()
        .filter(|r| r.config.name != "orders" && !covered.contains(&r.config.name))
        .map(|r| r.config.name.clone())
        .collect();
    assert!(missing.is_empty(), "routes without a sample: {missing:?}");
    let store = LocalStore::open(&example.data).unwrap();
    wait_until("every non-handshake sample to be stored", || async {
        store
            .list_events(None, None, None, 1000)
            .await
            .unwrap()
            .len()
            == stored
            && store.queue_entries().await.unwrap().is_empty()
    })
    .await;
    example.running.stop().await.unwrap();
}

fn spawn_serve(config_path: &Path, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(hookcatch_binary())
        .arg("serve")
        .arg("--config")
        .arg(config_path)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_healthy(port: u16) {
    let probe = hookcatch::testing::request("GET", "", &[], b"");
    let url = format!("http://127.0.0.1:{port}/healthz");
    wait_until("serve to be healthy", || async {
        send::send(&probe, &url).await.is_ok_and(|r| r.0 == 200)
    })
    .await;
}

fn order(delivery: usize, version: usize) -> hookcatch::InboundRequest {
    hookcatch::InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        raw_query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-api-key".into(), KEY.into()),
            ("x-delivery-id".into(), format!("d-{delivery}")),
        ],
        body: format!(r#"{{"order":{{"id":"{delivery}","updated_at":{version}}}}}"#).into(),
        source_ip: None,
        called_url: None,
    }
}

#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let dir = temp_dir();
    let config_path = dir.join("hookcatch.toml");
    std::fs::write(&config_path, config(&dir.join("data"))).unwrap();
    let port = free_port();
    let mut server = spawn_serve(&config_path, port);
    wait_healthy(port).await;
    // One serve owns a data directory, which only its user can read.
    let second = tokio::process::Command::new(hookcatch_binary())
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .output()
        .await
        .unwrap();
    let refusal = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && refusal.contains("in use by another `hookcatch serve`"),
        "{refusal}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.join("data")), 0o700);
        assert_eq!(mode(dir.join("data/hookcatch.db")), 0o600);
        assert_eq!(mode(dir.join("data/hookcatch.db-wal")), 0o600);
    }

    // 600 requests for 400 deliveries (every third one is a retry of an earlier delivery), 32 at a
    // time; the server is killed with SIGKILL once 150 have been acknowledged.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let url = format!("http://127.0.0.1:{port}/hooks/orders");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..32)
        .map(|_| {
            let (acknowledged, url, next) = (acknowledged.clone(), url.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= 600 {
                        break;
                    }
                    let delivery = if i % 3 == 2 { i / 3 } else { i };
                    if let Ok((200, _)) = send::send(&order(delivery, i), &url).await {
                        acknowledged.lock().unwrap().insert(delivery);
                    }
                }
            })
        })
        .collect();
    wait_until("150 acknowledgements", || async {
        acknowledged.lock().unwrap().len() >= 150
    })
    .await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked: HashSet<usize> = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 150);

    // Restart on the same data directory (the killed one's lock died with it): everything acknowledged is processed, exactly once.
    let _restarted = spawn_serve(&config_path, port);
    wait_healthy(port).await;
    let store = LocalStore::open(&dir.join("data")).unwrap();
    wait_until("the queue to drain after the restart", || async {
        store.queue_entries().await.unwrap().is_empty()
    })
    .await;
    let stored = store
        .list_events(Some("orders".into()), None, None, 10_000)
        .await
        .unwrap();
    let stored_keys: HashSet<String> = stored.iter().map(|e| e.dedup_key.clone()).collect();
    assert_eq!(stored_keys.len(), stored.len(), "one event per delivery id");
    for delivery in &acked {
        assert!(
            stored_keys.contains(&format!("d-{delivery}")),
            "acknowledged delivery d-{delivery} was lost"
        );
        let record = store
            .get_record("orders", "order", &delivery.to_string())
            .await
            .unwrap();
        assert!(
            record.is_some(),
            "acknowledged delivery d-{delivery} had no effect"
        );
    }
    eprintln!(
        "acknowledged {} deliveries before SIGKILL; stored {} (some unacknowledged ones got in before the kill)",
        acked.len(),
        stored.len()
    );
}

/// A route's `rate_limit` answers 429 with `Retry-After` once its bucket is empty, and takes
/// requests again when it refills; other routes are not limited by it.
#[tokio::test]
async fn a_rate_limited_route_answers_429_with_retry_after() {
    let text = r#"
[[routes]]
name = "limited"
provider = "catch-raw"
open = true
rate_limit = { per_second = 1, burst = 2 }

[[routes]]
name = "free"
provider = "catch-raw"
open = true
"#;
    let mut file =
        hookcatch_cli::project::config::ConfigFile::parse(text, "rate limit test").unwrap();
    file.serve.addr = "127.0.0.1:0".parse().unwrap();
    file.serve.data = std::env::temp_dir()
        .join(unique("hookcatch-rate"))
        .join("data");
    file.serve.console = false;
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let client = hookcatch::tls::https_client_builder().build().unwrap();
    let post = |route: &str| {
        client
            .post(format!("http://{}/hooks/{route}", running.addr))
            .body("{}")
            .send()
    };
    // Ten at once against a bucket of two: however slow the machine, most find it empty.
    let answers = futures::future::join_all((0..10).map(|_| post("limited"))).await;
    let answers: Vec<reqwest::Response> = answers.into_iter().map(Result::unwrap).collect();
    let accepted = answers.iter().filter(|r| r.status() == 200).count();
    let refused: Vec<&reqwest::Response> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!(accepted + refused.len(), 10);
    assert!((2..=4).contains(&accepted), "{accepted} accepted");
    assert!(refused.iter().all(|r| r.headers()["retry-after"] == "1"));
    assert_eq!(
        post("free").await.unwrap().status(),
        200,
        "another route is not limited"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        post("limited").await.unwrap().status(),
        200,
        "the bucket refilled"
    );
    running.stop().await.unwrap();
}

/// `hookcatch replay --event` runs a stored event through a running serve's consumer again with
/// the route's rules as the file now says: its record is rewritten, the event stays one.
#[tokio::test]
async fn replay_of_a_stored_event_from_the_cli_applies_the_current_rules() {
    let dir = temp_dir();
    let config_path = dir.join("hookcatch.toml");
    let data = dir.join("data");
    std::fs::write(&config_path, config(&data)).unwrap();
    let port = free_port();
    let _server = spawn_serve(&config_path, port);
    wait_healthy(port).await;
    let url = format!("http://127.0.0.1:{port}/hooks/orders");
    let (status, reply) = send::send(&order(1, 7), &url).await.unwrap();
    assert_eq!(status, 200, "{reply}");
    let id = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = LocalStore::open(&data).unwrap();
    let record_data = || async {
        store
            .get_record("orders", "order", "1")
            .await
            .unwrap()
            .map(|r| r.data)
    };
    wait_until("the order's record", || async {
        record_data().await.is_some()
    })
    .await;
    assert_eq!(record_data().await.unwrap()["updated_at"], 7);

    // The rule now keeps only the order's id.
    let edited = config(&data).replace(r#"data = "/order" }"#, r#"data = "/order/id" }"#);
    assert_ne!(edited, config(&data));
    std::fs::write(&config_path, edited).unwrap();
    let replay = |event: String| {
        let config_path = config_path.clone();
        let data = data.clone();
        async move {
            tokio::process::Command::new(hookcatch_binary())
                .args(["replay", "--event", &event, "--config"])
                .arg(&config_path)
                .arg("--data")
                .arg(&data)
                .output()
                .await
                .unwrap()
        }
    };
    let replayed = replay(id.clone()).await;
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(
        replayed.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(said.contains("queued for replay"), "{said}");
    wait_until("the record rewritten by the replay", || async {
        record_data().await == Some(serde_json::json!("1"))
    })
    .await;
    let events = store
        .list_events(Some("orders".into()), None, None, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the replay replaced the event");
    assert_eq!(events[0].event_id, id);

    let missing = replay("no-such-event".into()).await;
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no stored event `no-such-event`"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// Security V, N6: replaying an event after its route gained a dedup rule rewrites that event under
/// the key it was stored with; the newer event that the new rule gives the same key stays, and
/// the replayed one is stored once.
#[tokio::test]
async fn a_replay_after_a_dedup_change_never_removes_a_newer_event() {
    let dir = temp_dir();
    let config_path = dir.join("hookcatch.toml");
    let data = dir.join("data");
    let routes = |dedup: &str| {
        format!(
            "[serve]\ndata = \"{}\"\nconsole = false\n\n[[routes]]\nname = \"dd\"\n\
             provider = \"catch-raw\"\nopen = true\n{dedup}",
            data.display()
        )
    };
    std::fs::write(&config_path, routes("")).unwrap();
    let port = free_port();
    let _server = spawn_serve(&config_path, port);
    wait_healthy(port).await;
    let url = format!("http://127.0.0.1:{port}/hooks/dd");
    let post = |body: &'static str| {
        let url = url.clone();
        async move {
            let request = hookcatch::testing::request(
                "POST",
                "",
                &[("content-type", "application/json")],
                body.as_bytes(),
            );
            let (status, reply) = send::send(&request, &url).await.unwrap();
            assert_eq!(status, 200, "{reply}");
            serde_json::from_str::<serde_json::Value>(&reply).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let store = LocalStore::open(&data).unwrap();
    let stored = || async {
        let mut events: Vec<(String, String)> = store
            .list_events(Some("dd".into()), None, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.event_id, e.dedup_key))
            .collect();
        events.sort();
        events
    };
    let older = post(r#"{"order":"o1","v":1}"#).await;
    wait_until("the older event", || async { stored().await.len() == 1 }).await;

    // The route now dedups on the order; serve reloads it.
    std::fs::write(&config_path, routes("dedup = \"/order\"\n")).unwrap();
    let mut newer = String::new();
    for attempt in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body: &'static str = Box::leak(
            format!(r#"{{"order":"o1","v":2,"note":"newer {attempt}"}}"#).into_boxed_str(),
        );
        newer = post(body).await;
        wait_until("the newer event", || async {
            stored().await.iter().any(|(id, _)| *id == newer)
        })
        .await;
        if stored().await.iter().any(|(_, key)| key == "o1") {
            break;
        }
    }
    let before = stored().await;
    assert!(
        before.contains(&(newer.clone(), "o1".to_owned())),
        "{before:?}"
    );

    let replayed = tokio::process::Command::new(hookcatch_binary())
        .args(["replay", "--event", &older, "--config"])
        .arg(&config_path)
        .arg("--data")
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    wait_until("the replay processed", || async {
        store.queue_entries().await.unwrap().is_empty()
    })
    .await;
    let after = stored().await;
    assert_eq!(
        after, before,
        "the replay kept every event under its stored key"
    );
    assert!(after.contains(&(older.clone(), older.clone())), "{after:?}");
}

/// Local retention: once `event_retention_days` have passed, `serve` deletes an event (in batches
/// through its writer, while it takes webhooks); a fresh event stays, and so does one stored when
/// retention was 0 (kept forever).
#[tokio::test]
async fn expired_events_leave_the_local_store() {
    let dir = temp_dir();
    let data = dir.join("data");
    let now_ms = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
    let stored = |n: usize, expires_at: Option<i64>| hookcatch::ports::EventItem {
        route: "open".into(),
        dedup_key: format!("old-{n}"),
        delivery_id: None,
        event_id: format!("old-{n}"),
        provider: "catch-raw".into(),
        event_type: None,
        received_at_ms: now_ms - 3 * 86_400_000,
        test_ping: false,
        method: "POST".into(),
        path: "/hooks/open".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        source_ip: None,
        body_len: 2,
        body_sha256: "00".repeat(32),
        body: hookcatch::ports::StoredBody::Inline(bytes::Bytes::from_static(b"{}")),
        parts: None,
        records: Vec::new(),
        expires_at,
    };
    {
        let store = LocalStore::open(&data).unwrap();
        // More than two of the sweep's batches, each expired a day ago.
        for n in 0..600 {
            store
                .put_event(&stored(n, Some(now_ms / 1000 - 86_400)))
                .await
                .unwrap();
        }
        store.put_event(&stored(600, None)).await.unwrap();
    }
    let toml = format!(
        "[serve]\naddr = \"127.0.0.1:0\"\ndata = \"{}\"\nconsole = false\n\
         event_retention_days = 1\n\n\
         [[routes]]\nname = \"open\"\nprovider = \"catch-raw\"\nopen = true\n",
        data.display()
    );
    let file = ConfigFile::parse(&toml, "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let request = hookcatch::testing::request(
        "POST",
        "",
        &[("content-type", "application/json")],
        br#"{"fresh":true}"#,
    );
    let (status, reply) = send::send(&request, &format!("http://{}/hooks/open", running.addr))
        .await
        .unwrap();
    assert_eq!(status, 200, "{reply}");
    let store = LocalStore::open(&data).unwrap();
    let left = || async {
        store
            .list_events(Some("open".into()), None, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>()
    };
    wait_until("the expired events swept", || async {
        left().await.len() == 2
    })
    .await;
    let kept = left().await;
    assert!(kept.contains(&"old-600".to_owned()), "{kept:?}");
    assert!(kept.iter().any(|id| !id.starts_with("old-")), "{kept:?}");
    running.stop().await.unwrap();
}

/// `events list --type T --limit N` gives the N newest events of that type, however many newer
/// events of other types there are (the type is filtered before the limit, as on the console).
#[tokio::test]
async fn events_list_filters_the_type_before_the_limit() {
    let dir = temp_dir();
    let data = dir.join("data");
    let toml = format!(
        "[serve]\naddr = \"127.0.0.1:0\"\ndata = \"{}\"\nconsole = false\n\n\
         [[routes]]\nname = \"open\"\nprovider = \"catch-raw\"\nopen = true\nevent_type = \"/event\"\n",
        data.display()
    );
    let file = ConfigFile::parse(&toml, "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let url = format!("http://{}/hooks/open", running.addr);
    for body in [
        r#"{"event":"ping"}"#,
        r#"{"event":"order"}"#,
        r#"{"event":"order"}"#,
    ] {
        let request = hookcatch::testing::request(
            "POST",
            "",
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        let (status, reply) = send::send(&request, &url).await.unwrap();
        assert_eq!(status, 200, "{reply}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (ok, out, err) = crate::support::run_hookcatch(
        &[
            "events",
            "list",
            "--type",
            "ping",
            "--limit",
            "1",
            "--json",
            "--data",
            data.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("\"ping\""), "{out}");
    running.stop().await.unwrap();
}

/// `serve --addr` elsewhere than `hookcatch.toml` says: `routes test`, `send` and `routes list`
/// find the running serve's address (beside its lock), say so, and fall back to the file's only
/// when none runs.
#[tokio::test]
async fn commands_reach_the_running_serve_where_it_listens() {
    let dir = temp_dir();
    let config_path = dir.join("hookcatch.toml");
    let data = dir.join("data");
    std::fs::write(
        &config_path,
        format!(
            "[serve]\naddr = \"127.0.0.1:9\"\ndata = \"{}\"\nconsole = false\n\n\
             [[routes]]\nname = \"shop\"\nprovider = \"github\"\nsecrets = [\"dev-only-shop-secret\"]\n",
            data.display()
        ),
    )
    .unwrap();
    let config = config_path.to_str().unwrap();
    let (ok, _, err) =
        crate::support::run_hookcatch(&["routes", "test", "shop", "--config", config], &[]).await;
    assert!(!ok, "nothing listens on the file's address");
    assert!(err.contains("no serve runs on"), "{err}");
    let port = free_port();
    let _server = spawn_serve(&config_path, port);
    wait_healthy(port).await;
    let (ok, out, err) =
        crate::support::run_hookcatch(&["routes", "test", "shop", "--config", config], &[]).await;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains(&format!(
            "using the serve running on {}: 127.0.0.1:{port}",
            data.display()
        )),
        "{err}"
    );
    let (ok, out, err) =
        crate::support::run_hookcatch(&["routes", "list", "--json", "--config", config], &[]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("http://127.0.0.1:{port}/hooks/shop")),
        "{out}"
    );
}

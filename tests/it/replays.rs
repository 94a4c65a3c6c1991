//! Captured deliveries sent again to a running `hookcatch serve`, through the real ingest core, the
//! consumer and the local store: with their unsigned headers changed or removed, they are one event.

use std::path::Path;
use std::time::{Duration, Instant};

use hookcatch::InboundRequest;
use hookcatch::RouteSettings;
use hookcatch::clock::{Clock, SystemClock};
use hookcatch_cli::project::config::ConfigFile;
use hookcatch_cli::send;
use hookcatch_cli::store::LocalStore;

use crate::support::unique;

const GITHUB_SECRET: &str = "dev-test-github-secret";
const SHOPIFY_SECRET: &str = "dev-test-shopify-secret";
const ZOOM_SECRET: &str = "dev-test-zoom-secret";

fn config(data: &Path) -> String {
    format!(
        r#"
[serve]
addr = "127.0.0.1:0"
data = "{}"

[[routes]]
name = "github"
provider = "github"
secrets = ["{GITHUB_SECRET}"]

[[routes]]
name = "shopify"
provider = "shopify"
secrets = ["{SHOPIFY_SECRET}"]

[[routes]]
name = "zoom"
provider = "zoom"
secrets = ["{ZOOM_SECRET}"]
"#,
        data.display()
    )
}

/// `body` signed for `route` as its provider signs, with `headers` beside the signature.
fn signed(
    file: &ConfigFile,
    route: &str,
    secret: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> InboundRequest {
    let settings = RouteSettings::with_secrets(file.route(route).unwrap().clone(), &[secret]);
    let mut request = hookcatch::testing::request("POST", "", headers, body.as_bytes());
    hookcatch::providers::sign::sign(&settings, &mut request, SystemClock.now_ms()).unwrap();
    request
}

fn with_header(request: &InboundRequest, name: &str, value: Option<&str>) -> InboundRequest {
    let mut request = request.clone();
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(value) = value {
        request.headers.push((name.to_owned(), value.to_owned()));
    }
    request
}

#[tokio::test]
async fn replays_with_unsigned_headers_changed_are_one_event_and_distinct_events_are_two() {
    let dir = std::env::temp_dir().join(unique("hookcatch-replays"));
    let file = ConfigFile::parse(&config(&dir.join("data")), "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let base = format!("http://{}/hooks", running.addr);
    let call = |route: &'static str, request: InboundRequest| {
        let url = format!("{base}/{route}");
        async move {
            let (status, body) = send::send(&request, &url).await.unwrap();
            assert_eq!(status, 200, "{route}: {body}");
        }
    };
    let json = ("content-type", "application/json");

    // GitHub: one delivery sent as captured, with another X-GitHub-Delivery, and without one.
    let push = r#"{"ref":"refs/heads/main","before":"a1","after":"b2","repository":{"id":1}}"#;
    let captured = signed(
        &file,
        "github",
        GITHUB_SECRET,
        &[
            json,
            ("x-github-event", "push"),
            ("x-github-delivery", "d-1"),
        ],
        push,
    );
    call("github", captured.clone()).await;
    call(
        "github",
        with_header(&captured, "x-github-delivery", Some("d-2")),
    )
    .await;
    call("github", with_header(&captured, "x-github-delivery", None)).await;

    // Shopify: the topic header is unsigned, and the body does not carry it.
    let order = r#"{"id":820982911946154508,"email":"jon@example.com","total_price":"10.00"}"#;
    let captured = signed(
        &file,
        "shopify",
        SHOPIFY_SECRET,
        &[
            json,
            ("x-shopify-topic", "orders/create"),
            ("x-shopify-webhook-id", "w-1"),
        ],
        order,
    );
    call("shopify", captured.clone()).await;
    call(
        "shopify",
        with_header(&captured, "x-shopify-topic", Some("orders/delete")),
    )
    .await;

    // Zoom: two events of one millisecond are two; the first again (Zoom's retry, signed anew) is one.
    let joined = |participant: &str| {
        format!(
            r#"{{"event":"meeting.participant_joined","event_ts":1700000000123,"payload":{{"account_id":"a","object":{{"id":"85","participant":{{"user_id":"{participant}"}}}}}}}}"#
        )
    };
    call(
        "zoom",
        signed(&file, "zoom", ZOOM_SECRET, &[json], &joined("u-1")),
    )
    .await;
    call(
        "zoom",
        signed(&file, "zoom", ZOOM_SECRET, &[json], &joined("u-2")),
    )
    .await;
    call(
        "zoom",
        signed(&file, "zoom", ZOOM_SECRET, &[json], &joined("u-1")),
    )
    .await;

    let store = LocalStore::open(&dir.join("data")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let queued = store.queue_entries().await.unwrap();
        if queued.is_empty() {
            break store.list_events(None, None, None, 100).await.unwrap();
        }
        assert!(Instant::now() < deadline, "{} still queued", queued.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let count = |route: &str| stored.iter().filter(|e| e.route == route).count();
    assert_eq!(
        count("github"),
        1,
        "a GitHub delivery replayed is one event"
    );
    assert_eq!(
        count("shopify"),
        1,
        "a Shopify delivery under another topic is one event"
    );
    assert_eq!(
        count("zoom"),
        2,
        "two Zoom events of one millisecond are two"
    );

    // The provider's own delivery id stays findable by route.
    let found = store
        .find_events_by_delivery(Some("github".into()), "d-1".into())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].event_type.as_deref(), Some("push"));
    assert_eq!(
        found[0].dedup_key,
        hookcatch::model::request::sha256_hex(push.as_bytes())
    );
    running.stop().await.unwrap();
}

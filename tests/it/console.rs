//! The console in a real headless browser: what arrives appears on `/` without a reload, the
//! filters, an event's detail (headers, decoded query, body), hostile bodies shown as text and
//! never run, and the refusals (a wrong `Host`, a missing token off loopback). Screenshots of each
//! page land in `target/console/`.

use std::net::SocketAddr;

use crate::support::{console_login, unique};
use crate::webdriver::Browser;

struct Console {
    running: hookcatch_cli::serve::Running,
    /// The URL `serve` printed, with the token: the one click that lets a browser in.
    url: String,
    /// The console's address without the token, for a browser that has been let in.
    base: String,
    /// The `Cookie` header that lets a plain HTTP client in.
    cookie: String,
    hooks: String,
}

async fn start(console_addr: &str) -> Console {
    start_with(console_addr, "").await
}

async fn start_with(console_addr: &str, more_routes: &str) -> Console {
    let dir = std::env::temp_dir().join(unique("hookcatch-console"));
    std::fs::create_dir_all(&dir).unwrap();
    let text = r#"
[serve]
max_attempts = 1

[[routes]]
name = "orders"
provider = "catch-raw"
open = true
dedup = "/id"
event_type = "/event"
records = [{ type = "order", id = "/order/id", data = "/order" }]

[[routes]]
name = "other"
provider = "catch-raw"
open = true
event_type = "/event"
"#
    .to_owned()
        + more_routes;
    let mut file =
        hookcatch_cli::project::config::ConfigFile::parse(&text, "console test").unwrap();
    file.serve.addr = "127.0.0.1:0".parse().unwrap();
    file.serve.data = dir.join("data");
    file.serve.console_addr = console_addr.parse().unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let url = running.console_url.clone().expect("the console runs");
    let login = console_login(&url);
    Console {
        hooks: format!("http://{}/hooks", running.addr),
        running,
        url,
        base: login.base,
        cookie: login.cookie,
    }
}

async fn post(url: &str, content_type: &str, body: &str) -> String {
    let response = hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    reply["id"].as_str().unwrap().to_owned()
}

/// A body a careless page would run: a script tag, an inline handler and a closing tag.
const HOSTILE: &str = r#"{"id":"o-1","event":"order.created","order":{"id":"7","note":"<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"></pre>"}}"#;

#[tokio::test]
async fn what_arrives_shows_live_with_filters_and_details_and_never_runs() {
    let console = start("127.0.0.1:0").await;
    let browser = Browser::start().await;
    browser.goto(&console.url).await;
    browser
        .wait_until("document.querySelector('#rows')", 10, "the events page")
        .await;
    // A mark that a reload would wipe: the row below must arrive without one.
    browser.run("window.__stayed = true").await;

    let hostile = post(
        &format!("{}/orders?ref=%3Cb%3Ebold%3C%2Fb%3E&n=1", console.hooks),
        "application/json",
        HOSTILE,
    )
    .await;
    browser
        .wait_until(
            &format!("document.querySelector('#rows').innerText.includes('{hostile}')"),
            15,
            "the new event on / without a reload",
        )
        .await;
    assert_eq!(
        browser.run("return window.__stayed === true").await,
        true,
        "the page reloaded"
    );
    let other = post(
        &format!("{}/other", console.hooks),
        "application/x-www-form-urlencoded",
        "event=ping&who=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await;
    browser
        .wait_until(
            &format!("document.querySelector('#rows').innerText.includes('{other}')"),
            15,
            "the second event",
        )
        .await;
    browser
        .wait_until(
            "[...document.querySelectorAll('#rows .status')].every(s => s.innerText === 'stored')",
            15,
            "both stored",
        )
        .await;
    let listed = browser.text().await;
    assert!(
        listed.contains("order.created") && listed.contains("ping"),
        "{listed}"
    );
    browser.screenshot("events").await;

    // Filters: by route, type, status and time, through the page's own form and links.
    let base = console.base.as_str();
    for (query, shown, hidden) in [
        ("route=orders", &hostile, &other),
        ("route=other", &other, &hostile),
        ("type=ping", &other, &hostile),
        (
            "status=stored&since=1h",
            &hostile,
            &"no-such-event".to_owned(),
        ),
    ] {
        browser.goto(&format!("{base}/?{query}")).await;
        let rows = browser
            .run("return document.querySelector('#rows').innerText")
            .await;
        let rows = rows.as_str().unwrap();
        assert!(
            rows.contains(shown.as_str()) && !rows.contains(hidden.as_str()),
            "{query}: {rows}"
        );
    }
    browser
        .goto(&format!("{base}/?until=2000-01-01T00:00:00Z"))
        .await;
    let rows = browser.text().await;
    assert!(rows.contains("No events match these filters"), "{rows}");
    browser.goto(&format!("{base}/?route=orders")).await;
    browser.screenshot("events-filtered").await;

    // The detail: request line, decoded query, headers, pretty body, the record it wrote.
    browser.click(&format!("a[href='/events/{hostile}']")).await;
    browser
        .wait_until("document.querySelector('#event-id')", 10, "the detail page")
        .await;
    let detail = browser.text().await;
    assert!(detail.contains(&hostile), "{detail}");
    let query = browser
        .run("return document.querySelector('#query').innerText")
        .await;
    assert!(
        query.as_str().unwrap().contains("<b>bold</b>"),
        "decoded query: {query}"
    );
    let headers = browser
        .run("return document.querySelector('#headers').innerText")
        .await;
    assert!(
        headers.as_str().unwrap().contains("application/json"),
        "{headers}"
    );
    let body = browser
        .run("return document.querySelector('#body-pretty').innerText")
        .await;
    assert!(
        body.as_str()
            .unwrap()
            .contains("\"note\": \"<script>window.__pwned=1</script>"),
        "the body is shown as text: {body}"
    );
    assert!(detail.contains("order/7"), "the record it wrote: {detail}");
    assert_eq!(
        browser.run("return window.__pwned === undefined && document.querySelectorAll('img').length === 0").await,
        true,
        "a body's markup ran or rendered"
    );
    browser.screenshot("event").await;
    let curl = browser
        .run("return document.querySelector('#curl').innerText")
        .await;
    let curl = curl.as_str().unwrap();
    assert!(
        curl.starts_with("curl -X POST 'http://")
            && curl.contains("/hooks/orders?ref=%3Cb%3Ebold%3C%2Fb%3E&n=1'")
            && curl.contains("-H 'content-type: application/json'")
            && curl.contains(&format!("--data-binary @'{hostile}.body'")),
        "{curl}"
    );
    let download = hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .get(format!("{base}/events/{hostile}/body"))
        .header("cookie", &console.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        download.headers()["content-disposition"],
        format!("attachment; filename=\"{hostile}.body\"").as_str()
    );
    assert_eq!(
        download.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(download.bytes().await.unwrap(), HOSTILE.as_bytes());

    // The record it wrote, on /records, linked back to the event.
    browser.goto(&format!("{base}/records?route=orders")).await;
    let records = browser
        .run("return document.querySelector('#records').innerText")
        .await;
    let records = records.as_str().unwrap();
    assert!(
        records.contains("order") && records.contains(&hostile),
        "{records}"
    );
    browser.screenshot("records").await;

    // A form body: its decoded fields, and Zoho's request map with the params.
    browser.goto(&format!("{base}/events/{other}")).await;
    let form = browser
        .run("return document.querySelector('#body-form').innerText")
        .await;
    assert!(
        form.as_str().unwrap().contains("<script>alert(1)</script>"),
        "{form}"
    );
    let map = browser
        .run("return document.querySelector('#request-map').innerText")
        .await;
    assert!(
        map.as_str()
            .unwrap()
            .contains("\"who\": \"<script>alert(1)</script>\""),
        "{map}"
    );
    assert_eq!(
        browser.run("return window.__pwned === undefined").await,
        true
    );
    browser.screenshot("event-form").await;
    browser.quit().await;
    console.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_host_is_refused_and_off_loopback_the_token_is_required() {
    let local = start("127.0.0.1:0").await;
    let addr: SocketAddr = local.base["http://".len()..].parse().unwrap();
    // A DNS-rebinding page reaches the port with its own name in Host.
    let rebound = hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .get(format!("http://{addr}/"))
        .header("host", format!("rebound.example:{}", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // A change needs the console's own Origin and its form's CSRF token.
    let client = hookcatch::tls::https_client_builder().build().unwrap();
    for (origin, body) in [
        (None, "csrf=x"),
        (Some("http://attacker.example".to_owned()), "csrf=x"),
        (Some(format!("http://{addr}")), ""),
        (Some(format!("http://{addr}")), "csrf=guessed"),
    ] {
        let mut request = client
            .post(format!("http://{addr}/dead/replay"))
            .header("cookie", &local.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = &origin {
            request = request.header("origin", origin);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 403, "{origin:?} {body:?}");
    }
    let put = client.put(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(put.status(), 405);
    local.running.stop().await.unwrap();

    let open = start("0.0.0.0:0").await;
    let token = open
        .url
        .split("token=")
        .nth(1)
        .expect("a token off loopback")
        .to_owned();
    let port = open
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let browser = Browser::start().await;
    browser.goto(&format!("http://127.0.0.1:{port}/")).await;
    let refused = browser.text().await;
    assert!(refused.contains("needs its token"), "{refused}");
    browser.screenshot("token-required").await;
    browser
        .goto(&format!("http://127.0.0.1:{port}/?token=wrong"))
        .await;
    assert!(browser.text().await.contains("wrong or stale"));
    browser
        .goto(&format!("http://127.0.0.1:{port}/?token={token}"))
        .await;
    browser
        .wait_until(
            "document.querySelector('#rows')",
            10,
            "the events page after the token",
        )
        .await;
    // The token moved into a cookie: the address bar no longer shows it, and pages load.
    let location = browser.run("return window.location.href").await;
    assert!(!location.as_str().unwrap().contains("token"), "{location}");
    browser.goto(&format!("http://127.0.0.1:{port}/")).await;
    browser
        .wait_until(
            "document.querySelector('#rows')",
            10,
            "a page with the cookie",
        )
        .await;
    browser.quit().await;
    open.running.stop().await.unwrap();
}

/// The Test button makes a test event appear on `/`; a dead letter replayed from `/dead` ends
/// stored once its cause is gone.
#[tokio::test]
async fn the_test_button_and_replaying_a_dead_letter() {
    let api = crate::fake_api::FakeApi::start().await;
    api.put(
        "/items/42",
        serde_json::json!({"id": "42", "name": "as fetched"}),
    );
    api.fail_next("/items/42", &[500]);
    let hydrated = format!(
        r#"
[[routes]]
name = "items"
provider = "catch-raw"
open = true

[routes.hydrate]
kind = "http"
base_url = "{}"
auth = {{ type = "bearer", token = "{}" }}
requests = [{{ name = "item", path = "/items/{{id}}", type = "item", id = "/item/id" }}]

[[routes]]
name = "keyed"
provider = "catch-raw"
auth = {{ kind = "api_key", header = "x-api-key" }}
secrets = ["dev-only-console-key"]

[[routes]]
name = "slack"
provider = "slack"
secrets = ["dev-only-console-slack-signing"]
"#,
        api.url,
        crate::fake_api::API_KEY
    );
    let console = start_with("127.0.0.1:0", &hydrated).await;
    let base = console.base.clone();
    let browser = Browser::start().await;
    browser.goto(&console.url).await;

    browser.goto(&format!("{base}/routes")).await;
    browser
        .wait_until("document.querySelector('#routes')", 10, "the routes page")
        .await;
    browser.click("#test-orders").await;
    browser
        .wait_until(
            "document.querySelector('#result')",
            15,
            "the Test's outcome",
        )
        .await;
    let result = browser
        .run("return document.querySelector('#result').innerText")
        .await;
    assert!(
        result.as_str().unwrap().contains("test event accepted"),
        "{result}"
    );
    // Slack's Test is its URL check: answered, never stored, and counted on the routes page.
    browser.click("#test-slack").await;
    browser
        .wait_until(
            "(document.querySelector('#result') || {innerText: ''}).innerText.includes('slack')",
            15,
            "the Slack Test's outcome",
        )
        .await;
    let counts = browser
        .run("return document.querySelector('#counts-slack').innerText")
        .await;
    assert!(
        counts
            .as_str()
            .unwrap()
            .contains("0 stored · 0 refused · 1 handshakes"),
        "{counts}"
    );
    browser.screenshot("routes").await;
    browser.goto(&format!("{base}/?route=orders")).await;
    browser
        .wait_until(
            "[...document.querySelectorAll('#rows tr')].some(r => r.innerText.includes('test') && r.innerText.includes('stored'))",
            15,
            "the test event on /",
        )
        .await;

    // The hydration API fails once: with max_attempts = 1 the event is dead at once.
    let dead = post(
        &format!("{}/items", console.hooks),
        "application/json",
        r#"{"item":{"id":"42"}}"#,
    )
    .await;
    browser.goto(&format!("{base}/dead")).await;
    browser
        .wait_until(
            &format!("document.body.innerText.includes('{dead}') || (location.reload(), false)"),
            20,
            "the dead letter",
        )
        .await;
    browser.screenshot("dead").await;
    browser.click(&format!("#replay-{dead}")).await;
    browser
        .wait_until("document.querySelector('#result')", 10, "the replay")
        .await;
    // Its progress, kept current without a reload.
    browser
        .wait_until(
            "(document.querySelector('#progress') || {textContent: ''}).textContent.includes('(done): 1 of 1 stored, 0 still queued, 0 dead again')",
            20,
            "the replay's progress",
        )
        .await;
    browser.screenshot("dead-replayed").await;
    browser.goto(&format!("{base}/events/{dead}")).await;
    browser
        .wait_until(
            "document.body.innerText.includes('as fetched') || (location.reload(), false)",
            20,
            "the replayed event stored with its hydrated record",
        )
        .await;
    let detail = browser.text().await;
    assert!(
        detail.contains("stored") && detail.contains("item/42"),
        "{detail}"
    );

    // A refused request shows on /refusals with its reason, and without its key.
    let refused = hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .post(format!(
            "{}/keyed?token=dev-only-query-secret",
            console.hooks
        ))
        .header("x-api-key", "dev-only-wrong-key-123")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    browser.goto(&format!("{base}/refusals")).await;
    browser
        .wait_until(
            "document.querySelector('#refusals')",
            10,
            "the refusals page",
        )
        .await;
    let rows = browser
        .run("return document.querySelector('#refusals').innerText")
        .await;
    let rows = rows.as_str().unwrap();
    assert!(rows.contains("keyed") && rows.contains("401"), "{rows}");
    let page = browser
        .run("return document.documentElement.outerHTML")
        .await;
    let page = page.as_str().unwrap();
    assert!(
        !page.contains("dev-only-wrong-key-123") && !page.contains("dev-only-query-secret"),
        "a credential reached the refusals page"
    );
    browser.screenshot("refusals").await;

    // The routes page draws each route's last hour: stored events, and the refusal above.
    browser.goto(&format!("{base}/routes")).await;
    browser
        .wait_until(
            "document.querySelector('#chart-orders rect.stored') && document.querySelector('#chart-keyed rect.refused')",
            10,
            "the minutes charts",
        )
        .await;
    browser.screenshot("routes-charts").await;
    browser.quit().await;
    console.running.stop().await.unwrap();
}

/// Replay of a stored event after a rule change rewrites its record; Resend of a signed event goes
/// through verification again, a new event where the route dedups on the delivery id and a
/// duplicate where it dedups on the body; neither is done for a form without the CSRF token.
#[tokio::test]
async fn replay_after_a_rule_change_and_resend_of_signed_events() {
    let dir = std::env::temp_dir().join(unique("hookcatch-console-replay"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("hookcatch.toml");
    let routes = |data: &str| {
        format!(
            r#"
[[routes]]
name = "orders"
provider = "catch-raw"
open = true
dedup = "/id"
records = [{{ type = "order", id = "/order/id", version = "/order/v", data = "{data}" }}]

[[routes]]
name = "std"
provider = "standard-webhooks"
secrets = ["whsec_ZGV2LW9ubHktc3RhbmRhcmQtd2ViaG9va3M="]

[[routes]]
name = "gh"
provider = "github"
secrets = ["dev-only-console-github"]
"#
        )
    };
    std::fs::write(&config_path, routes("/order/total")).unwrap();
    let mut file = hookcatch_cli::project::config::ConfigFile::load(&config_path).unwrap();
    file.serve.addr = "127.0.0.1:0".parse().unwrap();
    file.serve.data = dir.join("data");
    file.serve.console_addr = "127.0.0.1:0".parse().unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let url = running.console_url.clone().unwrap();
    let login = console_login(&url);
    let base = login.base.clone();
    let hooks = format!("http://{}/hooks", running.addr);
    let browser = Browser::start().await;
    browser.goto(&url).await;

    // Stored under the first rule: the record holds the total alone.
    let order = post(
        &format!("{hooks}/orders"),
        "application/json",
        r#"{"id":"o-9","order":{"id":"9","v":1,"total":12.5,"items":["a"]}}"#,
    )
    .await;
    browser.goto(&format!("{base}/events/{order}")).await;
    browser
        .wait_until(
            "document.querySelector('section.record pre') || (location.reload(), false)",
            15,
            "the order's record",
        )
        .await;
    let record = browser
        .run("return document.querySelector('section.record pre').innerText")
        .await;
    assert_eq!(record.as_str().unwrap().trim(), "12.5");

    // The rule now keeps the whole order; Replay applies it to the stored event.
    std::fs::write(&config_path, routes("/order")).unwrap();
    browser.goto(&format!("{base}/events/{order}")).await;
    browser.click("#replay").await;
    browser
        .wait_until("document.querySelector('#result')", 10, "the replay")
        .await;
    let result = browser
        .run("return document.querySelector('#result').innerText")
        .await;
    assert!(
        result.as_str().unwrap().contains("queued for replay"),
        "{result}"
    );
    browser
        .wait_until(
            "(document.querySelector('section.record pre') || {innerText: ''}).innerText.includes('items') || (location.reload(), false)",
            15,
            "the record rewritten by the replay",
        )
        .await;
    browser.screenshot("event-replayed").await;

    // Signed deliveries, as their providers send them.
    let delivered = |route: &'static str, body: &'static str| {
        let file = &file;
        let hooks = &hooks;
        async move {
            let settings = file.resolve_route(route).await.unwrap();
            let mut request = hookcatch::InboundRequest {
                method: "POST".into(),
                path: "/".into(),
                raw_query: String::new(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-github-event".into(), "push".into()),
                ],
                body: bytes::Bytes::from_static(body.as_bytes()),
                source_ip: None,
                called_url: None,
            };
            hookcatch_cli::send::sign(&settings, &mut request).unwrap();
            let (status, reply) = hookcatch_cli::send::send(&request, &format!("{hooks}/{route}"))
                .await
                .unwrap();
            assert_eq!(status, 200, "{reply}");
            let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
            reply["id"].as_str().unwrap().to_owned()
        }
    };
    let count = |route: &'static str| {
        let data = dir.join("data");
        async move {
            let store = hookcatch_cli::store::LocalStore::open(&data).unwrap();
            store
                .list_events(Some(route.into()), None, None, 100)
                .await
                .unwrap()
                .len()
        }
    };
    let std_event = delivered("std", r#"{"type":"invoice.paid","data":{"id":"in_1"}}"#).await;
    let gh_event = delivered("gh", r#"{"ref":"refs/heads/main"}"#).await;
    for (event, route, expect) in [
        (&std_event, "std", "accepted as a new event"),
        (&gh_event, "gh", "stored as a duplicate"),
    ] {
        browser.goto(&format!("{base}/events/{event}")).await;
        browser
            .wait_until(
                "document.querySelector('#resend') || (location.reload(), false)",
                15,
                "the stored signed event",
            )
            .await;
        browser.click("#resend").await;
        browser
            .wait_until("document.querySelector('#result')", 15, "the resend")
            .await;
        let result = browser
            .run("return document.querySelector('#result').innerText")
            .await;
        let result = result.as_str().unwrap();
        assert!(
            result.contains("200") && result.contains(expect),
            "{route}: {result}"
        );
        if route == "std" {
            browser.screenshot("event-resent").await;
        }
    }
    let wait_for = |route: &'static str, want: usize| async move {
        for _ in 0..150 {
            if count(route).await == want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{route}: {} events, not {want}", count(route).await);
    };
    wait_for("std", 2).await;
    // The GitHub resend was acknowledged and then taken for the duplicate it is.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    wait_for("gh", 1).await;

    // A form without the console's CSRF token changes nothing.
    let forged = hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .post(format!("{base}/events/{order}/replay"))
        .header("cookie", &login.cookie)
        .header("origin", base.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=stale")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    browser.quit().await;
    running.stop().await.unwrap();
}

/// `hookcatch console --aws` over a stack on the loopback server: the list reads stored events
/// from the event index and dead letters from the DLQ (which stay there), says why queued ones are
/// not listed, opens an event's detail from its index entry, and Replay after a rule change in SSM
/// goes through the events queue and the consumer to rewrite the record; Resend posts a keyed
/// route's event to its Function URL signed with the route's deployed secret from SSM.
#[tokio::test]
async fn the_console_over_a_deployed_stack_lists_details_and_replays() {
    use crate::support::Stack;
    use hookcatch::ports::EventStore;

    let stack = Stack::create(3).await;
    let name = unique("con");
    let stack_name = &name[..name.len().min(40)];
    let route = crate::support::shop_route;
    let ingestor = stack.ingestor(&route("/order/total")).await;
    let post = |body: &'static str| crate::support::post_catch_raw(&ingestor, body);
    let stored =
        post(r#"{"id":"o-9","kind":"order.paid","order":{"id":"9","v":1,"total":12.5}}"#).await;
    let consumer = stack.consumer().await;
    while stack.consume_once(&consumer).await.0 == 0 {}
    // Route `keyed` as deployed: its key a SecureString under the route's `secrets/` in SSM, which
    // its function reads (here through an explicit reference to the same parameter).
    let layout = hookcatch::config::SsmLayout::new(stack_name).unwrap();
    let key_parameter = layout.secret_name("keyed", "key");
    stack
        .put_secret_named(&key_parameter, "dev-resend-key")
        .await;
    stack
        .put_route_config(
            stack_name,
            r#"{"name":"keyed","provider":"catch-raw","auth":{"kind":"api_key","query":"key"},"secrets":["local:key"]}"#,
        )
        .await;
    let keyed = stack
        .ingestor(
            &serde_json::json!({
                "name": "keyed", "provider": "catch-raw",
                "auth": {"kind": "api_key", "query": "key"},
                "secrets": [format!("ssm:{key_parameter}")],
            })
            .to_string(),
        )
        .await;
    let keyed_url = crate::support::function_url_on_loopback(keyed).await;
    let keyed_first = hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .post(format!("{keyed_url}?key=dev-resend-key"))
        .header("content-type", "application/json")
        .body(r#"{"hello":"keyed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed_first.status(), 200);
    let reply: serde_json::Value =
        serde_json::from_str(&keyed_first.text().await.unwrap()).unwrap();
    let keyed_id = reply["id"].as_str().unwrap().to_owned();
    while stack.consume_once(&consumer).await.0 == 0 {}
    let dead =
        post(r#"{"id":"o-10","kind":"order.paid","order":{"id":"10","v":1,"total":3}}"#).await;
    stack.dead_letter_next().await;

    let sdk = hookcatch::aws::sdk_config(std::time::Duration::from_secs(10)).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = hookcatch_cli::console::aws::start(
        hookcatch_cli::console::ConsoleSettings::new("127.0.0.1:0".parse().unwrap(), None).unwrap(),
        hookcatch_cli::console::aws::StackContext {
            sdk,
            table: stack.table.clone(),
            queue_url: stack.queue_url.clone(),
            dlq_url: stack.dlq_url.clone(),
            layout: hookcatch::config::SsmLayout::new(stack_name).unwrap(),
            log_groups: Vec::new(),
            routes: vec!["shop".into(), "keyed".into()],
            route_urls: [("keyed".to_owned(), keyed_url.clone())].into(),
        },
        stopped,
    )
    .await
    .unwrap();
    let base = console_login(&started.url).base;
    let browser = Browser::start().await;
    browser.goto(&started.url).await;

    browser.goto(&format!("{base}/")).await;
    let text = browser.text().await;
    assert!(
        text.contains(&stored) && text.contains(&dead) && text.contains("stack "),
        "{text}"
    );
    assert!(text.contains("Queued events are not listed"), "{text}");
    let status = |id: &str| {
        format!(
            "Array.from(document.querySelectorAll('#rows tr')).find(r => r.textContent.includes('{id}'))?.className"
        )
    };
    assert_eq!(
        browser.run(&format!("return {}", status(&stored))).await,
        "status-stored"
    );
    assert_eq!(
        browser.run(&format!("return {}", status(&dead))).await,
        "status-dead"
    );
    browser.screenshot("aws-events").await;
    // Listing received the dead letter with a zero visibility timeout: it is still there.
    assert_eq!(stack.queue_depth(&stack.dlq_url).await, 1);
    browser.goto(&format!("{base}/?status=queued")).await;
    assert!(
        browser.text().await.contains("SQS cannot show a message"),
        "{}",
        browser.text().await
    );

    // The detail, from the index entry the row's link names; then Replay under a new rule.
    browser.goto(&format!("{base}/")).await;
    browser
        .click(&format!("a.event-id[href^='/events/{stored}?route=shop']"))
        .await;
    browser
        .wait_until(
            "document.querySelector('#replay')",
            10,
            "the event's detail",
        )
        .await;
    let detail = browser.text().await;
    assert!(
        detail.contains("12.5") && detail.contains("order.paid"),
        "{detail}"
    );
    assert!(
        browser
            .run("return document.querySelector('#resend') === null")
            .await
            == true,
        "no Resend for a route whose Function URL is not known"
    );
    assert!(detail.contains("--route-url shop=URL"), "{detail}");
    // Replay finds the event by the same index entry (no Scan).
    assert!(
        browser
            .run("return !!document.querySelector('form[action*=\"/replay?route=shop&stored=\"]')")
            .await
            == true
    );
    stack.put_route_config(stack_name, &route("/order")).await;
    browser.click("#replay").await;
    browser
        .wait_until(
            "document.querySelector('#result')?.textContent.includes('queued for replay')",
            10,
            "the replay's result",
        )
        .await;
    browser.screenshot("aws-replayed").await;
    while stack.consume_once(&consumer).await.0 == 0 {}
    let record = stack
        .store()
        .get_record("shop", "order", "9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.data["total"], 12.5,
        "the whole order now: {:?}",
        record.data
    );

    // Dead letters: listed from the DLQ, still there after the page.
    browser.goto(&format!("{base}/dead")).await;
    let page = browser.text().await;
    assert!(
        page.contains(&dead) && page.contains("Replay all 1"),
        "{page}"
    );
    assert_eq!(stack.queue_depth(&stack.dlq_url).await, 1);
    // Replay all redrives them, and the consumer stores the dead event.
    browser.click("#replay-all").await;
    browser
        .wait_until(
            "document.querySelector('#result')?.textContent.includes('1 message(s) moved back')",
            20,
            "the redrive's result",
        )
        .await;
    assert_eq!(stack.queue_depth(&stack.dlq_url).await, 0);
    while stack.consume_once(&consumer).await.0 == 0 {}
    let events = stack
        .store()
        .scan_events(Some("shop"), Some(&dead))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "the dead event is stored now");
    browser.goto(&format!("{base}/")).await;
    assert_eq!(
        browser.run(&format!("return {}", status(&dead))).await,
        "status-stored"
    );

    // Records through the event index: both orders, each linked to its writer's index entry.
    browser.goto(&format!("{base}/records")).await;
    let rows = browser
        .run(
            "return Array.from(document.querySelectorAll('#records tbody tr')).map(r => \
             [r.cells[2].textContent, r.querySelector('a.event-id').getAttribute('href')])",
        )
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0][0], "10",
        "the most recently written first: {rows:?}"
    );
    assert!(
        rows[0][1]
            .as_str()
            .unwrap()
            .starts_with(&format!("/events/{dead}?route=shop&stored=")),
        "{rows:?}"
    );
    browser
        .click(&format!("#records a.event-id[href^='/events/{stored}?']"))
        .await;
    browser
        .wait_until(
            "document.querySelector('#replay')",
            10,
            "the writing event's detail",
        )
        .await;
    browser.screenshot("aws-records").await;

    // Resend: the keyed route's event, signed with the deployed key from SSM, accepted as new.
    browser.goto(&format!("{base}/")).await;
    browser
        .click(&format!(
            "a.event-id[href^='/events/{keyed_id}?route=keyed']"
        ))
        .await;
    browser
        .wait_until("document.querySelector('#resend')", 10, "Resend offered")
        .await;
    assert!(
        browser
            .text()
            .await
            .contains(keyed_url.trim_end_matches('/')),
        "the curl line names the Function URL"
    );
    browser.click("#resend").await;
    browser
        .wait_until(
            "document.querySelector('#result')?.textContent.includes('accepted as a new event')",
            10,
            "the resend's result",
        )
        .await;
    browser.screenshot("aws-resent").await;
    while stack.consume_once(&consumer).await.0 == 0 {}
    let keyed_events = stack
        .store()
        .scan_events(Some("keyed"), None)
        .await
        .unwrap();
    assert_eq!(keyed_events.len(), 2, "the resend is a new event");
    assert!(
        keyed_events
            .iter()
            .all(|e| !e.query.contains("dev-resend-key")),
        "the key is redacted before storage, and the resend added it back from SSM"
    );
    browser.quit().await;
    let _ = stop.send(true);
    started.server.await.unwrap();
}

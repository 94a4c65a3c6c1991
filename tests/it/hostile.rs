//! Requests an attacker would send to a running `hookcatch serve`, through the real ingest core and
//! the local store, from all four parts of the security audit: forged X events through the CRC
//! answer, unsigned Twilio GET bodies, spoofed forwarded addresses, Graph echoes, overflowing
//! timestamps, oversize and over-many bodies, replayed deliveries, and credential headers. None may
//! store anything hostile: refused, a duplicate, or stored with the credential redacted.

use std::path::Path;
use std::time::{Duration, Instant};

use hookcatch::InboundRequest;
use hookcatch_cli::project::config::ConfigFile;
use hookcatch_cli::send;
use hookcatch_cli::store::LocalStore;

use crate::support::{console_login, unique};

const X_SECRET: &str = "dev-test-x-consumer-secret";
const TWILIO_TOKEN: &str = "dev-test-twilio-auth-token";
const GITHUB_SECRET: &str = "dev-test-github-secret";

fn config(data: &Path) -> String {
    format!(
        r#"
[serve]
addr = "127.0.0.1:0"
data = "{}"
trust_forwarded = true

[[routes]]
name = "x"
provider = "x"
secrets = ["{X_SECRET}"]

# No public_url: behind the (trusted) proxy, the URL is the one it forwarded.
[[routes]]
name = "twilio"
provider = "twilio"
secrets = ["{TWILIO_TOKEN}"]

[[routes]]
name = "graph"
provider = "microsoft-graph"
secrets = ["dev-test-client-state"]

[[routes]]
name = "office"
provider = "catch-raw"
allow_ips = ["10.0.0.0/8"]

[[routes]]
name = "stripe"
provider = "stripe"
secrets = ["whsec_test_stripe"]

[[routes]]
name = "github"
provider = "github"
secrets = ["{GITHUB_SECRET}"]

[[routes]]
name = "small"
provider = "catch-raw"
open = true
max_body_bytes = 1024
"#,
        data.display()
    )
}

fn request(method: &str, query: &str, headers: &[(&str, &str)], body: &str) -> InboundRequest {
    hookcatch::testing::request(method, query, headers, body.as_bytes())
}

fn x_signature(text: &str) -> String {
    hookcatch::providers::x_signature(X_SECRET.as_bytes(), text.as_bytes())
}

#[tokio::test]
async fn hostile_requests_are_refused_and_store_nothing() {
    let dir = std::env::temp_dir().join(unique("hookcatch-hostile"));
    let file = ConfigFile::parse(&config(&dir.join("data")), "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let base = format!("http://{}/hooks", running.addr);
    let call = |route: &'static str, request: InboundRequest| {
        let url = format!("{base}/{route}");
        async move { send::send(&request, &url).await.unwrap() }
    };
    let mut accepted = 0;

    // X: the CRC endpoint answers no token that could be a POST body.
    let forged =
        r#"{"for_user_id":"2244994945","direct_message_events":[{"type":"message_create"}]}"#;
    let encoded: String = form_urlencoded::byte_serialize(forged.as_bytes()).collect();
    for token in [
        encoded.clone(),
        format!("%20{encoded}"),
        format!("+{encoded}"),
        format!("%0A{encoded}"),
        format!("%0D%0A{encoded}"),
        format!("%09{encoded}"),
        forged.replace('"', "%22").replace(' ', "%20"),
    ] {
        let (status, body) =
            call("x", request("GET", &format!("crc_token={token}"), &[], "")).await;
        assert_eq!(status, 400, "{token}: {body}");
        assert!(!body.contains("response_token"), "{token}: {body}");
        // Whatever a caller hoped to get signed, its own HMAC of the body is refused without the key.
        let (status, _) = call(
            "x",
            request(
                "POST",
                "",
                &[("x-twitter-webhooks-signature", &x_signature("abc"))],
                forged,
            ),
        )
        .await;
        assert_eq!(status, 401);
    }
    // The oracle round trip: an answered token's response is no signature for that token as a body.
    let (status, body) = call("x", request("GET", "crc_token=abc123", &[], "")).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let response_token = answer["response_token"].as_str().unwrap().to_owned();
    assert_eq!(response_token, x_signature("abc123"));
    let (status, _) = call(
        "x",
        request(
            "POST",
            "",
            &[("x-twitter-webhooks-signature", &response_token)],
            "abc123",
        ),
    )
    .await;
    assert_eq!(status, 401);
    // A real X delivery still passes.
    let genuine = r#"{"for_user_id":"1","tweet_create_events":[]}"#;
    let (status, body) = call(
        "x",
        request(
            "POST",
            "",
            &[
                ("content-type", "application/json"),
                ("x-twitter-webhooks-signature", &x_signature(genuine)),
            ],
            genuine,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    accepted += 1;

    // Twilio behind a tunnel: it signs the public URL with the whole path `/hooks/twilio`.
    let query = "CallSid=CA1&CallStatus=ringing";
    let public = "https://hooks.example.com/hooks/twilio";
    let empty: [(&str, &str); 0] = [];
    let url_only = hookcatch::providers::twilio_signature(
        TWILIO_TOKEN.as_bytes(),
        &format!("{public}?{query}"),
        &empty,
    );
    let tunnel = |body: &str, content_type: &str, method: &str, host: &str| {
        request(
            method,
            query,
            &[
                ("x-twilio-signature", &url_only),
                ("x-forwarded-host", host),
                ("x-forwarded-proto", "https"),
                ("content-type", content_type),
            ],
            body,
        )
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let (status, body) = call("twilio", tunnel("", FORM, "GET", "hooks.example.com")).await;
    assert_eq!(status, 200, "a signed GET status callback: {body}");
    accepted += 1;
    for smuggled in [
        "MessageStatus=delivered&Body=anything",
        "CallStatus=completed",
    ] {
        let (status, _) = call("twilio", tunnel(smuggled, FORM, "GET", "hooks.example.com")).await;
        assert_eq!(status, 401, "an unsigned body on a GET: {smuggled}");
    }
    let (status, _) = call("twilio", tunnel("", FORM, "GET", "other.example.com")).await;
    assert_eq!(status, 401, "signed for another URL");
    let form = "Body=hi&From=%2B15551234567";
    let mut params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let post_signature = hookcatch::providers::twilio_signature(
        TWILIO_TOKEN.as_bytes(),
        "https://hooks.example.com/hooks/twilio/sms",
        &params,
    );
    let mut post = request(
        "POST",
        "",
        &[
            ("x-twilio-signature", &post_signature),
            ("x-forwarded-host", "hooks.example.com"),
            ("content-type", FORM),
        ],
        form,
    );
    let (status, body) = send::send(&post, &format!("{base}/twilio/sms"))
        .await
        .unwrap();
    assert_eq!(status, 200, "a POST to a sub-path signs that path: {body}");
    accepted += 1;
    post.headers.retain(|(name, _)| name != "x-forwarded-host");
    let (status, _) = send::send(&post, &format!("{base}/twilio/sms"))
        .await
        .unwrap();
    assert_eq!(
        status, 401,
        "without the forwarded host the URL is serve's own"
    );

    // Forwarded addresses: the client is the entry our proxy appended, not the first one.
    let (status, _) = call(
        "office",
        request(
            "POST",
            "",
            &[("x-forwarded-for", "10.1.1.1, 203.0.113.9")],
            "{}",
        ),
    )
    .await;
    assert_eq!(status, 403, "a client-written allowed address is ignored");
    // Accepted, carrying a caller's credentials: they are redacted before anything is queued.
    let (status, _) = call(
        "office",
        request(
            "POST",
            "",
            &[
                ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
                ("authorization", "Bearer dev-hostile-bearer"),
                ("cookie", "sid=dev-hostile-cookie"),
                ("proxy-authorization", "Basic dev-hostile-proxy"),
                ("x-api-key", "dev-hostile-api-key"),
            ],
            "{}",
        ),
    )
    .await;
    assert_eq!(status, 200, "the proxy saw an allowed address");
    accepted += 1;
    let (status, _) = call("office", request("POST", "", &[], "{}")).await;
    assert_eq!(status, 403, "not through the proxy: no trusted address");

    // Graph: validation tokens are echoed only for a POST, bounded and printable.
    let (status, _) = call("graph", request("GET", "validationToken=hello", &[], "")).await;
    assert_eq!(status, 405);
    let long = format!("validationToken={}", "a".repeat(2048));
    let (status, _) = call("graph", request("POST", &long, &[], "")).await;
    assert_eq!(status, 400);
    let (status, body) = call(
        "graph",
        request("POST", "validationToken=Validation%3a+Testing", &[], ""),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "Validation: Testing"));

    // Timestamps far outside any window are refused, not an overflow (a panic in this debug build).
    for t in [i64::MIN.to_string(), i64::MAX.to_string()] {
        let header = format!("t={t},v1={}", "0".repeat(64));
        let (status, _) = call(
            "stripe",
            request("POST", "", &[("stripe-signature", &header)], "{}"),
        )
        .await;
        assert_eq!(status, 401, "{t}");
    }

    // Oversize and over-many: refused before any secret is checked or anything is queued.
    let (status, _) = call("small", request("POST", "", &[], &"x".repeat(1025))).await;
    assert_eq!(status, 413);
    let pairs = vec!["a=1"; 1001].join("&");
    let (status, _) = call(
        "twilio",
        request(
            "POST",
            "",
            &[("content-type", FORM), ("x-twilio-signature", &url_only)],
            &pairs,
        ),
    )
    .await;
    assert_eq!(status, 400, "over 1 000 form pairs");
    let items = vec![r#"{"clientState":"dev-test-client-state"}"#; 1001].join(",");
    let (status, _) = call(
        "graph",
        request("POST", "", &[], &format!(r#"{{"value":[{items}]}}"#)),
    )
    .await;
    assert_eq!(status, 401, "over 1 000 Graph notifications");

    // Replays: GitHub signs no timestamp, so the same signed bytes are one event however often
    // they arrive and whatever unsigned delivery id comes with them.
    let push = r#"{"ref":"refs/heads/main","after":"abc"}"#;
    let signature = format!(
        "sha256={}",
        hex::encode(hookcatch::providers::hmac_sha256(
            GITHUB_SECRET.as_bytes(),
            &[push.as_bytes()]
        ))
    );
    for delivery in ["d-1", "d-1", "d-2-replayed"] {
        let (status, body) = call(
            "github",
            request(
                "POST",
                "",
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", "push"),
                    ("x-github-delivery", delivery),
                    ("x-hub-signature-256", &signature),
                ],
                push,
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    accepted += 1;
    let (status, _) = call(
        "github",
        request(
            "POST",
            "",
            &[
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
            ],
            r#"{"ref":"refs/heads/main","after":"evil"}"#,
        ),
    )
    .await;
    assert_eq!(status, 401, "a replayed signature over other bytes");

    // Exactly the genuine requests were stored.
    let store = LocalStore::open(&dir.join("data")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = store.list_events(None, None, None, 100).await.unwrap();
        if stored.len() == accepted && store.queue_entries().await.unwrap().is_empty() {
            let mut routes: Vec<&str> = stored.iter().map(|e| e.route.as_str()).collect();
            routes.sort_unstable();
            assert_eq!(routes, ["github", "office", "twilio", "twilio", "x"]);
            let text = format!("{stored:?}");
            for credential in [
                "dev-hostile-bearer",
                "dev-hostile-cookie",
                "dev-hostile-proxy",
                "dev-hostile-api-key",
            ] {
                assert!(!text.contains(credential), "{credential} was stored");
            }
            let office = stored.iter().find(|e| e.route == "office").unwrap();
            let header = |name: &str| hookcatch::model::request::find_header(&office.headers, name);
            assert_eq!(header("authorization"), Some("REDACTED"));
            assert_eq!(header("cookie"), Some("REDACTED"));
            assert_eq!(
                office.body_sha256,
                hookcatch::model::request::sha256_hex(b"{}")
            );
            break;
        }
        assert!(
            stored.len() <= accepted,
            "a refused request was stored: {}",
            stored.len()
        );
        assert!(
            Instant::now() < deadline,
            "{} of {accepted} stored",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_twilio_route_that_cannot_know_its_url_refuses_to_start() {
    let dir = std::env::temp_dir().join(unique("hookcatch-twilio-url"));
    let text = format!(
        "[serve]\naddr = \"127.0.0.1:0\"\ndata = \"{}\"\n\n[[routes]]\nname = \"sms\"\nprovider = \"twilio\"\nsecrets = [\"{TWILIO_TOKEN}\"]\n",
        dir.join("data").display()
    );
    let file = ConfigFile::parse(&text, "test.toml").unwrap();
    let Err(error) = hookcatch_cli::serve::start(&file, &file.serve).await else {
        panic!("serve started a Twilio route that would refuse every request")
    };
    assert!(
        error.contains("`sms`")
            && error.contains("public_url")
            && error.contains("trust_forwarded"),
        "{error}"
    );
    let with_url = text.replace(
        "provider = \"twilio\"\n",
        "provider = \"twilio\"\npublic_url = \"https://hooks.example.com/hooks/sms\"\n",
    );
    let file = ConfigFile::parse(&with_url, "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    running.stop().await.unwrap();
}

/// A console page's HTML, read with the project's TLS client and the console's token (from the URL
/// `serve` printed, as a browser holds it after one click).
async fn console_page(console_url: &str, path: &str) -> String {
    let login = console_login(console_url);
    hookcatch::tls::https_client_builder()
        .build()
        .unwrap()
        .get(format!("{}{path}", login.base))
        .header("cookie", login.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The text of the element `<pre id="{id}">` of a console page, as a browser shows it.
fn pre_text(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("<pre id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let text = &page[start..];
    let text = &text[text.find('>').unwrap() + 1..];
    let text = &text[..text.find("</pre>").unwrap()];
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// Security V, N1: whatever a sender stored as the method, path, query or a header, the console's
/// "Copy as curl" pasted into a shell runs one `curl` and nothing else.
#[tokio::test]
async fn copy_as_curl_runs_one_curl_whatever_the_sender_stored() {
    let (running, dir, _) = serve_with(
        "hookcatch-curl",
        "",
        "[[routes]]\nname = \"catch-raw\"\nprovider = \"catch-raw\"\nopen = true\n",
    )
    .await;
    let console = running.console_url.clone().expect("the console runs");
    let hostile = request(
        "X|touch$IFS'pwned-method'|echo",
        "q='$(touch${IFS}pwned-query)'",
        &[
            ("content-type", "application/json"),
            ("x-evil", "'; touch pwned-header; echo '"),
        ],
        "{\"a\":\"$(touch pwned-body)\"}",
    );
    let url = format!(
        "http://{}/hooks/catch-raw/a'$(touch$IFS'pwned-path')",
        running.addr
    );
    let (status, reply) = send::send(&hostile, &url).await.unwrap();
    assert_eq!(status, 200, "{reply}");
    let id = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = console_page(&console, &format!("/events/{id}")).await;
    let command = pre_text(&page, "curl");
    assert!(
        command.starts_with(r"curl -X 'X|touch$IFS'\''pwned-method'\''|echo' 'http://"),
        "{command}"
    );
    // Pasted into bash, with a `curl` that only records its arguments: one call, nothing else.
    let shell = dir.join("shell");
    let bin = shell.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stub = bin.join("curl");
    std::fs::write(&stub, "#!/bin/sh\necho called >> curl-calls\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ran = std::process::Command::new("bash")
        .arg("-c")
        .arg(&command)
        .current_dir(&shell)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .status()
        .unwrap();
    assert!(ran.success(), "{command}");
    let mut made: Vec<String> = std::fs::read_dir(&shell)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["bin", "curl-calls"], "{command}");
    assert_eq!(
        std::fs::read_to_string(shell.join("curl-calls")).unwrap(),
        "called\n"
    );
    running.stop().await.unwrap();
}

/// Security V, N8: a broken secrets file is reported by file, line and reason, never by quoting
/// the line or the value, which are the secret; here on the console's routes page, which reads the
/// files again on each load (the reload's log line carries the same text).
#[tokio::test]
async fn a_broken_secrets_file_is_reported_without_its_secret() {
    let dir = std::env::temp_dir().join(unique("hookcatch-tomlerr"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hookcatch.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\naddr = \"127.0.0.1:0\"\nconsole_addr = \"127.0.0.1:0\"\ndata = \"{}\"\n\n\
             [[routes]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [\"local:signing\"]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let secrets = dir.join("hookcatch.secrets.toml");
    std::fs::write(&secrets, "[routes.github]\nsigning = [\"dev-test-fine\"]\n").unwrap();
    let file = ConfigFile::load(&config).unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let console = running.console_url.clone().expect("the console runs");
    for (broken, reason) in [
        (
            "[routes.github]\nsigning = [\"S3CR3T-github-value\"\n",
            "line 2",
        ),
        (
            "[routes.github]\nsigning = \"S3CR3T-github-value\"\n",
            "line 2",
        ),
    ] {
        std::fs::write(&secrets, broken).unwrap();
        let page = console_page(&console, "/routes").await;
        assert!(!page.contains("S3CR3T"), "{page}");
        assert!(
            page.contains("hookcatch.secrets.toml") && page.contains(reason),
            "{page}"
        );
    }
    running.stop().await.unwrap();
}

/// Security V, N2 and N13: the console lets in only the holder of its token, on loopback too (the
/// data directory keeps it, 0600, so a restart keeps the owner's bookmark); the token's redirect
/// never leaves the console; a request another site's page makes through the owner's browser is
/// refused even with the owner's cookie.
#[tokio::test]
async fn the_console_lets_in_only_the_holder_of_its_token() {
    let (running, dir, file) = serve_with(
        "hookcatch-console-door",
        "",
        "[[routes]]\nname = \"open\"\nprovider = \"catch-raw\"\nopen = true\n",
    )
    .await;
    let printed = running.console_url.clone().expect("the console runs");
    let login = console_login(&printed);
    let pii = r#"{"card":"4111-secret-pii"}"#;
    let (status, reply) = send::send(
        &request("POST", "", &[("content-type", "application/json")], pii),
        &format!("http://{}/hooks/open", running.addr),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{reply}");
    let id = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let kept = dir.join("data").join("console-token");
    let token = std::fs::read_to_string(&kept).unwrap().trim().to_owned();
    assert!(printed.ends_with(&format!("?token={token}")), "{printed}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the token file is its owner's alone: {mode:o}"
        );
    }

    let client = hookcatch::tls::https_client_builder().build().unwrap();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = client.get(format!("{}{path}", login.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    // Another local user, or any process on this machine, without the token: nothing.
    for path in [
        "/",
        &format!("/events/{id}"),
        &format!("/events/{id}/body"),
        "/routes",
    ] {
        let refused = get(path, &[]).await.unwrap();
        assert_eq!(refused.status(), 401, "{path}");
        assert!(!refused.text().await.unwrap().contains("4111"), "{path}");
        let wrong = format!(
            "hookcatch_console_{}={}",
            running_port(&login.base),
            "f".repeat(64)
        );
        let guessed = get(path, &[("cookie", &wrong)]).await.unwrap();
        assert_eq!(guessed.status(), 401, "{path}");
    }
    let acted = client
        .post(format!("{}/events/{id}/replay", login.base))
        .header("origin", &login.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=")
        .send()
        .await
        .unwrap();
    assert_eq!(acted.status(), 401);
    // The owner, with the cookie the printed URL set: the body.
    let body = get(&format!("/events/{id}/body"), &[("cookie", &login.cookie)])
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.text().await.unwrap(), pii);
    // An `<img>` on another site's page, sent with the owner's cookie by an older browser policy.
    for site in ["cross-site", "same-site"] {
        let embedded = get(
            &format!("/events/{id}/body"),
            &[("cookie", &login.cookie), ("sec-fetch-site", site)],
        )
        .await
        .unwrap();
        assert_eq!(embedded.status(), 403, "{site}");
    }
    // The token's one redirect stays on the console, whatever path carried it.
    let moved = get(&format!("//evil.example/?token={token}"), &[])
        .await
        .unwrap();
    assert_eq!(moved.status(), 303);
    assert_eq!(moved.headers()["location"], "/evil.example/");
    assert!(
        moved.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with(&format!("hookcatch_console_{}=", running_port(&login.base)))
    );
    running.stop().await.unwrap();

    // A restart keeps the token: the owner's bookmark and cookie still work.
    let again = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let reprinted = again.console_url.clone().unwrap();
    assert!(
        reprinted.ends_with(&format!("?token={token}")),
        "{reprinted}"
    );
    again.stop().await.unwrap();
}

fn running_port(base: &str) -> &str {
    base.rsplit(':').next().unwrap()
}

/// Security V, N3: over a stack, a request from another site's page never reaches AWS, and no
/// console page ever scans the table (a link without its index entry looks in the DLQ only).
#[tokio::test]
async fn the_stack_console_never_scans_and_never_answers_another_site() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let logged = seen.clone();
    let fake = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let logged = logged.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|t| t.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            let body = if target.contains("Scan") || target.contains("Query") {
                r#"{"Items":[],"Count":0}"#
            } else if target.contains("ReceiveMessage") {
                r#"{"Messages":[]}"#
            } else {
                "{}"
            };
            logged.lock().unwrap().push(target);
            (
                [("content-type", "application/x-amz-json-1.0")],
                body.to_owned(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let aws = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });
    // This test's fake, not the environment's moto: no service-specific endpoint from the env.
    #[derive(Debug)]
    struct NoEnv;
    impl aws_types::service_config::LoadServiceConfig for NoEnv {
        fn load_config(
            &self,
            _: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            None
        }
    }
    let mut sdk = hookcatch::aws::sdk_config(Duration::from_secs(5))
        .await
        .to_builder();
    sdk.set_endpoint_url(Some(aws.clone()));
    sdk.set_service_config(Some(NoEnv));
    let sdk = sdk.build();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let started = hookcatch_cli::console::aws::start(
        hookcatch_cli::console::ConsoleSettings::new("127.0.0.1:0".parse().unwrap(), None).unwrap(),
        hookcatch_cli::console::aws::StackContext {
            sdk,
            table: "events".into(),
            queue_url: format!("{aws}/000000000000/events"),
            dlq_url: format!("{aws}/000000000000/dlq"),
            layout: hookcatch::config::SsmLayout::new("door").unwrap(),
            log_groups: Vec::new(),
            routes: vec!["shop".into()],
            route_urls: Default::default(),
        },
        stopped,
    )
    .await
    .unwrap();
    let login = console_login(&started.url);
    let client = hookcatch::tls::https_client_builder().build().unwrap();
    let page = |site: Option<&'static str>, cookie: bool| {
        let mut request = client.get(format!("{}/events/not-an-event-1", login.base));
        if cookie {
            request = request.header("cookie", &login.cookie);
        }
        if let Some(site) = site {
            request = request
                .header("sec-fetch-site", site)
                .header("sec-fetch-dest", "image");
        }
        request.send()
    };
    assert_eq!(page(Some("cross-site"), true).await.unwrap().status(), 403);
    assert_eq!(page(None, false).await.unwrap().status(), 401);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    // The owner's own look-up by a bare id: the DLQ, never a Scan.
    let missing = page(None, true).await.unwrap();
    let status = missing.status();
    let text = missing.text().await.unwrap();
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("never scans"), "{text}");
    let ops = seen.lock().unwrap().clone();
    assert!(ops.iter().all(|op| !op.contains("Scan")), "{ops:?}");
    assert!(
        ops.iter().any(|op| op.contains("ReceiveMessage")),
        "{ops:?}"
    );
}

/// Security V, N5: unsigned junk never spends a route's `rate_limit`; it spends its own source's
/// budget of signature checks (ten times the route's), and the provider's deliveries pass.
#[tokio::test]
async fn junk_cannot_spend_a_routes_rate_limit() {
    let (running, _, _) = serve_with(
        "hookcatch-rate",
        "trust_forwarded = true\n",
        &format!(
            "[[routes]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [\"{GITHUB_SECRET}\"]\n\
         rate_limit = {{ per_second = 2, burst = 2 }}\n"
        ),
    )
    .await;
    let url = format!("http://{}/hooks/github", running.addr);
    let mut junk = Vec::new();
    let mut genuine = Vec::new();
    for round in 0..5 {
        for _ in 0..30 {
            let (status, _) = send::send(
                &request(
                    "POST",
                    "",
                    &[
                        ("x-forwarded-for", "203.0.113.9"),
                        ("x-github-event", "push"),
                        ("x-hub-signature-256", "sha256=00"),
                    ],
                    "{}",
                ),
                &url,
            )
            .await
            .unwrap();
            junk.push(status);
        }
        let push = format!(r#"{{"ref":"refs/heads/main","after":"{round}"}}"#);
        let signature = format!(
            "sha256={}",
            hex::encode(hookcatch::providers::hmac_sha256(
                GITHUB_SECRET.as_bytes(),
                &[push.as_bytes()]
            ))
        );
        let (status, body) = send::send(
            &request(
                "POST",
                "",
                &[
                    ("x-forwarded-for", "140.82.115.1"),
                    ("content-type", "application/json"),
                    ("x-github-event", "push"),
                    ("x-hub-signature-256", &signature),
                ],
                &push,
            ),
            &url,
        )
        .await
        .unwrap();
        genuine.push((status, body));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(
        genuine.iter().all(|(status, _)| *status == 200),
        "{genuine:?}"
    );
    assert!(junk.contains(&401) && junk.contains(&429), "{junk:?}");
    assert!(junk.iter().all(|s| *s == 401 || *s == 429), "{junk:?}");
    running.stop().await.unwrap();
}

/// Security V, N7: three hundred senders that never finish their bodies, on a process that starts
/// with macOS's 256 open files, do not stop `serve` from answering `/healthz` and real deliveries.
#[tokio::test]
async fn slow_senders_cannot_hold_serve_shut() {
    use tokio::io::AsyncWriteExt;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, 256.min(hard), hard).unwrap();
    let (running, _, _) = serve_with(
        "hookcatch-slow",
        "console = false\n",
        "[[routes]]\nname = \"open\"\nprovider = \"catch-raw\"\nopen = true\n",
    )
    .await;
    let addr = running.addr;
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(
            b"POST /hooks/open HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 1000000\r\n\r\n{",
        )
        .await
        .unwrap();
        held.push(slow);
    }
    let (probe, healthz) = (
        request("GET", "", &[], ""),
        format!("http://{addr}/healthz"),
    );
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), send::send(&probe, &healthz))
        .await
        .expect("/healthz answers while the slow senders hold their connections")
        .unwrap();
    assert_eq!(status, 200);
    let (status, reply) = send::send(
        &request("POST", "", &[("content-type", "application/json")], "{}"),
        &format!("http://{addr}/hooks/open"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{reply}");
    drop(held);
    running.stop().await.unwrap();
}

/// Security V, N4: Twilio signs the URL and the form's decoded pairs, sorted; a captured callback
/// reordered, re-encoded or padded with empty pairs carries the same signature and is the same
/// event, not a new one.
#[tokio::test]
async fn a_twilio_callback_reencoded_is_one_event() {
    let public = "https://hooks.example.test/hooks/twilio";
    let (running, dir, _) = serve_with(
        "hookcatch-twilio-dedup",
        "console = false\n",
        &format!(
            "[[routes]]\nname = \"twilio\"\nprovider = \"twilio\"\nsecrets = [\"{TWILIO_TOKEN}\"]\n\
         public_url = \"{public}\"\n"
        ),
    )
    .await;
    let signature = hookcatch::providers::twilio_signature(
        TWILIO_TOKEN.as_bytes(),
        public,
        &[
            ("CallSid", "CA123"),
            ("CallStatus", "completed"),
            ("From", "+15550001111"),
        ],
    );
    let url = format!("http://{}/hooks/twilio", running.addr);
    for body in [
        "CallSid=CA123&CallStatus=completed&From=%2B15550001111",
        "From=%2B15550001111&CallStatus=completed&CallSid=CA123",
        "CallSid=CA%31%323&CallStatus=completed&From=%2B15550001111",
        "CallSid=CA123&&CallStatus=completed&From=%2B15550001111&",
    ] {
        let (status, reply) = send::send(
            &request(
                "POST",
                "",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("x-twilio-signature", &signature),
                ],
                body,
            ),
            &url,
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}: {reply}");
    }
    running.stop().await.unwrap();
    let store = LocalStore::open(&dir.join("data")).unwrap();
    let events = store
        .list_events(Some("twilio".into()), None, None, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

/// Security V, N10: a failed send never prints the route's key, which rides in the query.
#[tokio::test]
async fn a_failed_test_never_prints_the_routes_key() {
    let config = keyed_orders("hookcatch-urlerr");
    let closed = format!(
        "http://127.0.0.1:{}/hooks/orders",
        crate::support::free_port()
    );
    let (ok, out, err) = crate::support::run_hookcatch(
        &[
            "routes",
            "test",
            "orders",
            "--to",
            &closed,
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(!ok, "{out}{err}");
    assert!(err.contains("failed"), "{err}");
    assert!(!format!("{out}{err}").contains("k-SECRET"), "{out}{err}");
}

/// Security V, N11: a body an open route took from anyone is not re-signed as a verified delivery
/// after the route became a signed provider's: Resend refuses it as Replay does.
#[tokio::test]
async fn resend_never_signs_what_another_provider_received() {
    let dir = std::env::temp_dir().join(unique("hookcatch-resend-provider"));
    let data = dir.join("data");
    let as_route = |provider: &str| {
        format!(
            "[serve]\naddr = \"127.0.0.1:0\"\ndata = \"{}\"\nconsole = false\n\n\
             [[routes]]\nname = \"dd\"\n{provider}",
            data.display()
        )
    };
    let open = ConfigFile::parse(
        &as_route("provider = \"catch-raw\"\nopen = true\n"),
        "test.toml",
    )
    .unwrap();
    let running = hookcatch_cli::serve::start(&open, &open.serve)
        .await
        .unwrap();
    let hooks = format!("http://{}/hooks", running.addr);
    let (status, reply) = send::send(
        &request(
            "POST",
            "",
            &[("content-type", "application/json")],
            r#"{"action":"completed","forged_by":"anyone on the open route"}"#,
        ),
        &format!("{hooks}/dd"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{reply}");
    let id = serde_json::from_str::<serde_json::Value>(&reply).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    running.stop().await.unwrap();

    let signed = ConfigFile::parse(
        &as_route(&format!(
            "provider = \"github\"\nsecrets = [\"{GITHUB_SECRET}\"]\n"
        )),
        "test.toml",
    )
    .unwrap();
    let running = hookcatch_cli::serve::start(&signed, &signed.serve)
        .await
        .unwrap();
    let hooks = format!("http://{}/hooks", running.addr);
    let store = LocalStore::open(&data).unwrap();
    let refused = hookcatch_cli::replay::resend_event(&store, &signed, &id, &|route| {
        format!("{hooks}/{route}")
    })
    .await
    .expect_err("a catch-raw body re-signed as GitHub's");
    assert!(
        refused.to_string().contains("received as catch-raw"),
        "{refused}"
    );
    running.stop().await.unwrap();
    let events = store
        .list_events(Some("dd".into()), None, None, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].provider, "catch-raw");
}

/// Security V, N9: a secret given as a value on `routes add` never lands in `hookcatch.toml`
/// (often shared, readable by all): it goes to the owner-only secrets file, read as `local:signing`.
#[tokio::test]
async fn a_literal_secret_never_lands_in_the_shared_config() {
    let dir = crate::support::tree("hookcatch-literal", &[("hookcatch.toml", "")]);
    let config = dir.join("hookcatch.toml");
    let (ok, out, err) = crate::support::run_hookcatch(
        &[
            "routes",
            "add",
            "x",
            "--provider",
            "github",
            "--secret",
            "s3cr3t-literal",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(ok, "{out}{err}");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(!written.contains("s3cr3t"), "{written}");
    assert!(written.contains("local:signing"), "{written}");
    let secrets = dir.join("hookcatch.secrets.toml");
    assert!(
        std::fs::read_to_string(&secrets)
            .unwrap()
            .contains("s3cr3t-literal")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // The route signs and verifies with it, as before.
    let file = ConfigFile::load(&config).unwrap();
    assert_eq!(
        file.resolve_route("x").await.unwrap().config.name,
        "x",
        "the reference resolves"
    );
    // Edited the same way.
    let (ok, out, err) = crate::support::run_hookcatch(
        &[
            "routes",
            "edit",
            "x",
            "--secret",
            "n3w-literal",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(!std::fs::read_to_string(&config).unwrap().contains("n3w"));
    let kept = std::fs::read_to_string(&secrets).unwrap();
    assert!(
        kept.contains("n3w-literal") && !kept.contains("s3cr3t"),
        "{kept}"
    );
}

/// Security V, N12: refusals are what strangers produce, so each costs a bounded few KiB however
/// large its headers, and only values known to be harmless are shown.
#[tokio::test]
async fn refusals_are_bounded_and_show_no_credential() {
    let (running, _, _) = serve_with(
        "hookcatch-ring",
        "",
        &format!(
            "[[routes]]\nname = \"small\"\nprovider = \"catch-raw\"\nopen = true\nmax_body_bytes = 16\n\n\
         [[routes]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [\"{GITHUB_SECRET}\"]\n"
        ),
    )
    .await;
    let console = running.console_url.clone().expect("the console runs");
    let hooks = format!("http://{}/hooks", running.addr);
    // Refused before ingest's header cap (a body over the route's): 50 headers of 1 KiB each.
    let filler: Vec<(String, String)> = (0..50)
        .map(|n| (format!("x-filler-{n}"), "f".repeat(1024)))
        .collect();
    let filler: Vec<(&str, &str)> = filler
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for _ in 0..500 {
        let (status, _) = send::send(
            &request("POST", "", &filler, &"x".repeat(64)),
            &format!("{hooks}/small"),
        )
        .await
        .unwrap();
        assert_eq!(status, 413);
    }
    let (status, _) = send::send(
        &request(
            "POST",
            "password=hunter2-query",
            &[
                ("x-webhook-password", "hunter2-header"),
                ("x-shopify-hmac-sha256", "c2lnbmF0dXJl"),
                ("x-github-event", "push"),
            ],
            "{}",
        ),
        &format!("{hooks}/github"),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    let page = console_page(&console, "/refusals").await;
    assert!(page.len() < 5 * 1024 * 1024, "{} bytes", page.len());
    assert!(page.contains("x-webhook-password") && page.contains("push"));
    assert!(
        !page.contains("hunter2") && !page.contains("c2lnbmF0dXJl"),
        "a credential shown"
    );
    running.stop().await.unwrap();
}

/// Security V, N14: `--to` never carries a route's credentials in clear to another machine, and
/// says so before resolving or connecting anything; `--insecure-http` is the user's own choice.
#[tokio::test]
async fn credentials_never_go_to_plain_http_off_this_machine() {
    let config = keyed_orders("hookcatch-plain-http");
    let config = config.to_str().unwrap();
    for args in [
        vec![
            "routes",
            "test",
            "orders",
            "--to",
            "http://example.invalid/hooks/orders",
        ],
        vec![
            "send",
            "--route",
            "orders",
            "--to",
            "http://example.invalid/hooks/orders",
        ],
    ] {
        let mut args = args;
        args.extend(["--config", config]);
        let (ok, out, err) = crate::support::run_hookcatch(&args, &[]).await;
        assert!(!ok, "{args:?}: {out}{err}");
        assert!(
            err.contains("over plain http") && err.contains("--insecure-http"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("dns") && !err.contains("k-SECRET"), "{err}");
    }
    // Asked for, it goes (and fails to resolve, which is the point: it tried).
    let (ok, _, err) = crate::support::run_hookcatch(
        &[
            "routes",
            "test",
            "orders",
            "--to",
            "http://example.invalid/hooks/orders",
            "--insecure-http",
            "--config",
            config,
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(!err.contains("over plain http"), "{err}");
}

/// A `serve` with its console on free loopback ports over a fresh directory (`dir/data`), with
/// `serve_keys` added to its `[serve]` table and `routes` after it: the server, the directory and
/// the configuration (to start it again).
async fn serve_with(
    name: &str,
    serve_keys: &str,
    routes: &str,
) -> (
    hookcatch_cli::serve::Running,
    std::path::PathBuf,
    ConfigFile,
) {
    let dir = std::env::temp_dir().join(unique(name));
    let toml = format!(
        "[serve]\naddr = \"127.0.0.1:0\"\nconsole_addr = \"127.0.0.1:0\"\ndata = \"{}\"\n{serve_keys}\n\n{routes}",
        dir.join("data").display()
    );
    let file = ConfigFile::parse(&toml, "test.toml").unwrap();
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    (running, dir, file)
}

/// A `hookcatch.toml` with one route, `orders`, whose key `k-SECRET-…` rides in the query.
fn keyed_orders(name: &str) -> std::path::PathBuf {
    crate::support::tree(
        name,
        &[(
            "hookcatch.toml",
            "[[routes]]\nname = \"orders\"\nprovider = \"catch-raw\"\n\
             auth = { kind = \"api_key\", query = \"zapikey\" }\nsecrets = [\"k-SECRET-0123456789\"]\n",
        )],
    )
    .join("hookcatch.toml")
}

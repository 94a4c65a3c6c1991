//! `hookcatch routes` and `secrets set` against a running `hookcatch serve`, as a user drives them:
//! add a route → it answers without a restart → Test it → the event is a test and made no record →
//! remove it → 404; and a secret rotation with both secrets accepted during the overlap.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookcatch::RouteSettings;
use hookcatch::config::RouteConfig;
use hookcatch_cli::send;

use crate::support::{hookcatch_binary, unique};

/// Reloads happen within a second of the file changing (a watcher and a 100 ms settle); the tests
/// allow more, since a busy CI machine schedules late, and never time anything finer.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

struct Served {
    dir: PathBuf,
    config: PathBuf,
    port: u16,
    _child: tokio::process::Child,
}

impl Served {
    async fn start(routes: &str) -> Served {
        let dir = std::env::temp_dir().join(unique("hookcatch-routes"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = crate::support::free_port();
        let config = dir.join("hookcatch.toml");
        std::fs::write(
            &config,
            format!(
                "# the user's own comment\n[serve]\naddr = \"127.0.0.1:{port}\"\ndata = \"{}\"\n\n{routes}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new(hookcatch_binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let served = Served {
            dir,
            config,
            port,
            _child: child,
        };
        served
            .wait_for_status("serve to be healthy", "/healthz", "GET", |s| s == 200)
            .await;
        served
    }

    /// Runs `hookcatch ARGS… --config F` (or `--data D` for the store's commands).
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut command = tokio::process::Command::new(hookcatch_binary());
        command.args(args).env("RUST_LOG", "warn");
        if matches!(args[0], "events" | "records") {
            command.arg("--data").arg(self.dir.join("data"));
        } else {
            command.arg("--config").arg(&self.config);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().await.unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, &[]).await;
        assert!(ok, "hookcatch {args:?} failed: {out}{err}");
        out
    }

    async fn status(&self, path: &str, method: &str) -> u16 {
        let request = hookcatch::testing::request(method, "", &[], b"");
        send::send(&request, &format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .map_or(0, |r| r.0)
    }

    async fn wait_for_status(&self, what: &str, path: &str, method: &str, ok: fn(u16) -> bool) {
        let deadline = Instant::now() + RELOAD_DEADLINE;
        loop {
            let status = self.status(path, method).await;
            if ok(status) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: still {status}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The route's events as `events list --json` prints them.
    async fn events(&self, route: &str) -> Vec<serde_json::Value> {
        self.ok(&["events", "list", "--route", route, "--json"])
            .await
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    async fn wait_for_stored(&self, route: &str, count: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + RELOAD_DEADLINE;
        loop {
            let events = self.events(route).await;
            if events.iter().filter(|e| e["status"] == "stored").count() >= count {
                return events;
            }
            assert!(Instant::now() < deadline, "{route}: {events:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a request signed with `secret` is answered `status` (a reload has happened).
    async fn wait_for_signed(&self, secret: &str, status: u16, what: &str) {
        let deadline = Instant::now() + RELOAD_DEADLINE;
        while self.signed_status("gh", "github", secret).await != status {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A request to the route signed with exactly this secret.
    async fn signed_status(&self, route: &str, provider: &str, secret: &str) -> u16 {
        let config: RouteConfig = serde_json::from_value(serde_json::json!({
            "name": route, "provider": provider, "secrets": [secret]
        }))
        .unwrap();
        let settings = RouteSettings::with_secrets(config, &[secret]);
        let mut request = hookcatch::InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: bytes::Bytes::from(format!(r#"{{"zen":"x","rotation":"{}"}}"#, unique("r"))),
            source_ip: None,
            called_url: None,
        };
        send::sign(&settings, &mut request).unwrap();
        let url = format!("http://127.0.0.1:{}/hooks/{route}", self.port);
        send::send(&request, &url).await.unwrap().0
    }
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn add_test_and_remove_a_route_while_serve_runs() {
    let served =
        Served::start("[[routes]]\nname = \"catch-raw\"\nprovider = \"catch-raw\"\nopen = true\n")
            .await;
    assert_eq!(served.status("/hooks/gh", "POST").await, 404);
    // Meanwhile a sender keeps posting to a route that stays: no reload may refuse or drop one.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let steady = tokio::spawn({
        let stop = stop.clone();
        let url = format!("http://127.0.0.1:{}/hooks/catch-raw", served.port);
        async move {
            let (mut sent, mut refused) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let request = hookcatch::InboundRequest {
                    method: "POST".into(),
                    path: "/".into(),
                    raw_query: String::new(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: bytes::Bytes::from(format!(r#"{{"n":{sent}}}"#)),
                    source_ip: None,
                    called_url: None,
                };
                match send::send(&request, &url).await {
                    Ok((200, _)) => {}
                    other => refused.push(format!("{other:?}")),
                }
                sent += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (sent, refused)
        }
    });

    // Add: a signed provider without its secret is refused, and the file is left alone.
    let before = text(&served.config);
    let (ok, _, err) = served
        .run(&["routes", "add", "gh", "--provider", "github"], &[])
        .await;
    assert!(!ok && err.contains("signing secret"), "{err}");
    assert_eq!(text(&served.config), before);
    served
        .ok(&[
            "routes",
            "add",
            "gh",
            "--provider",
            "github",
            "--secret",
            "dev-test-gh",
        ])
        .await;
    assert!(
        text(&served.config).starts_with(&before),
        "comments and layout kept"
    );
    // The new route answers (401 unsigned) without a restart.
    served
        .wait_for_status("the added route", "/hooks/gh", "POST", |s| s == 401)
        .await;

    // Test: GitHub's ping, signed; stored as a test event.
    let out = served.ok(&["routes", "test", "gh"]).await;
    assert!(out.contains("accepted"), "{out}");
    let events = served.wait_for_stored("gh", 1).await;
    assert_eq!(events[0]["test_ping"], true, "{events:?}");

    // A route with a record rule: its Test is stored as a test and produces no record; Stripe's
    // synthetic event and Zoho's empty notification likewise (and Zoho's is never hydrated).
    served
        .ok(&[
            "routes",
            "add",
            "orders",
            "--provider",
            "catch-raw",
            "--open",
            "true",
            "--records",
            r#"[{ type = "order", id = "/order/id" }]"#,
        ])
        .await;
    served
        .ok(&[
            "routes",
            "add",
            "pay",
            "--provider",
            "stripe",
            "--secret",
            "whsec_dev_test",
        ])
        .await;
    served
        .ok(&[
            "routes",
            "add",
            "crm",
            "--provider",
            "zoho-crm",
            "--channels",
            r#"[{ id = "1000000068001", token = "dev-test-zoho-token" }]"#,
        ])
        .await;
    for route in ["orders", "pay", "crm"] {
        served
            .wait_for_status(route, &format!("/hooks/{route}"), "PUT", |s| s != 404)
            .await;
        let out = served.ok(&["routes", "test", route]).await;
        assert!(out.contains("accepted"), "{route}: {out}");
        let events = served.wait_for_stored(route, 1).await;
        assert_eq!(events[0]["test_ping"], true, "{route}: {events:?}");
    }
    let pay = served.events("pay").await;
    assert_eq!(pay[0]["event_type"], "hookcatch.test", "{pay:?}");
    let records = served.ok(&["records", "list", "--json"]).await;
    assert!(
        records.trim().is_empty(),
        "test events made records: {records}"
    );

    // A handshake provider's Test is its handshake, reported as answered.
    served
        .ok(&[
            "routes",
            "add",
            "slack",
            "--provider",
            "slack",
            "--secret",
            "dev-test-slack",
        ])
        .await;
    served
        .wait_for_status("slack", "/hooks/slack", "POST", |s| s == 401)
        .await;
    let out = served.ok(&["routes", "test", "slack"]).await;
    assert!(out.contains("handshake answered"), "{out}");

    // The list shows each route, its URL and whether its secrets are there.
    let listed = served.ok(&["routes", "list", "--json"]).await;
    let gh: serde_json::Value = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["name"] == "gh")
        .unwrap();
    assert_eq!(gh["provider"], "github");
    assert_eq!(
        gh["url"],
        format!("http://127.0.0.1:{}/hooks/gh", served.port)
    );
    assert_eq!(gh["secrets"], "set");
    assert!(gh["last_event_at"].is_string(), "{gh}");

    // An edit that would not load keeps the running routes (and the file).
    std::fs::write(
        &served.config,
        format!("{before}\n[[routes]]\nname = \"broken\"\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        served.status("/hooks/gh", "POST").await,
        401,
        "still served"
    );
    std::fs::write(&served.config, &before).unwrap();
    served
        .wait_for_status("the restored file", "/hooks/gh", "POST", |s| s == 404)
        .await;
    // Remove: the route answers 404; its stored events stay.
    served
        .ok(&[
            "routes",
            "add",
            "gone",
            "--provider",
            "catch-raw",
            "--open",
            "true",
        ])
        .await;
    served
        .wait_for_status("gone", "/hooks/gone", "POST", |s| s == 200)
        .await;
    served.ok(&["routes", "rm", "gone"]).await;
    served
        .wait_for_status("the removed route", "/hooks/gone", "POST", |s| s == 404)
        .await;
    assert!(!served.wait_for_stored("gone", 1).await.is_empty());

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, refused) = steady.await.unwrap();
    assert!(
        sent > 10 && refused.is_empty(),
        "{sent} sent, refused: {refused:?}"
    );
}

#[tokio::test]
async fn a_secret_rotation_accepts_both_during_the_overlap_then_only_the_new() {
    let served = Served::start(
        "[[routes]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [\"dev-test-first\"]\n",
    )
    .await;
    assert_eq!(
        served.signed_status("gh", "github", "dev-test-first").await,
        200
    );
    let set = |mode: &'static str, value: &'static str| {
        let served = &served;
        async move {
            let mut args = vec![
                "secrets",
                "set",
                "gh",
                "signing",
                "--from-env",
                "NEW_SECRET",
            ];
            if !mode.is_empty() {
                args.push(mode);
            }
            let (ok, out, err) = served.run(&args, &[("NEW_SECRET", value)]).await;
            assert!(ok, "{out}{err}");
        }
    };
    // The first `secrets set` moves the route to the secrets file.
    set("", "dev-test-old").await;
    assert!(text(&served.config).contains(r#"secrets = ["local:signing"]"#));
    let secrets_file = served.dir.join("hookcatch.secrets.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    served
        .wait_for_signed(
            "dev-test-first",
            401,
            "the literal secret is still accepted",
        )
        .await;
    assert_eq!(
        served.signed_status("gh", "github", "dev-test-old").await,
        200
    );

    // Without --add or --replace, an existing secret is not overwritten.
    let (ok, _, err) = served
        .run(
            &[
                "secrets",
                "set",
                "gh",
                "signing",
                "--from-env",
                "NEW_SECRET",
            ],
            &[("NEW_SECRET", "dev-test-new")],
        )
        .await;
    assert!(!ok && err.contains("--add"), "{err}");

    set("--add", "dev-test-new").await;
    served
        .wait_for_signed("dev-test-new", 200, "the new secret is not accepted")
        .await;
    assert_eq!(
        served.signed_status("gh", "github", "dev-test-old").await,
        200,
        "overlap"
    );
    // `routes test` signs with the newest.
    let out = served.ok(&["routes", "test", "gh"]).await;
    assert!(out.contains("accepted"), "{out}");

    set("--replace", "dev-test-new").await;
    served
        .wait_for_signed("dev-test-old", 401, "the old secret is still accepted")
        .await;
    assert_eq!(
        served.signed_status("gh", "github", "dev-test-new").await,
        200
    );
    assert!(
        !text(&served.config).contains("dev-test-new"),
        "no secret in hookcatch.toml"
    );
}

//! The `hookcatch` binary's `--aws` commands against a stack on the loopback AWS server.

use crate::support::{Stack, function_url_request, reply_json};

async fn hookcatch(args: &[&str]) -> (bool, String, String) {
    crate::support::run_hookcatch(args, &[("RUST_LOG", "warn")]).await
}

/// `records get --aws` of route `shop`'s order `id`.
async fn order_record(table: &str, id: &str) -> serde_json::Value {
    let (ok, stdout, stderr) = hookcatch(&[
        "records", "get", "--aws", "--table", table, "--route", "shop", "--type", "order", "--id",
        id,
    ])
    .await;
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test]
async fn events_records_and_dlq_redrive_of_a_deployed_stack() {
    let stack = Stack::create(3).await;
    let route = r#"{"name":"shop","provider":"catch-raw","open":true,"event_type":"/event",
        "records":[{"type":"order","id":"/order/id","version":"/order/updated_at","data":"/order"}]}"#;
    let ingestor = stack.ingestor(route).await;
    let mut ids = Vec::new();
    for version in [1, 2] {
        let request = function_url_request("catch-raw-json.json", move |event| {
            event["body"] = format!(
                r#"{{"event":"order.updated","order":{{"id":"9","updated_at":{version}}}}}"#
            )
            .into();
        });
        let response = hookcatch_ingest::handle(&ingestor, request).await.unwrap();
        assert_eq!(response.status_code, 200);
        ids.push(reply_json(&response)["id"].as_str().unwrap().to_owned());
    }
    let consumer = stack.consumer().await;
    let mut processed = 0;
    while processed < 2 {
        processed += stack.consume_once(&consumer).await.0;
    }

    let (ok, stdout, stderr) = hookcatch(&[
        "events",
        "list",
        "--aws",
        "--table",
        &stack.table,
        "--route",
        "shop",
        "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let listed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], ids[1].as_str(), "newest first");
    assert_eq!(listed[0]["event_type"], "order.updated");

    let (ok, stdout, stderr) =
        hookcatch(&["events", "show", &ids[0], "--aws", "--table", &stack.table]).await;
    assert!(ok, "{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        shown["body"],
        r#"{"event":"order.updated","order":{"id":"9","updated_at":1}}"#
    );

    let record = order_record(&stack.table, "9").await;
    assert_eq!(record["data"]["updated_at"], 2);

    let (ok, _, stderr) = hookcatch(&["records", "list", "--aws"]).await;
    assert!(
        !ok && stderr.contains("--table"),
        "a missing table is a clear error: {stderr}"
    );

    for n in 0..3 {
        stack
            .sqs
            .send_message()
            .queue_url(&stack.dlq_url)
            .message_body(format!("dead-{n}"))
            .send()
            .await
            .unwrap();
    }
    let (ok, stdout, stderr) = hookcatch(&[
        "replay",
        "--aws",
        "--dlq-url",
        &stack.dlq_url,
        "--queue-url",
        &stack.queue_url,
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("moved 3 message(s)"), "{stdout}");
    assert_eq!(stack.queue_depth(&stack.dlq_url).await, 0);
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 3);
}

/// `events list --aws --route` pages through the event index, newest stored first, with the cursor
/// it prints, and only that route's events; an event stored without the index's keys (a consumer
/// of before the index, or `EventIndex=off`) is not in it, and the table scan still lists it.
#[tokio::test]
async fn a_routes_events_page_through_the_event_index_with_a_cursor() {
    let stack = Stack::create(3).await;
    let route = |name: &str| format!(r#"{{"name":"{name}","provider":"catch-raw","open":true}}"#);
    let (shop, other) = (
        stack.ingestor(&route("shop")).await,
        stack.ingestor(&route("other")).await,
    );
    let consumer = stack.consumer().await;
    let mut env = stack.consumer_env();
    env.remove(hookcatch::config::ConsumerEnv::EVENT_INDEX);
    let unindexed = hookcatch::runtime::lambda::consumer_from_env(&|name| env.get(name).cloned())
        .await
        .unwrap();
    let mut shop_ids = Vec::new();
    // One at a time, each stored before the next arrives: stored order is arrival order.
    for n in 0..5 {
        let request = function_url_request("catch-raw-json.json", move |event| {
            event["body"] = format!(r#"{{"n":{n}}}"#).into();
        });
        let response = hookcatch_ingest::handle(&shop, request).await.unwrap();
        shop_ids.push(reply_json(&response)["id"].as_str().unwrap().to_owned());
        while stack.consume_once(&consumer).await.0 == 0 {}
        let request = function_url_request("catch-raw-json.json", move |event| {
            event["body"] = format!(r#"{{"other":{n}}}"#).into();
        });
        hookcatch_ingest::handle(&other, request).await.unwrap();
        while stack.consume_once(&consumer).await.0 == 0 {}
    }
    let request = function_url_request("catch-raw-json.json", |event| {
        event["body"] = r#"{"before":"the index"}"#.into();
    });
    let response = hookcatch_ingest::handle(&shop, request).await.unwrap();
    let old = reply_json(&response)["id"].as_str().unwrap().to_owned();
    while stack.consume_once(&unindexed).await.0 == 0 {}

    let page = |after: Option<String>| {
        let table = stack.table.clone();
        async move {
            let mut args = vec![
                "events", "list", "--aws", "--table", &table, "--route", "shop", "--limit", "2",
                "--json",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
            if let Some(after) = after {
                args.extend(["--after".to_owned(), after]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, stdout, stderr) = hookcatch(&args).await;
            assert!(ok, "{stderr}");
            let ids: Vec<String> = stdout
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            let next = stderr
                .lines()
                .find_map(|l| l.strip_prefix("older events: add --after "))
                .map(str::to_owned);
            (ids, next)
        }
    };
    let (first, next) = page(None).await;
    assert_eq!(
        first,
        [shop_ids[4].clone(), shop_ids[3].clone()],
        "newest first"
    );
    let (second, next) = page(next).await;
    assert_eq!(second, [shop_ids[2].clone(), shop_ids[1].clone()]);
    let (third, next) = page(next).await;
    assert_eq!(
        third,
        [shop_ids[0].clone()],
        "only the route's indexed events"
    );
    assert_eq!(next, None, "the last page says there is no more");

    // Without --route the table is scanned, with a warning, and the unindexed event is there.
    let (ok, stdout, stderr) =
        hookcatch(&["events", "list", "--aws", "--table", &stack.table, "--json"]).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("scanning the whole table"), "{stderr}");
    assert!(stdout.contains(&old), "{stdout}");
    assert_eq!(stdout.lines().count(), 11);

    let (ok, _, stderr) = hookcatch(&[
        "events",
        "list",
        "--aws",
        "--table",
        &stack.table,
        "--route",
        "shop",
        "--after",
        "garbage",
    ])
    .await;
    assert!(!ok && stderr.contains("not a cursor"), "{stderr}");
}

/// A dead letter of the stack is listed by `events list --aws --dlq-url` and stays in the DLQ; a
/// stored event replayed with `replay --aws --event` goes through the events queue and the
/// consumer again with its route's deployed rules (SSM), which rewrite its record.
#[tokio::test]
async fn dead_letters_list_in_place_and_stored_events_replay_with_the_deployed_rules() {
    let stack = Stack::create(3).await;
    let name = crate::support::unique("rp");
    let stack_name = &name[..name.len().min(40)];
    let route = crate::support::shop_route;
    let ingestor = stack.ingestor(&route("/order/total")).await;
    let post = |body: &'static str| crate::support::post_catch_raw(&ingestor, body);
    let stored = post(r#"{"id":"o-9","order":{"id":"9","v":1,"total":12.5}}"#).await;
    let consumer = stack.consumer().await;
    while stack.consume_once(&consumer).await.0 == 0 {}

    // A second event's message dead-lettered: moved from the queue to the DLQ as SQS would.
    let dead = post(r#"{"id":"o-10","order":{"id":"10","v":1,"total":3}}"#).await;
    stack.dead_letter_next().await;
    let list = [
        "events",
        "list",
        "--aws",
        "--table",
        &stack.table,
        "--dlq-url",
        &stack.dlq_url,
        "--json",
    ];
    for _ in 0..2 {
        let (ok, stdout, stderr) = hookcatch(&list).await;
        assert!(ok, "{stderr}");
        let listed: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let status = |id: &str| {
            listed
                .iter()
                .find(|e| e["id"] == id)
                .map(|e| e["status"].clone())
        };
        assert_eq!(status(&stored), Some("stored".into()), "{stdout}");
        assert_eq!(status(&dead), Some("dead".into()), "{stdout}");
        // Listed, not consumed: still there for the next listing and for a redrive.
        assert_eq!(stack.queue_depth(&stack.dlq_url).await, 1);
    }

    // The rule changes on the stack; replay takes it from SSM, and the consumer applies it.
    stack.put_route_config(stack_name, &route("/order")).await;
    let replay = |event: &str| {
        let args = [
            "replay",
            "--aws",
            "--event",
            event,
            "--stack",
            stack_name,
            "--table",
            &stack.table,
            "--queue-url",
            &stack.queue_url,
        ]
        .map(str::to_owned);
        async move { hookcatch(&args.each_ref().map(String::as_str)).await }
    };
    let (ok, stdout, stderr) = replay(&stored).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued for replay"), "{stdout}");
    while stack.consume_once(&consumer).await.0 == 0 {}
    let record = order_record(&stack.table, "9").await;
    assert_eq!(
        record["data"]["total"], 12.5,
        "the whole order now: {record}"
    );

    let (ok, _, stderr) = replay("nope").await;
    assert!(!ok && stderr.contains("no stored event `nope`"), "{stderr}");
}

/// Without a region, an `--aws` command says what to do in one line: the SDK's warnings about the
/// instance metadata it tried (a 403 here, from a loopback stand-in) stay out of the terminal
/// unless `-v` asks for them.
#[tokio::test]
async fn without_a_region_an_aws_command_says_what_to_do_in_one_line() {
    let imds = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FORBIDDEN,
            "resolve_deny: denied destination",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, imds).await.unwrap() });
    let run = |verbose: bool| {
        let mut command = tokio::process::Command::new(crate::support::hookcatch_binary());
        command.args(["events", "list", "--aws", "--table", "T"]);
        if verbose {
            command.arg("-v");
        }
        for name in [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
            "AWS_EC2_METADATA_DISABLED",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        command
            .env("AWS_CONFIG_FILE", "/nonexistent/hookcatch-test")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/hookcatch-test")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint)
            .output()
    };
    let quiet = run(false).await.unwrap();
    assert!(!quiet.status.success());
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: no AWS region: set AWS_REGION or a profile's region",
        "{stderr}"
    );
    let verbose = run(true).await.unwrap();
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        stderr.lines().count() > 1 && stderr.contains("WARN"),
        "-v shows the SDK's own lines: {stderr}"
    );
}

//! The release `bootstrap` binaries that `sam build` packaged, run under a small fake of the Lambda
//! Runtime API on loopback (`fake_runtime.rs`).

use std::time::Instant;

use hookcatch::clock::Clock;

use crate::fake_runtime::{FakeRuntime, Stdout, spawn};
use crate::support::{Stack, load_event};

#[tokio::test]
async fn release_bootstraps_ingest_and_consume_the_event_samples() {
    let stack = Stack::create(3).await;
    let secret = stack.put_secret("dev-bootstrap-key").await;
    let route = serde_json::json!({
        "name": "catch-raw",
        "provider": "catch-raw",
        "auth": {"kind": "api_key", "query": "zapikey"},
        "secrets": [format!("ssm:{secret}")],
    })
    .to_string();

    let ingest_runtime = FakeRuntime::start().await;
    let started = Instant::now();
    // TRACE, the most a deployer can set: still no credential may reach the logs.
    let mut ingest_env = stack.ingest_env(&route);
    ingest_env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into());
    // Any route function runs the one route binary; HOOKCATCH_ROUTE makes this one catch-raw.
    let (_ingest, ingest_stdout) = spawn("Routegithub", &ingest_runtime, &ingest_env);
    ingest_runtime.wait_for_poll().await;
    let init_done = started.elapsed();
    let mut first_response = None;
    let samples = [
        "catch-raw-json.json",
        "catch-raw-form-base64.json",
        "catch-raw-multipart-base64.json",
    ];
    for sample in samples {
        let mut event = load_event(sample);
        event["rawQueryString"] = "zapikey=dev-bootstrap-key".into();
        event["headers"]["authorization"] = "Bearer dev-bootstrap-bearer".into();
        event["headers"]["cookie"] = "sid=dev-bootstrap-cookie".into();
        let response = ingest_runtime.invoke(&event).await;
        first_response.get_or_insert(started.elapsed());
        assert_eq!(response["statusCode"], 200, "{sample}: {response}");
        let body: serde_json::Value =
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "queued");
    }
    // A body flagged base64 that is not (Lambda never sends one; lambda_http's adapter panicked on
    // it, found by the function_url fuzz target) fails the invocation, so the sender gets a 5xx and
    // retries, and the process goes on serving.
    let mut broken = load_event("catch-raw-json.json");
    broken["rawQueryString"] = "zapikey=dev-bootstrap-key".into();
    broken["isBase64Encoded"] = true.into();
    broken["body"] = "not base64 (".into();
    let error = ingest_runtime.try_invoke(&broken).await.unwrap_err();
    assert!(error.contains("base64"), "{error}");
    // A Host that is no URL host (the adapter's other panic) is just a header now; no key: 401.
    let mut bad_host = load_event("catch-raw-json.json");
    bad_host["headers"]["host"] = "u.lambda-url.us-east-1.on a.".into();
    let answered = ingest_runtime.try_invoke(&bad_host).await.unwrap();
    assert_eq!(answered["statusCode"], 401, "{answered}");

    let mut refused = load_event("catch-raw-json.json");
    refused["rawQueryString"] = "zapikey=wrong".into();
    assert_eq!(ingest_runtime.invoke(&refused).await["statusCode"], 401);
    // Timings are printed, not asserted: `scripts/bench` measures them (BENCHMARKS.md).
    eprintln!(
        "ingest bootstrap: spawn to init done {init_done:?}, to first response {:?}",
        first_response.unwrap()
    );

    // The consumer binary gets the messages the ingest binary queued, plus the stored SQS sample.
    let consumer_runtime = FakeRuntime::start().await;
    let mut consumer_env = stack.consumer_env();
    consumer_env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into());
    let (_consumer, consumer_stdout) = spawn("ConsumerFunction", &consumer_runtime, &consumer_env);
    stack.consume_all(&consumer_runtime, samples.len()).await;
    let sample_batch = load_event("consumer-sqs-batch.json");
    let response = consumer_runtime.invoke(&sample_batch).await;
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "{response}"
    );
    let garbage = serde_json::json!({"Records": [{"messageId": "m-garbage", "body": "garbage", "eventSource": "aws:sqs"}]});
    let response = consumer_runtime.invoke(&garbage).await;
    assert_eq!(
        response["batchItemFailures"][0]["itemIdentifier"],
        "m-garbage"
    );

    // The schedule's input: without a configured renewal there is nothing to renew.
    let response = consumer_runtime
        .invoke(&load_event("consumer-schedule-renew.json"))
        .await;
    assert_eq!(response, serde_json::json!({"renewed": []}));

    // Each invocation flushed its counts as EMF documents on stdout; accepted requests write none
    // (Lambda's Invocations and the consumer's Events count them).
    let requests = |outcome: &str| metric_total(&ingest_stdout, "Requests", "catch-raw", outcome);
    // Refused: the request without a key and the one with the wrong key.
    assert_eq!(wait_for_total(|| requests("refused"), 2).await, 2);
    assert_eq!(requests("accepted"), 0);
    let refusal = emf_documents(&ingest_stdout)
        .into_iter()
        .find(|d| d["outcome"] == "refused" && d["reason"] == "api key mismatch")
        .unwrap();
    assert_eq!(
        refusal["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "hookcatch"
    );
    let events = |outcome: &str| metric_total(&consumer_stdout, "Events", "catch-raw", outcome);
    let stored_count = samples.len() + sample_batch["Records"].as_array().unwrap().len();
    assert_eq!(
        wait_for_total(|| events("stored"), stored_count as u64).await,
        stored_count as u64
    );
    assert_eq!(
        metric_total(&consumer_stdout, "Events", "unknown", "failed"),
        1,
        "the garbage message"
    );

    let logged = ingest_stdout.lock().unwrap().join("\n");
    assert!(
        logged.contains("\"route\":\"catch-raw\""),
        "the JSON logs were captured: {logged}"
    );
    let consumed = consumer_stdout.lock().unwrap().join("\n");
    for credential in [
        "dev-bootstrap-key",
        "dev-bootstrap-bearer",
        "dev-bootstrap-cookie",
    ] {
        assert!(
            !logged.contains(credential) && !consumed.contains(credential),
            "{credential} reached a Lambda's TRACE logs"
        );
    }

    let stored = stack.event_items("catch-raw").await;
    assert_eq!(
        stored.len(),
        samples.len() + sample_batch["Records"].as_array().unwrap().len()
    );
    assert!(
        stored.iter().all(|i| i
            .get("query")
            .and_then(|q| q.as_s().ok())
            .is_none_or(|q| !q.contains("dev-bootstrap-key"))),
        "the API key is redacted before storage"
    );
    let raw_items = format!("{stored:?}");
    assert!(
        !raw_items.contains("dev-bootstrap-bearer") && !raw_items.contains("dev-bootstrap-cookie"),
        "credential headers are redacted before storage"
    );
}

/// The EMF documents among a process's stdout lines.
fn emf_documents(stdout: &Stdout) -> Vec<serde_json::Value> {
    stdout
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// The sum of one metric over the documents for a route and outcome.
fn metric_total(stdout: &Stdout, metric: &str, route: &str, outcome: &str) -> u64 {
    emf_documents(stdout)
        .iter()
        .filter(|d| d["route"] == route && d["outcome"] == outcome)
        .filter_map(|d| d[metric].as_u64())
        .sum()
}

/// Polls `total` until it reaches `expected` (the reader thread may lag the response) or 5 s pass.
async fn wait_for_total(total: impl Fn() -> u64, expected: u64) -> u64 {
    for _ in 0..50 {
        if total() >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    total()
}

/// What a route function logs when it refuses a request is what `hookcatch refusals --aws` reads
/// back: the release bootstrap's own lines, put into a log group on the loopback server. The
/// accepted request and the metric documents beside them are no refusals.
#[tokio::test]
async fn refusals_the_route_bootstrap_logs_are_read_back_from_its_log_group() {
    let stack = Stack::create(3).await;
    let secret = stack.put_secret("dev-refusals-key").await;
    let route = serde_json::json!({
        "name": "shop",
        "provider": "catch-raw",
        "auth": {"kind": "api_key", "query": "key"},
        "secrets": [format!("ssm:{secret}")],
    })
    .to_string();
    let runtime = FakeRuntime::start().await;
    let (_ingest, stdout) = spawn("Routegithub", &runtime, &stack.ingest_env(&route));
    runtime.wait_for_poll().await;
    let mut accepted = load_event("catch-raw-json.json");
    accepted["rawQueryString"] = "key=dev-refusals-key".into();
    assert_eq!(runtime.invoke(&accepted).await["statusCode"], 200);
    let mut refused = load_event("catch-raw-json.json");
    refused["rawQueryString"] = "key=wrong".into();
    refused["requestContext"]["http"]["sourceIp"] = "198.51.100.7".into();
    assert_eq!(runtime.invoke(&refused).await["statusCode"], 401);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let lines = loop {
        let lines = stdout.lock().unwrap().clone();
        // The refusal's line and, once the invocation ends, its metric document.
        if lines.iter().any(|l| l.contains("request refused"))
            && lines.iter().any(|l| l.contains("_aws"))
        {
            break lines;
        }
        assert!(Instant::now() < deadline, "no refusal logged: {lines:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    let sdk = hookcatch::aws::sdk_config(std::time::Duration::from_secs(10)).await;
    let logs = hookcatch_cli::stack::sigv4::SignedClient::new(&sdk, "logs").unwrap();
    let call = |action: &str, body: serde_json::Value| {
        let target = format!("Logs_20140328.{action}");
        let logs = &logs;
        async move {
            logs.send(
                "POST",
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", &target),
                ],
                body.to_string().as_bytes(),
            )
            .await
            .unwrap()
        }
    };
    let group = format!("/aws/lambda/{}", crate::support::unique("stack-Routeshop"));
    call("CreateLogGroup", serde_json::json!({"logGroupName": group})).await;
    call(
        "CreateLogStream",
        serde_json::json!({"logGroupName": group, "logStreamName": "2026/12/02/[$LATEST]1"}),
    )
    .await;
    let now = hookcatch::clock::SystemClock.now_ms();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::json!({"timestamp": now, "message": line}))
        .collect();
    call(
        "PutLogEvents",
        serde_json::json!({"logGroupName": group, "logStreamName": "2026/12/02/[$LATEST]1", "logEvents": events}),
    )
    .await;

    let read = |extra: &'static [&'static str]| {
        let group = group.clone();
        async move {
            let mut args = vec!["refusals", "--aws", "--log-group", &group, "--log-group"];
            // A function never invoked has no log group yet: skipped.
            args.push("/aws/lambda/never-invoked");
            args.extend(["--since", "10m", "--json"]);
            args.extend(extra);
            let (ok, stdout, stderr) = crate::support::run_hookcatch(&args, &[]).await;
            assert!(ok, "{stderr}");
            stdout
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let refusals = read(&[]).await;
    assert_eq!(refusals.len(), 1, "{refusals:?} from {lines:?}");
    assert_eq!(refusals[0]["route"], "shop");
    assert_eq!(refusals[0]["status"], 401);
    assert_eq!(refusals[0]["reason"], "api key mismatch");
    assert_eq!(refusals[0]["source_ip"], "198.51.100.7");
    assert_eq!(refusals[0]["log_group"], group.as_str());
    assert!(read(&["--route", "other"]).await.is_empty());
}

/// The deployed path end to end: the release route bootstrap queues each webhook, the release
/// consumer bootstrap stores it with the event index's keys, and `events list --aws` and `records
/// list --aws` page one route through the index, newest first, with the cursors they print and
/// `--until`; a record is listed once, with the event that last wrote it.
#[tokio::test]
async fn the_deployed_path_is_listed_by_route_and_time_through_the_event_index() {
    let stack = Stack::create(3).await;
    let ingest = FakeRuntime::start().await;
    // Any route function runs the one route binary; HOOKCATCH_ROUTE makes this one `shop`.
    let (_ingest, _) = spawn(
        "Routegithub",
        &ingest,
        &stack.ingest_env(&crate::support::shop_route("/order")),
    );
    let consumer = FakeRuntime::start().await;
    let (_consumer, _) = spawn("ConsumerFunction", &consumer, &stack.consumer_env());
    ingest.wait_for_poll().await;
    // Orders 1, 2, 3, 1 again (a newer version) and 4, each stored before the next arrives.
    let writes = [("1", 1), ("2", 1), ("3", 1), ("1", 2), ("4", 1)];
    let mut ids = Vec::new();
    let mut between = 0;
    for (n, (order, version)) in writes.into_iter().enumerate() {
        if n == 3 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            between = hookcatch::clock::SystemClock.now_ms();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mut event = load_event("catch-raw-json.json");
        event["body"] = serde_json::json!({
            "id": format!("e{n}"), "kind": "order.updated",
            "order": {"id": order, "v": version},
        })
        .to_string()
        .into();
        let response = ingest.invoke(&event).await;
        assert_eq!(response["statusCode"], 200, "{response}");
        let reply: serde_json::Value =
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        ids.push(reply["id"].as_str().unwrap().to_owned());
        stack.consume_all(&consumer, 1).await;
    }

    let table = stack.table.clone();
    let list = |what: &'static str, extra: Vec<String>| {
        let table = table.clone();
        async move {
            let mut args: Vec<String> = [what, "list", "--aws", "--table", &table]
                .into_iter()
                .map(str::to_owned)
                .chain(["--route", "shop", "--limit", "2", "--json"].map(str::to_owned))
                .collect();
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, stdout, stderr) =
                crate::support::run_hookcatch(&args, &[("RUST_LOG", "warn")]).await;
            assert!(ok, "{stderr}");
            let rows: Vec<serde_json::Value> = stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let next = stderr
                .lines()
                .find_map(|l| l.split_once(": add --after ").map(|(_, c)| c.to_owned()));
            (rows, next)
        }
    };
    let after = |cursor: Option<String>| vec!["--after".to_owned(), cursor.expect("a cursor")];
    let event_ids = |rows: &[serde_json::Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (first, next) = list("events", vec![]).await;
    assert_eq!(
        event_ids(&first),
        [ids[4].as_str(), ids[3].as_str()],
        "newest stored first"
    );
    let (second, next) = list("events", after(next)).await;
    assert_eq!(event_ids(&second), [ids[2].as_str(), ids[1].as_str()]);
    let (third, next) = list("events", after(next)).await;
    assert_eq!(event_ids(&third), [ids[0].as_str()]);
    assert_eq!(next, None);
    let until = vec![
        "--until".to_owned(),
        hookcatch_cli::term::time_text(between),
    ];
    let (before, _) = list("events", until.clone()).await;
    assert_eq!(
        event_ids(&before),
        [ids[2].as_str(), ids[1].as_str()],
        "stored before --until"
    );

    let orders = |rows: &[serde_json::Value]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["event_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (first, next) = list("records", vec![]).await;
    assert_eq!(
        orders(&first),
        [
            ("4".to_owned(), ids[4].clone()),
            ("1".to_owned(), ids[3].clone())
        ],
        "{first:?}"
    );
    assert_eq!(first[1]["data"]["v"], 2, "the record's current version");
    let (second, next) = list("records", after(next)).await;
    assert_eq!(
        orders(&second),
        [
            ("3".to_owned(), ids[2].clone()),
            ("2".to_owned(), ids[1].clone())
        ]
    );
    // Event e0 wrote order 1, which e3 wrote again since: it is not listed twice.
    let (third, next) = list("records", after(next)).await;
    assert!(third.is_empty() && next.is_none(), "{third:?} {next:?}");
    let (before, _) = list("records", until).await;
    assert_eq!(
        orders(&before),
        [
            ("3".to_owned(), ids[2].clone()),
            ("2".to_owned(), ids[1].clone())
        ],
        "order 1 was last written after --until"
    );
    let (other_type, _) = list("records", vec!["--type".into(), "customer".into()]).await;
    assert!(other_type.is_empty(), "{other_type:?}");
}

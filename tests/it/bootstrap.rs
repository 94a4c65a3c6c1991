//! The release `bootstrap` binaries that `sam build` packaged, run under a small fake of the Lambda
//! Runtime API on loopback (`fake_runtime.rs`).

use std::time::Instant;

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

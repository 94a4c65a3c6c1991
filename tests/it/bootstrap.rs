//! The release `bootstrap` binaries that `sam build` packaged, run under a small fake of the Lambda
//! Runtime API on loopback (`fake_runtime.rs`).

use std::time::Instant;

use crate::fake_runtime::{FakeRuntime, spawn};
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
    let _ingest = spawn(
        "CatchRawFunction",
        &ingest_runtime,
        &stack.ingest_env(&route),
    );
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
        let response = ingest_runtime.invoke(&event).await;
        first_response.get_or_insert(started.elapsed());
        assert_eq!(response["statusCode"], 200, "{sample}: {response}");
        let body: serde_json::Value =
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "queued");
    }
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
    let _consumer = spawn("ConsumerFunction", &consumer_runtime, &stack.consumer_env());
    let (batch, _) = stack.receive_batch(&stack.queue_url).await;
    let mut records = batch["Records"].as_array().unwrap().clone();
    while records.len() < samples.len() {
        let (more, _) = stack.receive_batch(&stack.queue_url).await;
        records.extend(more["Records"].as_array().unwrap().iter().cloned());
    }
    let response = consumer_runtime
        .invoke(&serde_json::json!({ "Records": records }))
        .await;
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "{response}"
    );
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
}

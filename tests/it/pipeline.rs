//! The whole pipeline with the real handlers and SDK clients: route → SQS → consumer → DynamoDB.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hookcatch::model::envelope::{BodyLocation, Envelope};
use hookcatch::ports::{EventStore, StoredBody};

use crate::support::{Stack, function_url_request, reply_json};

/// catch-raw behind an API key from SSM, with a dedup header and an order record rule.
fn orders_route(secret_parameter: &str) -> String {
    serde_json::json!({
        "name": "orders",
        "provider": "catch-raw",
        "auth": {"kind": "api_key", "query": "zapikey", "header": "x-api-key"},
        "secrets": [format!("ssm:{secret_parameter}")],
        "dedup": "header:x-delivery-id",
        "event_type": "/event",
        "records": [{"type": "order", "id": "/order/id", "version": "/order/updated_at", "data": "/order"}],
    })
    .to_string()
}

fn order_request(delivery: &str, key: &str, body: &str) -> hookcatch_ingest::FunctionUrlEvent {
    let (delivery, key, body) = (delivery.to_owned(), key.to_owned(), body.to_owned());
    function_url_request("catch-raw-json.json", move |event| {
        event["rawQueryString"] = format!("source=zapier&zapikey={key}").into();
        event["headers"]["x-delivery-id"] = delivery.into();
        event["body"] = body.into();
    })
}

#[tokio::test]
async fn accepted_event_becomes_event_item_and_record() {
    let stack = Stack::create(3).await;
    let secret = stack.put_secret("dev-key-orders").await;
    let ingestor = stack.ingestor(&orders_route(&secret)).await;
    let body = r#"{"event":"order.updated","order":{"id":"1001","updated_at":"2026-11-22T19:03:58Z","total":"42.50"}}"#;

    let response =
        hookcatch_ingest::handle(&ingestor, order_request("d-1", "dev-key-orders", body))
            .await
            .unwrap();
    assert_eq!(response.status_code, 200);
    let reply = reply_json(&response);
    assert_eq!(reply["status"], "queued");
    let event_id = reply["id"].as_str().unwrap().to_owned();

    let consumer = stack.consumer().await;
    let (received, failed) = stack.consume_once(&consumer).await;
    assert_eq!((received, failed.len()), (1, 0));

    let event = stack
        .store()
        .get_event("orders", "d-1")
        .await
        .unwrap()
        .expect("event item");
    assert_eq!(event.event_id, event_id);
    assert_eq!(event.event_type.as_deref(), Some("order.updated"));
    assert_eq!(event.body, StoredBody::Inline(Bytes::from(body.to_owned())));
    assert_eq!(
        event.query, "source=zapier&zapikey=REDACTED",
        "the API key is never stored"
    );
    assert_eq!(event.source_ip.as_deref(), Some("203.0.113.10"));
    assert_eq!(event.records, ["order/1001"]);
    assert!(event.expires_at.is_some());

    let record = stack
        .store()
        .get_record("orders", "order", "1001")
        .await
        .unwrap()
        .expect("record");
    assert_eq!(record.data["total"], "42.50");
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 0);
}

#[tokio::test]
async fn wrong_key_is_401_and_nothing_is_queued() {
    let stack = Stack::create(3).await;
    let secret = stack.put_secret("dev-key-orders").await;
    let ingestor = stack.ingestor(&orders_route(&secret)).await;
    let response = hookcatch_ingest::handle(&ingestor, order_request("d-1", "wrong", "{}"))
        .await
        .unwrap();
    assert_eq!(response.status_code, 401);
    assert_eq!(
        reply_json(&response),
        serde_json::json!({"error": "unauthorized"})
    );
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 0);
}

#[tokio::test]
async fn duplicate_delivery_writes_one_event_item() {
    let stack = Stack::create(3).await;
    let secret = stack.put_secret("k").await;
    let ingestor = stack.ingestor(&orders_route(&secret)).await;
    let consumer = stack.consumer().await;
    let body = r#"{"order":{"id":"7","updated_at":1}}"#;
    let first = hookcatch_ingest::handle(&ingestor, order_request("same-delivery", "k", body))
        .await
        .unwrap();
    let first_id = reply_json(&first)["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.consume_once(&consumer).await, (1, vec![]));

    // Two retries of the same delivery, processed together: acknowledged, never a second write.
    for _ in 0..2 {
        let retry = hookcatch_ingest::handle(&ingestor, order_request("same-delivery", "k", body))
            .await
            .unwrap();
        assert_eq!(
            retry.status_code, 200,
            "a retry is acknowledged like the first delivery"
        );
    }
    let mut processed = 0;
    while processed < 2 {
        let (received, failed) = stack.consume_once(&consumer).await;
        assert!(failed.is_empty());
        processed += received;
    }
    let items = stack.event_items("orders").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["id"].as_s().unwrap(),
        &first_id,
        "the first delivery's event is kept, not overwritten by a retry"
    );
}

#[tokio::test]
async fn older_version_after_newer_leaves_record_unchanged() {
    let stack = Stack::create(3).await;
    let secret = stack.put_secret("k").await;
    let ingestor = stack.ingestor(&orders_route(&secret)).await;
    let consumer = stack.consumer().await;
    let newer = r#"{"order":{"id":"7","updated_at":"2026-11-22T12:00:00Z","state":"shipped"}}"#;
    let older = r#"{"order":{"id":"7","updated_at":"2026-11-22T11:00:00Z","state":"paid"}}"#;
    for (delivery, body) in [("d-new", newer), ("d-old", older)] {
        let response = hookcatch_ingest::handle(&ingestor, order_request(delivery, "k", body))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200);
        // One at a time, so the newer one is certainly processed first.
        let (received, failed) = stack.consume_once(&consumer).await;
        assert_eq!((received, failed.len()), (1, 0));
    }
    let record = stack
        .store()
        .get_record("orders", "order", "7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.data["state"], "shipped");
    assert_eq!(
        stack.event_items("orders").await.len(),
        2,
        "both events stay in the log"
    );
}

#[tokio::test]
async fn garbage_message_is_reported_failed_and_reaches_the_dlq() {
    let stack = Stack::create(1).await;
    let ingestor = stack
        .ingestor(r#"{"name":"raw","provider":"catch-raw","open":true}"#)
        .await;
    let response = hookcatch_ingest::handle(
        &ingestor,
        function_url_request("catch-raw-json.json", |_| {}),
    )
    .await
    .unwrap();
    assert_eq!(response.status_code, 200);
    stack
        .sqs
        .send_message()
        .queue_url(&stack.queue_url)
        .message_body("this is not an envelope")
        .send()
        .await
        .unwrap();

    let consumer = stack.consumer().await;
    let mut received = 0;
    let mut failed = Vec::new();
    while received < 2 {
        let (n, f) = stack.consume_once(&consumer).await;
        received += n;
        failed.extend(f);
    }
    assert_eq!(failed.len(), 1, "only the garbage message fails");
    assert_eq!(stack.event_items("raw").await.len(), 1);

    // Received once already (the redrive limit): the next receive moves it to the DLQ.
    let (event, _) = stack.receive_batch(&stack.queue_url).await;
    assert_eq!(event["Records"].as_array().map(Vec::len), Some(0));
    let (dead, _) = stack.receive_batch(&stack.dlq_url).await;
    assert_eq!(dead["Records"][0]["body"], "this is not an envelope");
}

#[tokio::test]
async fn unreachable_queue_answers_503_and_acknowledges_nothing() {
    let stack = Stack::create(3).await;
    // A port nothing listens on: the real SQS client gets connection refused on every attempt.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let sdk = hookcatch::aws::sdk_config(Duration::from_millis(1500)).await;
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(dead_url)
            .build(),
    );
    let config: hookcatch::RouteConfig =
        serde_json::from_str(r#"{"name":"raw","provider":"catch-raw","open":true}"#).unwrap();
    let ingestor = hookcatch::Ingestor::new(
        &hookcatch::RouteSettings::new(config, vec![]),
        Arc::new(hookcatch::aws::SqsQueue::new(client, &stack.queue_url)),
        None,
        Arc::new(hookcatch::clock::SystemClock),
        Duration::from_millis(1500),
    );
    let started = std::time::Instant::now();
    let response = hookcatch_ingest::handle(
        &ingestor,
        function_url_request("catch-raw-json.json", |_| {}),
    )
    .await
    .unwrap();
    assert_eq!(response.status_code, 503);
    assert_eq!(reply_json(&response)["error"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answers within Slack's 3 s deadline"
    );
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 0);
}

#[tokio::test]
async fn large_body_travels_by_claim_check_and_is_stored_whole() {
    let stack = Stack::create(3).await;
    let ingestor = stack
        .ingestor(r#"{"name":"raw","provider":"catch-raw","open":true}"#)
        .await;
    // Over the 1 MiB message limit once base64-encoded, under the 6 MB Function URL cap.
    let body: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let request = function_url_request("catch-raw-json.json", move |event| {
        event["headers"]["content-type"] = "application/octet-stream".into();
        event["body"] = encoded.into();
        event["isBase64Encoded"] = true.into();
    });
    let response = hookcatch_ingest::handle(&ingestor, request).await.unwrap();
    assert_eq!(response.status_code, 200);

    let (event, _) = stack.receive_batch(&stack.queue_url).await;
    let message = event["Records"][0]["body"].as_str().unwrap();
    let envelope = Envelope::from_message(message).unwrap();
    assert!(
        matches!(envelope.body, BodyLocation::External { .. }),
        "body went to S3"
    );
    assert!(
        message.len() < 4096,
        "the message carries a reference, not the body"
    );

    let consumer = stack.consumer().await;
    let (_, failed) = stack.consume_once(&consumer).await;
    assert!(failed.is_empty());
    let items = stack.event_items("raw").await;
    assert_eq!(items.len(), 1);
    let bucket = items[0]["body_bucket"].as_s().unwrap();
    let key = items[0]["body_key"].as_s().unwrap();
    let object = stack
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(stored.as_ref(), body.as_slice());
}

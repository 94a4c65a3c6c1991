//! Faults between hookcatch and AWS, injected by a proxy in front of moto. Each test ends with the
//! same check: every acknowledged webhook is still queued or stored, and stored once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookcatch::model::envelope::Envelope;
use hookcatch::ports::EventStore;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::support::{Stack, function_url_request, reply_json};

const ORDERS: &str = r#"{"name":"orders","provider":"catch-raw","open":true,"dedup":"header:x-delivery-id",
    "event_type":"/event",
    "records":[{"type":"order","id":"/order/id","version":"/order/updated_at","data":"/order"}]}"#;

fn order_request(
    delivery: &str,
    order: u32,
    updated_at: &str,
) -> hookcatch_ingest::FunctionUrlEvent {
    let delivery = delivery.to_owned();
    let body = serde_json::json!({
        "event": "order.updated",
        "order": {"id": order.to_string(), "updated_at": updated_at, "total": format!("{order}.00")},
    })
    .to_string();
    function_url_request("catch-raw-json.json", move |event| {
        event["rawQueryString"] = "".into();
        event["headers"]["x-delivery-id"] = delivery.into();
        event["body"] = body.into();
    })
}

/// Acknowledged deliveries d-1..=d-`count` of orders 1001.., all at the same version.
async fn queue_orders(ingestor: &hookcatch::Ingestor, count: u32) {
    for n in 1..=count {
        let request = order_request(&format!("d-{n}"), 1000 + n, "2026-11-23T06:00:00Z");
        let response = hookcatch_ingest::handle(ingestor, request).await.unwrap();
        assert_eq!(response.status_code, 200);
    }
}

/// `count` events with distinct dedup keys and `count` records: a redelivery wrote nothing twice.
async fn assert_each_order_stored_once(store: &hookcatch::aws::DynamoStore, count: usize) {
    let events = store.scan_events(Some("orders"), None).await.unwrap();
    let keys: BTreeSet<&str> = events.iter().map(|e| e.dedup_key.as_str()).collect();
    assert_eq!(
        (events.len(), keys.len()),
        (count, count),
        "each event once"
    );
    let records = store.scan_records(Some("orders"), None).await.unwrap();
    assert_eq!(records.len(), count);
}

/// A route Lambda's ingest core whose SQS client goes through `proxy`.
async fn ingestor_through(
    proxy: &FaultProxy,
    stack: &Stack,
    timeout: Duration,
) -> hookcatch::Ingestor {
    let sdk = hookcatch::aws::sdk_config(timeout).await;
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(&proxy.url)
            .build(),
    );
    hookcatch::Ingestor::new(
        &hookcatch::RouteSettings::new(serde_json::from_str(ORDERS).unwrap(), vec![]),
        Arc::new(hookcatch::aws::SqsQueue::new(client, &stack.queue_url)),
        None,
        Arc::new(hookcatch::clock::SystemClock),
        timeout,
    )
}

/// A consumer whose DynamoDB client goes through `proxy`.
async fn consumer_through(proxy: &FaultProxy, stack: &Stack) -> hookcatch::Consumer {
    let sdk = hookcatch::aws::sdk_config(Duration::from_secs(3)).await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(&proxy.url)
            .build(),
    );
    hookcatch::Consumer::new(
        Arc::new(hookcatch::aws::DynamoStore::new(client, &stack.table)),
        None,
        Arc::new(hookcatch::clock::SystemClock),
        0,
        10,
    )
}

/// Sends one request; returns the event id when it was acknowledged, and asserts that anything
/// else is a 503 (never a 2xx without the queue, never a 4xx for the sender's valid request).
async fn send(
    ingestor: &hookcatch::Ingestor,
    request: hookcatch_ingest::FunctionUrlEvent,
) -> Option<String> {
    let response = hookcatch_ingest::handle(ingestor, request).await.unwrap();
    match response.status_code {
        200 => Some(reply_json(&response)["id"].as_str().unwrap().to_owned()),
        503 => {
            assert_eq!(reply_json(&response)["error"], "unavailable");
            None
        }
        other => panic!("a valid request got {other}"),
    }
}

/// Every envelope id on the queue (each received once, with a long visibility timeout).
async fn queued_ids(stack: &Stack) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let output = stack
            .sqs
            .receive_message()
            .queue_url(&stack.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .unwrap();
        if output.messages().is_empty() {
            return ids;
        }
        for message in output.messages() {
            ids.push(Envelope::from_message(message.body().unwrap()).unwrap().id);
        }
    }
}

#[tokio::test]
async fn queue_down_stalled_or_throttling_is_503_and_recovery_loses_nothing_acknowledged() {
    let stack = Stack::create(3).await;
    let proxy = FaultProxy::start().await;
    let ingestor = ingestor_through(&proxy, &stack, Duration::from_millis(2000)).await;
    let mut acknowledged = Vec::new();
    let mut delivery = 0;
    let mut next = || {
        delivery += 1;
        order_request(
            &format!("d-{delivery}"),
            1000 + delivery,
            "2026-11-23T06:00:00Z",
        )
    };

    for fault in [Fault::Down, Fault::Stall, Fault::Throttle] {
        proxy.set(Some(fault));
        for _ in 0..3 {
            let started = Instant::now();
            assert_eq!(send(&ingestor, next()).await, None, "{fault:?} is a 503");
            assert!(
                started.elapsed() < Duration::from_millis(2900),
                "{fault:?}: answered within Slack's 3 s deadline, took {:?}",
                started.elapsed()
            );
        }
        assert_eq!(stack.queue_depth(&stack.queue_url).await, 0, "{fault:?}");
    }
    let (_, injected) = proxy.counts();
    assert!(
        injected >= 9,
        "the SDK met the faults ({injected} injected)"
    );

    proxy.set(None);
    for _ in 0..3 {
        acknowledged.push(send(&ingestor, next()).await.expect("recovered"));
    }

    // Under concurrent load: a wave with the queue up, a wave that starts while it is down and
    // sees it come back, a wave after.
    for wave in 0..3 {
        let before = proxy.counts().1;
        if wave == 1 {
            proxy.set(Some(Fault::Down));
        }
        let load = futures::future::join_all((0..16).map(|_| send(&ingestor, next())));
        let recovery = async {
            if wave == 1 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                proxy.set(None);
            }
        };
        let (results, ()) = tokio::join!(load, recovery);
        if wave == 1 {
            assert!(proxy.counts().1 > before, "the wave met the outage");
        }
        acknowledged.extend(results.into_iter().flatten());
    }
    acknowledged.push(send(&ingestor, next()).await.expect("up again"));

    // At least once: an attempt that reached SQS but timed out on its way back is a 503 (the
    // sender retries and the consumer dedups), so the queue may hold more than was acknowledged,
    // never less.
    let queued: BTreeSet<String> = queued_ids(&stack).await.into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !queued.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not queued: {lost:?}");
}

#[tokio::test]
async fn dynamodb_throttling_mid_batch_retries_only_the_affected_messages_and_writes_once() {
    let stack = Stack::create(5).await;
    let ingestor = stack.ingestor(ORDERS).await;
    queue_orders(&ingestor, 8).await;
    // A redelivered webhook (same delivery id) and an older copy of order 1002: both meet real
    // conditional-check failures in the same batch, which are outcomes, not errors.
    hookcatch_ingest::handle(
        &ingestor,
        order_request("d-3", 1003, "2026-11-23T06:00:00Z"),
    )
    .await
    .unwrap();
    hookcatch_ingest::handle(
        &ingestor,
        order_request("d-9", 1002, "2026-11-22T06:00:00Z"),
    )
    .await
    .unwrap();

    let proxy = FaultProxy::start().await;
    let consumer = consumer_through(&proxy, &stack).await;
    // d-5 fails at its record write, d-7 after its record, at the event write.
    proxy.when_body_contains("\"r#orders#order#1005\"", Fault::Throttle);
    proxy.when_body_contains("\"e#orders#d-7\"", Fault::Throttle);
    let (received, failed) = stack.consume_once(&consumer).await;
    assert_eq!(received, 10);
    assert_eq!(failed.len(), 2, "only d-5 and d-7 are retried: {failed:?}");
    let (_, injected) = proxy.counts();
    assert!(
        injected >= 4,
        "the SDK retried each throttled write ({injected})"
    );
    let store = stack.store();
    let events = store.scan_events(Some("orders"), None).await.unwrap();
    let mut stored: Vec<&str> = events.iter().map(|e| e.dedup_key.as_str()).collect();
    stored.sort_unstable();
    assert_eq!(
        stored,
        ["d-1", "d-2", "d-3", "d-4", "d-6", "d-8", "d-9"],
        "one event each"
    );
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 2);

    proxy.clear();
    let (received, failed) = stack.consume_once(&consumer).await;
    assert_eq!((received, failed.len()), (2, 0));
    let events = store.scan_events(Some("orders"), None).await.unwrap();
    assert_eq!(events.len(), 9, "nine deliveries, nine events, none twice");
    let records = store
        .scan_records(Some("orders"), Some("order"))
        .await
        .unwrap();
    assert_eq!(records.len(), 8);
    let order_1002 = store
        .get_record("orders", "order", "1002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        order_1002.data["updated_at"], "2026-11-23T06:00:00Z",
        "the older copy did not regress it"
    );
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 0);
}

#[tokio::test]
async fn consumer_killed_mid_batch_redelivery_stores_each_event_once() {
    let stack = Stack::create(5).await;
    let ingestor = stack.ingestor(ORDERS).await;
    queue_orders(&ingestor, 10).await;
    let (event, _) = stack.receive_batch(&stack.queue_url).await;
    let batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
    assert_eq!(batch.records.len(), 10);

    // The process dies while d-4's event write hangs: some messages are written, some are not,
    // and nothing is deleted from the queue. Dropping the handler's future is that crash, as seen
    // from DynamoDB and SQS.
    let proxy = FaultProxy::start().await;
    proxy.when_body_contains("\"e#orders#d-4\"", Fault::Stall);
    let crashed = consumer_through(&proxy, &stack).await;
    let outcome = tokio::time::timeout(
        Duration::from_millis(1500),
        hookcatch_consumer::handle(
            &crashed,
            lambda_runtime::LambdaEvent::new(batch.clone(), lambda_runtime::Context::default()),
        ),
    )
    .await;
    assert!(
        outcome.is_err(),
        "the batch was still in progress when killed"
    );
    let store = stack.store();
    let before = store.scan_events(Some("orders"), None).await.unwrap().len();
    assert!(
        before < 10,
        "the crash left the batch half done ({before} stored)"
    );

    // SQS redelivers the whole batch to a fresh process.
    let fresh = stack.consumer().await;
    let response = hookcatch_consumer::handle(
        &fresh,
        lambda_runtime::LambdaEvent::new(batch, lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_each_order_stored_once(&store, 10).await;
}

#[tokio::test]
async fn consumer_bootstrap_killed_mid_batch_redelivery_stores_each_event_once() {
    use crate::fake_runtime::{FakeRuntime, spawn};

    let stack = Stack::create(5).await;
    let ingestor = stack.ingestor(ORDERS).await;
    queue_orders(&ingestor, 10).await;
    let (batch, _) = stack.receive_batch(&stack.queue_url).await;
    assert_eq!(batch["Records"].as_array().map(Vec::len), Some(10));

    // The release consumer, its DynamoDB behind the proxy, where d-4's event write hangs.
    let proxy = FaultProxy::start().await;
    proxy.when_body_contains("\"e#orders#d-4\"", Fault::Stall);
    let mut env = stack.consumer_env();
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    let runtime = Arc::new(FakeRuntime::start().await);
    let (mut doomed, _stdout) = spawn("ConsumerFunction", &runtime, &env);
    runtime.wait_for_poll().await;
    let in_flight = tokio::spawn({
        let (runtime, batch) = (runtime.clone(), batch.clone());
        async move { runtime.try_invoke(&batch).await }
    });
    let store = stack.store();
    let mut stored = 0;
    for _ in 0..100 {
        stored = store.scan_events(Some("orders"), None).await.unwrap().len();
        if stored == 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored, 9, "all but d-4 written before the kill");
    doomed.kill().await.unwrap(); // SIGKILL, mid-batch: no response, nothing deleted
    in_flight.abort();

    // SQS redelivers the whole batch to a new instance.
    let runtime = FakeRuntime::start().await;
    let (_fresh, _stdout) = spawn("ConsumerFunction", &runtime, &stack.consumer_env());
    let response = runtime.invoke(&batch).await;
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "{response}"
    );
    assert_each_order_stored_once(&store, 10).await;
}

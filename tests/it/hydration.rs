//! Zoho CRM hydration against a fake Zoho on loopback: full records, coalesced fetches, one token
//! refresh per expiry across consumers, faults retried without losing anything, tombstones, and
//! records that never regress. Token caches are the real ones: the local store, and DynamoDB on moto.

use std::sync::Arc;
use std::time::Duration;

use hookcatch::config::HydrateConfig;
use hookcatch::consume::Message;
use hookcatch::model::envelope::{BodyLocation, SCHEMA_VERSION};
use hookcatch::model::request::sha256_hex;
use hookcatch::ports::{EventStore, TokenCache};
use hookcatch::secrets::{Secret, SecretRef};
use hookcatch::{Consumer, Envelope, ProviderKind};
use hookcatch_cli::store::LocalStore;
use serde_json::json;

use crate::fake_zoho::FakeZoho;
use crate::support::{Stack, unique};

const ROUTE: &str = "zoho-crm";

pub fn notification(module: &str, operation: &str, ids: &[String], server_time: i64) -> Message {
    notification_received(module, operation, ids, server_time, server_time)
}

/// A notification whose (unsigned) `server_time` differs from when it was received.
fn notification_received(
    module: &str,
    operation: &str,
    ids: &[String],
    server_time: i64,
    received_at_ms: i64,
) -> Message {
    let body = json!({
        "server_time": server_time, "query_params": {}, "module": module,
        "resource_uri": format!("https://www.zohoapis.com/crm/v2/{module}"),
        "ids": ids, "affected_fields": [], "operation": operation,
        "channel_id": "1000000068001", "token": "TOKEN_FOR_VERIFICATION_OF_1000000068001"
    })
    .to_string();
    queued(ROUTE, ProviderKind::ZohoCrm, true, body, received_at_ms)
}

/// A queued message as the route's ingest would write it: `body` as JSON, marked id-only when the
/// verifier would mark it so.
pub fn queued(
    route: &str,
    provider: ProviderKind,
    id_only: bool,
    body: String,
    received_at_ms: i64,
) -> Message {
    let envelope = Envelope {
        v: SCHEMA_VERSION,
        id: uuid::Uuid::now_v7().to_string(),
        route: route.into(),
        provider: provider.as_str().into(),
        received_at_ms,
        delivery_id: None,
        test_ping: false,
        replay: false,
        replaces: None,
        hydrate: id_only.then(|| provider.as_str().into()),
        rules: hookcatch::providers::default_rules(provider).into(),
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        source_ip: None,
        body_len: body.len() as u64,
        body_sha256: sha256_hex(body.as_bytes()),
        body: BodyLocation::Inline(body.into()),
    };
    Message {
        id: envelope.id.clone(),
        body: envelope.to_message(),
        ..Message::default()
    }
}

pub fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:04}")).collect()
}

pub fn local_store() -> LocalStore {
    let dir = std::env::temp_dir().join(unique("hookcatch-hydration"));
    LocalStore::open(&dir).unwrap()
}

/// A consumer process: its own hydrator (own in-memory token), sharing `store`'s token cache.
pub fn consumer(fake: &FakeZoho, store: &LocalStore, fields: bool) -> Consumer {
    consumer_with(&fake.hydrate_config(fields), store)
}

fn consumer_with(config: &serde_json::Value, store: &LocalStore) -> Consumer {
    consumer_for(ROUTE, config, store)
}

/// A consumer process hydrating `route` with `config` (literal secrets), sharing `store`'s token
/// cache with every other consumer of that store.
pub fn consumer_for(route: &str, config: &serde_json::Value, store: &LocalStore) -> Consumer {
    let config: HydrateConfig = serde_json::from_value(config.clone()).unwrap();
    config.validate(None).unwrap();
    let secrets: Vec<Secret> = config
        .secret_refs()
        .into_iter()
        .map(|r| match r {
            SecretRef::Literal(value) => Secret::new(value.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let clock = Arc::new(hookcatch::clock::SystemClock);
    let hydrator = hookcatch::hydrate::build(
        route,
        &config,
        &secrets,
        Arc::new(store.clone()),
        clock.clone(),
    );
    Consumer::new(Arc::new(store.clone()), None, clock, 0, 10).with_hydrator(route, hydrator)
}

pub const T: i64 = 1_795_374_237_000;

/// The fake's hydration config as the consumer Lambda gets it: its secrets in SSM.
async fn deployed_hydrate_config(fake: &FakeZoho, stack: &Stack) -> serde_json::Value {
    let mut hydrate = fake.hydrate_config(true);
    for (key, value) in [
        ("client_secret", crate::fake_zoho::CLIENT_SECRET),
        ("refresh_token", crate::fake_zoho::REFRESH_TOKEN),
    ] {
        hydrate[key] = json!(format!("ssm:{}", stack.put_secret(value).await));
    }
    hydrate
}

#[tokio::test]
async fn a_batch_is_fetched_in_few_calls_with_full_records() {
    let fake = FakeZoho::start().await;
    for id in ids("L", 0..60) {
        fake.put(
            "Leads",
            &id,
            &format!("Lead {id}"),
            "2026-11-22T19:00:00+00:00",
        );
    }
    fake.put("Contacts", "C0001", "Ada", "2026-11-22T19:00:00+00:00");
    let store = local_store();
    let failures = consumer(&fake, &store, true)
        .process_batch_detailed(vec![
            notification("Leads", "insert", &ids("L", 0..30), T),
            notification("Leads", "update", &ids("L", 20..60), T + 1),
            notification("Contacts", "insert", &["C0001".to_owned()], T + 2),
            notification("Leads", "update", &ids("L", 5..6), T + 3),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let calls = fake.calls();
    let leads: Vec<_> = calls.iter().filter(|(m, _)| m == "Leads").collect();
    assert_eq!(leads.len(), 2, "60 distinct ids: two calls of at most 50");
    assert_eq!(
        leads.iter().map(|(_, ids)| ids.len()).sum::<usize>(),
        60,
        "each id once"
    );
    assert_eq!(calls.len(), 3);
    assert_eq!(fake.tokens_issued(), 1);
    let lead = store
        .get_record(ROUTE, "Leads", "L0005")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead.data["Email"], "L0005@example.com");
    assert_eq!(lead.data["Owner"]["name"], "Patricia Boyle");
    assert!(!lead.deleted);
    let contact = store
        .get_record(ROUTE, "Contacts", "C0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.data["Last_Name"], "Ada");
    assert_eq!(
        store
            .list_events(None, None, None, 100)
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn a_notification_with_too_many_ids_fails_without_calls_and_spares_the_batch() {
    let fake = FakeZoho::start().await;
    fake.put("Leads", "L0001", "Lead", "2026-11-22T19:00:00+00:00");
    let store = local_store();
    let max = hookcatch::hydrate::ZOHO_MAX_IDS_PER_NOTIFICATION;
    let huge = notification("Leads", "update", &ids("H", 0..max + 1), T);
    let huge_id = huge.id.clone();
    let failures = consumer(&fake, &store, true)
        .process_batch_detailed(vec![
            huge,
            notification("Leads", "update", &["L0001".to_owned()], T + 1),
        ])
        .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].id, huge_id);
    assert!(
        !failures[0].retryable,
        "it waits in the DLQ, not in a retry loop"
    );
    assert!(
        failures[0].error.contains("1001 ids"),
        "{}",
        failures[0].error
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "only the normal notification was fetched");
    assert_eq!(calls[0].1, ["L0001"]);
    assert!(
        store
            .get_record(ROUTE, "Leads", "L0001")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn without_fields_each_record_is_one_call_and_a_vanished_one_is_a_tombstone() {
    let fake = FakeZoho::start().await;
    fake.put("Leads", "L1", "One", "2026-11-22T19:00:00+00:00");
    fake.put("Leads", "L2", "Two", "2026-11-22T19:00:00+00:00");
    let store = local_store();
    let failures = consumer(&fake, &store, false)
        .process_batch_detailed(vec![
            notification("Leads", "update", &["L1".into(), "L2".into()], T),
            notification("Leads", "update", &["L2".into(), "L404".into()], T + 1),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(fake.calls().len(), 3, "L1, L2 and L404 once each");
    let gone = store
        .get_record(ROUTE, "Leads", "L404")
        .await
        .unwrap()
        .unwrap();
    assert!(gone.deleted && gone.data.is_null());
    let two = store
        .get_record(ROUTE, "Leads", "L2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two.data["Last_Name"], "Two");
}

#[tokio::test]
async fn calls_in_flight_stay_within_concurrency_per_consumer() {
    let fake = FakeZoho::start().await;
    let lead_ids = ids("L", 0..16);
    for id in &lead_ids {
        fake.put("Leads", id, "Lead", "2026-11-22T19:00:00+00:00");
    }
    fake.state.lock().unwrap().delay = Duration::from_millis(150);
    let store = local_store();
    // Two consumers (the Lambda's `ConsumerMaximumConcurrency` = 2), `concurrency` 3 each: Zoho
    // sees at most 6 calls at once, however many records a batch names.
    let mut config = fake.hydrate_config(false);
    config["concurrency"] = json!(3);
    let consumers = [
        consumer_with(&config, &store),
        consumer_with(&config, &store),
    ];
    let batches = [
        vec![notification("Leads", "update", &lead_ids[..8], T)],
        vec![notification("Leads", "update", &lead_ids[8..], T)],
    ];
    let results = futures::future::join_all(
        consumers
            .iter()
            .zip(batches)
            .map(|(c, batch)| c.process_batch_detailed(batch)),
    )
    .await;
    assert!(results.iter().all(Vec::is_empty), "{results:?}");
    let state = fake.state.lock().unwrap();
    assert_eq!(state.calls.len(), 16, "one call per record");
    assert_eq!(state.max_in_flight, 6, "3 per consumer, 2 consumers");
}

#[tokio::test]
async fn one_token_refresh_per_expiry_across_concurrent_consumers() {
    let fake = FakeZoho::start().await;
    for id in ids("L", 0..30) {
        fake.put("Leads", &id, "x", "2026-11-22T19:00:00+00:00");
    }
    let store = local_store();
    let consumers: Vec<Consumer> = (0..4).map(|_| consumer(&fake, &store, true)).collect();
    let run = |round: i64| {
        futures::future::join_all(consumers.iter().enumerate().map(move |(i, c)| {
            let ids = ids("L", i * 5..i * 5 + 5);
            async move {
                c.process_batch_detailed(vec![notification(
                    "Leads",
                    "update",
                    &ids,
                    T + round * 10 + i as i64,
                )])
                .await
            }
        }))
    };
    let failures = run(0).await;
    assert!(failures.iter().all(Vec::is_empty), "{failures:?}");
    assert_eq!(fake.tokens_issued(), 1, "cold consumers share one refresh");
    // Every token dies mid-flight: each consumer gets a 401, and still only one refresh happens.
    fake.expire_tokens();
    let failures = run(1).await;
    assert!(failures.iter().all(Vec::is_empty), "{failures:?}");
    assert_eq!(
        fake.tokens_issued(),
        2,
        "one refresh per expiry, not per consumer"
    );
    let cached = store
        .load_token(&format!("zoho-crm#{ROUTE}#{}", crate::fake_zoho::CLIENT_ID))
        .await
        .unwrap();
    let cached = cached.expect("the token is shared through the local store");
    assert!(
        cached.access_token.starts_with("sealed1.") && !cached.access_token.contains("1000.access"),
        "the shared access token is sealed at rest"
    );
}

#[tokio::test]
async fn rate_limits_errors_and_timeouts_fail_only_their_messages_then_succeed() {
    let fake = FakeZoho::start().await;
    fake.put("Leads", "L1", "Lead", "2026-11-22T19:00:00+00:00");
    fake.put("Contacts", "C1", "Contact", "2026-11-22T19:00:00+00:00");
    let store = local_store();
    let consumer = consumer(&fake, &store, true);
    let leads = notification("Leads", "update", &["L1".into()], T);
    let contacts = notification("Contacts", "update", &["C1".into()], T);
    for status in [429, 500, 503] {
        fake.fail_next("Leads", &[status]);
        let failures = consumer
            .process_batch_detailed(vec![leads.clone(), contacts.clone()])
            .await;
        assert_eq!(failures.len(), 1, "{status}: only the Leads message fails");
        assert_eq!(failures[0].id, leads.id);
        assert!(failures[0].retryable, "{status} is retried later");
        assert!(
            store
                .get_record(ROUTE, "Leads", "L1")
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        store
            .get_record(ROUTE, "Contacts", "C1")
            .await
            .unwrap()
            .is_some()
    );
    // A slow API times out (2 s in the config): retryable too.
    fake.state.lock().unwrap().delay = Duration::from_millis(2500);
    let failures = consumer.process_batch_detailed(vec![leads.clone()]).await;
    assert!(failures.len() == 1 && failures[0].retryable, "{failures:?}");
    fake.state.lock().unwrap().delay = Duration::ZERO;
    // The redelivery succeeds: nothing was lost.
    assert!(
        consumer
            .process_batch_detailed(vec![leads])
            .await
            .is_empty()
    );
    let lead = store
        .get_record(ROUTE, "Leads", "L1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead.data["Last_Name"], "Lead");
}

#[tokio::test]
async fn deletes_leave_tombstones_without_calls_and_records_never_regress() {
    let fake = FakeZoho::start().await;
    fake.put("Leads", "L1", "Newer", "2026-11-22T19:05:00+00:00");
    let store = local_store();
    let consumer = consumer(&fake, &store, true);
    assert!(
        consumer
            .process_batch_detailed(vec![notification("Leads", "update", &["L1".into()], T)])
            .await
            .is_empty()
    );
    // A late notification whose fetch sees an older copy (a lagging replica) changes nothing.
    fake.put("Leads", "L1", "Older", "2026-11-22T19:01:00+00:00");
    assert!(
        consumer
            .process_batch_detailed(vec![notification("Leads", "update", &["L1".into()], T + 1)])
            .await
            .is_empty()
    );
    let kept = store
        .get_record(ROUTE, "Leads", "L1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.data["Last_Name"], "Newer");

    let calls_before = fake.calls().len();
    let deleted_at = T + 600_000; // after the record's last Modified_Time
    assert!(
        consumer
            .process_batch_detailed(vec![notification(
                "Leads",
                "delete",
                &["L1".into(), "L2".into()],
                deleted_at
            )])
            .await
            .is_empty()
    );
    assert_eq!(fake.calls().len(), calls_before, "a delete needs no fetch");
    let tombstone = store
        .get_record(ROUTE, "Leads", "L1")
        .await
        .unwrap()
        .unwrap();
    assert!(tombstone.deleted);
    assert!(
        store
            .get_record(ROUTE, "Leads", "L2")
            .await
            .unwrap()
            .unwrap()
            .deleted
    );
}

#[tokio::test]
async fn a_module_or_id_that_could_climb_the_path_is_never_fetched() {
    let fake = FakeZoho::start().await;
    let store = local_store();
    let consumer = consumer(&fake, &store, false);
    for (module, id) in [("..", "L1"), ("Leads", ".."), ("Leads/../settings", "L1")] {
        let failures = consumer
            .process_batch_detailed(vec![notification(module, "update", &[id.into()], T)])
            .await;
        assert!(
            failures.len() == 1 && !failures[0].retryable,
            "{module} {id}: {failures:?}"
        );
    }
    assert!(
        fake.calls().is_empty(),
        "nothing was fetched: {:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn a_forged_delete_from_the_future_cannot_outrank_the_next_edit() {
    let fake = FakeZoho::start().await;
    fake.put("Leads", "L1", "Before", "2026-11-22T19:00:00+00:00");
    let store = local_store();
    let consumer = consumer(&fake, &store, true);
    let update = |at| notification("Leads", "update", &["L1".into()], at);
    assert!(
        consumer
            .process_batch_detailed(vec![update(T)])
            .await
            .is_empty()
    );
    // Anyone holding the channel token can post a delete; its `server_time` is unsigned.
    let received = T + 60_000;
    let forged = notification_received("Leads", "delete", &["L1".into()], 9e15 as i64, received);
    assert!(
        consumer
            .process_batch_detailed(vec![forged])
            .await
            .is_empty()
    );
    let tombstone = store
        .get_record(ROUTE, "Leads", "L1")
        .await
        .unwrap()
        .unwrap();
    assert!(tombstone.deleted);
    assert_eq!(
        tombstone.version,
        hookcatch::model::value::RecordVersion::Number(received.to_string()),
        "a tombstone is versioned no later than its receipt"
    );
    // The next genuine edit (Modified_Time after the receipt) replaces it.
    fake.put("Leads", "L1", "After", "2026-11-22T19:05:00+00:00");
    assert!(
        consumer
            .process_batch_detailed(vec![update(T + 120_000)])
            .await
            .is_empty()
    );
    let record = store
        .get_record(ROUTE, "Leads", "L1")
        .await
        .unwrap()
        .unwrap();
    assert!(!record.deleted, "the edit after the forged delete wins");
    assert_eq!(record.data["Last_Name"], "After");
}

/// The deployed path: the zoho-crm route Lambda queues a notification on SQS; the consumer Lambda,
/// configured by HOOKCATCH_HYDRATORS with SSM secrets, hydrates it into DynamoDB and caches the
/// access token there.
#[tokio::test]
async fn deployed_consumer_hydrates_from_sqs_into_dynamodb() {
    let fake = FakeZoho::start().await;
    fake.put(
        "Leads",
        "5725767000003000064",
        "Boyle",
        "2026-11-22T19:00:00+00:00",
    );
    let stack = Stack::create(3).await;
    let token = stack
        .put_secret("TOKEN_FOR_VERIFICATION_OF_1000000068001")
        .await;
    let route = json!({"name": ROUTE, "provider": "zoho-crm",
        "channels": [{"id": "1000000068001", "token": format!("ssm:{token}")}]});
    let ingestor = stack.ingestor(&route.to_string()).await;
    let event = crate::support::load_event("zoho-crm-json.json");
    let mut event = event;
    let body = json!({"server_time": T, "query_params": {}, "module": "Leads",
        "resource_uri": "https://www.zohoapis.com/crm/v2/Leads", "ids": ["5725767000003000064"],
        "affected_fields": [], "operation": "insert", "channel_id": "1000000068001",
        "token": "TOKEN_FOR_VERIFICATION_OF_1000000068001"});
    event["body"] = json!(body.to_string());
    let response =
        hookcatch_ingest::handle(&ingestor, serde_json::from_str(&event.to_string()).unwrap())
            .await
            .unwrap();
    assert_eq!(response.status_code, 200);

    let hydrate = deployed_hydrate_config(&fake, &stack).await;
    let mut env = stack.consumer_env();
    env.insert(
        "HOOKCATCH_HYDRATORS".into(),
        json!({ ROUTE: hydrate }).to_string(),
    );
    let consumer = hookcatch::runtime::lambda::consumer_from_env(&|name| env.get(name).cloned())
        .await
        .unwrap();
    let (received, failed) = stack.consume_once(&consumer).await;
    assert_eq!((received, failed.len()), (1, 0), "{failed:?}");
    let store = stack.store();
    let record = store
        .get_record(ROUTE, "Leads", "5725767000003000064")
        .await
        .unwrap()
        .expect("hydrated into DynamoDB");
    assert_eq!(record.data["Last_Name"], "Boyle");
    let cached = store
        .load_token(&format!("zoho-crm#{ROUTE}#{}", crate::fake_zoho::CLIENT_ID))
        .await
        .unwrap();
    let cached = cached.expect("the access token is shared through DynamoDB");
    assert!(
        cached.access_token.starts_with("sealed1.") && !cached.access_token.contains("1000.access"),
        "the access token is sealed in the table"
    );

    // The consumer's schedule re-enables the channel, pointing at the route's URL.
    let notify = "https://abc.lambda-url.us-east-1.on.aws/";
    let mut renewing = hydrate.clone();
    renewing["renew"] = json!({"notify_url": notify, "channels": [
        {"id": "1000000068001", "token": format!("ssm:{token}"), "events": "Leads.all,Contacts.edit"}]});
    env.insert(
        "HOOKCATCH_HYDRATORS".into(),
        json!({ ROUTE: renewing }).to_string(),
    );
    let consumer = hookcatch::runtime::lambda::consumer_from_env(&|name| env.get(name).cloned())
        .await
        .unwrap();
    let schedule = crate::support::load_event("consumer-schedule-renew.json");
    let renewed = hookcatch_consumer::handle_any(
        &consumer,
        lambda_runtime::LambdaEvent::new(schedule.clone(), lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(renewed["renewed"].as_array().unwrap().len(), 1, "{renewed}");
    let watch = fake.state.lock().unwrap().watches[0]["watch"][0].clone();
    assert_eq!(watch["notify_url"], notify);
    assert_eq!(watch["token"], "TOKEN_FOR_VERIFICATION_OF_1000000068001");
    assert_eq!(watch["events"], json!(["Leads.all", "Contacts.edit"]));
    // A refused renewal fails the invocation, so Lambda's Errors metric and its alarm count it.
    renewing["renew"]["channels"][0]["events"] = json!("Nonsense.all");
    env.insert(
        "HOOKCATCH_HYDRATORS".into(),
        json!({ ROUTE: renewing }).to_string(),
    );
    let failing = hookcatch::runtime::lambda::consumer_from_env(&|name| env.get(name).cloned())
        .await
        .unwrap();
    let error = hookcatch_consumer::handle_any(
        &failing,
        lambda_runtime::LambdaEvent::new(schedule, lambda_runtime::Context::default()),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("INVALID_DATA"), "{error}");
}

/// On AWS a rate-limited message is not retried at once: the consumer postpones it (visibility
/// change). The test queue's own visibility timeout is 0, so without that it would be back at once.
#[tokio::test]
async fn a_rate_limited_message_is_postponed_not_retried_at_once() {
    let fake = FakeZoho::start().await;
    fake.put("Leads", "L1", "Lead", "2026-11-22T19:00:00+00:00");
    fake.fail_next("Leads", &[429]);
    let stack = Stack::create(5).await;
    let message = notification("Leads", "update", &["L1".into()], T);
    stack
        .sqs
        .send_message()
        .queue_url(&stack.queue_url)
        .message_body(&message.body)
        .send()
        .await
        .unwrap();
    let mut env = stack.consumer_env();
    let hydrate = deployed_hydrate_config(&fake, &stack).await;
    env.insert(
        "HOOKCATCH_HYDRATORS".into(),
        json!({ ROUTE: hydrate }).to_string(),
    );
    env.insert("HOOKCATCH_QUEUE_URL".into(), stack.queue_url.clone());
    let consumer = hookcatch::runtime::lambda::consumer_from_env(&|name| env.get(name).cloned())
        .await
        .unwrap();
    let (received, failed) = stack.consume_once(&consumer).await;
    assert_eq!((received, failed.len()), (1, 1));
    let (again, _) = stack.receive_batch(&stack.queue_url).await;
    assert!(
        again["Records"].as_array().is_none_or(Vec::is_empty),
        "postponed, not redelivered at once: {again}"
    );
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 1, "and not lost");
}

/// `hookcatch zoho renew`: each channel of the route is enabled with its token, events, the notify
/// URL and an expiry a week out; a refusal is an error naming the channel.
#[tokio::test]
async fn zoho_renew_enables_every_channel_with_its_token_and_expiry() {
    let fake = FakeZoho::start().await;
    let dir = std::env::temp_dir().join(unique("hookcatch-renew"));
    let hydrate = fake.hydrate_config(true);
    let toml = format!(
        r#"
[[routes]]
name = "zoho-crm"
provider = "zoho-crm"
channels = [
  {{ id = "1000000068001", token = "token-one", events = ["Leads.all", "Contacts.edit"] }},
  {{ id = 1000000068002, token = "token-two", events = ["Leads.create"] }},
]
hydrate = {{ kind = "zoho-crm", accounts_url = "{url}", client_id = "{id}", client_secret = "{secret}", refresh_token = "{refresh}" }}
"#,
        url = fake.url,
        id = hydrate["client_id"].as_str().unwrap(),
        secret = hydrate["client_secret"].as_str().unwrap(),
        refresh = hydrate["refresh_token"].as_str().unwrap(),
    );
    let file = hookcatch_cli::project::config::ConfigFile::parse(&toml, "test.toml").unwrap();
    let notify = "https://abc.lambda-url.us-east-1.on.aws/";
    let before = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
    let renewed = hookcatch_cli::zoho::renew(&file, None, notify, 7, &dir)
        .await
        .unwrap();
    assert_eq!(renewed.len(), 2);
    let watches = fake.state.lock().unwrap().watches.clone();
    assert_eq!(watches.len(), 2);
    let first = &watches[0]["watch"][0];
    assert_eq!(first["channel_id"], "1000000068001");
    assert_eq!(first["token"], "token-one");
    assert_eq!(first["notify_url"], notify);
    assert_eq!(first["events"], json!(["Leads.all", "Contacts.edit"]));
    assert_eq!(watches[1]["watch"][0]["token"], "token-two");
    let expiry = first["channel_expiry"].as_str().unwrap();
    let expiry_ms =
        time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
            * 1000;
    let week = 7 * 86_400_000;
    assert!((expiry_ms - (before + week)).abs() < 120_000, "{expiry}");
    assert_eq!(renewed[0].expires, expiry);

    let bad = toml.replace("Leads.create", "Nonsense.create");
    let file = hookcatch_cli::project::config::ConfigFile::parse(&bad, "test.toml").unwrap();
    let error = hookcatch_cli::zoho::renew(&file, None, notify, 7, &dir)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1000000068002") && error.contains("INVALID_DATA"),
        "{error}"
    );

    // A refresh token with only the records scope cannot enable channels, and the error says
    // which scope is missing.
    fake.grant_scopes("ZohoCRM.modules.READ");
    let file = hookcatch_cli::project::config::ConfigFile::parse(&toml, "test.toml").unwrap();
    let fresh = std::env::temp_dir().join(unique("hookcatch-renew"));
    let error = hookcatch_cli::zoho::renew(&file, None, notify, 7, &fresh)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("OAUTH_SCOPE_MISMATCH") && error.contains("ZohoCRM.notifications.ALL"),
        "{error}"
    );
}

#[tokio::test]
async fn serve_renews_configured_channels_at_start() {
    let fake = FakeZoho::start().await;
    let hydrate = fake.hydrate_config(true);
    let toml = format!(
        r#"
[[routes]]
name = "zoho-crm"
provider = "zoho-crm"
channels = [{{ id = "1000000068001", token = "token-one", events = ["Leads.all"] }}]

[routes.hydrate]
kind = "zoho-crm"
accounts_url = "{url}"
client_id = "{id}"
client_secret = "{secret}"
refresh_token = "{refresh}"
fields = ["Last_Name"]
renew = {{ notify_url = "https://hooks.example.test/hooks/zoho-crm", channels = [{{ id = "1000000068001", token = "token-one", events = ["Leads.all"] }}] }}
"#,
        url = fake.url,
        id = hydrate["client_id"].as_str().unwrap(),
        secret = hydrate["client_secret"].as_str().unwrap(),
        refresh = hydrate["refresh_token"].as_str().unwrap(),
    );
    let mut file = hookcatch_cli::project::config::ConfigFile::parse(&toml, "test.toml").unwrap();
    file.serve.addr = "127.0.0.1:0".parse().unwrap();
    file.serve.data = std::env::temp_dir().join(unique("hookcatch-serve-renew"));
    let running = hookcatch_cli::serve::start(&file, &file.serve)
        .await
        .unwrap();
    let mut watches = Vec::new();
    for _ in 0..100 {
        watches = fake.state.lock().unwrap().watches.clone();
        if !watches.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await.unwrap();
    assert_eq!(watches.len(), 1, "renewed once at start: {watches:?}");
    let watch = &watches[0]["watch"][0];
    assert_eq!(watch["channel_id"], "1000000068001");
    assert_eq!(watch["token"], "token-one");
    assert_eq!(
        watch["notify_url"],
        "https://hooks.example.test/hooks/zoho-crm"
    );
}

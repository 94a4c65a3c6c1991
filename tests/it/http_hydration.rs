//! Configured (`kind = "http"`) hydrators against a fake API on loopback: Stripe thin events
//! fetched by id with a bearer key, Microsoft Graph change notifications fetched per resource with
//! a client-credentials token, tombstones, coalesced calls, faults, and the bound on calls in flight.

use std::time::Duration;

use hookcatch::consume::Message;
use hookcatch::ports::EventStore;
use hookcatch::{Consumer, ProviderKind};
use hookcatch_cli::store::LocalStore;
use serde_json::{Value, json};

use crate::fake_api::{API_KEY, CLIENT_ID, CLIENT_SECRET, FakeApi};
use crate::hydration::{local_store, queued};

const T: i64 = 1_795_374_237_000;

pub fn consumer(route: &str, config: Value, store: &LocalStore) -> Consumer {
    crate::hydration::consumer_for(route, &config, store)
}

pub fn stripe_config(api: &FakeApi) -> Value {
    json!({
        "kind": "http",
        "base_url": api.url,
        "auth": {"type": "bearer", "token": API_KEY},
        "headers": {"Stripe-Version": "2025-10-29.clover"},
        "requests": [{
            "name": "event",
            "when": ["/object=v2.core.event"],
            "path": "/v2/core/events/{id}",
            "type": "v2.core.event",
            "id": "/id",
            "version": "/created"
        }],
        "timeout_ms": 2000
    })
}

/// A thin event as Stripe sends it (shape from Stripe's event destinations docs).
pub fn thin_event(id: &str) -> String {
    json!({
        "id": id, "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered", "livemode": false,
        "created": "2026-11-22T06:20:52.246Z",
        "related_object": {"id": "mtr_test_61RCr", "type": "billing.meter", "url": "/v1/billing/meters/mtr_test_61RCr"}
    })
    .to_string()
}

#[tokio::test]
async fn stripe_thin_events_are_fetched_once_by_id_with_the_bearer_key() {
    let api = FakeApi::start().await;
    let full = json!({
        "id": "evt_test_1", "object": "v2.core.event", "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-11-22T06:20:52.246Z",
        "data": {"developer_message_summary": "There is 1 invalid event", "reason": {"error_count": 1}},
        "related_object": {"id": "mtr_test_61RCr", "type": "billing.meter", "url": "/v1/billing/meters/mtr_test_61RCr"}
    });
    api.put("/v2/core/events/evt_test_1", full.clone());
    let store = local_store();
    let consumer = consumer("stripe", stripe_config(&api), &store);
    let snapshot = json!({"id": "evt_snap", "object": "event", "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}}})
    .to_string();
    let failures = consumer
        .process_batch_detailed(vec![
            queued(
                "stripe",
                ProviderKind::Stripe,
                true,
                thin_event("evt_test_1"),
                T,
            ),
            // Stripe retries: the same event again in the batch is not fetched twice.
            queued(
                "stripe",
                ProviderKind::Stripe,
                true,
                thin_event("evt_test_1"),
                T + 1,
            ),
            // A snapshot event on the same route matches no request: stored as it is, no call.
            queued("stripe", ProviderKind::Stripe, false, snapshot, T + 2),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let calls = api.calls();
    assert_eq!(calls, vec![("/v2/core/events/evt_test_1".to_owned(), None)]);
    assert_eq!(
        api.state.lock().unwrap().stripe_versions,
        vec![Some("2025-10-29.clover".to_owned())],
        "configured headers are sent"
    );
    let record = store
        .get_record("stripe", "v2.core.event", "evt_test_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.data, full, "the fetched event is the record");
    assert!(!record.deleted);
    assert_eq!(
        store.list_events(None, None, None, 10).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_refused_key_fails_loudly_and_a_missing_event_is_a_tombstone() {
    let api = FakeApi::start().await;
    let store = local_store();
    let mut config = stripe_config(&api);
    let consumer = consumer("stripe", config.clone(), &store);
    let failures = consumer
        .process_batch_detailed(vec![queued(
            "stripe",
            ProviderKind::Stripe,
            true,
            thin_event("evt_gone"),
            T,
        )])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let gone = store
        .get_record("stripe", "v2.core.event", "evt_gone")
        .await
        .unwrap()
        .unwrap();
    assert!(
        gone.deleted && gone.data.is_null(),
        "404: the record is gone"
    );

    config["auth"]["token"] = json!("sk_test_only_revoked");
    let refused = self::consumer("stripe", config, &store);
    let message = queued("stripe", ProviderKind::Stripe, true, thin_event("evt_x"), T);
    let failures = refused.process_batch_detailed(vec![message.clone()]).await;
    assert_eq!(failures.len(), 1);
    assert!(
        !failures[0].retryable,
        "a refused key cannot heal by waiting"
    );
    assert!(failures[0].error.contains("401"), "{}", failures[0].error);
}

pub fn graph_config(api: &FakeApi, concurrency: usize) -> Value {
    json!({
        "kind": "http",
        "base_url": format!("{}/v1.0", api.url),
        "auth": {"type": "oauth2-client-credentials", "token_url": api.token_url(),
                 "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                 "scope": "https://graph.microsoft.com/.default"},
        "items": "/value",
        "requests": [{
            "name": "resource",
            "when": ["/changeType=created", "/changeType=updated", "/changeType=deleted"],
            "path": "/{/resource*}",
            "allow_paths": ["/users/6a7b@5c9d/messages"],
            "type": "/resourceData/@odata.type",
            "id": "/resourceData/id",
            "fetched_id": "/id",
            "deleted_when": ["/changeType=deleted"],
            "version": "/lastModifiedDateTime"
        }],
        "concurrency": concurrency,
        "timeout_ms": 2000
    })
}

/// One change notification item (shape from Microsoft Graph's change notification docs).
pub fn change(change_type: &str, message_id: &str) -> Value {
    json!({
        "id": "lsgTZMr9KwAAA", "subscriptionId": "f2a5d1b3-0000-4000-8000-000000000001",
        "subscriptionExpirationDateTime": "2026-11-25T22:11:09.952Z",
        "clientState": "test-only-client-state", "changeType": change_type,
        "resource": format!("Users/6a7b@5c9d/Messages/{message_id}"),
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": format!("Users/6a7b@5c9d/Messages/{message_id}"), "id": message_id}
    })
}

pub fn graph(items: Vec<Value>, at: i64) -> Message {
    queued(
        "microsoft-graph",
        ProviderKind::MicrosoftGraph,
        true,
        json!({"value": items}).to_string(),
        at,
    )
}

pub fn message_path(id: &str) -> String {
    format!("/v1.0/Users/6a7b@5c9d/Messages/{id}")
}

#[tokio::test]
async fn graph_resources_are_fetched_with_one_client_credentials_token() {
    let api = FakeApi::start().await;
    for id in ["AAMkA=", "AAMkB="] {
        api.put(
            &message_path(id),
            json!({"id": id, "subject": format!("subject {id}"), "lastModifiedDateTime": "2026-11-22T10:00:00Z"}),
        );
    }
    let store = local_store();
    let consumer = consumer("microsoft-graph", graph_config(&api, 4), &store);
    let failures = consumer
        .process_batch_detailed(vec![
            graph(
                vec![
                    change("created", "AAMkA="),
                    change("updated", "AAMkB="),
                    change("deleted", "AAMkC="),
                ],
                T,
            ),
            graph(vec![change("updated", "AAMkA=")], T + 1),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let mut paths: Vec<String> = api.calls().into_iter().map(|(p, _)| p).collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![message_path("AAMkA="), message_path("AAMkB=")],
        "A once, C not at all"
    );
    {
        let state = api.state.lock().unwrap();
        assert_eq!(state.tokens_issued, 1);
        let form = &state.token_forms[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "https://graph.microsoft.com/.default");
    }
    let a = store
        .get_record("microsoft-graph", "#Microsoft.Graph.Message", "AAMkA=")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.data["subject"], "subject AAMkA=");
    let c = store
        .get_record("microsoft-graph", "#Microsoft.Graph.Message", "AAMkC=")
        .await
        .unwrap()
        .unwrap();
    assert!(c.deleted, "a deleted change is a tombstone without a call");

    // Every token dies: the next call is refused once, refreshes once, and succeeds.
    api.expire_tokens();
    let failures = consumer
        .process_batch_detailed(vec![graph(vec![change("updated", "AAMkB=")], T + 2)])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(api.state.lock().unwrap().tokens_issued, 2);
}

#[tokio::test]
async fn faults_fail_only_their_messages_and_the_redelivery_succeeds() {
    let api = FakeApi::start().await;
    let modified = "2026-11-22T10:00:00Z";
    api.put(
        &message_path("M1"),
        json!({"id": "M1", "subject": "one", "lastModifiedDateTime": modified}),
    );
    api.put(
        &message_path("M2"),
        json!({"id": "M2", "subject": "two", "lastModifiedDateTime": modified}),
    );
    let store = local_store();
    let consumer = consumer("microsoft-graph", graph_config(&api, 4), &store);
    let one = graph(vec![change("updated", "M1")], T);
    let two = graph(vec![change("updated", "M2")], T);
    for status in [429, 500, 503] {
        api.fail_next(&message_path("M1"), &[status]);
        let failures = consumer
            .process_batch_detailed(vec![one.clone(), two.clone()])
            .await;
        assert_eq!(failures.len(), 1, "{status}: only M1's message fails");
        assert_eq!(failures[0].id, one.id);
        assert!(failures[0].retryable, "{status} is retried later");
    }
    api.state.lock().unwrap().delay = Duration::from_millis(2500);
    let failures = consumer.process_batch_detailed(vec![one.clone()]).await;
    assert!(
        failures.len() == 1 && failures[0].retryable,
        "a timeout is retryable: {failures:?}"
    );
    api.state.lock().unwrap().delay = Duration::ZERO;
    assert!(consumer.process_batch_detailed(vec![one]).await.is_empty());
    let m1 = store
        .get_record("microsoft-graph", "#Microsoft.Graph.Message", "M1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m1.data["subject"], "one", "nothing lost");
}

#[tokio::test]
async fn redirects_are_not_followed_and_large_answers_are_not_read() {
    let api = FakeApi::start().await;
    let elsewhere = FakeApi::start().await;
    let store = local_store();
    let consumer = consumer("stripe", stripe_config(&api), &store);
    let stripe = |id: &str| queued("stripe", ProviderKind::Stripe, true, thin_event(id), T);

    // A redirect (an open redirect on the API, or a compromised one) is an answer, not a hop.
    api.state.lock().unwrap().redirects.insert(
        "/v2/core/events/evt_moved".into(),
        format!("{}/steal", elsewhere.url.replace("127.0.0.1", "localhost")),
    );
    let failures = consumer
        .process_batch_detailed(vec![stripe("evt_moved")])
        .await;
    assert!(
        failures.len() == 1 && !failures[0].retryable,
        "{failures:?}"
    );
    assert!(failures[0].error.contains("302"), "{failures:?}");
    assert_eq!(
        elsewhere.state.lock().unwrap().requests,
        0,
        "nothing reached the other host"
    );

    // An answer over 5 MiB fails for good, unread.
    let huge = json!({"id": "evt_huge", "object": "v2.core.event", "created": "2026-11-22T06:20:52.246Z",
        "padding": "x".repeat(6 * 1024 * 1024)});
    api.put("/v2/core/events/evt_huge", huge);
    let failures = consumer
        .process_batch_detailed(vec![stripe("evt_huge")])
        .await;
    assert!(
        failures.len() == 1 && !failures[0].retryable,
        "{failures:?}"
    );
    assert!(failures[0].error.contains("too large"), "{failures:?}");

    // A placeholder value of `..` never climbs the path: no call at all.
    let calls = api.calls().len();
    let failures = consumer.process_batch_detailed(vec![stripe("..")]).await;
    assert!(
        failures.len() == 1 && !failures[0].retryable,
        "{failures:?}"
    );
    assert_eq!(api.calls().len(), calls, "nothing was fetched");
}

#[tokio::test]
async fn graph_notifications_reach_only_allowed_paths_and_records_are_keyed_by_what_was_fetched() {
    let api = FakeApi::start().await;
    let modified = "2026-11-22T10:00:00Z";
    api.put(
        &message_path("M1"),
        json!({"id": "M1", "subject": "one", "lastModifiedDateTime": modified}),
    );
    api.put(
        "/v1.0/Users/ceo@corp/Messages/M9",
        json!({"id": "M9", "subject": "the CEO's", "lastModifiedDateTime": modified}),
    );
    let store = local_store();
    let consumer = consumer("microsoft-graph", graph_config(&api, 4), &store);
    let record = |id: &str| {
        let store = store.clone();
        let id = id.to_owned();
        async move {
            store
                .get_record("microsoft-graph", "#Microsoft.Graph.Message", &id)
                .await
                .unwrap()
        }
    };
    let elsewhere = |change_type: &str| {
        let mut item = change(change_type, "M9");
        item["resource"] = "Users/ceo@corp/Messages/M9".into();
        item
    };

    // Another mailbox (the same clientState, a resource the sender chose): no call, no tombstone.
    for change_type in ["updated", "deleted"] {
        let failures = consumer
            .process_batch_detailed(vec![graph(vec![elsewhere(change_type)], T)])
            .await;
        assert!(
            failures.len() == 1 && !failures[0].retryable,
            "{change_type}: {failures:?}"
        );
        assert!(failures[0].error.contains("allow_paths"), "{failures:?}");
    }
    assert!(
        api.calls().is_empty(),
        "nothing outside allow_paths was fetched"
    );
    assert!(record("M9").await.is_none());

    // A resource and an id that disagree: the record is keyed by the id the API returned.
    let mut mixed = change("updated", "M1");
    mixed["resourceData"]["id"] = "VICTIM".into();
    assert!(
        consumer
            .process_batch_detailed(vec![graph(vec![mixed], T)])
            .await
            .is_empty()
    );
    assert!(
        record("VICTIM").await.is_none(),
        "the notification's id wrote nothing"
    );
    assert_eq!(record("M1").await.unwrap().data["subject"], "one");

    // A lifecycle notification matches no request: stored, not failed.
    let lifecycle = json!({"subscriptionId": "f2a5d1b3-0000-4000-8000-000000000001",
        "subscriptionExpirationDateTime": "2026-11-25T22:11:09.952Z",
        "clientState": "test-only-client-state", "lifecycleEvent": "reauthorizationRequired",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95"});
    assert!(
        consumer
            .process_batch_detailed(vec![graph(vec![lifecycle], T)])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn graph_subscriptions_are_renewed_with_the_app_token() {
    let api = FakeApi::start().await;
    let live = "f2a5d1b3-0000-4000-8000-000000000001";
    api.put(
        &format!("/v1.0/subscriptions/{live}"),
        json!({"id": live, "expirationDateTime": "2026-11-25T22:11:09.952Z"}),
    );
    let mut config = graph_config(&api, 4);
    config["renew"] = json!({"subscriptions": [live], "minutes": 4230});
    let store = local_store();
    let renewed = consumer("microsoft-graph", config.clone(), &store)
        .renew_subscriptions()
        .await
        .unwrap();
    assert_eq!(renewed.len(), 1);
    assert!(renewed[0].contains(live), "{renewed:?}");
    assert_eq!(api.calls(), [(format!("/v1.0/subscriptions/{live}"), None)]);
    // A subscription Graph no longer knows is a failure to act on, named.
    config["renew"]["subscriptions"] = json!([live, "0000-gone"]);
    let failed = consumer("microsoft-graph", config, &store)
        .renew_subscriptions()
        .await
        .unwrap_err();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("0000-gone"), "{failed:?}");
}

#[tokio::test]
async fn a_notification_over_the_item_cap_fails_for_good_without_calls() {
    let api = FakeApi::start().await;
    let store = local_store();
    let consumer = consumer("microsoft-graph", graph_config(&api, 4), &store);
    let items = vec![change("updated", "M1"); 1001]; // one over the cap
    let failures = consumer.process_batch_detailed(vec![graph(items, T)]).await;
    assert!(
        failures.len() == 1 && !failures[0].retryable,
        "{failures:?}"
    );
    assert!(failures[0].error.contains("items"), "{failures:?}");
    assert!(
        api.state.lock().unwrap().calls.is_empty(),
        "nothing was fetched"
    );
}

#[tokio::test]
async fn a_fetched_state_without_its_version_is_not_written() {
    let api = FakeApi::start().await;
    api.put(
        &message_path("M1"),
        json!({"id": "M1", "subject": "no version"}),
    );
    let store = local_store();
    let consumer = consumer("microsoft-graph", graph_config(&api, 4), &store);
    let failures = consumer
        .process_batch_detailed(vec![graph(vec![change("updated", "M1")], T)])
        .await;
    assert!(failures.is_empty(), "the event is kept: {failures:?}");
    let record = store
        .get_record("microsoft-graph", "#Microsoft.Graph.Message", "M1")
        .await
        .unwrap();
    assert!(
        record.is_none(),
        "a receive time would outrank every later version"
    );
}

#[tokio::test]
async fn calls_in_flight_never_exceed_the_configured_concurrency() {
    let api = FakeApi::start().await;
    let ids: Vec<String> = (0..12).map(|i| format!("M{i}")).collect();
    for id in &ids {
        api.put(
            &message_path(id),
            json!({"id": id, "lastModifiedDateTime": "2026-11-22T10:00:00Z"}),
        );
    }
    api.state.lock().unwrap().delay = Duration::from_millis(150);
    let store = local_store();
    let consumer = consumer("microsoft-graph", graph_config(&api, 3), &store);
    let failures = consumer
        .process_batch_detailed(
            ids.iter()
                .map(|id| graph(vec![change("updated", id)], T))
                .collect(),
        )
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let state = api.state.lock().unwrap();
    assert_eq!(state.calls.len(), 12);
    assert_eq!(
        state.max_in_flight, 3,
        "at most `concurrency` calls at once, and that many used"
    );
}

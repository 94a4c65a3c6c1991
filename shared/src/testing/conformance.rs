//! One behaviour for every store: the in-memory fake, the local SQLite store and DynamoDB run these
//! same checks (the integration tests call them, DynamoDB on moto), so a rule cannot hold in one
//! store and drift in another.

// A suite of assertions: a failed unwrap is a failed check, which is the point.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use serde_json::{Value, json};

use crate::model::value::RecordVersion;
use crate::ports::{
    CachedToken, EventItem, EventStore, Lease, PutOutcome, RecordItem, StoredBody, TokenCache,
    UpsertOutcome,
};

/// Events: dedup by route and key, exact round trips inline and claim-checked.
pub async fn events(store: &dyn EventStore, route: &str) {
    let inline = event(
        route,
        "d1",
        StoredBody::Inline(Bytes::from_static(b"\x00\xff{")),
    );
    assert_eq!(
        store.put_event(&inline).await.unwrap(),
        PutOutcome::Inserted
    );
    let mut again = inline.clone();
    again.event_id = "another id, same dedup key".into();
    assert_eq!(
        store.put_event(&again).await.unwrap(),
        PutOutcome::Duplicate
    );
    assert_eq!(
        store.get_event(route, "d1").await.unwrap().as_ref(),
        Some(&inline)
    );
    // A replay writes over the stored event, whatever it held.
    let replayed = EventItem {
        event_type: Some("replayed".into()),
        records: vec!["order/9".into()],
        ..inline
    };
    store.replace_event(&replayed).await.unwrap();
    assert_eq!(store.get_event(route, "d1").await.unwrap(), Some(replayed));

    let claim_checked = event(
        route,
        "d2",
        StoredBody::External {
            bucket: "bodies-bucket".into(),
            key: format!("bodies/{route}/e-d2"),
        },
    );
    assert_eq!(
        store.put_event(&claim_checked).await.unwrap(),
        PutOutcome::Inserted
    );
    assert_eq!(
        store.get_event(route, "d2").await.unwrap(),
        Some(claim_checked)
    );
    assert_eq!(store.get_event(route, "missing").await.unwrap(), None);
    let other_route = event(
        &format!("{route}-other"),
        "d1",
        StoredBody::Inline(Bytes::new()),
    );
    assert_eq!(
        store.put_event(&other_route).await.unwrap(),
        PutOutcome::Inserted,
        "dedup keys are per route"
    );
}

/// Records: newer wins, compared exactly; across kinds the later-received wins; tombstones.
pub async fn records(store: &dyn EventStore, route: &str) {
    let n = |v: &str| RecordVersion::Number(v.into());
    let t = |v: &str| RecordVersion::Text(v.into());
    let upsert = |id: &'static str, version: RecordVersion, received: i64, state: &'static str| {
        let record = record(route, id, version, received, json!({ "state": state }));
        async move { store.upsert_record(&record).await.unwrap() }
    };
    let state = |id: &'static str| async move {
        let record = store.get_record(route, "order", id).await.unwrap().unwrap();
        (record.data["state"].clone(), record.deleted)
    };

    assert_eq!(upsert("1", n("10"), 1, "b").await, UpsertOutcome::Written);
    assert_eq!(upsert("1", n("9"), 2, "a").await, UpsertOutcome::Stale);
    assert_eq!(
        upsert("1", n("10.0"), 3, "b2").await,
        UpsertOutcome::Written,
        "equal rewrites"
    );
    assert_eq!(state("1").await, (json!("b2"), false));

    // 2^53 + 1 and 2^53 are one f64; as decimals the first is newer.
    assert_eq!(
        upsert("2", n("9007199254740993"), 1, "big").await,
        UpsertOutcome::Written
    );
    assert_eq!(
        upsert("2", n("9007199254740992"), 2, "smaller").await,
        UpsertOutcome::Stale
    );
    assert_eq!(state("2").await, (json!("big"), false));

    // RFC 3339 times keep their sub-millisecond digits.
    let time = |text: &str| RecordVersion::from_text(text);
    assert_eq!(
        upsert("3", time("2024-06-11T10:00:00.0001002Z"), 1, "later").await,
        UpsertOutcome::Written
    );
    assert_eq!(
        upsert("3", time("2024-06-11T10:00:00.0001001Z"), 2, "earlier").await,
        UpsertOutcome::Stale
    );
    assert_eq!(state("3").await, (json!("later"), false));

    // A version that changes kind: the later-received state wins, an earlier one does not.
    assert_eq!(
        upsert("4", t("2024-06-11 10:00"), 10, "text").await,
        UpsertOutcome::Written
    );
    assert_eq!(
        upsert("4", n("5"), 9, "number, received before").await,
        UpsertOutcome::Stale
    );
    assert_eq!(
        upsert("4", n("5"), 11, "number").await,
        UpsertOutcome::KindChanged
    );
    assert_eq!(
        upsert("4", n("6"), 12, "number 6").await,
        UpsertOutcome::Written
    );
    assert_eq!(state("4").await, (json!("number 6"), false));

    // Tombstones keep their version; only a newer state replaces them.
    let mut tombstone = record(route, "5", n("20"), 1, Value::Null);
    tombstone.deleted = true;
    assert_eq!(
        store.upsert_record(&tombstone).await.unwrap(),
        UpsertOutcome::Written
    );
    assert_eq!(
        store.get_record(route, "order", "5").await.unwrap(),
        Some(tombstone)
    );
    assert_eq!(
        upsert("5", n("19"), 2, "late edit").await,
        UpsertOutcome::Stale
    );
    assert_eq!(state("5").await, (Value::Null, true));
    assert_eq!(
        upsert("5", n("21"), 3, "recreated").await,
        UpsertOutcome::Written
    );
    assert_eq!(state("5").await, (json!("recreated"), false));
    assert_eq!(
        store.get_record(route, "order", "none").await.unwrap(),
        None
    );
}

/// Access tokens: a round trip, and one refresh lease at a time.
pub async fn tokens(cache: &dyn TokenCache, key: &str) {
    assert_eq!(cache.load_token(key).await.unwrap(), None);
    assert!(
        cache
            .try_lease(lease(key, "a", 1_000, 31_000))
            .await
            .unwrap()
    );
    assert_eq!(
        cache.load_token(key).await.unwrap(),
        None,
        "a lease is no token"
    );
    assert!(
        !cache
            .try_lease(lease(key, "b", 2_000, 32_000))
            .await
            .unwrap(),
        "a live lease is kept"
    );
    assert!(
        cache
            .try_lease(lease(key, "a", 2_000, 32_000))
            .await
            .unwrap(),
        "its holder renews it"
    );
    assert!(
        cache
            .try_lease(lease(key, "b", 40_000, 70_000))
            .await
            .unwrap(),
        "an expired one is taken"
    );
    let token = CachedToken {
        access_token: "development-only-access-token".into(),
        api_domain: "https://api.test".into(),
        expires_at_ms: 3_600_000,
    };
    cache.store_token(key, &token).await.unwrap();
    assert_eq!(cache.load_token(key).await.unwrap(), Some(token));
    assert!(
        cache
            .try_lease(lease(key, "c", 41_000, 71_000))
            .await
            .unwrap(),
        "storing a token ends the lease"
    );
}

fn event(route: &str, dedup: &str, body: StoredBody) -> EventItem {
    EventItem {
        route: route.into(),
        dedup_key: dedup.into(),
        delivery_id: Some(format!("provider-{dedup}")),
        event_id: format!("id-{dedup}"),
        provider: "catch-raw".into(),
        event_type: Some("order.updated".into()),
        received_at_ms: 1_718_100_000_123,
        test_ping: false,
        method: "POST".into(),
        path: "/hooks/x".into(),
        query: "a=1".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        source_ip: Some("203.0.113.9".into()),
        body_len: 3,
        body_sha256: "ab".repeat(32),
        body,
        parts: Some(json!([{"name": "f", "size": 1}])),
        records: vec!["order/1".into()],
        expires_at: Some(1_800_000_000),
    }
}

fn record(route: &str, id: &str, version: RecordVersion, received: i64, data: Value) -> RecordItem {
    RecordItem {
        route: route.into(),
        record_type: "order".into(),
        record_id: id.into(),
        version,
        data,
        deleted: false,
        event_id: format!("e-{id}-{received}"),
        updated_at_ms: received,
    }
}

fn lease<'a>(key: &'a str, holder: &'a str, now_ms: i64, until_ms: i64) -> Lease<'a> {
    Lease {
        key,
        holder,
        now_ms,
        until_ms,
    }
}

//! What hostile bodies cost the consumer in memory, counted allocation by allocation (dhat). One
//! test in its own binary: the count is process-wide, so nothing else may run beside it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use hookcatch::config::{RecordRule, Rules};
use hookcatch::consume::Message;
use hookcatch::model::envelope::{BodyLocation, SCHEMA_VERSION};
use hookcatch::model::value::ValueSource;
use hookcatch::ports::EventStore;
use hookcatch::testing::fakes::{FixedClock, MemoryBlobs, MemoryStore};
use hookcatch::{Consumer, Envelope};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const MIB: usize = 1024 * 1024;

/// A catch-raw route whose rules read the body by pointer and keep it whole as a record.
fn rules() -> Rules {
    Rules {
        dedup: Some(ValueSource::parse("/id")),
        event_type: Some(ValueSource::parse("/event")),
        records: vec![RecordRule {
            when: vec!["/kind=order".into()],
            record_type: ValueSource::parse("order"),
            id: ValueSource::parse("/order/id"),
            version: Some(ValueSource::parse("/order/v")),
            data: None,
            deleted: false,
        }],
    }
}

fn message(id: &str, content_type: &str, body: Vec<u8>) -> Message {
    let envelope = Envelope {
        v: SCHEMA_VERSION,
        id: id.into(),
        route: "raw".into(),
        provider: "catch-raw".into(),
        received_at_ms: 1_700_000_000_000,
        delivery_id: None,
        test_ping: false,
        replay: false,
        replaces: None,
        hydrate: None,
        rules: rules().into(),
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), content_type.into())],
        source_ip: None,
        body_len: body.len() as u64,
        body_sha256: String::new(),
        body: BodyLocation::Inline(Bytes::from(body)),
    };
    Message {
        id: id.into(),
        body: envelope.to_message(),
        ..Message::default()
    }
}

/// `[0,0,…]` of `bytes`: 2 bytes per element, 32 bytes per element as a `serde_json::Value`.
fn zeros(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes);
    text.push('[');
    while text.len() < bytes - 2 {
        text.push_str("0,");
    }
    text.push_str("0]");
    text
}

#[test]
fn hostile_bodies_cost_their_bytes_and_a_broken_message_fails_alone() {
    let body_size = 6 * MIB;
    let mut messages = vec![message(
        "legit",
        "application/json",
        br#"{"id":"L1","event":"order.updated","kind":"order","order":{"id":"7","v":3,"total":1}}"#
            .to_vec(),
    )];
    for i in 0..4 {
        messages.push(message(
            &format!("array-{i}"),
            "application/json",
            zeros(body_size).into(),
        ));
    }
    for i in 0..2 {
        // Every pointer finds something, and the record's data (the whole body) is over the cap.
        let mut object = format!(
            r#"{{"id":"O{i}","event":"e","kind":"order","order":{{"id":"{i}","v":1}},"x":"#
        );
        object.push_str(&zeros(body_size - object.len() - 1));
        object.push('}');
        messages.push(message(
            &format!("object-{i}"),
            "application/json",
            object.into(),
        ));
    }
    for i in 0..2 {
        let part = b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\r\n";
        let mut multipart = part.repeat(body_size / part.len());
        multipart.extend_from_slice(b"--b--\r\n");
        messages.push(message(
            &format!("parts-{i}"),
            "multipart/form-data; boundary=b",
            multipart,
        ));
    }
    messages.push(Message {
        id: "broken".into(),
        body: "{not an envelope".into(),
        ..Message::default()
    });
    let bodies: usize = 8 * body_size;

    let store = Arc::new(MemoryStore::new(64 * 1024));
    let blobs = Arc::new(MemoryBlobs::new("bodies"));
    let consumer = Consumer::new(
        store.clone(),
        Some(blobs),
        Arc::new(FixedClock::new(1_700_000_000_000)),
        30,
        10,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let profiler = dhat::Profiler::builder().testing().build();
    let failures = runtime.block_on(consumer.process_batch_detailed(messages));
    let peak = dhat::HeapStats::get().max_bytes;
    drop(profiler);

    let failed: Vec<(&str, bool)> = failures
        .iter()
        .map(|f| (f.id.as_str(), f.retryable))
        .collect();
    assert_eq!(
        failed,
        [("broken", false)],
        "only the broken message fails, for good"
    );
    assert_eq!(
        store.events().len(),
        9,
        "every hostile body is stored whole, with its batch-mates"
    );
    let record = runtime
        .block_on(store.get_record("raw", "order", "7"))
        .unwrap()
        .unwrap();
    assert_eq!(record.data["order"]["total"], 1);
    assert!(
        runtime
            .block_on(store.get_record("raw", "order", "0"))
            .unwrap()
            .is_none(),
        "a record over 350 KB is skipped, its event kept"
    );
    let parts = store
        .events()
        .into_iter()
        .find(|e| e.event_id == "parts-0")
        .unwrap()
        .parts;
    assert!(parts.unwrap()["error"].as_str().unwrap().contains("parts"));

    // The batch's bodies are held once each (decoded from their messages); everything the rules,
    // records and summaries add stays within 16 MiB (6 MiB measured). A parsed `Value` of one
    // of these bodies is over 100 MiB.
    let overhead = peak.saturating_sub(bodies);
    eprintln!(
        "peak live heap {} MiB for {} MiB of bodies",
        peak / MIB,
        bodies / MIB
    );
    assert!(
        overhead <= 16 * MIB,
        "peak {peak} bytes: {} MiB above the bodies",
        overhead / MIB
    );
}

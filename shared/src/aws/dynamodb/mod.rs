//! DynamoDB: one table, partition key `pk` only. Events are `e#{route}#{dedup key}`, records
//! `r#{route}#{type}#{id}`. Both writes are single conditional PutItems: no transactions and no
//! read-before-write on the hot path.
//!
//! With the event index on (the template's `EventIndex`), event items also carry `ix`
//! (`{route}#{shard}`) and `ix_sk` (`{stored ms, 13 digits}#{event id}`), the keys of the global
//! secondary index [`EVENT_INDEX`]: a route's events by stored time, newest first, with a cursor.

//!
//! This file is the store and the `EventStore` port; `item.rs` turns events and records into items
//! and back; `index.rs` is the event index's keys and the reads that only the CLI makes (scans,
//! the index's queries). The hydrators' token cache lives in the same table, at the end of this file.

mod index;
mod item;

use async_trait::async_trait;

use crate::model::value::RecordVersion;
use crate::ports::{
    EventItem, EventStore, Lease, PutOutcome, RecordItem, StoreError, UpsertOutcome,
};
use index::index_keys;
pub use index::{
    EVENT_INDEX, EVENT_INDEX_SHARDS, EventPage, RecordPage, index_sort_key, is_cursor,
};
pub use item::MAX_INLINE_BODY;
use item::{
    Item, Reader, event_from_item, event_key, event_to_item, is_condition_failure, n,
    record_from_item, record_key, record_to_item, s, store_error, version_value,
};

pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Set when event items carry the index's keys, stamped with this clock's stored time.
    index_clock: Option<std::sync::Arc<dyn crate::clock::Clock>>,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            index_clock: None,
        }
    }

    /// Writes the event index's keys on every event item, its stored time from `clock`.
    pub fn with_event_index(mut self, clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
        self.index_clock = Some(clock);
        self
    }

    fn event_item(&self, event: &EventItem) -> Item {
        let mut item = event_to_item(event);
        if let Some(clock) = &self.index_clock {
            let (partition, sort) = index_keys(event, clock.now_ms());
            item.insert("ix".into(), s(partition));
            item.insert("ix_sk".into(), s(sort));
        }
        item
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    fn max_inline_body(&self) -> usize {
        MAX_INLINE_BODY
    }

    async fn put_event(&self, event: &EventItem) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.event_item(event)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Inserted),
            Err(error) if is_condition_failure(&error) => Ok(PutOutcome::Duplicate),
            Err(error) => Err(store_error(&error)),
        }
    }

    async fn replace_event(&self, event: &EventItem) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.event_item(event)))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| store_error(&error))
    }

    async fn upsert_record(&self, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
        // [`RecordItem::upsert_over`] as two conditions: a version of the stored kind (N or S) wins
        // when it is at least as new (DynamoDB compares N exactly); only when that fails, a version
        // of the other kind wins when it was received later. Stale writes cost one more attempt.
        let kind = s(match record.version {
            RecordVersion::Number(_) => "N",
            RecordVersion::Text(_) => "S",
        });
        let item = record_to_item(record);
        let put = |condition: &str| {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(condition)
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":kind", kind.clone())
        };
        let same_kind = put("attribute_not_exists(pk) OR (attribute_type(#v, :kind) AND #v <= :v)")
            .expression_attribute_values(":v", version_value(&record.version))
            .send()
            .await;
        match same_kind {
            Ok(_) => return Ok(UpsertOutcome::Written),
            Err(error) if is_condition_failure(&error) => {}
            Err(error) => return Err(store_error(&error)),
        }
        let other_kind = put("NOT attribute_type(#v, :kind) AND #u <= :u")
            .expression_attribute_names("#u", "updated")
            .expression_attribute_values(":u", n(record.updated_at_ms))
            .send()
            .await;
        match other_kind {
            Ok(_) => Ok(UpsertOutcome::KindChanged),
            Err(error) if is_condition_failure(&error) => Ok(UpsertOutcome::Stale),
            Err(error) => Err(store_error(&error)),
        }
    }

    async fn get_event(
        &self,
        route: &str,
        dedup_key: &str,
    ) -> Result<Option<EventItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(event_key(route, dedup_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        output.item().map(event_from_item).transpose()
    }

    async fn get_record(
        &self,
        route: &str,
        record_type: &str,
        record_id: &str,
    ) -> Result<Option<RecordItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(record_key(route, record_type, record_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        output.item().map(record_from_item).transpose()
    }
}

/// Access tokens of hydrators live in the same table, at `t#{key}`, with their refresh lease.
pub(super) fn token_key(key: &str) -> String {
    format!("t#{key}")
}

#[async_trait]
impl crate::ports::TokenCache for DynamoStore {
    async fn load_token(&self, key: &str) -> Result<Option<crate::ports::CachedToken>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(token_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let r = Reader(item);
        let Some(access_token) = r.opt_s("access_token") else {
            return Ok(None); // only a lease so far
        };
        Ok(Some(crate::ports::CachedToken {
            access_token,
            api_domain: r.opt_s("api_domain").unwrap_or_default(),
            expires_at_ms: r.n("expires_at_ms")?,
        }))
    }

    async fn store_token(
        &self,
        key: &str,
        token: &crate::ports::CachedToken,
    ) -> Result<(), StoreError> {
        // A whole-item put: the new token, and no lease any more.
        let item: Item = [
            ("pk".to_owned(), s(token_key(key))),
            ("kind".to_owned(), s("token")),
            ("access_token".to_owned(), s(&token.access_token)),
            ("api_domain".to_owned(), s(&token.api_domain)),
            ("expires_at_ms".to_owned(), n(token.expires_at_ms)),
            // TTL removes a token a day after it expired.
            (
                "expires_at".to_owned(),
                n(token.expires_at_ms / 1000 + 86_400),
            ),
        ]
        .into_iter()
        .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        Ok(())
    }

    async fn try_lease(&self, lease: Lease<'_>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(token_key(lease.key)))
            .update_expression("SET lease_holder = :h, lease_until = :u")
            .condition_expression(
                "attribute_not_exists(lease_until) OR lease_until < :now OR lease_holder = :h",
            )
            .expression_attribute_values(":h", s(lease.holder))
            .expression_attribute_values(":u", n(lease.until_ms))
            .expression_attribute_values(":now", n(lease.now_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_error(&error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoredBody;
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use bytes::Bytes;
    use index::{index_shard, record_key_candidates};
    use item::{PACKED, item_size};
    use serde_json::json;

    #[test]
    fn event_items_round_trip() {
        let event = EventItem {
            route: "raw".into(),
            dedup_key: "d1".into(),
            delivery_id: Some("provider-delivery-1".into()),
            event_id: "e1".into(),
            provider: "catch-raw".into(),
            event_type: Some("t".into()),
            received_at_ms: 5,
            test_ping: false,
            method: "POST".into(),
            path: "/".into(),
            query: "a=1".into(),
            headers: vec![("content-type".into(), "x/y".into())],
            source_ip: None,
            body_len: 3,
            body_sha256: "abc".into(),
            body: StoredBody::Inline(Bytes::from_static(b"\x00\x01\x02")),
            parts: Some(json!([{"name": "f"}])),
            records: vec!["order/1".into()],
            expires_at: Some(99),
        };
        assert_eq!(event_from_item(&event_to_item(&event)).unwrap(), event);
        let external = EventItem {
            body: StoredBody::External {
                bucket: "b".into(),
                key: "k".into(),
            },
            expires_at: None,
            parts: None,
            records: vec![],
            ..event
        };
        assert_eq!(
            event_from_item(&event_to_item(&external)).unwrap(),
            external
        );
    }

    /// A 2 KiB GitHub `issues` webhook (the shape of GitHub's documented payloads) with the
    /// headers a Function URL passes on.
    pub(crate) fn github_issue_event() -> EventItem {
        let user = |login: &str, id: u64| {
            json!({"login": login, "id": id, "node_id": "MDQ6VXNlcjE=", "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
                   "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}"),
                   "repos_url": format!("https://api.github.com/users/{login}/repos"), "type": "User", "site_admin": false})
        };
        let body = json!({
            "action": "opened",
            "issue": {"url": "https://api.github.com/repos/octo-org/hello-world/issues/1347",
                "repository_url": "https://api.github.com/repos/octo-org/hello-world",
                "comments_url": "https://api.github.com/repos/octo-org/hello-world/issues/1347/comments",
                "html_url": "https://github.com/octo-org/hello-world/issues/1347", "id": 1_987_654_321u64,
                "node_id": "I_kwDOABCD5M5abcde", "number": 1347, "title": "Found a bug in the webhook receiver",
                "user": user("octocat", 583_231), "labels": [{"id": 208_045_946, "name": "bug", "color": "d73a4a", "default": true}],
                "state": "open", "locked": false, "comments": 0, "created_at": "2026-11-22T19:03:58Z",
                "updated_at": "2026-11-22T19:03:58Z", "author_association": "OWNER",
                "body": "I'm having a problem with this. Steps: send a signed webhook, watch the logs."},
            "repository": {"id": 1_296_269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "hello-world",
                "full_name": "octo-org/hello-world", "private": false, "owner": user("octo-org", 9_919),
                "html_url": "https://github.com/octo-org/hello-world", "url": "https://api.github.com/repos/octo-org/hello-world",
                "default_branch": "main", "visibility": "public"},
            "sender": user("octocat", 583_231)
        })
        .to_string();
        let headers = [
            (
                "host",
                "abcdefghijklmnopqrstuvwxyz234567.lambda-url.us-east-1.on.aws",
            ),
            ("x-amzn-tls-cipher-suite", "TLS_AES_128_GCM_SHA256"),
            ("x-amzn-tls-version", "TLSv1.3"),
            (
                "x-amzn-trace-id",
                "Root=1-674a1b2c-0123456789abcdef01234567",
            ),
            ("x-forwarded-for", "140.82.115.42"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-proto", "https"),
            ("accept", "*/*"),
            ("content-type", "application/json"),
            ("user-agent", "GitHub-Hookshot/a1b2c3d"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-github-event", "issues"),
            ("x-github-hook-id", "292430182"),
            ("x-github-hook-installation-target-id", "79929171"),
            ("x-github-hook-installation-target-type", "repository"),
            (
                "x-hub-signature-256",
                "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c",
            ),
        ];
        EventItem {
            route: "github".into(),
            dedup_key: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            delivery_id: None,
            event_id: "019ab0c2-6f00-7000-8000-000000000001".into(),
            provider: "github".into(),
            event_type: Some("issues".into()),
            received_at_ms: 1_795_374_237_000,
            test_ping: false,
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            source_ip: Some("140.82.115.42".into()),
            body_len: body.len() as u64,
            body_sha256: crate::model::request::sha256_hex(body.as_bytes()),
            body: StoredBody::Inline(Bytes::from(body)),
            parts: None,
            records: vec![],
            expires_at: Some(1_797_966_237),
        }
    }

    #[test]
    fn a_2_kib_json_webhook_is_stored_in_two_write_units_not_three_and_reads_back_exactly() {
        let event = github_issue_event();
        let StoredBody::Inline(body) = &event.body else {
            unreachable!()
        };
        assert!((1900..2300).contains(&body.len()), "{} bytes", body.len());
        let mut item = event_to_item(&event);
        assert!(item.contains_key(PACKED) && !item.contains_key("body"));
        // With the event index's keys, as the default deploy writes it.
        let (partition, sort) = index_keys(&event, 1_795_000_000_000);
        item.insert("ix".into(), s(partition));
        item.insert("ix_sk".into(), s(sort));
        let size = item_size(&item);
        assert!(size <= 2048, "{size} bytes: more than two write units");
        let headers = serde_json::to_string(&event.headers).unwrap();
        let packed = item[PACKED].as_b().unwrap().as_ref().len();
        let unpacked = size - (PACKED.len() + packed)
            + "headers".len()
            + headers.len()
            + "body".len()
            + body.len();
        assert!(
            unpacked > 2048,
            "unpacked, the same item takes three write units ({unpacked} bytes)"
        );
        eprintln!("a 2 KiB GitHub webhook: event item {size} bytes packed, {unpacked} unpacked");
        assert_eq!(event_from_item(&item).unwrap(), event);
        // A corrupt packed value is an error, not a panic or a huge allocation.
        let mut broken = item.clone();
        broken.insert(PACKED.into(), AttributeValue::B(Blob::new(vec![1, 2, 3])));
        assert!(event_from_item(&broken).is_err());
    }

    /// The index's keys: one of its shards by the event id (a replay rewrites the same one), and a
    /// sort key that orders by stored time as text, which is what the cursor compares.
    #[test]
    fn index_keys_shard_by_id_and_sort_by_stored_time() {
        let event = github_issue_event();
        let (partition, sort) = index_keys(&event, 1_795_000_000_123);
        let shard: u32 = partition.rsplit_once('#').unwrap().1.parse().unwrap();
        assert!(partition.starts_with(&format!("{}#", event.route)) && shard < EVENT_INDEX_SHARDS);
        assert_eq!(sort, format!("1795000000123#{}", event.event_id));
        assert!(is_cursor(&sort));
        assert_eq!(
            index_keys(&event, 5).0,
            partition,
            "the same shard at any time"
        );
        assert!(index_keys(&event, 999).1 < index_keys(&event, 1_000).1);
        let shards: std::collections::HashSet<u32> = (0..200)
            .map(|_| index_shard(&uuid::Uuid::now_v7().to_string()))
            .collect();
        assert_eq!(
            shards.len() as u32,
            EVENT_INDEX_SHARDS,
            "ids spread over every shard"
        );
        for bad in [
            "",
            "123#x",
            "179500000012a#x",
            "1795000000123#",
            "no cursor",
        ] {
            assert!(!is_cursor(bad), "{bad}");
        }
    }

    /// An event's `type/id` keys name its records whichever side holds a `/`.
    #[test]
    fn record_keys_of_an_event_split_at_every_slash() {
        assert_eq!(
            record_key_candidates("order/7", None),
            [("order".to_owned(), "7".to_owned())]
        );
        assert_eq!(
            record_key_candidates("a/b/c", None),
            [
                ("a".to_owned(), "b/c".to_owned()),
                ("a/b".to_owned(), "c".to_owned())
            ]
        );
        assert_eq!(
            record_key_candidates("a/b/c", Some("a/b")),
            [("a/b".to_owned(), "c".to_owned())]
        );
        assert!(record_key_candidates("no-slash", None).is_empty());
    }

    #[test]
    fn record_items_round_trip_and_long_keys_are_hashed() {
        let record = RecordItem {
            route: "raw".into(),
            record_type: "order".into(),
            record_id: "x".repeat(600),
            version: RecordVersion::Number("12.5".into()),
            data: json!({"a": [1, 2]}),
            deleted: true,
            event_id: "e".into(),
            updated_at_ms: 1,
        };
        let item = record_to_item(&record);
        assert!(item["pk"].as_s().unwrap().len() < 200);
        assert_eq!(record_from_item(&item).unwrap(), record);
    }
}

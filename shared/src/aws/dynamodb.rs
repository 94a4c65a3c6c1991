//! DynamoDB: one table, partition key `pk` only. Events are `e#{route}#{dedup key}`, records
//! `r#{route}#{type}#{id}`. Both writes are single conditional PutItems: no transactions and no
//! read-before-write on the hot path.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use crate::extract::RecordVersion;
use crate::ports::{
    EventItem, EventStore, PutOutcome, RecordItem, StoreError, StoredBody, UpsertOutcome,
};

/// A DynamoDB item is at most 400 KB including attribute names; keep the body well under that.
pub const MAX_INLINE_BODY: usize = 350 * 1024;

/// DynamoDB partition keys are at most 2048 bytes; long user-supplied parts are hashed.
const MAX_KEY_PART: usize = 512;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }
}

fn key_part(part: &str) -> String {
    if part.len() > MAX_KEY_PART {
        format!("sha256:{}", crate::envelope::sha256_hex(part.as_bytes()))
    } else {
        part.to_owned()
    }
}

pub fn event_key(route: &str, dedup_key: &str) -> String {
    format!("e#{route}#{}", key_part(dedup_key))
}

pub fn record_key(route: &str, record_type: &str, record_id: &str) -> String {
    format!(
        "r#{route}#{}#{}",
        key_part(record_type),
        key_part(record_id)
    )
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn store_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &aws_sdk_dynamodb::error::SdkError<E>,
) -> StoreError {
    let text = super::describe(error);
    let throttled = error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| {
            matches!(
                code,
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
            )
        });
    if throttled {
        StoreError::Throttled(text)
    } else {
        StoreError::Failed(text)
    }
}

fn is_condition_failure<E: ProvideErrorMetadata>(
    error: &aws_sdk_dynamodb::error::SdkError<E>,
) -> bool {
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn event_to_item(event: &EventItem) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(event_key(&event.route, &event.dedup_key)));
    item.insert("kind".into(), s("event"));
    item.insert("route".into(), s(&event.route));
    item.insert("dedup".into(), s(&event.dedup_key));
    item.insert("id".into(), s(&event.event_id));
    item.insert("provider".into(), s(&event.provider));
    if let Some(event_type) = &event.event_type {
        item.insert("type".into(), s(event_type));
    }
    item.insert("received".into(), n(event.received_at_ms));
    if event.test_ping {
        item.insert("test".into(), AttributeValue::Bool(true));
    }
    item.insert("method".into(), s(&event.method));
    item.insert("path".into(), s(&event.path));
    if !event.query.is_empty() {
        item.insert("query".into(), s(&event.query));
    }
    item.insert(
        "headers".into(),
        s(serde_json::to_string(&event.headers).unwrap_or_default()),
    );
    if let Some(ip) = &event.source_ip {
        item.insert("ip".into(), s(ip));
    }
    item.insert("body_len".into(), n(event.body_len));
    item.insert("body_sha256".into(), s(&event.body_sha256));
    match &event.body {
        StoredBody::Inline(bytes) => {
            // Empty binary attributes are allowed for non-key attributes, but skip them to stay compact.
            if !bytes.is_empty() {
                item.insert("body".into(), AttributeValue::B(Blob::new(bytes.to_vec())));
            }
        }
        StoredBody::External { bucket, key } => {
            item.insert("body_bucket".into(), s(bucket));
            item.insert("body_key".into(), s(key));
        }
    }
    if let Some(parts) = &event.parts {
        item.insert("parts".into(), s(parts.to_string()));
    }
    if !event.records.is_empty() {
        item.insert(
            "records".into(),
            AttributeValue::L(event.records.iter().map(s).collect()),
        );
    }
    if let Some(expires_at) = event.expires_at {
        item.insert("expires_at".into(), n(expires_at));
    }
    item
}

struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name).ok_or_else(|| {
            StoreError::Corrupt(format!("attribute `{name}` missing or not a string"))
        })
    }

    fn opt_s(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_s().ok()).cloned()
    }

    fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.0
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("attribute `{name}` missing or not a number"))
            })
    }

    fn bool(&self, name: &str) -> bool {
        self.0
            .get(name)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    }
}

fn event_from_item(item: &Item) -> Result<EventItem, StoreError> {
    let r = Reader(item);
    let headers = serde_json::from_str(&r.s("headers")?)
        .map_err(|e| StoreError::Corrupt(format!("headers: {e}")))?;
    let body = match (r.opt_s("body_bucket"), r.opt_s("body_key")) {
        (Some(bucket), Some(key)) => StoredBody::External { bucket, key },
        _ => StoredBody::Inline(
            item.get("body")
                .and_then(|v| v.as_b().ok())
                .map(|b| Bytes::copy_from_slice(b.as_ref()))
                .unwrap_or_default(),
        ),
    };
    Ok(EventItem {
        route: r.s("route")?,
        dedup_key: r.s("dedup")?,
        event_id: r.s("id")?,
        provider: r.s("provider")?,
        event_type: r.opt_s("type"),
        received_at_ms: r.n("received")?,
        test_ping: r.bool("test"),
        method: r.s("method")?,
        path: r.s("path")?,
        query: r.opt_s("query").unwrap_or_default(),
        headers,
        source_ip: r.opt_s("ip"),
        body_len: r.n("body_len")?,
        body_sha256: r.s("body_sha256")?,
        body,
        parts: r
            .opt_s("parts")
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("parts: {e}")))?,
        records: item
            .get("records")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        expires_at: r.n("expires_at").ok(),
    })
}

fn version_value(version: &RecordVersion) -> AttributeValue {
    match version {
        RecordVersion::Number(text) => AttributeValue::N(text.clone()),
        RecordVersion::Text(text) => AttributeValue::S(text.clone()),
    }
}

fn record_to_item(record: &RecordItem) -> Item {
    let mut item = Item::new();
    item.insert(
        "pk".into(),
        s(record_key(
            &record.route,
            &record.record_type,
            &record.record_id,
        )),
    );
    item.insert("kind".into(), s("record"));
    item.insert("route".into(), s(&record.route));
    item.insert("type".into(), s(&record.record_type));
    item.insert("record_id".into(), s(&record.record_id));
    item.insert("version".into(), version_value(&record.version));
    item.insert("data".into(), s(record.data.to_string()));
    if record.deleted {
        item.insert("deleted".into(), AttributeValue::Bool(true));
    }
    item.insert("event_id".into(), s(&record.event_id));
    item.insert("updated".into(), n(record.updated_at_ms));
    item
}

fn record_from_item(item: &Item) -> Result<RecordItem, StoreError> {
    let r = Reader(item);
    let version = match item.get("version") {
        Some(AttributeValue::N(text)) => RecordVersion::Number(text.clone()),
        Some(AttributeValue::S(text)) => RecordVersion::Text(text.clone()),
        _ => return Err(StoreError::Corrupt("attribute `version` missing".into())),
    };
    Ok(RecordItem {
        route: r.s("route")?,
        record_type: r.s("type")?,
        record_id: r.s("record_id")?,
        version,
        data: serde_json::from_str(&r.s("data")?)
            .map_err(|e| StoreError::Corrupt(format!("data: {e}")))?,
        deleted: r.bool("deleted"),
        event_id: r.s("event_id")?,
        updated_at_ms: r.n("updated")?,
    })
}

impl DynamoStore {
    /// Every item of one kind (`event` or `record`) matching `filters` (attribute = value), read by
    /// a paginated Scan: for the CLI's listings, not for the hot path.
    async fn scan(&self, kind: &str, filters: &[(&str, &str)]) -> Result<Vec<Item>, StoreError> {
        let mut expression = String::from("#kind = :kind");
        let mut request = self
            .client
            .scan()
            .table_name(&self.table)
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":kind", s(kind));
        for (index, (name, value)) in filters.iter().enumerate() {
            expression.push_str(&format!(" AND #f{index} = :f{index}"));
            request = request
                .expression_attribute_names(format!("#f{index}"), *name)
                .expression_attribute_values(format!(":f{index}"), s(*value));
        }
        let mut pages = request
            .filter_expression(expression)
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|e| store_error(&e))?);
        }
        Ok(items)
    }

    /// Stored events, newest first, optionally of one route or with one event id.
    pub async fn scan_events(
        &self,
        route: Option<&str>,
        event_id: Option<&str>,
    ) -> Result<Vec<EventItem>, StoreError> {
        let mut filters = Vec::new();
        if let Some(route) = route {
            filters.push(("route", route));
        }
        if let Some(id) = event_id {
            filters.push(("id", id));
        }
        let mut events = self
            .scan("event", &filters)
            .await?
            .iter()
            .map(event_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| std::cmp::Reverse(e.received_at_ms));
        Ok(events)
    }

    /// Stored records, most recently updated first, optionally of one route and type.
    pub async fn scan_records(
        &self,
        route: Option<&str>,
        record_type: Option<&str>,
    ) -> Result<Vec<RecordItem>, StoreError> {
        let mut filters = Vec::new();
        if let Some(route) = route {
            filters.push(("route", route));
        }
        if let Some(record_type) = record_type {
            filters.push(("type", record_type));
        }
        let mut records = self
            .scan("record", &filters)
            .await?
            .iter()
            .map(record_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| std::cmp::Reverse(r.updated_at_ms));
        Ok(records)
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
            .set_item(Some(event_to_item(event)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Inserted),
            Err(error) if is_condition_failure(&error) => Ok(PutOutcome::Duplicate),
            Err(error) => Err(store_error(&error)),
        }
    }

    async fn upsert_record(&self, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
        // Equal versions overwrite (a redelivery rewrites the same content); a stored version of
        // another type (number vs text) makes the comparison false, and the stored record is kept.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_to_item(record)))
            .condition_expression("attribute_not_exists(pk) OR #v <= :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", version_value(&record.version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(UpsertOutcome::Written),
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
fn token_key(key: &str) -> String {
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

    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(token_key(key)))
            .update_expression("SET lease_holder = :h, lease_until = :u")
            .condition_expression(
                "attribute_not_exists(lease_until) OR lease_until < :now OR lease_holder = :h",
            )
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":u", n(until_ms))
            .expression_attribute_values(":now", n(now_ms))
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
    use serde_json::json;

    #[test]
    fn event_items_round_trip() {
        let event = EventItem {
            route: "raw".into(),
            dedup_key: "d1".into(),
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

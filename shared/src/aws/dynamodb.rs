//! DynamoDB: one table, partition key `pk` only. Events are `e#{route}#{dedup key}`, records
//! `r#{route}#{type}#{id}`. Both writes are single conditional PutItems: no transactions and no
//! read-before-write on the hot path.
//!
//! With the event index on (the template's `EventIndex`), event items also carry `ix`
//! (`{route}#{shard}`) and `ix_sk` (`{stored ms, 13 digits}#{event id}`), the keys of the global
//! secondary index [`EVENT_INDEX`]: a route's events by stored time, newest first, with a cursor.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use crate::model::value::RecordVersion;
use crate::ports::{
    EventItem, EventStore, PutOutcome, RecordItem, StoreError, StoredBody, UpsertOutcome,
};

/// A DynamoDB item is at most 400 KB including attribute names; keep the body well under that.
pub const MAX_INLINE_BODY: usize = 350 * 1024;

/// DynamoDB partition keys are at most 2048 bytes; long user-supplied parts are hashed.
const MAX_KEY_PART: usize = 512;

type Item = HashMap<String, AttributeValue>;

/// The global secondary index of events by route and stored time.
pub const EVENT_INDEX: &str = "by_route_stored";
/// Partitions of one route in the index: a route taking more than one index partition's writes
/// (about 1 000 a second) would otherwise throttle the index, and with it the table's writes. A
/// reader queries every shard; changing the number re-keys the index.
pub const EVENT_INDEX_SHARDS: u32 = 8;

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

/// The shard of an event in the index: from its id, so that a replay rewrites the same partition.
fn index_shard(event_id: &str) -> u32 {
    let hash = event_id.bytes().fold(0u32, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u32::from(byte))
    });
    hash % EVENT_INDEX_SHARDS
}

fn index_partition(route: &str, shard: u32) -> String {
    format!("{route}#{shard}")
}

/// An entry's sort key in the index, which is also a page's cursor ([`is_cursor`]): the stored
/// time, zero-padded so that keys sort as times, then the event id.
pub fn index_sort_key(stored_ms: i64, event_id: &str) -> String {
    format!("{stored_ms:013}#{event_id}")
}

/// The index keys of `event` stored at `stored_ms`.
fn index_keys(event: &EventItem, stored_ms: i64) -> (String, String) {
    (
        index_partition(&event.route, index_shard(&event.event_id)),
        index_sort_key(stored_ms, &event.event_id),
    )
}

/// A page of a route's events from the index, newest stored first.
#[derive(Debug)]
pub struct EventPage {
    /// Each event with the time it was stored (ms).
    pub events: Vec<(EventItem, i64)>,
    /// Where the next (older) page starts, when there is one.
    pub next: Option<String>,
}

/// A page of a route's records from the event index: the records the page's events last wrote.
#[derive(Debug)]
pub struct RecordPage {
    /// Each record with the time its writing event was stored (ms), where that event's index
    /// entry is.
    pub records: Vec<(RecordItem, i64)>,
    /// Where the next page starts (an event's index entry, as [`EventPage::next`]).
    pub next: Option<String>,
}

/// Events read per round when listing records through the event index (at most; a round reads as
/// many events as the page wants records), and at most per page: a route whose events write
/// records of other types only is not read to its end in one call.
const RECORD_ROUND_EVENTS: usize = 100;
const RECORD_PAGE_MAX_EVENTS: usize = 2_000;

/// The records an event's `type/id` key may name: a type or an id may hold `/` itself, so every
/// split is a candidate (the record's own type and id decide which one it was).
fn record_key_candidates(key: &str, record_type: Option<&str>) -> Vec<(String, String)> {
    key.match_indices('/')
        .map(|(at, _)| (key[..at].to_owned(), key[at + 1..].to_owned()))
        .filter(|(t, _)| record_type.is_none_or(|wanted| wanted == t))
        .collect()
}

/// Whether `cursor` is one [`EventPage::next`] gave: a stored time and an event id.
pub fn is_cursor(cursor: &str) -> bool {
    cursor.split_once('#').is_some_and(|(ms, id)| {
        ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty()
    })
}

fn key_part(part: &str) -> String {
    if part.len() > MAX_KEY_PART {
        format!(
            "sha256:{}",
            crate::model::request::sha256_hex(part.as_bytes())
        )
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
    let refused = error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ValidationException");
    if throttled {
        StoreError::Throttled(text)
    } else if refused {
        StoreError::Refused(text)
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
    if let Some(delivery_id) = &event.delivery_id {
        item.insert("delivery".into(), s(delivery_id));
    }
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
    let headers = serde_json::to_string(&event.headers).unwrap_or_default();
    if let Some(ip) = &event.source_ip {
        item.insert("ip".into(), s(ip));
    }
    item.insert("body_len".into(), n(event.body_len));
    item.insert("body_sha256".into(), s(&event.body_sha256));
    match &event.body {
        StoredBody::Inline(bytes) => match pack(&headers, bytes) {
            // Writes are billed per started KiB of item: headers and body together, deflated, make
            // a 2 KiB JSON webhook two write units instead of three.
            Some(packed) => {
                item.insert(PACKED.into(), AttributeValue::B(Blob::new(packed)));
            }
            None => {
                item.insert("headers".into(), s(headers));
                // Empty binary attributes are allowed for non-key attributes; skip them to stay compact.
                if !bytes.is_empty() {
                    item.insert("body".into(), AttributeValue::B(Blob::new(bytes.to_vec())));
                }
            }
        },
        StoredBody::External { bucket, key } => {
            item.insert("headers".into(), s(headers));
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

/// An item's size as DynamoDB bills it: attribute names plus values (strings and binaries by length,
/// numbers by about one byte per two digits plus one, lists and maps with their per-element bytes).
/// Each started KiB of a write is one write unit. (The cost figures in BENCHMARKS.md use it.)
#[cfg(test)]
fn item_size(item: &Item) -> usize {
    fn value_size(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(text) => text.len(),
            AttributeValue::B(blob) => blob.as_ref().len(),
            AttributeValue::N(number) => number.trim_start_matches('-').len().div_ceil(2) + 1,
            AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
            AttributeValue::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value_size(v))
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
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

/// Attribute holding headers and body deflated together (see [`pack`]).
const PACKED: &str = "z";

/// `headers` (JSON) and `body` as one deflated value: a 4-byte little-endian length of the headers,
/// the headers, the body. `None` when deflating does not make the item smaller.
fn pack(headers: &str, body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let plain = headers.len() + body.len();
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(plain / 2),
        flate2::Compression::default(),
    );
    encoder
        .write_all(&(headers.len() as u32).to_le_bytes())
        .and_then(|()| encoder.write_all(headers.as_bytes()))
        .and_then(|()| encoder.write_all(body))
        .ok()?;
    let packed = encoder.finish().ok()?;
    // The attribute name and the plain layout's two names cost about the same; demand a real saving.
    (packed.len() + 64 < plain).then_some(packed)
}

/// Reverses [`pack`], reading at most `limit` bytes (a corrupt value cannot balloon).
fn unpack(packed: &[u8], limit: u64) -> Result<(String, Bytes), StoreError> {
    use std::io::Read;
    let corrupt = |what: &str| StoreError::Corrupt(format!("packed headers and body: {what}"));
    let mut plain = Vec::new();
    flate2::read::DeflateDecoder::new(packed)
        .take(limit)
        .read_to_end(&mut plain)
        .map_err(|e| corrupt(&e.to_string()))?;
    let (length, rest) = plain
        .split_at_checked(4)
        .ok_or_else(|| corrupt("too short"))?;
    let length = u32::from_le_bytes(length.try_into().map_err(|_| corrupt("length"))?) as usize;
    if length > rest.len() {
        return Err(corrupt("headers overrun"));
    }
    let headers = std::str::from_utf8(&rest[..length])
        .map_err(|_| corrupt("headers are not UTF-8"))?
        .to_owned();
    Ok((headers, Bytes::copy_from_slice(&rest[length..])))
}

fn event_from_item(item: &Item) -> Result<EventItem, StoreError> {
    let r = Reader(item);
    let packed = item.get(PACKED).and_then(|v| v.as_b().ok());
    let (headers, body) = match (packed, r.opt_s("body_bucket"), r.opt_s("body_key")) {
        (Some(packed), _, _) => {
            let body_len: u64 = r.n("body_len")?;
            let (headers, body) = unpack(packed.as_ref(), body_len + 4 + 1024 * 1024)?;
            (headers, StoredBody::Inline(body))
        }
        (None, Some(bucket), Some(key)) => (r.s("headers")?, StoredBody::External { bucket, key }),
        (None, _, _) => (
            r.s("headers")?,
            StoredBody::Inline(
                item.get("body")
                    .and_then(|v| v.as_b().ok())
                    .map(|b| Bytes::copy_from_slice(b.as_ref()))
                    .unwrap_or_default(),
            ),
        ),
    };
    let headers =
        serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt(format!("headers: {e}")))?;
    Ok(EventItem {
        route: r.s("route")?,
        dedup_key: r.s("dedup")?,
        delivery_id: r.opt_s("delivery"),
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

    /// A page of `route`'s events stored in `[since_ms, until_ms)`, newest first, older than
    /// `after` (a previous page's [`EventPage::next`]): one Query per shard of the index for the
    /// page's keys, then the items themselves (the index projects only what a list shows).
    /// Events stored before the index existed are not in it.
    pub async fn query_events(
        &self,
        route: &str,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<EventPage, StoreError> {
        let limit = limit.max(1);
        let low = format!("{:013}", since_ms.unwrap_or(0).max(0));
        // `~` sorts after every digit: no upper bound. An `until` of its own ms excludes that ms.
        let mut high = until_ms.map_or_else(|| "~".to_owned(), |ms| format!("{:013}", ms.max(0)));
        if let Some(after) = after
            && after < high.as_str()
        {
            high = after.to_owned();
        }
        let queries = (0..EVENT_INDEX_SHARDS).map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(EVENT_INDEX)
                .key_condition_expression("ix = :p AND ix_sk BETWEEN :low AND :high")
                .expression_attribute_values(":p", s(index_partition(route, shard)))
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()))
                .scan_index_forward(false)
                // One more than a page: the cursor's own entry comes back (BETWEEN is inclusive).
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .send()
        });
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut truncated = false;
        for page in futures::future::join_all(queries).await {
            let page = page.map_err(|e| store_error(&e))?;
            truncated |= page.last_evaluated_key.is_some();
            for item in page.items.unwrap_or_default() {
                let (Some(pk), Some(sort)) = (
                    item.get("pk").and_then(|v| v.as_s().ok()),
                    item.get("ix_sk").and_then(|v| v.as_s().ok()),
                ) else {
                    continue;
                };
                if Some(sort.as_str()) != after {
                    keys.push((sort.clone(), pk.clone()));
                }
            }
        }
        keys.sort_by(|a, b| b.0.cmp(&a.0));
        let more = truncated || keys.len() > limit;
        keys.truncate(limit);
        let next = more
            .then(|| keys.last().map(|(sort, _)| sort.clone()))
            .flatten();
        let mut items = self
            .get_items(keys.iter().map(|(_, pk)| pk.clone()).collect())
            .await?;
        let mut events = Vec::with_capacity(keys.len());
        for (sort, pk) in keys {
            // Gone between the Query and the read (expired): skipped.
            let Some(item) = items.remove(&pk) else {
                continue;
            };
            let stored_ms = sort
                .split_once('#')
                .and_then(|(ms, _)| ms.parse().ok())
                .unwrap_or_default();
            events.push((event_from_item(&item)?, stored_ms));
        }
        Ok(EventPage { events, next })
    }

    /// A page of `route`'s records (of `record_type`) whose current version an event stored in
    /// `[since_ms, until_ms)` wrote, newest write first, through the event index: each record
    /// comes with the event that last wrote it (its `event_id`), so it is listed once across pages
    /// and a record an older event also touched is not repeated. A page ends after a whole event,
    /// and after at most [`RECORD_PAGE_MAX_EVENTS`] events read, with a cursor to go on.
    pub async fn query_records(
        &self,
        route: &str,
        record_type: Option<&str>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<RecordPage, StoreError> {
        let limit = limit.max(1);
        let mut cursor = after.map(str::to_owned);
        let mut records = Vec::new();
        let mut events_read = 0;
        loop {
            let page = self
                .query_events(
                    route,
                    since_ms,
                    until_ms,
                    (limit - records.len()).clamp(1, RECORD_ROUND_EVENTS),
                    cursor.as_deref(),
                )
                .await?;
            events_read += page.events.len();
            let mut keys: Vec<String> = page
                .events
                .iter()
                .flat_map(|(event, _)| &event.records)
                .flat_map(|key| record_key_candidates(key, record_type))
                .map(|(t, id)| record_key(route, &t, &id))
                .collect();
            keys.sort();
            keys.dedup();
            let items = self.get_items(keys).await?;
            for (position, (event, stored_ms)) in page.events.iter().enumerate() {
                let mut written = Vec::new();
                for key in &event.records {
                    for (t, id) in record_key_candidates(key, record_type) {
                        let Some(item) = items.get(&record_key(route, &t, &id)) else {
                            continue;
                        };
                        let record = record_from_item(item)?;
                        if record.event_id == event.event_id
                            && record.record_type == t
                            && record.record_id == id
                        {
                            written.push((record, *stored_ms));
                        }
                    }
                }
                // Whole events only: the cursor cannot point inside one.
                if !records.is_empty() && records.len() + written.len() > limit {
                    return Ok(RecordPage {
                        records,
                        next: cursor,
                    });
                }
                records.extend(written);
                cursor = Some(index_sort_key(*stored_ms, &event.event_id));
                if records.len() >= limit {
                    let more = position + 1 < page.events.len() || page.next.is_some();
                    return Ok(RecordPage {
                        records,
                        next: cursor.filter(|_| more),
                    });
                }
            }
            if page.next.is_none() || events_read >= RECORD_PAGE_MAX_EVENTS {
                return Ok(RecordPage {
                    records,
                    next: page.next,
                });
            }
            cursor = page.next;
        }
    }

    /// A stored event by its index entry (route, stored time and id: what a listed page knows):
    /// one Query of its shard and one read, where the id alone would need a Scan.
    pub async fn event_by_index_entry(
        &self,
        route: &str,
        stored_ms: i64,
        event_id: &str,
    ) -> Result<Option<EventItem>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EVENT_INDEX)
            .key_condition_expression("ix = :p AND ix_sk = :sort")
            .expression_attribute_values(":p", s(index_partition(route, index_shard(event_id))))
            .expression_attribute_values(":sort", s(index_sort_key(stored_ms, event_id)))
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        let Some(pk) = output
            .items()
            .first()
            .and_then(|item| item.get("pk"))
            .and_then(|v| v.as_s().ok())
            .cloned()
        else {
            return Ok(None);
        };
        match self.get_items(vec![pk.clone()]).await?.remove(&pk) {
            Some(item) => Ok(Some(event_from_item(&item)?)),
            None => Ok(None),
        }
    }

    /// Items by partition key, 100 to a BatchGetItem, retrying what DynamoDB left unprocessed.
    async fn get_items(&self, keys: Vec<String>) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|pk| HashMap::from([("pk".to_owned(), s(pk))]))
                .collect();
            for attempt in 0.. {
                if pending.is_empty() {
                    break;
                }
                if attempt == 5 {
                    return Err(StoreError::Throttled(
                        "BatchGetItem left keys unprocessed five times".into(),
                    ));
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error(&e))?;
                for item in output
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) {
                        found.insert(pk.clone(), item);
                    }
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        Ok(found)
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

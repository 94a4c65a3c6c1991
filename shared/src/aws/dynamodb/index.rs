//! The event index (a global secondary index of events by route and stored time, newest first,
//! with a cursor), and the reads only the CLI makes: the index's queries and the table's scans.

use std::collections::HashMap;

use super::DynamoStore;
use super::item::{Item, event_from_item, record_from_item, record_key, s, store_error};
use crate::ports::{EventItem, RecordItem, StoreError};

/// The global secondary index of events by route and stored time.
pub const EVENT_INDEX: &str = "by_route_stored";
/// Partitions of one route in the index: a route taking more than one index partition's writes
/// (about 1 000 a second) would otherwise throttle the index, and with it the table's writes. A
/// reader queries every shard; changing the number re-keys the index.
pub const EVENT_INDEX_SHARDS: u32 = 8;

/// The shard of an event in the index: from its id, so that a replay rewrites the same partition.
pub(super) fn index_shard(event_id: &str) -> u32 {
    let hash = event_id.bytes().fold(0u32, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u32::from(byte))
    });
    hash % EVENT_INDEX_SHARDS
}

pub(super) fn index_partition(route: &str, shard: u32) -> String {
    format!("{route}#{shard}")
}

/// An entry's sort key in the index, which is also a page's cursor ([`is_cursor`]): the stored
/// time, zero-padded so that keys sort as times, then the event id.
pub fn index_sort_key(stored_ms: i64, event_id: &str) -> String {
    format!("{stored_ms:013}#{event_id}")
}

/// The index keys of `event` stored at `stored_ms`.
pub(super) fn index_keys(event: &EventItem, stored_ms: i64) -> (String, String) {
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
pub(super) const RECORD_ROUND_EVENTS: usize = 100;
pub(super) const RECORD_PAGE_MAX_EVENTS: usize = 2_000;

/// The records an event's `type/id` key may name: a type or an id may hold `/` itself, so every
/// split is a candidate (the record's own type and id decide which one it was).
pub(super) fn record_key_candidates(key: &str, record_type: Option<&str>) -> Vec<(String, String)> {
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

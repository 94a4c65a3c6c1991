//! Events and records as DynamoDB items, and back: keys, attribute values, the packed (deflated)
//! headers and body, and the size DynamoDB bills.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use crate::model::value::RecordVersion;
use crate::ports::{EventItem, RecordItem, StoreError, StoredBody};

/// A DynamoDB item is at most 400 KB including attribute names; keep the body well under that.
pub const MAX_INLINE_BODY: usize = 350 * 1024;

/// DynamoDB partition keys are at most 2048 bytes; long user-supplied parts are hashed.
pub(super) const MAX_KEY_PART: usize = 512;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn key_part(part: &str) -> String {
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

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn store_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &aws_sdk_dynamodb::error::SdkError<E>,
) -> StoreError {
    let text = crate::aws::describe(error);
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

pub(super) fn is_condition_failure<E: ProvideErrorMetadata>(
    error: &aws_sdk_dynamodb::error::SdkError<E>,
) -> bool {
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

pub(super) fn event_to_item(event: &EventItem) -> Item {
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
pub(super) fn item_size(item: &Item) -> usize {
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

pub(super) struct Reader<'a>(pub(super) &'a Item);

impl Reader<'_> {
    pub(super) fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name).ok_or_else(|| {
            StoreError::Corrupt(format!("attribute `{name}` missing or not a string"))
        })
    }

    pub(super) fn opt_s(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_s().ok()).cloned()
    }

    pub(super) fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.0
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("attribute `{name}` missing or not a number"))
            })
    }

    pub(super) fn bool(&self, name: &str) -> bool {
        self.0
            .get(name)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false)
    }
}

/// Attribute holding headers and body deflated together (see [`pack`]).
pub(super) const PACKED: &str = "z";

/// `headers` (JSON) and `body` as one deflated value: a 4-byte little-endian length of the headers,
/// the headers, the body. `None` when deflating does not make the item smaller.
pub(super) fn pack(headers: &str, body: &[u8]) -> Option<Vec<u8>> {
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
pub(super) fn unpack(packed: &[u8], limit: u64) -> Result<(String, Bytes), StoreError> {
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

pub(super) fn event_from_item(item: &Item) -> Result<EventItem, StoreError> {
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

pub(super) fn version_value(version: &RecordVersion) -> AttributeValue {
    match version {
        RecordVersion::Number(text) => AttributeValue::N(text.clone()),
        RecordVersion::Text(text) => AttributeValue::S(text.clone()),
    }
}

pub(super) fn record_to_item(record: &RecordItem) -> Item {
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

pub(super) fn record_from_item(item: &Item) -> Result<RecordItem, StoreError> {
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

//! `hookcatch events` and `hookcatch records`: readable tables or JSON lines, from the local store
//! or from the deployed DynamoDB table (`--aws`).

use base64::Engine;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use hookcatch::Envelope;
use hookcatch::ports::{EventItem, RecordItem, StoredBody};
use serde_json::{Value, json};

use crate::store::QueueEntry;

/// An event as shown: a stored one, or one still in the queue (queued, retrying, dead).
pub struct EventView {
    pub id: String,
    pub route: String,
    pub dedup_key: Option<String>,
    /// The provider's own delivery id, when a header carried one.
    pub delivery_id: Option<String>,
    pub status: &'static str,
    pub received_at_ms: i64,
    pub event_type: Option<String>,
    pub body: Option<bytes::Bytes>,
    pub detail: Value,
}

pub fn time_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Parses `--since`: an RFC 3339 time, or a duration back from now such as `90s`, `15m`, `2h`, `7d`.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().map_err(|_| {
        format!("--since `{text}`: use an RFC 3339 time or a duration like 15m, 2h, 7d")
    })?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("--since `{text}`: the unit must be s, m, h or d")),
    };
    Ok(now_ms - amount * unit_ms)
}

fn body_json(body: &bytes::Bytes) -> Value {
    match std::str::from_utf8(body) {
        Ok(text) => json!({ "body": text }),
        Err(_) => json!({ "body_base64": base64::engine::general_purpose::STANDARD.encode(body) }),
    }
}

impl EventView {
    pub fn from_stored(event: EventItem) -> EventView {
        let body = match &event.body {
            StoredBody::Inline(bytes) => Some(bytes.clone()),
            StoredBody::External { .. } => None,
        };
        let detail = json!({
            "provider": event.provider,
            "method": event.method,
            "path": event.path,
            "query": event.query,
            "headers": event.headers,
            "source_ip": event.source_ip,
            "body_len": event.body_len,
            "body_sha256": event.body_sha256,
            "body_location": match &event.body {
                StoredBody::Inline(_) => Value::Null,
                StoredBody::External { bucket, key } => json!(format!("s3://{bucket}/{key}")),
            },
            "parts": event.parts,
            "records": event.records,
            "test_ping": event.test_ping,
        });
        EventView {
            id: event.event_id,
            route: event.route,
            dedup_key: Some(event.dedup_key),
            delivery_id: event.delivery_id,
            status: "stored",
            received_at_ms: event.received_at_ms,
            event_type: event.event_type,
            body,
            detail,
        }
    }

    pub fn from_queue(entry: &QueueEntry) -> Option<EventView> {
        let envelope = Envelope::from_message(&entry.message).ok()?;
        let body = match &envelope.body {
            hookcatch::model::envelope::BodyLocation::Inline(bytes) => Some(bytes.clone()),
            hookcatch::model::envelope::BodyLocation::External { .. } => None,
        };
        // Ingest leaves the hash to the consumer (v2 envelopes); show it for queued ones too.
        let body_sha256 = match (&body, envelope.body_sha256.is_empty()) {
            (Some(bytes), true) => hookcatch::model::request::sha256_hex(bytes),
            _ => envelope.body_sha256.clone(),
        };
        let status = match (entry.dead, entry.last_error.is_some()) {
            (true, _) => "dead",
            (false, true) => "retrying",
            (false, false) => "queued",
        };
        Some(EventView {
            id: envelope.id.clone(),
            route: envelope.route.clone(),
            dedup_key: None,
            delivery_id: envelope.delivery_id.clone(),
            status,
            received_at_ms: envelope.received_at_ms,
            event_type: None,
            body,
            detail: json!({
                "queue_seq": entry.seq,
                "attempts": entry.attempts,
                "last_error": entry.last_error,
                "method": envelope.method,
                "path": envelope.path,
                "query": envelope.query,
                "headers": envelope.headers,
                "body_len": envelope.body_len,
                "body_sha256": body_sha256,
            }),
        })
    }

    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "id": self.id,
            "route": self.route,
            "dedup_key": self.dedup_key,
            "delivery_id": self.delivery_id,
            "status": self.status,
            "received_at": time_text(self.received_at_ms),
            "event_type": self.event_type,
        });
        if let (Some(map), Some(detail)) = (value.as_object_mut(), self.detail.as_object()) {
            map.extend(detail.clone());
            if let Some(body) = &self.body {
                map.extend(body_json(body).as_object().cloned().unwrap_or_default());
            }
        }
        value
    }
}

pub fn events_table(events: &[EventView]) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "received",
        "route",
        "status",
        "type",
        "dedup key",
        "id",
        "bytes",
    ]);
    for event in events {
        table.add_row([
            time_text(event.received_at_ms),
            event.route.clone(),
            event.status.to_owned(),
            event.event_type.clone().unwrap_or_default(),
            event.dedup_key.clone().unwrap_or_default(),
            event.id.clone(),
            event.detail["body_len"].to_string(),
        ]);
    }
    table.to_string()
}

pub fn record_json(record: &RecordItem) -> Value {
    json!({
        "route": record.route,
        "type": record.record_type,
        "id": record.record_id,
        "version": match &record.version {
            hookcatch::model::value::RecordVersion::Number(n) => n.clone(),
            hookcatch::model::value::RecordVersion::Text(t) => t.clone(),
        },
        "deleted": record.deleted,
        "event_id": record.event_id,
        "updated_at": time_text(record.updated_at_ms),
        "data": record.data,
    })
}

pub fn records_table(records: &[RecordItem]) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "updated", "route", "type", "id", "version", "deleted", "data",
    ]);
    for record in records {
        let mut data = record.data.to_string();
        if data.len() > 60 {
            let cut = (0..=60)
                .rev()
                .find(|i| data.is_char_boundary(*i))
                .unwrap_or(0);
            data.truncate(cut);
            data.push('…');
        }
        let row = record_json(record);
        table.add_row([
            time_text(record.updated_at_ms),
            record.route.clone(),
            record.record_type.clone(),
            record.record_id.clone(),
            row["version"].as_str().unwrap_or_default().to_owned(),
            record.deleted.to_string(),
            data,
        ]);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_times() {
        assert_eq!(
            parse_since("15m", 1_000_000_000).unwrap(),
            1_000_000_000 - 900_000
        );
        assert_eq!(
            parse_since("2026-01-01T00:00:00Z", 0).unwrap(),
            1_767_225_600_000
        );
        assert!(parse_since("yesterday", 0).is_err());
        assert!(parse_since("5w", 0).is_err());
    }

    #[test]
    fn queued_events_show_the_body_hash_ingest_left_to_the_consumer() {
        let envelope = hookcatch::model::envelope::Envelope {
            v: hookcatch::model::envelope::SCHEMA_VERSION,
            id: "e1".into(),
            route: "raw".into(),
            provider: "catch-raw".into(),
            received_at_ms: 0,
            delivery_id: None,
            test_ping: false,
            hydrate: None,
            rules: Default::default(),
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![],
            source_ip: None,
            body_len: 3,
            body_sha256: String::new(),
            body: hookcatch::model::envelope::BodyLocation::Inline(bytes::Bytes::from_static(
                b"abc",
            )),
        };
        let entry = QueueEntry {
            seq: 1,
            message: envelope.to_message(),
            dead: false,
            attempts: 0,
            last_error: None,
        };
        let view = EventView::from_queue(&entry).unwrap().to_json();
        assert_eq!(view["status"], "queued");
        assert_eq!(
            view["body_sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

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
    /// The body as shown: the stored bytes, or their text with the provider's body secrets masked.
    pub body: Option<bytes::Bytes>,
    pub body_masked: bool,
    pub detail: Value,
}

/// The body as it may be shown: secrets the provider writes into bodies masked (the stored bytes and
/// their `body_sha256` stay exact).
fn shown_body(provider: &str, body: Option<bytes::Bytes>) -> (Option<bytes::Bytes>, bool) {
    let masked = body.as_ref().and_then(|bytes| {
        hookcatch::ProviderKind::from_name(provider)
            .and_then(|kind| hookcatch::providers::mask_body_secrets(kind, bytes))
    });
    match masked {
        Some(text) => (Some(bytes::Bytes::from(text)), true),
        None => (body, false),
    }
}

/// A character a terminal may act on rather than print: C0 and C1 controls, DEL, and the bidi
/// overrides that reorder what is shown.
fn is_terminal_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Stored text for a table cell: controls shown as `\u{1b}`, so stored bytes cannot move the
/// cursor, retitle the window or write the clipboard.
/// What `refusals --aws` prints: when, which route, the status and reason the sender got, from where.
pub fn refusals_table(refusals: &[crate::aws::LoggedRefusal]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["refused at", "route", "status", "reason", "from"]);
    for refusal in refusals {
        table.add_row([
            time_text(refusal.at_ms),
            terminal_safe(&refusal.route),
            refusal.status.map(|s| s.to_string()).unwrap_or_default(),
            terminal_safe(&refusal.reason),
            terminal_safe(&refusal.source_ip),
        ]);
    }
    table.to_string()
}

pub fn terminal_safe(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if is_terminal_control(c) {
            safe.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            safe.push(c);
        }
    }
    safe
}

/// JSON for a terminal or a pipe: serde_json escapes C0 controls; DEL, C1 and bidi controls are
/// escaped here too (`\u009b`), which only ever occur inside strings, so the JSON means the same.
pub fn json_text(value: &Value, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    if !text.chars().any(is_terminal_control) {
        return text;
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // Pretty output's newlines are outside strings (serde_json escapes those inside): keep them.
        if is_terminal_control(c) && c != '\n' {
            safe.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            safe.push(c);
        }
    }
    safe
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

/// Parses a time flag (`what` names it in errors): an RFC 3339 time, or a duration back from now
/// such as `90s`, `15m`, `2h`, `7d`.
pub fn parse_time(what: &str, text: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().map_err(|_| {
        format!("{what} `{text}`: use an RFC 3339 time or a duration like 15m, 2h, 7d")
    })?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{what} `{text}`: the unit must be s, m, h or d")),
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
        let (body, body_masked) = shown_body(&event.provider, body);
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
            body_masked,
            detail,
        }
    }

    pub fn from_queue(entry: &QueueEntry) -> Option<EventView> {
        let status = match (entry.dead, entry.last_error.is_some()) {
            (true, _) => "dead",
            (false, true) => "retrying",
            (false, false) => "queued",
        };
        Self::from_message(
            &entry.message,
            status,
            json!({
                "queue_seq": entry.seq,
                "attempts": entry.attempts,
                "last_error": entry.last_error,
            }),
        )
    }

    /// A message of the deployed stack's dead-letter queue (its failure is in the consumer's log).
    pub fn from_dead_letter(letter: &crate::aws::DeadLetter) -> Option<EventView> {
        Self::from_message(
            &letter.body,
            "dead",
            json!({
                "dlq_message_id": letter.message_id,
                "receives": letter.receives,
                "first_sent_at": letter.sent_ms.map(time_text),
            }),
        )
    }

    /// A queued message (an envelope) shown as an event of `status`, with `extra` in its detail.
    fn from_message(message: &str, status: &'static str, extra: Value) -> Option<EventView> {
        let envelope = Envelope::from_message(message).ok()?;
        let body = match &envelope.body {
            hookcatch::model::envelope::BodyLocation::Inline(bytes) => Some(bytes.clone()),
            hookcatch::model::envelope::BodyLocation::External { .. } => None,
        };
        // Ingest leaves the hash to the consumer (v2 envelopes); show it for queued ones too.
        let body_sha256 = match (&body, envelope.body_sha256.is_empty()) {
            (Some(bytes), true) => hookcatch::model::request::sha256_hex(bytes),
            _ => envelope.body_sha256.clone(),
        };
        let (body, body_masked) = shown_body(&envelope.provider, body);
        let mut detail = json!({
            "test_ping": envelope.test_ping,
            "method": envelope.method,
            "path": envelope.path,
            "query": envelope.query,
            "headers": envelope.headers,
            "body_len": envelope.body_len,
            "body_sha256": body_sha256,
        });
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        Some(EventView {
            id: envelope.id.clone(),
            route: envelope.route.clone(),
            dedup_key: None,
            delivery_id: envelope.delivery_id.clone(),
            status,
            received_at_ms: envelope.received_at_ms,
            event_type: None,
            body,
            body_masked,
            detail,
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
            if self.body_masked {
                map.insert("body_masked".into(), true.into());
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
        "test",
        "type",
        "dedup key",
        "id",
        "bytes",
    ]);
    for event in events {
        table.add_row([
            time_text(event.received_at_ms),
            terminal_safe(&event.route),
            event.status.to_owned(),
            if event.detail["test_ping"] == true {
                "test"
            } else {
                ""
            }
            .to_owned(),
            terminal_safe(event.event_type.as_deref().unwrap_or_default()),
            terminal_safe(event.dedup_key.as_deref().unwrap_or_default()),
            terminal_safe(&event.id),
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
            terminal_safe(&record.route),
            terminal_safe(&record.record_type),
            terminal_safe(&record.record_id),
            terminal_safe(row["version"].as_str().unwrap_or_default()),
            record.deleted.to_string(),
            terminal_safe(&data),
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
            parse_time("--since", "15m", 1_000_000_000).unwrap(),
            1_000_000_000 - 900_000
        );
        assert_eq!(
            parse_time("--since", "2026-01-01T00:00:00Z", 0).unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse_time("--until", "yesterday", 0).unwrap_err(),
            "--until `yesterday`: use an RFC 3339 time or a duration like 15m, 2h, 7d"
        );
        assert!(parse_time("--since", "5w", 0).is_err());
    }

    #[test]
    fn stored_text_cannot_act_on_the_terminal() {
        assert_eq!(terminal_safe("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(
            terminal_safe("\x1b]52;c;aGk=\x07\u{9b}\u{202e}x"),
            "\\u{1b}]52;c;aGk=\\u{7}\\u{9b}\\u{202e}x"
        );
        let hostile = json!({"type": "order\u{9b}31m\x1b[2J\u{7f}\u{202e}", "ok": "é"});
        for pretty in [false, true] {
            let text = json_text(&hostile, pretty);
            assert!(
                !text.chars().any(|c| is_terminal_control(c) && c != '\n'),
                "{text}"
            );
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, hostile, "the JSON means the same");
        }
        let mut view = EventView::from_stored(stored_event("catch-raw", b"{}"));
        view.event_type = Some("\x1b[2Jpwned".into());
        view.dedup_key = Some("\u{9b}31m".into());
        let table = events_table(&[view]);
        assert!(
            !table.contains('\x1b') && !table.contains('\u{9b}'),
            "{table}"
        );
        assert!(table.contains("\\u{1b}[2Jpwned"), "{table}");
    }

    fn stored_event(provider: &str, body: &'static [u8]) -> EventItem {
        EventItem {
            route: "r".into(),
            dedup_key: "k".into(),
            delivery_id: None,
            event_id: "e1".into(),
            provider: provider.into(),
            event_type: None,
            received_at_ms: 0,
            test_ping: false,
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![],
            source_ip: None,
            body_len: body.len() as u64,
            body_sha256: hookcatch::model::request::sha256_hex(body),
            body: StoredBody::Inline(bytes::Bytes::from_static(body)),
            parts: None,
            records: vec![],
            expires_at: None,
        }
    }

    #[test]
    fn body_secrets_are_masked_in_every_display_and_the_hash_is_the_stored_bytes() {
        let body: &'static [u8] =
            br#"{"channel_id":"1","token":"dev-zoho-channel-token","ids":["2"]}"#;
        let view = EventView::from_stored(stored_event("zoho-crm", body)).to_json();
        assert_eq!(
            view["body"],
            r#"{"channel_id":"1","token":"REDACTED","ids":["2"]}"#
        );
        assert_eq!(view["body_masked"], true);
        assert_eq!(
            view["body_sha256"],
            hookcatch::model::request::sha256_hex(body)
        );
        for pretty in [false, true] {
            assert!(!json_text(&view, pretty).contains("dev-zoho-channel-token"));
        }
        // The same body on a route whose provider puts no secret in bodies is shown as stored.
        let view = EventView::from_stored(stored_event("catch-raw", body)).to_json();
        assert_eq!(view["body"], std::str::from_utf8(body).unwrap());
        assert!(view.get("body_masked").is_none());
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
            replay: false,
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

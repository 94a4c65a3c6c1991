//! Floor 2: what the inspection commands and the console show of events, records, routes, dead
//! letters and refusals, from either home (this machine's store, a deployed stack): the views, and
//! the tables the CLI prints of them.

use base64::Engine;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use hookcatch::Envelope;
use hookcatch::ports::{EventItem, RecordItem, StoredBody};
use serde_json::{Value, json};

use crate::project::config::ConfigFile;
use crate::store::QueueEntry;
use crate::term::{terminal_safe, time_text};

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

/// What `refusals --aws` prints: when, which route, the status and reason the sender got, from where.
pub fn refusals_table(refusals: &[LoggedRefusal]) -> String {
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
    pub fn from_dead_letter(letter: &DeadLetter) -> Option<EventView> {
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

/// A message in the dead-letter queue, as listed.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    /// When it was first sent (SQS's `SentTimestamp`, kept when a message moves to the DLQ).
    pub sent_ms: Option<i64>,
    /// How often it has been received, listings of the DLQ included.
    pub receives: Option<u32>,
}

/// A request a route function refused, as its log line says (`ingest` writes one WARN line per
/// refusal, with the route, the status, the reason and the sender's address).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggedRefusal {
    pub at_ms: i64,
    pub route: String,
    pub status: Option<u16>,
    pub reason: String,
    pub source_ip: String,
    pub log_group: String,
}

/// One line of `routes list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteRow {
    pub name: String,
    pub provider: String,
    pub url: String,
    /// `set`, `not needed`, `missing: env:X, local:y`, or `in SSM (read by serve)`.
    pub secrets: String,
    pub last_event_at: Option<String>,
    /// Where the provider takes the URL.
    pub paste_into: &'static str,
    /// Its Function URL, as the last `deploy` or `routes list --aws` found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_url: Option<String>,
    /// With `--aws`: which of its secrets the stack holds (`set`, `missing: NAME`), never a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_secrets: Option<String>,
}

/// The routes of `file`, with `last_received` (ms, by route) from the local store and the
/// deployed URLs by route.
pub fn rows(
    file: &ConfigFile,
    last_received: &std::collections::HashMap<String, i64>,
    deployed: &std::collections::BTreeMap<String, String>,
) -> Vec<RouteRow> {
    let env = |name: &str| std::env::var(name).ok();
    file.routes
        .iter()
        .map(|route| RouteRow {
            name: route.name.clone(),
            provider: route.provider.as_str().to_owned(),
            url: format!("http://{}/hooks/{}", file.serve.addr, route.name),
            secrets: file.secrets_status(route, &env),
            last_event_at: last_received.get(&route.name).map(|ms| time_text(*ms)),
            paste_into: hookcatch::providers::paste_hint(route.provider),
            deployed_url: deployed.get(&route.name).cloned(),
            aws_secrets: None,
        })
        .collect()
}

pub fn rows_table(rows: &[RouteRow]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    let deployed = rows.iter().any(|r| r.deployed_url.is_some());
    let aws = rows.iter().any(|r| r.aws_secrets.is_some());
    let mut header = vec!["route", "provider", "local URL", "secrets", "last event"];
    if deployed {
        header.push("deployed URL");
    }
    if aws {
        header.push("secrets on AWS");
    }
    table.set_header(header);
    for row in rows {
        let mut cells = vec![
            terminal_safe(&row.name),
            row.provider.clone(),
            terminal_safe(&row.url),
            terminal_safe(&row.secrets),
            row.last_event_at.clone().unwrap_or_else(|| "never".into()),
        ];
        if deployed {
            cells.push(terminal_safe(
                row.deployed_url.as_deref().unwrap_or("not deployed"),
            ));
        }
        if aws {
            cells.push(terminal_safe(
                row.aws_secrets.as_deref().unwrap_or_default(),
            ));
        }
        table.add_row(cells);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{is_terminal_control, json_text, parse_time};

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
            replaces: None,
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

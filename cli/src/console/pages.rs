//! What the console's pages show, built from the store's items: every value is text that the
//! templates escape (bodies, headers and names are the sender's, so attacker-controlled).

use askama::Template;
use serde_json::Value;

use crate::term::time_text;
use crate::views::EventView;

/// One row of the events list.
pub struct Row {
    pub id: String,
    pub route: String,
    pub event_type: String,
    pub status: &'static str,
    pub received: String,
    pub size: String,
    pub test_ping: bool,
    /// What the detail link adds after `/events/{id}` (on AWS: where the event's index entry is).
    pub detail: String,
}

impl Row {
    pub fn from_view(view: &EventView) -> Row {
        Row {
            detail: String::new(),
            id: view.id.clone(),
            route: view.route.clone(),
            event_type: view.event_type.clone().unwrap_or_default(),
            status: view.status,
            received: time_text(view.received_at_ms),
            size: size_text(view.detail["body_len"].as_u64().unwrap_or(0)),
            test_ping: view.detail["test_ping"].as_bool().unwrap_or(false),
        }
    }
}

pub fn size_text(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[derive(Template)]
#[template(path = "events.html")]
pub struct EventsPage {
    pub data_dir: String,
    /// Each route name, and whether it is the one filtered by.
    pub routes: Vec<(String, bool)>,
    pub event_type: String,
    /// Each status value, its label, and whether it is the one filtered by.
    pub statuses: Vec<(&'static str, &'static str, bool)>,
    pub since: String,
    pub until: String,
    pub filtered: bool,
    pub first_page: bool,
    /// Whether the list follows new events by itself (locally), or is read on each load (AWS).
    pub live: bool,
    pub newest_link: String,
    pub next_link: Option<String>,
    pub error: Option<String>,
    pub rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "rows.html")]
pub struct RowsFragment {
    pub rows: Vec<Row>,
    pub filtered: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub data_dir: String,
    pub title: String,
    pub message: String,
}

pub struct Part {
    pub name: String,
    pub filename: String,
    pub content_type: String,
    pub size: String,
    pub sha256: String,
}

pub struct RecordShown {
    pub key: String,
    pub version: String,
    pub deleted: bool,
    pub data: Option<String>,
    /// Whether this event is the one that last wrote it.
    pub written_by_this: bool,
}

/// Everything the detail page shows.
pub struct EventDetail {
    pub id: String,
    pub route: String,
    pub status: &'static str,
    pub test_ping: bool,
    pub received: String,
    pub event_type: String,
    pub delivery_id: String,
    pub attempts: String,
    pub last_error: Option<String>,
    pub source_ip: String,
    pub size: String,
    pub body_sha256: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub query_pairs: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body_masked: bool,
    pub body_note: Option<String>,
    pub body_json: Option<String>,
    pub body_form: Vec<(String, String)>,
    pub body_text: Option<String>,
    pub body_hex: Option<String>,
    /// The body as text when a pretty or form view is shown above it.
    pub raw_text: Option<String>,
    pub parts: Vec<Part>,
    pub request_map: String,
    /// The request as a curl command line against this serve, with the downloaded body.
    pub curl: String,
    pub records: Vec<RecordShown>,
}

#[derive(Template)]
#[template(path = "event.html")]
pub struct EventPage {
    pub data_dir: String,
    pub event: EventDetail,
    pub csrf: String,
    /// Whether Resend is offered (on AWS: when the route's Function URL is known).
    pub resend: bool,
    /// Why Resend is not offered, when it is not.
    pub no_resend: String,
    /// What the action and download links add after `/events/{id}/…` (on AWS: the index entry).
    pub detail: String,
    /// What the last action on this event did: whether it went through, and what it said.
    pub result: Option<(bool, String)>,
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pairs_of(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Offset, sixteen bytes in hex, and their printable ASCII: at most 64 KiB of it.
pub fn hex_dump(bytes: &[u8]) -> String {
    const SHOWN: usize = 64 * 1024;
    let mut out = String::new();
    for (line, chunk) in bytes[..bytes.len().min(SHOWN)].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "{:08x}  {:<47}  {ascii}\n",
            line * 16,
            hex.join(" ")
        ));
    }
    if bytes.len() > SHOWN {
        out.push_str(&format!("… {} more bytes\n", bytes.len() - SHOWN));
    }
    out
}

impl EventDetail {
    /// The detail of `view`, with the records it names read from the store; `route_url` is where
    /// this serve takes the route's webhooks.
    pub fn new(view: &EventView, records: Vec<RecordShown>, route_url: &str) -> EventDetail {
        let detail = &view.detail;
        let headers: Vec<(String, String)> = detail["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
            .collect();
        let content_type = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.to_ascii_lowercase())
            .unwrap_or_default();
        let query = text(&detail["query"]);
        let query_pairs = pairs_of(&query);
        let body = view.body.clone().unwrap_or_default();
        let utf8 = std::str::from_utf8(&body).ok().map(str::to_owned);
        let mut shown = EventDetail {
            id: view.id.clone(),
            route: view.route.clone(),
            status: view.status,
            test_ping: detail["test_ping"].as_bool().unwrap_or(false),
            received: time_text(view.received_at_ms),
            event_type: view.event_type.clone().unwrap_or_default(),
            delivery_id: view.delivery_id.clone().unwrap_or_default(),
            // Kept while the event waits in the queue; a stored event's entry is gone.
            attempts: match &detail["attempts"] {
                Value::Null => "—".into(),
                other => other.to_string(),
            },
            last_error: detail["last_error"].as_str().map(str::to_owned),
            source_ip: text(&detail["source_ip"]),
            size: size_text(detail["body_len"].as_u64().unwrap_or(0)),
            body_sha256: text(&detail["body_sha256"]),
            method: text(&detail["method"]),
            path: text(&detail["path"]),
            query,
            query_pairs,
            headers,
            body_masked: view.body_masked,
            body_note: None,
            body_json: None,
            body_form: Vec::new(),
            body_text: None,
            body_hex: None,
            raw_text: None,
            parts: parts_of(&detail["parts"]),
            request_map: String::new(),
            curl: String::new(),
            records,
        };
        match (&view.body, &utf8) {
            (None, _) => {
                shown.body_note = Some(match &detail["body_location"] {
                    Value::String(location) => format!("stored outside the event ({location})"),
                    _ => "not kept with the queued message".into(),
                })
            }
            (Some(bytes), _) if bytes.is_empty() => shown.body_note = Some("empty".into()),
            (Some(_), Some(text)) => {
                if let Ok(json) = serde_json::from_str::<Value>(text) {
                    shown.body_json = serde_json::to_string_pretty(&json).ok();
                    shown.raw_text = Some(text.clone());
                } else if content_type.starts_with("application/x-www-form-urlencoded") {
                    shown.body_form = pairs_of(text);
                    shown.raw_text = Some(text.clone());
                } else {
                    shown.body_text = Some(text.clone());
                }
            }
            (Some(bytes), None) => shown.body_hex = Some(hex_dump(bytes)),
        }
        shown.request_map = shown.zoho_request_map(&content_type, utf8.as_deref());
        shown.curl = shown.curl_command(route_url);
        shown
    }

    /// `curl` with the method, URL and headers as stored, and the downloaded body (`{id}.body`).
    fn curl_command(&self, route_url: &str) -> String {
        let quoted = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
        // A method is whatever the sender wrote (`X|touch$IFS'x'|echo` is a valid HTTP token):
        // bare only when every character is one a shell never acts on.
        let method = if !self.method.is_empty()
            && self
                .method
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.method.clone()
        } else {
            quoted(&self.method)
        };
        let path = if self.path == "/" {
            ""
        } else {
            self.path.as_str()
        };
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        let mut lines = vec![format!(
            "curl -X {method} {}",
            quoted(&format!("{route_url}{path}{query}"))
        )];
        for (name, value) in &self.headers {
            if ["host", "content-length", "connection"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                continue;
            }
            lines.push(format!("  -H {}", quoted(&format!("{name}: {value}"))));
        }
        if self.body_note.is_none() {
            lines.push(format!(
                "  --data-binary @{}",
                quoted(&format!("{}.body", self.id))
            ));
        }
        lines.join(" \\\n")
    }

    /// Zoho's `crmAPIRequest` shape: method, the parameters (query, and form fields), headers,
    /// the body as text, and the multipart files.
    fn zoho_request_map(&self, content_type: &str, body: Option<&str>) -> String {
        let mut params = serde_json::Map::new();
        let form = if content_type.starts_with("application/x-www-form-urlencoded") {
            body.map(pairs_of).unwrap_or_default()
        } else {
            Vec::new()
        };
        for (name, value) in self.query_pairs.iter().chain(&form) {
            params.insert(name.clone(), value.clone().into());
        }
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into()))
            .collect();
        let files: Vec<Value> = self
            .parts
            .iter()
            .filter(|p| !p.filename.is_empty())
            .map(|p| serde_json::json!({"name": p.name, "file_name": p.filename, "content_type": p.content_type, "size": p.size}))
            .collect();
        let map = serde_json::json!({
            "method": self.method,
            "params": params,
            "headers": headers,
            "body": body,
            "files": files,
        });
        serde_json::to_string_pretty(&map).unwrap_or_default()
    }
}

fn parts_of(parts: &Value) -> Vec<Part> {
    parts
        .as_array()
        .into_iter()
        .flatten()
        .map(|part| Part {
            name: text(&part["name"]),
            filename: text(&part["file_name"]),
            content_type: text(&part["content_type"]),
            size: part["size"].as_u64().map(size_text).unwrap_or_default(),
            sha256: text(&part["sha256"]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dumps_show_offsets_and_printable_bytes() {
        let dump = hex_dump(b"\x00\x01hello<script>\xff\xfe");
        assert!(dump.starts_with("00000000  00 01 68 65"), "{dump}");
        assert!(dump.contains("..hello<script>."), "{dump}");
        assert!(dump.contains("\n00000010  fe"), "{dump}");
    }

    #[test]
    fn the_minutes_chart_scales_to_the_busiest_minute() {
        let mut stored = [0; 60];
        let mut refused = [0; 60];
        stored[59] = 10;
        refused[59] = 10;
        stored[0] = 5;
        let chart = minutes_chart(&stored, &refused);
        assert!(
            chart.contains(r#"class="stored" x="177" y="14" width="2" height="14""#),
            "{chart}"
        );
        assert!(
            chart.contains(r#"class="refused" x="177" y="0" width="2" height="14""#),
            "{chart}"
        );
        assert!(
            chart.contains(r#"x="0" y="21" width="2" height="7""#),
            "{chart}"
        );
        assert_eq!(chart.matches("<rect").count(), 3);
        assert_eq!(
            minutes_chart(&[0; 60], &[0; 60]).matches("<rect").count(),
            0
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(12), "12 B");
        assert_eq!(size_text(2048), "2.0 KiB");
        assert_eq!(size_text(3 * 1_048_576), "3.0 MiB");
    }
}

/// A route's last hour, a column a minute: stored events (green) under refused requests (red),
/// as an inline SVG drawn from numbers alone (nothing a sender wrote reaches it).
pub fn minutes_chart(stored: &[u32; 60], refused: &[u32; 60]) -> String {
    const WIDTH: u32 = 180;
    const HEIGHT: u32 = 28;
    let most = stored
        .iter()
        .zip(refused)
        .map(|(s, r)| s + r)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: u32| (n * HEIGHT).div_ceil(most);
    let mut svg = format!(
        r#"<svg class="minutes" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="events per minute, last hour">"#
    );
    for (minute, (&ok, &bad)) in stored.iter().zip(refused).enumerate() {
        let x = minute as u32 * 3;
        let ok_height = scale(ok);
        let bad_height = scale(bad);
        if ok > 0 {
            svg.push_str(&format!(
                r#"<rect class="stored" x="{x}" y="{}" width="2" height="{ok_height}"><title>{ok} stored</title></rect>"#,
                HEIGHT - ok_height
            ));
        }
        if bad > 0 {
            svg.push_str(&format!(
                r#"<rect class="refused" x="{x}" y="{}" width="2" height="{bad_height}"><title>{bad} refused</title></rect>"#,
                HEIGHT.saturating_sub(ok_height + bad_height)
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One route on `/routes`: what `routes list` shows, and its last hour.
pub struct RouteLine {
    pub row: crate::views::RouteRow,
    /// Stored in the last hour.
    pub last_hour: i64,
    /// Refused in the last hour (of those the refusals ring still holds).
    pub refused_last_hour: u32,
    /// Handshakes answered in the last hour.
    pub handshakes_last_hour: u32,
    /// The last hour by minute ([`minutes_chart`]).
    pub chart: String,
}

#[derive(Template)]
#[template(path = "routes.html")]
pub struct RoutesPage {
    pub data_dir: String,
    pub csrf: String,
    /// A Test's outcome: whether it passed, and what happened.
    pub result: Option<(bool, String)>,
    pub routes: Vec<RouteLine>,
}

/// One dead letter on `/dead`.
pub struct DeadRow {
    pub seq: i64,
    pub id: String,
    pub route: String,
    pub received: String,
    pub attempts: String,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "dead.html")]
pub struct DeadPage {
    pub data_dir: String,
    /// What the page says dead letters are, and what Replay does to them, here.
    pub intro: String,
    /// Whether each row can be replayed alone (locally), or only all at once (the DLQ's redrive).
    pub per_row_replay: bool,
    pub csrf: String,
    pub result: Option<String>,
    /// Where the last replay stands, refreshed live.
    pub progress: Option<String>,
    pub rows: Vec<DeadRow>,
}

/// One refused request on `/refusals`.
pub struct RefusalRow {
    pub time: String,
    pub route: String,
    pub status: u16,
    pub reason: String,
    pub source: String,
    pub request: String,
    pub size: String,
    pub headers: Vec<(String, String)>,
}

impl RefusalRow {
    pub fn new(refusal: &crate::refusals::Refusal) -> RefusalRow {
        let query = if refusal.query.is_empty() {
            String::new()
        } else {
            format!("?{}", refusal.query)
        };
        RefusalRow {
            time: time_text(refusal.at_ms),
            route: refusal.route.clone(),
            status: refusal.status,
            reason: refusal.reason.clone(),
            source: refusal.source_ip.clone().unwrap_or_default(),
            request: format!("{} {}{query}", refusal.method, refusal.path),
            size: size_text(refusal.body_len as u64),
            headers: refusal.headers.clone(),
        }
    }
}

impl RefusalRow {
    /// A refusal a route function logged: no request line, size or headers (never logged).
    pub fn from_logged(refused: &crate::views::LoggedRefusal) -> RefusalRow {
        RefusalRow {
            time: time_text(refused.at_ms),
            route: refused.route.clone(),
            status: refused.status.unwrap_or_default(),
            reason: refused.reason.clone(),
            source: refused.source_ip.clone(),
            request: String::new(),
            size: String::new(),
            headers: Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "refusals.html")]
pub struct RefusalsPage {
    pub data_dir: String,
    /// Where these refusals come from.
    pub intro: String,
    pub rows: Vec<RefusalRow>,
}

/// One record on `/records`.
pub struct RecordRow {
    pub route: String,
    pub record_type: String,
    pub id: String,
    pub version: String,
    pub deleted: bool,
    pub updated: String,
    pub event_id: String,
    /// What the written-by link adds after `/events/{id}` (on AWS: the event's index entry).
    pub detail: String,
    pub data: String,
}

impl RecordRow {
    pub fn new(record: &hookcatch::ports::RecordItem) -> RecordRow {
        RecordRow {
            route: record.route.clone(),
            record_type: record.record_type.clone(),
            id: record.record_id.clone(),
            version: version_text(&record.version),
            deleted: record.deleted,
            updated: time_text(record.updated_at_ms),
            event_id: record.event_id.clone(),
            detail: String::new(),
            data: serde_json::to_string_pretty(&record.data).unwrap_or_default(),
        }
    }
}

pub fn version_text(version: &hookcatch::model::value::RecordVersion) -> String {
    match version {
        hookcatch::model::value::RecordVersion::Number(v)
        | hookcatch::model::value::RecordVersion::Text(v) => v.clone(),
    }
}

#[derive(Template)]
#[template(path = "records.html")]
pub struct RecordsPage {
    pub data_dir: String,
    pub route: String,
    pub record_type: String,
    pub records: Vec<RecordRow>,
}

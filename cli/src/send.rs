//! `hookcatch send`: the "Test" button of a webhook settings page. Builds the request a provider
//! would send from a sample event, signs it with the route's secret the way that provider signs,
//! and sends it to `serve` or to a deployed Function URL (or prints a fresh Function URL event).

use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use hookcatch::clock::{Clock, SystemClock};
use hookcatch::{InboundRequest, RouteSettings};

/// The sample `send` uses for a provider when `--event` is not given: `{provider}-json.json`, else
/// the first other `{provider}-….json` that is not a handshake.
pub fn default_sample(events_dir: &Path, provider: &str) -> PathBuf {
    let json = events_dir.join(format!("{provider}-json.json"));
    if json.is_file() {
        return json;
    }
    let prefix = format!("{provider}-");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(events_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && n.ends_with(".json") && !n.contains("handshake")
            })
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next().unwrap_or(json)
}

/// Reads a Function URL event (payload v2.0) as the request it describes.
pub fn request_from_event(path: &Path) -> Result<InboundRequest, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let event: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let method = event["requestContext"]["http"]["method"]
        .as_str()
        .ok_or_else(|| {
            format!(
                "{}: not a Function URL event (no requestContext.http.method)",
                path.display()
            )
        })?;
    let body = match event["body"].as_str() {
        None => Bytes::new(),
        Some(text) if event["isBase64Encoded"] == true => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("{}: body is not base64: {e}", path.display()))?,
        ),
        Some(text) => Bytes::from(text.to_owned()),
    };
    // Headers that describe the Function URL hop, not the provider's request.
    const HOP: [&str; 6] = [
        "host",
        "x-forwarded-for",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-amzn-trace-id",
        "content-length",
    ];
    let headers = event["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter(|(name, _)| !HOP.contains(&name.to_ascii_lowercase().as_str()))
                .filter_map(|(name, value)| {
                    Some((name.to_ascii_lowercase(), value.as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(InboundRequest {
        method: method.to_owned(),
        path: event["rawPath"].as_str().unwrap_or("/").to_owned(),
        raw_query: event["rawQueryString"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        headers,
        body,
        source_ip: None,
        called_url: None,
    })
}

pub fn sign(settings: &RouteSettings, request: &mut InboundRequest) -> Result<(), String> {
    hookcatch::sign::sign(settings, request, SystemClock.now_ms()).map_err(|e| e.to_string())
}

/// The Function URL host written into printed events.
const PRINTED_EVENT_HOST: &str = "example.lambda-url.us-east-1.on.aws";

/// The URL a printed event says was called, as the route Lambda will read it.
pub fn printed_event_url(request: &InboundRequest) -> String {
    format!("https://{PRINTED_EVENT_HOST}{}", request.path)
}

/// A Function URL event for `sam local invoke -e`, with the body base64-encoded where AWS would.
pub fn function_url_event(request: &InboundRequest) -> serde_json::Value {
    let content_type = request
        .content_type()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let textual = content_type.starts_with("application/json") || content_type.starts_with("text/");
    let text_body = std::str::from_utf8(&request.body).ok().filter(|_| textual);
    let now = time::OffsetDateTime::now_utc();
    let mut headers = serde_json::Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), value.clone().into());
    }
    headers.insert("host".into(), PRINTED_EVENT_HOST.into());
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "example",
            "domainName": PRINTED_EVENT_HOST,
            "domainPrefix": "example",
            "http": {"method": request.method, "path": request.path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "hookcatch-send"},
            "requestId": uuid::Uuid::now_v7().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "body": match text_body {
            Some(text) => serde_json::Value::String(text.to_owned()),
            None => base64::engine::general_purpose::STANDARD.encode(&request.body).into(),
        },
        "isBase64Encoded": text_body.is_none(),
    })
}

/// Sends the request to `url` (query appended) and returns the status and body.
pub async fn send(request: &InboundRequest, url: &str) -> Result<(u16, String), String> {
    let target = if request.raw_query.is_empty() {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&{}", request.raw_query)
    } else {
        format!("{url}?{}", request.raw_query)
    };
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
    let client = hookcatch::tls::https_client_builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let mut builder = client.request(method, &target).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| format!("sending to {url} failed: {e}"))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
    }

    #[test]
    fn samples_round_trip_through_function_url_events() {
        for name in [
            "catch-raw-json.json",
            "catch-raw-form-base64.json",
            "catch-raw-multipart-base64.json",
        ] {
            let request = request_from_event(&events_dir().join(name)).unwrap();
            let event = function_url_event(&request);
            let path =
                std::env::temp_dir().join(format!("hookcatch-send-{}.json", uuid::Uuid::now_v7()));
            std::fs::write(&path, event.to_string()).unwrap();
            let again = request_from_event(&path).unwrap();
            assert_eq!(again.body, request.body, "{name}");
            assert_eq!(again.method, request.method);
            assert_eq!(again.raw_query, request.raw_query);
        }
        assert!(default_sample(&events_dir(), "catch-raw").is_file());
        assert!(default_sample(&events_dir(), "slack").ends_with("slack-events-json.json"));
    }
}

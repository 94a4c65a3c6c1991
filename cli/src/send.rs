//! `hookcatch send`: the "Test" button of a webhook settings page. Builds the request a provider
//! would send from a sample event, signs it with the route's secret the way that provider signs,
//! and sends it to `serve` or to a deployed Function URL (or prints a fresh Function URL event).

use std::path::{Path, PathBuf};

use hookcatch::clock::{Clock, SystemClock};
use hookcatch::edge::function_url::{FunctionUrlEvent, inbound_from_function_url};
pub use hookcatch::edge::function_url::{function_url_event, printed_event_url};
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

/// Reads a Function URL event (payload v2.0) as the request it describes, without the headers
/// that describe the Function URL hop rather than the provider's request.
pub fn request_from_event(path: &Path) -> Result<InboundRequest, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let event: FunctionUrlEvent = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a Function URL event: {e}", path.display()))?;
    let mut request =
        inbound_from_function_url(event).map_err(|e| format!("{}: {e}", path.display()))?;
    request.headers.retain(|(name, _)| {
        !hookcatch::providers::sign::HOP_HEADERS.contains(&name.to_ascii_lowercase().as_str())
    });
    request.source_ip = None;
    request.called_url = None;
    Ok(request)
}

pub fn sign(settings: &RouteSettings, request: &mut InboundRequest) -> Result<(), String> {
    hookcatch::providers::sign::sign(settings, request, SystemClock.now_ms())
        .map_err(|e| e.to_string())
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

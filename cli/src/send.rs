//! Floor 1: the requests hookcatch sends to a route. `hookcatch send`, the "Test" button of a webhook
//! settings page, builds the request a provider would send from a sample event, signs it with the
//! route's secret the way that provider signs, and sends it to `serve` or to a deployed Function
//! URL (or prints a fresh Function URL event); `routes test` sends the provider's own test request;
//! Resend sends a stored event's request again, re-signed (locally and on a stack alike).

use std::path::{Path, PathBuf};

use hookcatch::clock::{Clock, SystemClock};
use hookcatch::edge::function_url::{FunctionUrlEvent, inbound_from_function_url};
pub use hookcatch::edge::function_url::{function_url_event, printed_event_url};
use hookcatch::ports::{EventItem, StoredBody};
use hookcatch::providers::sign::{TestExpect, test_request};
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
pub fn request_from_event(path: &Path) -> anyhow::Result<InboundRequest> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let event: FunctionUrlEvent = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a Function URL event: {e}", path.display()))?;
    let mut request =
        inbound_from_function_url(event).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    request.headers.retain(|(name, _)| {
        !hookcatch::providers::sign::HOP_HEADERS.contains(&name.to_ascii_lowercase().as_str())
    });
    request.source_ip = None;
    request.called_url = None;
    Ok(request)
}

pub fn sign(settings: &RouteSettings, request: &mut InboundRequest) -> anyhow::Result<()> {
    Ok(hookcatch::providers::sign::sign(
        settings,
        request,
        SystemClock.now_ms(),
    )?)
}

/// Sends the request to `url` (query appended) and returns the status and body.
pub async fn send(request: &InboundRequest, url: &str) -> anyhow::Result<(u16, String)> {
    let target = if request.raw_query.is_empty() {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&{}", request.raw_query)
    } else {
        format!("{url}?{}", request.raw_query)
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
    let client = hookcatch::tls::https_client_builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut builder = client.request(method, &target).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    // Never the query in an error: it may carry the route's key (`?zapikey=…`, Meta's verify
    // token), and reqwest's own text names the whole URL.
    let shown = without_query(url);
    let response = builder
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("sending to {shown} failed: {}", e.without_url()))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| anyhow::anyhow!("reading {shown}'s answer failed: {}", e.without_url()))?;
    Ok((status, body))
}

/// Refuses a `--to` (or `--route-url`) that would carry a route's credentials (its API key, Basic
/// password, signature, Zoho's channel token, Meta's verify token) in clear across a network:
/// https, or plain http to this machine, unless `insecure_http` says the network is the user's.
pub fn credentials_may_go_to(url: &str, insecure_http: bool) -> anyhow::Result<()> {
    if insecure_http || hookcatch::tls::is_safe_outbound_url(url) {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to send a signed request to {} over plain http to another machine: its \
         credentials would cross the network in clear. Use https (a Function URL is), or pass \
         --insecure-http if that network is yours",
        without_query(url)
    )
}

/// `url` without its query (`?…` in its place when it had one).
fn without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

/// What `routes test` observed.
#[derive(Debug)]
pub struct TestOutcome {
    pub status: u16,
    pub body: String,
    /// A handshake's answer proved the endpoint (it echoed or signed the challenge).
    pub handshake_answered: Option<bool>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        (200..300).contains(&self.status) && self.handshake_answered != Some(false)
    }

    /// One line for the terminal.
    pub fn summary(&self, route: &str, url: &str) -> String {
        match self.handshake_answered {
            Some(true) => format!("{route}: handshake answered by {url} ({})", self.status),
            Some(false) => format!(
                "{route}: {url} answered {} but not the handshake's challenge: {}",
                self.status, self.body
            ),
            None if self.passed() => format!(
                "{route}: test event accepted by {url} ({}): {}",
                self.status, self.body
            ),
            None => format!("{route}: {url} answered {}: {}", self.status, self.body),
        }
    }
}

/// `routes test`: builds the provider's test request, signs it with the route's newest secret
/// and sends it to `url` (the route's full URL).
pub async fn test(settings: &RouteSettings, url: &str) -> anyhow::Result<TestOutcome> {
    let now = SystemClock.now_ms();
    let prepared = test_request(settings, now)?;
    let mut request = prepared.request;
    request.called_url = Some(url.split('?').next().unwrap_or_default().to_owned());
    sign(settings, &mut request)?;
    let (status, body) = send(&request, url).await?;
    let handshake_answered = match &prepared.expect {
        TestExpect::Stored => None,
        TestExpect::Answer(expected) => Some(body.contains(expected.as_str())),
    };
    Ok(TestOutcome {
        status,
        body,
        handshake_answered,
    })
}

/// What a resend did.
#[derive(Debug)]
pub struct Resent {
    pub status: u16,
    pub body: String,
    /// Whether the route's dedup rule takes the resend as a new event (else a duplicate of this one).
    pub new_event: bool,
}

impl Resent {
    pub fn summary(&self, event_id: &str) -> String {
        let verdict = if !(200..300).contains(&self.status) {
            "refused"
        } else if self.new_event {
            "accepted as a new event"
        } else {
            "accepted, and stored as a duplicate of this event (the route dedups on the body): \
             Replay re-runs the rules on it instead"
        };
        format!(
            "resent {event_id}: {} {}, {verdict}",
            self.status,
            self.body.trim()
        )
    }
}

/// Sends `event`'s request again to `url`, re-signed with `settings`' secret under a fresh
/// delivery id and timestamp: what a local and a stack's Resend share.
pub async fn resend(
    settings: &hookcatch::config::RouteSettings,
    event: EventItem,
    url: &str,
) -> anyhow::Result<Resent> {
    // Signed now, a body received under another provider (an open route's, say) would pass as
    // that route's verified delivery: Resend refuses it as Replay does.
    let route = &settings.config;
    if event.route != route.name || event.provider != route.provider.as_str() {
        return Err(hookcatch::ingest::ReplayError::RouteChanged {
            route: event.route.clone(),
            received_as: event.provider.clone(),
            now: format!("{} ({})", route.name, route.provider.as_str()),
        }
        .into());
    }
    let StoredBody::Inline(body) = event.body else {
        return Err(anyhow::anyhow!(
            "event {}'s body is in object storage (over the inline limit): Resend sends inline \
             bodies only",
            event.event_id
        ));
    };
    let request = InboundRequest {
        method: event.method,
        path: event.path,
        raw_query: event.query,
        headers: event.headers,
        body,
        source_ip: None,
        // What Twilio signs: the URL it calls.
        called_url: Some(url.split('?').next().unwrap_or_default().to_owned()),
    };
    let request =
        hookcatch::providers::sign::resend_request(settings, request, SystemClock.now_ms())?;
    let (status, body) = send(&request, url).await?;
    Ok(Resent {
        status,
        body,
        new_event: hookcatch::providers::sign::resend_is_new(settings),
    })
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

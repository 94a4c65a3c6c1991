//! Logs never contain a secret: every example route's samples, signed and forged, go through an
//! in-process `serve` while every log line (all targets, TRACE) is captured, and none of the
//! configured secrets, signatures, tokens, query keys or Authorization values may appear in it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use hookcatch_cli::send;

use crate::support::{repo_root, route_of, route_samples, serve_example};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Header and query values that are credentials (compared verbatim against the log).
const CREDENTIAL_HEADERS: [&str; 9] = [
    "authorization",
    "x-api-key",
    "x-hub-signature-256",
    "stripe-signature",
    "x-shopify-hmac-sha256",
    "webhook-signature",
    "x-slack-signature",
    "x-twilio-signature",
    "x-zm-signature",
];

// A current-thread runtime: the server, its worker and the client all log on this thread, where
// the capturing subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_secrets_signatures_or_keys() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let example = serve_example().await;
    let (base, settings) = (&example.base, &example.settings);

    let mut forbidden: Vec<String> = Vec::new();
    for route in settings {
        forbidden.extend(route.secrets.iter().map(|s| s.expose().to_owned()));
        forbidden.extend(route.verify_tokens.iter().map(|s| s.expose().to_owned()));
        forbidden.extend(
            route
                .channel_tokens
                .iter()
                .map(|(_, t)| t.expose().to_owned()),
        );
    }
    let mut sent = 0;
    for path in &route_samples() {
        let route = route_of(path, settings);
        let mut request = send::request_from_event(path).unwrap();
        send::sign(route, &mut request).unwrap();
        for (header, value) in &request.headers {
            if CREDENTIAL_HEADERS.contains(&header.as_str()) {
                forbidden.push(value.clone());
            }
        }
        let url = format!("{base}/hooks/{}", route.config.name);
        // As signed, then forged (every credential's last character changed).
        send::send(&request, &url).await.unwrap();
        for (header, value) in request.headers.iter_mut() {
            if CREDENTIAL_HEADERS.contains(&header.as_str()) && value.pop().is_some() {
                value.push('A');
            }
        }
        send::send(&request, &url).await.unwrap();
        sent += 2;
    }
    // The orders route's key in the query (Zoho's zapikey style), right and wrong.
    let key = settings
        .iter()
        .find(|r| r.config.name == "orders")
        .unwrap()
        .secrets[0]
        .expose()
        .to_owned();
    let mut request =
        send::request_from_event(&repo_root().join("events/catch-raw-json.json")).unwrap();
    for query in [
        format!("zapikey={key}"),
        "zapikey=wrong-zapikey-value".to_owned(),
    ] {
        request.raw_query = query;
        send::send(&request, &format!("{base}/hooks/orders"))
            .await
            .unwrap();
    }
    request.raw_query.clear();
    request.headers.push(("x-api-key".into(), key.clone()));
    send::send(&request, &format!("{base}/hooks/orders"))
        .await
        .unwrap();
    forbidden.push("wrong-zapikey-value".into());
    example.running.stop().await.unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        sent > 20 && text.lines().count() > sent,
        "the log was captured"
    );
    forbidden.retain(|f| f.len() >= 8);
    for secret in &forbidden {
        assert!(
            !text.contains(secret.as_str()),
            "the log contains a secret or signature ({} characters)",
            secret.len()
        );
    }
}

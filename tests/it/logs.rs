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
    // A caller's own credentials, which the route does not check, are not logged either.
    for (header, value) in [
        ("authorization", "Bearer dev-logs-bearer"),
        ("proxy-authorization", "Basic dev-logs-proxy"),
        ("cookie", "sid=dev-logs-cookie"),
    ] {
        request.headers.push((header.into(), value.into()));
        forbidden.push(value.into());
    }
    send::send(&request, &format!("{base}/hooks/orders"))
        .await
        .unwrap();
    forbidden.push("wrong-zapikey-value".into());
    example.running.stop().await.unwrap();
    forbidden.extend(hydrate_through_faults().await);

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

/// Hydrating routes log too: Zoho (refresh token, expiry mid-way, a 429), Graph (client
/// credentials, an expired token, a refused secret) and Stripe (a bearer key, a refused key). Returns
/// every credential they used: client secrets, refresh tokens, keys and every access token issued.
async fn hydrate_through_faults() -> Vec<String> {
    use crate::fake_api::{API_KEY, CLIENT_SECRET, FakeApi};
    use crate::fake_zoho::{self, FakeZoho};
    use crate::http_hydration as http;
    use crate::hydration::{self as zoho, T};

    let zoho_api = FakeZoho::start().await;
    zoho_api.put("Leads", "L1", "Lead", "2026-11-22T19:00:00+00:00");
    let store = zoho::local_store();
    let consumer = zoho::consumer(&zoho_api, &store, true);
    let leads = zoho::notification("Leads", "update", &["L1".into()], T);
    assert!(
        consumer
            .process_batch_detailed(vec![leads.clone()])
            .await
            .is_empty()
    );
    zoho_api.expire_tokens();
    zoho_api.fail_next("Leads", &[429]);
    assert_eq!(
        consumer
            .process_batch_detailed(vec![leads.clone()])
            .await
            .len(),
        1
    );
    assert!(
        consumer
            .process_batch_detailed(vec![leads])
            .await
            .is_empty()
    );

    let api = FakeApi::start().await;
    api.put(&http::message_path("M1"), serde_json::json!({"id": "M1"}));
    let graph = http::consumer("microsoft-graph", http::graph_config(&api, 2), &store);
    let change = || http::graph(vec![http::change("updated", "M1")], T);
    assert!(
        graph
            .process_batch_detailed(vec![change()])
            .await
            .is_empty()
    );
    api.expire_tokens();
    assert!(
        graph
            .process_batch_detailed(vec![change()])
            .await
            .is_empty()
    );
    let mut refused = http::graph_config(&api, 2);
    refused["auth"]["client_secret"] = "test-only-wrong-graph-secret".into();
    let refused = http::consumer("microsoft-graph-2", refused, &store);
    let failures = refused
        .process_batch_detailed(vec![crate::hydration::queued(
            "microsoft-graph-2",
            hookcatch::ProviderKind::MicrosoftGraph,
            true,
            serde_json::json!({"value": [http::change("updated", "M1")]}).to_string(),
            T,
        )])
        .await;
    assert_eq!(failures.len(), 1, "a refused client secret fails");
    let stripe = http::consumer("stripe", http::stripe_config(&api), &store);
    let thin = |id: &str| {
        crate::hydration::queued(
            "stripe",
            hookcatch::ProviderKind::Stripe,
            true,
            http::thin_event(id),
            T,
        )
    };
    assert!(
        stripe
            .process_batch_detailed(vec![thin("evt_1")])
            .await
            .is_empty()
    );
    let mut revoked = http::stripe_config(&api);
    revoked["auth"]["token"] = "sk_test_only_revoked_key".into();
    let revoked = http::consumer("stripe", revoked, &store);
    assert_eq!(
        revoked
            .process_batch_detailed(vec![thin("evt_2")])
            .await
            .len(),
        1
    );

    let mut used: Vec<String> = vec![
        fake_zoho::CLIENT_SECRET.into(),
        fake_zoho::REFRESH_TOKEN.into(),
        CLIENT_SECRET.into(),
        API_KEY.into(),
        "test-only-wrong-graph-secret".into(),
        "sk_test_only_revoked_key".into(),
    ];
    let zoho_issued = zoho_api.tokens_issued();
    let graph_issued = api.state.lock().unwrap().tokens_issued;
    assert!(
        zoho_issued == 2 && graph_issued == 2,
        "tokens were refreshed after expiry"
    );
    used.extend((1..=zoho_issued).map(|n| format!("1000.access-{n}")));
    used.extend((1..=graph_issued).map(|n| format!("eyJ0eXAi.test-access-{n}")));
    used
}

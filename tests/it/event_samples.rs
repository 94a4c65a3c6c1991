//! Every file in `events/` goes through the same deserialisation the Lambdas use, and through the
//! real handler, so a broken sample fails CI rather than a user's `sam local invoke`.

use crate::support::{Stack, repo_root};

fn event_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "events/ holds the samples");
    files
}

fn is_sqs_batch(value: &serde_json::Value) -> bool {
    value.get("Records").is_some()
}

#[test]
fn every_sample_deserializes_as_its_lambda_does() {
    let mut function_url = 0;
    for path in event_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if is_sqs_batch(&value) {
            let batch: aws_lambda_events::event::sqs::SqsEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for record in batch.records {
                let body = record.body.expect("message body");
                hookcatch::Envelope::from_message(&body)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        } else {
            lambda_http::request::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            function_url += 1;
        }
    }
    assert!(function_url >= 3);
}

/// The provider a sample belongs to, from its file name (`{provider}-….json`), with the secret this
/// test signs it with.
fn provider_of(path: &std::path::Path) -> (&'static str, &'static str) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    [
        (
            "standard-webhooks",
            "whsec_dGVzdC1vbmx5LXN0YW5kYXJkLXdlYmhvb2tzLWtleQ==",
        ),
        ("catch-raw", ""),
        ("github", "test-only-github-secret"),
        ("stripe", "whsec_test_only_stripe"),
        ("shopify", "test-only-shopify-secret"),
    ]
    .into_iter()
    .find(|(provider, _)| name.starts_with(&format!("{provider}-")))
    .unwrap_or_else(|| panic!("{name}: no provider prefix"))
}

#[tokio::test]
async fn every_sample_passes_through_the_real_handlers() {
    let stack = Stack::create(3).await;
    let now_ms = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
    let mut expected: Vec<(String, usize)> = Vec::new();
    let mut count = |route: &str| match expected.iter_mut().find(|(r, _)| r == route) {
        Some((_, n)) => *n += 1,
        None => expected.push((route.to_owned(), 1)),
    };
    let mut queued = 0;
    for path in event_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if is_sqs_batch(&value) {
            for record in value["Records"].as_array().unwrap() {
                stack
                    .sqs
                    .send_message()
                    .queue_url(&stack.queue_url)
                    .message_body(record["body"].as_str().unwrap())
                    .send()
                    .await
                    .unwrap();
                count("catch-raw");
                queued += 1;
            }
            continue;
        }
        let (provider, secret) = provider_of(&path);
        let mut route = serde_json::json!({"name": provider, "provider": provider});
        let mut request = hookcatch_cli::send::request_from_event(&path).unwrap();
        if !secret.is_empty() {
            route["secrets"] =
                serde_json::json!([format!("ssm:{}", stack.put_secret(secret).await)]);
            // Stored samples carry dev signatures and old timestamps: sign afresh, as the provider would.
            let settings = hookcatch::RouteSettings {
                config: serde_json::from_value(
                    serde_json::json!({"name": provider, "provider": provider, "secrets": ["x"]}),
                )
                .unwrap(),
                secrets: vec![hookcatch::secrets::Secret::new(secret)],
            };
            hookcatch::sign::sign(&settings, &mut request, now_ms).unwrap();
        }
        let ingestor = stack.ingestor(&route.to_string()).await;
        let event = hookcatch_cli::send::function_url_event(&request).to_string();
        let response =
            hookcatch_ingest::handle(&ingestor, lambda_http::request::from_str(&event).unwrap())
                .await
                .unwrap();
        assert_eq!(response.status(), 200, "{}", path.display());

        // The same bytes with one body byte changed are refused.
        if !secret.is_empty() {
            let mut tampered = request.clone();
            let mut body = tampered.body.to_vec();
            body[0] ^= 1;
            tampered.body = body.into();
            let event = hookcatch_cli::send::function_url_event(&tampered).to_string();
            let refused = hookcatch_ingest::handle(
                &ingestor,
                lambda_http::request::from_str(&event).unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(refused.status(), 401, "{}", path.display());
        }
        count(provider);
        queued += 1;
    }
    let consumer = stack.consumer().await;
    let mut processed = 0;
    while processed < queued {
        let (received, failed) = stack.consume_once(&consumer).await;
        assert!(
            failed.is_empty(),
            "samples must all be consumable: {failed:?}"
        );
        assert!(received > 0, "queue drained early");
        processed += received;
    }
    for (route, n) in &expected {
        assert_eq!(stack.event_items(route).await.len(), *n, "{route}");
    }
    let multipart = stack
        .event_items("catch-raw")
        .await
        .into_iter()
        .find(|i| i.get("parts").is_some())
        .expect("the multipart sample is summarised");
    let parts: serde_json::Value =
        serde_json::from_str(multipart["parts"].as_s().unwrap()).unwrap();
    assert_eq!(parts[1]["file_name"], "report.csv");

    // Each provider's delivery id and event type land where its docs say.
    let store = stack.store();
    use hookcatch::ports::EventStore;
    let github = store
        .get_event("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .await
        .unwrap()
        .expect("github by X-GitHub-Delivery");
    assert_eq!(github.event_type.as_deref(), Some("ping"));
    let stripe = store
        .get_event("stripe", "evt_1QhookcatchSample")
        .await
        .unwrap()
        .expect("stripe by event id");
    assert_eq!(stripe.event_type.as_deref(), Some("invoice.paid"));
    let shopify = store
        .get_event("shopify", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        .await
        .unwrap()
        .expect("shopify by X-Shopify-Webhook-Id");
    assert_eq!(shopify.event_type.as_deref(), Some("orders/create"));
    let standard = store
        .get_event("standard-webhooks", "msg_2pHookcatchSample0001")
        .await
        .unwrap()
        .expect("standard webhooks by webhook-id");
    assert_eq!(standard.event_type.as_deref(), Some("invoice.paid"));
}

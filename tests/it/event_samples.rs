//! Every file in `events/` goes through the same deserialisation the Lambdas use, and through the
//! real handler, so a broken sample fails CI rather than a user's `sam local invoke`.

use crate::support::{Stack, repo_root, route_of};

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

fn is_schedule(value: &serde_json::Value) -> bool {
    value.get("hookcatch").is_some()
}

#[test]
fn every_sample_deserializes_as_its_lambda_does() {
    let mut function_url = 0;
    for path in event_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if is_schedule(&value) {
            continue; // the consumer's scheduled input, exercised by the bootstrap test
        }
        if is_sqs_batch(&value) {
            let batch: aws_lambda_events::event::sqs::SqsEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for record in batch.records {
                let body = record.body.expect("message body");
                hookcatch::Envelope::from_message(&body)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        } else {
            let complete = serde_json::from_str::<
                aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest,
            >(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let view = serde_json::from_str::<hookcatch_ingest::FunctionUrlEvent>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            hookcatch_ingest::testing::assert_same_event(&view, &complete);
            // What the route function decodes: the same, through lambda_runtime's path tracking.
            let payload: hookcatch_ingest::FunctionUrlPayload =
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            hookcatch_ingest::testing::assert_same_event(&payload.0, &complete);
            function_url += 1;
        }
    }
    assert!(function_url >= 3);
}

fn is_handshake(path: &std::path::Path) -> bool {
    path.to_string_lossy().contains("-handshake")
}

#[tokio::test]
async fn every_sample_passes_through_the_real_handlers() {
    let stack = Stack::create(3).await;
    let now_ms = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
    let config =
        hookcatch_cli::project::config::ConfigFile::load(&repo_root().join("hookcatch.toml"))
            .expect("the example config loads");
    let routes = config.resolve().await.expect("its dev secrets resolve");
    let mut expected: Vec<(String, usize)> = Vec::new();
    let mut count = |route: &str| match expected.iter_mut().find(|(r, _)| r == route) {
        Some((_, n)) => *n += 1,
        None => expected.push((route.to_owned(), 1)),
    };
    let mut queued = 0;
    let mut handshakes = 0;
    for path in event_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if is_schedule(&value) {
            continue;
        }
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
        let settings = route_of(&path, &routes);
        let route_name = settings.config.name.clone();
        // The Lambda reads its secrets from SSM: store each development secret there.
        let mut deployed = settings.config.clone();
        let mut names = Vec::new();
        for secret in deployed.secret_refs() {
            let hookcatch::secrets::SecretRef::Literal(value) = secret else {
                panic!("hookcatch.toml holds literal development secrets")
            };
            names.push(stack.put_secret(&value).await);
        }
        let mut names = names.into_iter();
        deployed.map_secret_refs(|_| {
            hookcatch::secrets::SecretRef::Ssm(names.next().expect("one name per secret"))
        });
        let ingestor = stack
            .ingestor(&serde_json::to_string(&deployed).unwrap())
            .await;

        // Stored samples carry old timestamps: sign afresh, as the provider would.
        let mut request = hookcatch_cli::send::request_from_event(&path).unwrap();
        hookcatch::providers::sign::sign(settings, &mut request, now_ms).unwrap();
        let event = hookcatch_cli::send::function_url_event(&request).to_string();
        let response = hookcatch_ingest::handle(&ingestor, serde_json::from_str(&event).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status_code, 200, "{}", path.display());
        let body = response.body.clone().unwrap_or_default();
        if is_handshake(&path) {
            assert!(!body.contains("queued"), "{}: {body}", path.display());
            assert!(
                !body.is_empty(),
                "{}: a handshake has an answer",
                path.display()
            );
            handshakes += 1;
        } else {
            assert!(body.contains("queued"), "{}: {body}", path.display());
            count(&route_name);
            queued += 1;
        }

        // The same request with one body byte changed is refused, where the body is authenticated.
        let open_route = settings.config.auth.is_none()
            && !settings.config.provider.is_signed()
            && settings.config.channels.is_empty();
        if !open_route && !request.body.is_empty() {
            let mut tampered = request.clone();
            let mut body = tampered.body.to_vec();
            body[0] ^= 1;
            tampered.body = body.into();
            let event = hookcatch_cli::send::function_url_event(&tampered).to_string();
            let refused =
                hookcatch_ingest::handle(&ingestor, serde_json::from_str(&event).unwrap())
                    .await
                    .unwrap();
            assert_eq!(refused.status_code, 401, "{}", path.display());
        }
    }
    assert!(handshakes >= 5, "every handshake provider has a sample");
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

    // Each provider's delivery id (its dedup key, or kept beside a digest key) and event type land
    // where its docs say.
    let store = stack.store();
    use hookcatch::ports::EventStore;
    for (route, dedup, event_type) in [
        ("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "ping"),
        ("stripe", "evt_1QhookcatchSample", "invoice.paid"),
        (
            "shopify",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "orders/create",
        ),
        (
            "standard-webhooks",
            "msg_2pHookcatchSample0001",
            "invoice.paid",
        ),
        ("slack", "Ev0HOOKCATCH01", "message"),
        (
            "zoho-crm",
            "1000000068001:1795374237473:insert:[\"5725767000003000064\"]",
            "Leads:insert",
        ),
        ("twilio", "9f2a6c1e-hookcatch-sample-0001", "received"),
        ("zoom", "", "meeting.started"),
        ("generic", "evt_hookcatch_generic_0001", "customer.updated"),
    ] {
        let event = store
            .scan_events(Some(route), None)
            .await
            .unwrap()
            .into_iter()
            .find(|e| {
                dedup.is_empty() || e.dedup_key == dedup || e.delivery_id.as_deref() == Some(dedup)
            })
            .unwrap_or_else(|| panic!("{route}: event by {dedup}"));
        assert_eq!(event.event_type.as_deref(), Some(event_type), "{route}");
    }
    // Entities carried by full-record providers become records.
    let message = store
        .get_record("slack", "message", "C123ABC456:1795374237.000200")
        .await
        .unwrap()
        .expect("the Slack message is a record");
    assert_eq!(message.data["text"], "Hello from hookcatch");
    let customer = store
        .get_record("generic", "customer", "cus_0001")
        .await
        .unwrap()
        .expect("the generic route's configured record");
    assert_eq!(customer.data["name"], "Ada Lovelace");
    // The slash command (form body) is typed by its command.
    let slash = stack.event_items("slack").await;
    assert!(
        slash.iter().any(|item| item
            .get("type")
            .and_then(|t| t.as_s().ok())
            .map(String::as_str)
            == Some("/webhook-collect")),
        "slash command typed by `command`"
    );
}

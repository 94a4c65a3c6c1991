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

#[tokio::test]
async fn every_sample_passes_through_the_real_handlers() {
    let stack = Stack::create(3).await;
    let ingestor = stack
        .ingestor(r#"{"name":"catch-raw","provider":"catch-raw"}"#)
        .await;
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
                queued += 1;
            }
        } else {
            let request = lambda_http::request::from_str(&text).unwrap();
            let response = hookcatch_ingest::handle(&ingestor, request).await.unwrap();
            assert_eq!(response.status(), 200, "{}", path.display());
            queued += 1;
        }
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
    let items = stack.event_items("catch-raw").await;
    assert_eq!(items.len(), queued);
    let multipart = items
        .iter()
        .find(|i| i.get("parts").is_some())
        .expect("the multipart sample is summarised");
    let parts: serde_json::Value =
        serde_json::from_str(multipart["parts"].as_s().unwrap()).unwrap();
    assert_eq!(parts[1]["file_name"], "report.csv");
}

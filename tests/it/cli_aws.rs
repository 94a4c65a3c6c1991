//! The `hookcatch` binary's `--aws` commands against a stack on the loopback AWS server.

use crate::support::{Stack, function_url_request, hookcatch_binary, reply_json};

async fn hookcatch(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(hookcatch_binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn events_records_and_dlq_redrive_of_a_deployed_stack() {
    let stack = Stack::create(3).await;
    let route = r#"{"name":"shop","provider":"catch-raw","open":true,"event_type":"/event",
        "records":[{"type":"order","id":"/order/id","version":"/order/updated_at","data":"/order"}]}"#;
    let ingestor = stack.ingestor(route).await;
    let mut ids = Vec::new();
    for version in [1, 2] {
        let request = function_url_request("catch-raw-json.json", move |event| {
            event["body"] = format!(
                r#"{{"event":"order.updated","order":{{"id":"9","updated_at":{version}}}}}"#
            )
            .into();
        });
        let response = hookcatch_ingest::handle(&ingestor, request).await.unwrap();
        assert_eq!(response.status_code, 200);
        ids.push(reply_json(&response)["id"].as_str().unwrap().to_owned());
    }
    let consumer = stack.consumer().await;
    let mut processed = 0;
    while processed < 2 {
        processed += stack.consume_once(&consumer).await.0;
    }

    let (ok, stdout, stderr) = hookcatch(&[
        "events",
        "list",
        "--aws",
        "--table",
        &stack.table,
        "--route",
        "shop",
        "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let listed: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], ids[1].as_str(), "newest first");
    assert_eq!(listed[0]["event_type"], "order.updated");

    let (ok, stdout, stderr) =
        hookcatch(&["events", "show", &ids[0], "--aws", "--table", &stack.table]).await;
    assert!(ok, "{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        shown["body"],
        r#"{"event":"order.updated","order":{"id":"9","updated_at":1}}"#
    );

    let (ok, stdout, stderr) = hookcatch(&[
        "records",
        "get",
        "--aws",
        "--table",
        &stack.table,
        "--route",
        "shop",
        "--type",
        "order",
        "--id",
        "9",
    ])
    .await;
    assert!(ok, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["data"]["updated_at"], 2);

    let (ok, _, stderr) = hookcatch(&["records", "list", "--aws"]).await;
    assert!(
        !ok && stderr.contains("--table"),
        "a missing table is a clear error: {stderr}"
    );

    for n in 0..3 {
        stack
            .sqs
            .send_message()
            .queue_url(&stack.dlq_url)
            .message_body(format!("dead-{n}"))
            .send()
            .await
            .unwrap();
    }
    let (ok, stdout, stderr) = hookcatch(&[
        "replay",
        "--aws",
        "--dlq-url",
        &stack.dlq_url,
        "--queue-url",
        &stack.queue_url,
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("moved 3 message(s)"), "{stdout}");
    assert_eq!(stack.queue_depth(&stack.dlq_url).await, 0);
    assert_eq!(stack.queue_depth(&stack.queue_url).await, 3);
}

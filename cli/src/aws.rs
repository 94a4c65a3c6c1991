//! The `--aws` side of the inspection commands: the deployed DynamoDB table and SQS queues.

use std::time::Duration;

use hookcatch::aws::DynamoStore;

/// Clients for a deployment, from the usual AWS environment (profile, region, `AWS_ENDPOINT_URL`).
pub async fn sdk() -> aws_config::SdkConfig {
    hookcatch::aws::sdk_config(Duration::from_secs(30)).await
}

pub fn store(sdk: &aws_config::SdkConfig, table: &str) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)
}

/// Moves every message from the dead-letter queue back to the events queue: receive, send, then
/// delete (SQS's own move task is not available on every SQS-compatible server). A message is
/// deleted from the DLQ only after it was sent, so an interruption duplicates at worst, and the
/// consumer's idempotency absorbs a duplicate.
pub async fn redrive(
    sdk: &aws_config::SdkConfig,
    dlq_url: &str,
    queue_url: &str,
    progress: &indicatif::ProgressBar,
) -> Result<usize, String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let describe =
        |e: &dyn std::error::Error| aws_sdk_sqs::error::DisplayErrorContext(e).to_string();
    let mut moved = 0;
    loop {
        let output = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| format!("receiving from the DLQ failed: {}", describe(&e)))?;
        let messages = output.messages();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            let body = message.body().unwrap_or_default();
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| format!("re-sending to the events queue failed: {}", describe(&e)))?;
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| format!("deleting from the DLQ failed: {}", describe(&e)))?;
            }
            moved += 1;
            progress.inc(1);
        }
    }
}

/// Approximate number of messages waiting in a queue, for the progress bar.
pub async fn approximate_depth(sdk: &aws_config::SdkConfig, queue_url: &str) -> Option<u64> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let output = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()?;
    output
        .attributes()?
        .get(&QueueAttributeName::ApproximateNumberOfMessages)?
        .parse()
        .ok()
}

//! The stack's queues as the CLI sees them: the dead letters listed in place, their redrive, and
//! a queue's approximate depth.

use crate::views::DeadLetter;

/// Moves every message from the dead-letter queue back to the events queue: receive, send, then
/// delete (SQS's own move task is not available on every SQS-compatible server). A message is
/// deleted from the DLQ only after it was sent, so an interruption duplicates at worst, and the
/// consumer's idempotency absorbs a duplicate.
pub async fn redrive(
    sdk: &aws_config::SdkConfig,
    dlq_url: &str,
    queue_url: &str,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<usize> {
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
            .map_err(|e| anyhow::anyhow!("receiving from the DLQ failed: {}", describe(&e)))?;
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
                .map_err(|e| {
                    anyhow::anyhow!("re-sending to the events queue failed: {}", describe(&e))
                })?;
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("deleting from the DLQ failed: {}", describe(&e))
                    })?;
            }
            moved += 1;
            progress.inc(1);
        }
    }
}

/// Up to `limit` messages of the dead-letter queue, left where they are: each receive uses a zero
/// visibility timeout, so a message is at once visible again. Receiving does count toward the
/// message's receive count, which on the DLQ moves nothing (it has no redrive of its own). SQS
/// answers each receive with a sample, so this receives until a round brings nothing new (or
/// nothing at all).
pub async fn peek_dead_letters(
    sdk: &aws_config::SdkConfig,
    dlq_url: &str,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attribute;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut found: Vec<DeadLetter> = Vec::new();
    let mut rounds_without_news = 0;
    // Bounded: a queue of thousands is listed in part, newest-first order is not SQS's.
    for _ in 0..50 {
        if found.len() >= limit || rounds_without_news >= 2 {
            break;
        }
        let output = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .message_system_attribute_names(Attribute::SentTimestamp)
            .message_system_attribute_names(Attribute::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reading the DLQ failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        // A long poll that finds nothing means nothing is visible: an empty DLQ costs one wait.
        if output.messages().is_empty() {
            break;
        }
        let before = found.len();
        for message in output.messages() {
            let Some(id) = message.message_id() else {
                continue;
            };
            if found.iter().any(|d| d.message_id == id) {
                continue;
            }
            let attribute = |name: Attribute| {
                message
                    .attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
            };
            found.push(DeadLetter {
                message_id: id.to_owned(),
                body: message.body().unwrap_or_default().to_owned(),
                sent_ms: attribute(Attribute::SentTimestamp),
                receives: attribute(Attribute::ApproximateReceiveCount).map(|n: i64| n as u32),
            });
        }
        rounds_without_news = if found.len() == before {
            rounds_without_news + 1
        } else {
            0
        };
    }
    found.truncate(limit);
    Ok(found)
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

//! Consumer Lambda handler: an SQS batch in, a partial batch response out.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hookcatch::Consumer;
use hookcatch::consume::Message;
use lambda_runtime::LambdaEvent;

#[derive(Debug, thiserror::Error)]
#[error(
    "SQS record without a messageId: the batch cannot report it, so the whole batch is retried"
)]
pub struct MissingMessageId;

/// Processes the batch concurrently and lists only the failed messages, which SQS redelivers
/// (and moves to the DLQ after the receive limit); the rest are deleted.
pub async fn handle(
    consumer: &Consumer,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let messages = event
        .payload
        .records
        .into_iter()
        .map(|record| {
            Ok(Message {
                id: record.message_id.ok_or(MissingMessageId)?,
                body: record.body.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, MissingMessageId>>()?;
    let mut response = SqsBatchResponse::default();
    for id in consumer.process_batch(messages).await {
        response.add_failure(id);
    }
    Ok(response)
}

//! Consumer Lambda handler: an SQS batch in, a partial batch response out; and, on its schedule,
//! the renewal of expiring provider subscriptions.

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
                receipt: record.receipt_handle,
                receive_count: record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
        })
        .collect::<Result<Vec<_>, MissingMessageId>>()?;
    let mut response = SqsBatchResponse::default();
    for id in consumer.process_batch(messages).await {
        response.add_failure(id);
    }
    Ok(response)
}

/// What the schedule sends (EventBridge Scheduler's fixed input) to renew subscriptions.
pub const RENEW_INPUT: &str = "renew-subscriptions";

#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("not an SQS batch nor {{\"hookcatch\":\"{RENEW_INPUT}\"}}: {0}")]
    UnknownEvent(String),
    /// A failed renewal is an invocation error, so Lambda's Errors metric (and its alarm) counts it.
    #[error("subscription renewal failed: {}", .0.join("; "))]
    Renewal(Vec<String>),
}

/// Dispatches on the event's shape: an SQS batch, or the scheduled renewal.
pub async fn handle_any(
    consumer: &Consumer,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    if payload.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(payload)?;
        let response = handle(consumer, LambdaEvent::new(batch, context)).await?;
        return Ok(serde_json::to_value(response)?);
    }
    if payload.get("hookcatch").and_then(|v| v.as_str()) == Some(RENEW_INPUT) {
        return match consumer.renew_subscriptions().await {
            Ok(renewed) => {
                tracing::info!(count = renewed.len(), ?renewed, "subscriptions renewed");
                Ok(serde_json::json!({ "renewed": renewed }))
            }
            Err(failed) => {
                tracing::error!(?failed, "subscription renewal FAILED");
                Err(InvocationError::Renewal(failed).into())
            }
        };
    }
    let shape: Vec<&String> = payload
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    Err(InvocationError::UnknownEvent(format!("keys {shape:?}")).into())
}

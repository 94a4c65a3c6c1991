use async_trait::async_trait;

use crate::ports::{Queue, QueueError, Redelivery};

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn max_message_bytes(&self) -> usize {
        crate::model::envelope::SQS_MAX_MESSAGE_BYTES
    }

    async fn send(&self, message: String) -> Result<(), QueueError> {
        match self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                let text = super::describe(&error);
                let rejected = error.as_service_error().is_some_and(|e| {
                    e.is_invalid_message_contents()
                        || aws_sdk_sqs::error::ProvideErrorMetadata::code(e)
                            == Some("InvalidParameterValue")
                });
                Err(if rejected {
                    QueueError::Rejected(text)
                } else {
                    QueueError::Unavailable(text)
                })
            }
        }
    }
}

#[async_trait]
impl Redelivery for SqsQueue {
    async fn postpone(&self, receipt: &str, delay: std::time::Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(
                i32::try_from(delay.as_secs())
                    .unwrap_or(i32::MAX)
                    .min(43_199),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|error| QueueError::Unavailable(super::describe(&error)))
    }
}

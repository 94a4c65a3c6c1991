use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::{BlobError, BlobStore};

pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Blobs {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    fn location(&self) -> &str {
        &self.bucket
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BlobError::Failed(super::describe(&e)))
    }

    async fn get(&self, location: &str, key: &str) -> Result<Bytes, BlobError> {
        let object = self
            .client
            .get_object()
            .bucket(location)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let missing = e.as_service_error().is_some_and(|e| e.is_no_such_key());
                let text = super::describe(&e);
                if missing {
                    BlobError::Missing(text)
                } else {
                    BlobError::Failed(text)
                }
            })?;
        let data = object
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Failed(e.to_string()))?;
        Ok(data.into_bytes())
    }
}

use async_trait::async_trait;

use crate::secrets::{ParameterStore, SecretError};

/// SSM Parameter Store: SecureString parameters read with decryption, once at init.
pub struct SsmParameters {
    client: aws_sdk_ssm::Client,
}

impl SsmParameters {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        SsmParameters { client }
    }
}

#[async_trait]
impl ParameterStore for SsmParameters {
    async fn get_decrypted(&self, names: &[String]) -> Result<Vec<String>, SecretError> {
        let mut values = Vec::with_capacity(names.len());
        // GetParameters takes at most 10 names per call.
        for chunk in names.chunks(10) {
            let output = self
                .client
                .get_parameters()
                .set_names(Some(chunk.to_vec()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| SecretError::Store(super::describe(&e)))?;
            if let Some(missing) = output.invalid_parameters().first() {
                return Err(SecretError::MissingParameter(missing.clone()));
            }
            for name in chunk {
                let value = output
                    .parameters()
                    .iter()
                    .find(|p| p.name() == Some(name.as_str()))
                    .and_then(|p| p.value())
                    .ok_or_else(|| SecretError::MissingParameter(name.clone()))?;
                values.push(value.to_owned());
            }
        }
        Ok(values)
    }
}

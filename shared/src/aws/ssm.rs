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

    async fn get_by_path(&self, path: &str) -> Result<Vec<(String, String)>, SecretError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SecretError::Store(super::describe(&e)))?;
            for parameter in page.parameters() {
                if let (Some(name), Some(value)) = (parameter.name(), parameter.value()) {
                    found.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Ok(found)
    }
}

//! AWS adapters for the ports. Clients are built once per process; the endpoint comes from the
//! standard `AWS_ENDPOINT_URL` variable, so tests aim every client at a local server.

mod dynamodb;
mod s3;
mod sqs;
mod ssm;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub use dynamodb::{
    DynamoStore, EVENT_INDEX, EVENT_INDEX_SHARDS, EventPage, RecordPage, index_sort_key, is_cursor,
};
pub use s3::S3Blobs;
pub use sqs::SqsQueue;
pub use ssm::SsmParameters;

/// Loads the shared SDK configuration with bounded timeouts: `operation` caps all attempts of one
/// call, so a route answers within its provider's deadline even when AWS is slow.
pub async fn sdk_config(operation: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::tls::aws_https_client())
        .timeout_config(timeouts(operation))
        .retry_config(retries())
        .load()
        .await
}

/// Every attempt bounded so that all of them together fit in `operation`.
fn timeouts(operation: Duration) -> TimeoutConfig {
    let attempt = (operation / 2).max(Duration::from_millis(200));
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500).min(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The SDK configuration inside Lambda, from the variables Lambda sets: region from `AWS_REGION`,
/// credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and an endpoint
/// from `AWS_ENDPOINT_URL` when set (the tests' local server). It skips aws-config's default
/// provider chains (profile files, IMDS, ECS, web identity through an STS client), which Lambda
/// never needs and which would otherwise be linked into every bootstrap (BENCHMARKS.md §3). Same
/// timeouts and retries as [`sdk_config`], which the command-line tool keeps for profiles and SSO.
pub fn lambda_sdk_config(operation: Duration) -> Result<SdkConfig, crate::config::ConfigError> {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_sdk_sqs::config::{Region, SharedCredentialsProvider};

    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .ok_or(crate::config::ConfigError::Missing("AWS_REGION"))?;
    let builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(crate::tls::aws_https_client())
        .timeout_config(timeouts(operation))
        .retry_config(retries());
    let builder = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => builder.endpoint_url(url),
        _ => builder,
    };
    Ok(builder.build())
}

/// Error text from an SDK error, with its whole source chain (service code and message included).
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(error).to_string()
}

/// Path-style addressing when an endpoint override is set (local S3-compatible servers have no
/// per-bucket DNS names); virtual-hosted style on AWS.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    )
}

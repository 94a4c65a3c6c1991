//! Floor 3: the deployed stack as the CLI drives it, through the AWS calls that are not the core's
//! ports: SSM for route configuration and secrets, `sam` for builds, deploys and Outputs, Lambda's
//! reserved concurrency, the queues' dead letters, the route functions' logs, replays on the stack.

pub mod env_json;
pub mod logs;
pub mod plan;
pub mod replay;
pub mod reservations;
pub mod sam;
pub mod sigv4;
pub mod sqs;
pub mod ssm;
pub mod urls;

use std::time::Duration;

use hookcatch::aws::DynamoStore;

/// Clients for a deployment, from the usual AWS environment (profile, region, `AWS_ENDPOINT_URL`).
/// The AWS SDK's configuration from the environment and profiles, or what to do when it names no
/// region (every call would fail, each with a longer error).
pub async fn sdk() -> anyhow::Result<aws_config::SdkConfig> {
    let sdk = hookcatch::aws::sdk_config(Duration::from_secs(30)).await;
    if sdk.region().is_none() {
        anyhow::bail!("no AWS region: set AWS_REGION or a profile's region");
    }
    Ok(sdk)
}

pub fn store(sdk: &aws_config::SdkConfig, table: &str) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)
}

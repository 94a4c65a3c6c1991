//! What `sam local invoke --env-vars` reads for one function (`env-json`).

use anyhow::Context;
use hookcatch::config::{ConsumerEnv, IngestEnv};

use crate::stack::plan::Plan;

/// Where the stack's functions send and store: what `env-json` writes beside the SSM paths.
#[derive(Debug, Clone, Default)]
pub struct StackResources {
    pub queue_url: String,
    pub bucket: Option<String>,
    pub table: Option<String>,
}

/// The `--env-vars` file of `sam local invoke` for one route's function, or for the consumer
/// (`function = "consumer"`): SSM paths and resource names, never a secret value.
pub fn env_json(
    plan: &Plan,
    function: &str,
    resources: &StackResources,
) -> anyhow::Result<serde_json::Value> {
    let mut variables = serde_json::Map::new();
    let mut set = |name: &str, value: &str| {
        variables.insert(name.to_owned(), value.into());
    };
    let logical = if function == "consumer" {
        let table = resources
            .table
            .as_deref()
            .context("the consumer needs --table (the stack's EventsTableName)")?;
        set(ConsumerEnv::TABLE, table);
        set(ConsumerEnv::ROUTES_PATH, &plan.layout.routes_path());
        set(ConsumerEnv::QUEUE_URL, &resources.queue_url);
        if let Some(bucket) = &resources.bucket {
            set(ConsumerEnv::BUCKET, bucket);
        }
        "ConsumerFunction".to_owned()
    } else {
        let route = plan.route(function).with_context(|| {
            format!("no route `{function}` in the configuration (or `consumer`)")
        })?;
        set(IngestEnv::ROUTE_PATH, &plan.layout.route_path(&route.name));
        set(IngestEnv::QUEUE_URL, &resources.queue_url);
        if let Some(bucket) = &resources.bucket {
            set(IngestEnv::BUCKET, bucket);
        }
        route.logical_id.clone()
    };
    Ok(serde_json::json!({ logical: variables }))
}

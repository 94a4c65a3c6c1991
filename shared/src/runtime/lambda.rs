//! The route and consumer Lambdas' wiring: each core built once per cold start from the
//! function's environment, with the AWS adapters. `hookcatch serve` (`cli/src/serve.rs`) is the
//! same wiring over the local store.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("route `{route}`: {source}")]
    Secret {
        route: String,
        source: crate::secrets::SecretError,
    },
}

/// Builds a route Lambda's ingest core from its environment: config, secrets from SSM, clients.
/// Called once per cold start.
pub async fn ingestor_from_env(
    env: crate::config::EnvLookup<'_>,
) -> Result<crate::ingest::Ingestor, InitError> {
    use std::sync::Arc;

    let settings = crate::config::IngestEnv::from_env(env)?;
    let sdk = crate::aws::lambda_sdk_config(settings.enqueue_timeout)?;
    let parameters = crate::aws::SsmParameters::new(aws_sdk_ssm::Client::new(&sdk));
    let config = match settings.route {
        crate::config::RouteSource::Inline(route) => *route,
        crate::config::RouteSource::Parameters { layout, id } => {
            deployed_route(&parameters, &layout, &id).await?
        }
    };
    let route = route_settings(config, env, &parameters).await?;
    let queue = Arc::new(crate::aws::SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        settings.queue_url,
    ));
    let blobs = settings.bucket.map(|bucket| {
        Arc::new(crate::aws::S3Blobs::new(
            crate::aws::s3_client(&sdk),
            bucket,
        )) as Arc<dyn crate::ports::BlobStore>
    });
    Ok(crate::ingest::Ingestor::new(
        &route,
        queue,
        blobs,
        Arc::new(crate::clock::SystemClock),
        settings.enqueue_timeout,
    ))
}

/// A deployed route's configuration, as its function reads it: its parameters in SSM, with its
/// `local:` secrets pointed at their SecureStrings. `id` is the route's id ([`route_id`] of its
/// name).
///
/// [`route_id`]: crate::config::route_id
pub async fn deployed_route(
    parameters: &crate::aws::SsmParameters,
    layout: &crate::config::SsmLayout,
    id: &str,
) -> Result<crate::config::RouteConfig, InitError> {
    let mut routes = read_routes(parameters, layout, &layout.path_of_id(id)).await?;
    let found = routes
        .remove(id)
        .ok_or_else(|| crate::config::ConfigError::Route {
            route: id.to_owned(),
            reason: format!(
                "{} is not in SSM: push it with `hookcatch routes push --stack {}`",
                layout.config_name(id),
                layout.stack()
            ),
        })?;
    Ok(found.resolved_config(layout)?)
}

/// A route's settings with its secrets resolved (SSM ones decrypted in one call) and checked.
pub async fn route_settings(
    config: crate::config::RouteConfig,
    env: crate::config::EnvLookup<'_>,
    parameters: &crate::aws::SsmParameters,
) -> Result<crate::config::RouteSettings, InitError> {
    let refs = config.secret_refs();
    let secrets = crate::secrets::resolve(&refs, env, Some(parameters))
        .await
        .map_err(|source| InitError::Secret {
            route: config.name.clone(),
            source,
        })?;
    let route = crate::config::RouteSettings::new(config, secrets);
    crate::providers::check_secrets(&route)?;
    Ok(route)
}

/// Builds the consumer core from its environment. Called once per cold start.
pub async fn consumer_from_env(
    env: crate::config::EnvLookup<'_>,
) -> Result<crate::consume::Consumer, InitError> {
    use std::sync::Arc;

    let settings = crate::config::ConsumerEnv::from_env(env)?;
    // The consumer has no caller waiting: give DynamoDB and S3 room, but still bound each call.
    let sdk = crate::aws::lambda_sdk_config(Duration::from_secs(10))?;
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::SystemClock);
    let mut store =
        crate::aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.table);
    if settings.event_index {
        store = store.with_event_index(clock.clone());
    }
    let store = Arc::new(store);
    let blobs = settings.bucket.map(|bucket| {
        Arc::new(crate::aws::S3Blobs::new(
            crate::aws::s3_client(&sdk),
            bucket,
        )) as Arc<dyn crate::ports::BlobStore>
    });
    let mut consumer = crate::consume::Consumer::new(
        store.clone(),
        blobs,
        clock.clone(),
        settings.event_retention_days,
        settings.concurrency,
    );
    if let Some(queue_url) = &settings.queue_url {
        consumer = consumer.with_redelivery(Arc::new(crate::aws::SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            queue_url,
        )));
    }
    let mut hydrators = settings.hydrators;
    let parameters = crate::aws::SsmParameters::new(aws_sdk_ssm::Client::new(&sdk));
    if let Some(layout) = &settings.routes {
        for found in read_routes(&parameters, layout, &layout.routes_path())
            .await?
            .into_values()
        {
            let Some(hydrate) = found.resolved_hydrator(layout)? else {
                continue;
            };
            let route = found.config.name.clone();
            if hydrators.insert(route.clone(), hydrate).is_some() {
                return Err(crate::config::ConfigError::Route {
                    route,
                    reason: "has a hydrator both in SSM and in HOOKCATCH_HYDRATORS".into(),
                }
                .into());
            }
        }
    }
    for (route, config) in &hydrators {
        let refs: Vec<_> = config.secret_refs().into_iter().cloned().collect();
        let secrets = crate::secrets::resolve(&refs, env, Some(&parameters))
            .await
            .map_err(|source| InitError::Secret {
                route: route.clone(),
                source,
            })?;
        let hydrator = crate::hydrate::build(route, config, &secrets, store.clone(), clock.clone());
        consumer = consumer.with_hydrator(route, hydrator);
    }
    Ok(consumer)
}

/// The routes under `path`, read in one paginated `GetParametersByPath`.
async fn read_routes(
    parameters: &crate::aws::SsmParameters,
    layout: &crate::config::SsmLayout,
    path: &str,
) -> Result<std::collections::BTreeMap<String, crate::config::RouteParameters>, InitError> {
    use crate::secrets::ParameterStore;
    let found = parameters
        .get_by_path(path)
        .await
        .map_err(|source| InitError::Secret {
            route: path.to_owned(),
            source,
        })?;
    Ok(crate::config::RouteParameters::group(layout, found)?)
}

//! What a configuration builds for `serve`: each route's ingestor and rate limit, and the consumer
//! with the routes' hydrators.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hookcatch::clock::Clock;
use hookcatch::{Consumer, Ingestor, RouteSettings};

use super::RouteLimit;
use super::at_once::StoringQueue;
use crate::project::config::{ConfigFile, ServeConfig};
use crate::store::LocalStore;

/// What a configuration builds: each route's ingestor, and the consumer with the routes' hydrators.
pub(super) struct Built {
    pub(super) routes: HashMap<String, Ingestor>,
    pub(super) limits: HashMap<String, RouteLimit>,
    pub(super) consumer: Arc<Consumer>,
}

impl Built {
    pub(super) async fn from(
        config: &ConfigFile,
        serve: &ServeConfig,
        store: &LocalStore,
        clock: &Arc<dyn Clock>,
    ) -> Result<Built, String> {
        let settings = config.resolve().await.map_err(|e| e.to_string())?;
        for route in &settings {
            check_twilio(route, serve)?;
        }
        let mut consumer = Consumer::new(
            Arc::new(store.clone()),
            None,
            clock.clone(),
            serve.event_retention_days,
            serve.concurrency,
        );
        // Hydrators keep their access tokens in the local store, like the consumer Lambda in DynamoDB.
        for route in &settings {
            if let Some(hydrator) =
                hookcatch::hydrate::hydrator_for(route, Arc::new(store.clone()), clock.clone())
            {
                consumer = consumer.with_hydrator(&route.config.name, hydrator);
            }
        }
        let consumer = Arc::new(consumer);
        let queue = Arc::new(StoringQueue {
            store: store.clone(),
            consumer: consumer.clone(),
        });
        let routes = settings
            .iter()
            .map(|route| {
                let ingestor = Ingestor::new(
                    route,
                    queue.clone(),
                    None,
                    clock.clone(),
                    Duration::from_secs(10),
                );
                (route.config.name.clone(), ingestor)
            })
            .collect();
        let limits = settings
            .iter()
            .filter_map(|route| {
                let limit = RouteLimit::new(route.config.rate_limit.as_ref()?)?;
                Some((route.config.name.clone(), limit))
            })
            .collect();
        Ok(Built {
            routes,
            limits,
            consumer,
        })
    }
}

fn check_twilio(route: &RouteSettings, serve: &ServeConfig) -> Result<(), String> {
    if route.config.provider == hookcatch::ProviderKind::Twilio
        && route.config.public_url.is_none()
        && !serve.trust_forwarded
    {
        return Err(format!(
            "route `{}`: Twilio signs the URL it calls, which serve cannot know: set \
             `public_url` to the URL configured in Twilio (your tunnel's), or \
             `trust_forwarded = true` behind your own proxy",
            route.config.name
        ));
    }
    Ok(())
}

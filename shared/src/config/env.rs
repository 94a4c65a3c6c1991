//! What each Lambda reads from its environment, typed and validated once at cold start.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, HydrateConfig, RouteConfig, SsmLayout};

/// Reads an environment variable through a lookup function, so tests need not touch the process env.
pub type EnvLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

fn required(env: EnvLookup<'_>, name: &'static str) -> Result<String, ConfigError> {
    env(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn optional_number<T: std::str::FromStr>(
    env: EnvLookup<'_>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("`{v}` is not a number"),
        }),
    }
}

fn optional(env: EnvLookup<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

/// Where a route Lambda finds its route.
#[derive(Debug, Clone)]
pub enum RouteSource {
    /// The whole route in `HOOKCATCH_ROUTE` (JSON), secrets as `ssm:` references: the override
    /// benchmarks and hand-written `sam local invoke` files use.
    Inline(Box<RouteConfig>),
    /// The route's SSM path (`HOOKCATCH_ROUTE_PATH`, ending in the route's id): its `config` and
    /// `secrets/*` parameters, read in one call at cold start.
    Parameters { layout: SsmLayout, id: String },
}

/// Everything a route Lambda reads from its environment.
#[derive(Debug, Clone)]
pub struct IngestEnv {
    pub route: RouteSource,
    pub queue_url: String,
    /// Bucket for bodies too large to travel inside one queue message.
    pub bucket: Option<String>,
    /// Upper bound for enqueueing (all attempts): the route must answer within its provider's deadline.
    pub enqueue_timeout: Duration,
}

/// `/hookcatch/{stack}/routes/{id}` → the layout and the route's id.
fn route_path(name: &'static str, path: &str) -> Result<(SsmLayout, String), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name, reason };
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "hookcatch", stack, "routes", id]
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok((SsmLayout::new(stack).map_err(invalid)?, (*id).to_owned()))
        }
        _ => Err(invalid(format!(
            "`{path}` is not /hookcatch/{{stack}}/routes/{{route id}}"
        ))),
    }
}

/// `/hookcatch/{stack}/routes` → the layout.
fn routes_path(name: &'static str, path: &str) -> Result<SsmLayout, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name, reason };
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["", "hookcatch", stack, "routes"] => SsmLayout::new(stack).map_err(invalid),
        _ => Err(invalid(format!(
            "`{path}` is not /hookcatch/{{stack}}/routes"
        ))),
    }
}

impl IngestEnv {
    pub const ROUTE: &'static str = "HOOKCATCH_ROUTE";
    pub const ROUTE_PATH: &'static str = "HOOKCATCH_ROUTE_PATH";
    pub const QUEUE_URL: &'static str = "HOOKCATCH_QUEUE_URL";
    pub const BUCKET: &'static str = "HOOKCATCH_BUCKET";
    pub const ENQUEUE_TIMEOUT_MS: &'static str = "HOOKCATCH_ENQUEUE_TIMEOUT_MS";

    pub fn from_env(env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let route = match (optional(env, Self::ROUTE), optional(env, Self::ROUTE_PATH)) {
            (Some(route_json), _) => {
                let route: RouteConfig =
                    serde_json::from_str(&route_json).map_err(|e| ConfigError::Invalid {
                        name: Self::ROUTE,
                        reason: e.to_string(),
                    })?;
                route.validate()?;
                // A deployed function must not carry secrets in plain environment values.
                if let Some(plain) = route.secret_refs().iter().find(|s| !s.is_external()) {
                    return Err(ConfigError::Route {
                        route: route.name.clone(),
                        reason: format!(
                            "on AWS, secrets must be `ssm:` references, not {}",
                            plain.kind_name()
                        ),
                    });
                }
                RouteSource::Inline(Box::new(route))
            }
            (None, Some(path)) => {
                let (layout, id) = route_path(Self::ROUTE_PATH, &path)?;
                RouteSource::Parameters { layout, id }
            }
            (None, None) => return Err(ConfigError::Missing(Self::ROUTE_PATH)),
        };
        Ok(IngestEnv {
            route,
            queue_url: required(env, Self::QUEUE_URL)?,
            bucket: optional(env, Self::BUCKET),
            enqueue_timeout: Duration::from_millis(optional_number(
                env,
                Self::ENQUEUE_TIMEOUT_MS,
                2_000u64,
            )?),
        })
    }
}

/// Everything the consumer Lambda reads from its environment.
#[derive(Debug, Clone)]
pub struct ConsumerEnv {
    pub table: String,
    pub bucket: Option<String>,
    /// Days an event item is kept (DynamoDB TTL); 0 keeps events forever.
    pub event_retention_days: u32,
    /// Whether event items carry the event index's keys (`HOOKCATCH_EVENT_INDEX`: `on` or `off`,
    /// the default).
    pub event_index: bool,
    /// Messages of one batch processed at the same time.
    pub concurrency: usize,
    /// Hydrators by route name (`HOOKCATCH_HYDRATORS`, a JSON object); secrets as `ssm:` references.
    pub hydrators: BTreeMap<String, HydrateConfig>,
    /// The events queue, to postpone retryable failures with a growing delay (optional).
    pub queue_url: Option<String>,
    /// The stack's routes in SSM (`HOOKCATCH_ROUTES_PATH`): each route's hydrator is read from
    /// there at cold start, beside any in `HOOKCATCH_HYDRATORS`.
    pub routes: Option<SsmLayout>,
}

impl ConsumerEnv {
    pub const TABLE: &'static str = "HOOKCATCH_TABLE";
    pub const BUCKET: &'static str = "HOOKCATCH_BUCKET";
    pub const RETENTION_DAYS: &'static str = "HOOKCATCH_EVENT_RETENTION_DAYS";
    pub const EVENT_INDEX: &'static str = "HOOKCATCH_EVENT_INDEX";
    pub const CONCURRENCY: &'static str = "HOOKCATCH_CONSUMER_CONCURRENCY";
    pub const HYDRATORS: &'static str = "HOOKCATCH_HYDRATORS";
    pub const QUEUE_URL: &'static str = "HOOKCATCH_QUEUE_URL";
    pub const ROUTES_PATH: &'static str = "HOOKCATCH_ROUTES_PATH";

    pub fn from_env(env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        Ok(ConsumerEnv {
            routes: optional(env, Self::ROUTES_PATH)
                .map(|path| routes_path(Self::ROUTES_PATH, &path))
                .transpose()?,
            table: required(env, Self::TABLE)?,
            bucket: optional(env, Self::BUCKET),
            event_retention_days: optional_number(env, Self::RETENTION_DAYS, 30u32)?,
            event_index: match optional(env, Self::EVENT_INDEX).as_deref() {
                None | Some("off") => false,
                Some("on") => true,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: Self::EVENT_INDEX,
                        reason: format!("`{other}`: expected `on` or `off`"),
                    });
                }
            },
            concurrency: optional_number(env, Self::CONCURRENCY, 10usize)?.max(1),
            queue_url: optional(env, Self::QUEUE_URL),
            hydrators: match optional(env, Self::HYDRATORS) {
                None => BTreeMap::new(),
                Some(json) => {
                    let invalid = |reason: String| ConfigError::Invalid {
                        name: Self::HYDRATORS,
                        reason,
                    };
                    // `null` entries are routes without a hydrator (what a template condition
                    // leaves behind).
                    let hydrators: BTreeMap<String, Option<HydrateConfig>> =
                        serde_json::from_str(&json).map_err(|e| invalid(e.to_string()))?;
                    let hydrators: BTreeMap<String, HydrateConfig> = hydrators
                        .into_iter()
                        .filter_map(|(route, config)| Some((route, config?)))
                        .collect();
                    for (route, config) in &hydrators {
                        config
                            .validate(None)
                            .map_err(|e| invalid(format!("{route}: {e}")))?;
                    }
                    let plain = hydrators
                        .values()
                        .flat_map(HydrateConfig::secret_refs)
                        .find(|s| !s.is_external());
                    if let Some(plain) = plain {
                        return Err(ConfigError::Invalid {
                            name: Self::HYDRATORS,
                            reason: format!(
                                "on AWS, secrets must be `ssm:` references, not {}",
                                plain.kind_name()
                            ),
                        });
                    }
                    hydrators
                }
            },
        })
    }
}

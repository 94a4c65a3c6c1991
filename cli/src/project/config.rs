//! `hookcatch.toml`: the routes (same keys as a route Lambda's `HOOKCATCH_ROUTE`) and local settings.

use anyhow::Context;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hookcatch::RouteSettings;
use hookcatch::config::RouteConfig;
use hookcatch::secrets::SecretRef;
use serde::Deserialize;

use crate::project::files::{FileError, toml_problem};
use crate::project::secrets_file::LocalSecrets;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    #[serde(default = "default_data")]
    pub data: PathBuf,
    /// Trust `X-Forwarded-For`/`-Proto`/`-Host` (only behind your own TLS-terminating proxy).
    #[serde(default)]
    pub trust_forwarded: bool,
    /// How many proxies of yours stand in front of `serve`, each appending to `X-Forwarded-For`:
    /// the client is that many entries from the right, never an entry a client wrote.
    #[serde(default = "default_trusted_proxy_hops")]
    pub trusted_proxy_hops: usize,
    /// Deliveries of an event to the consumer before it is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Days an event is kept; 0 keeps events forever.
    #[serde(default = "default_retention")]
    pub event_retention_days: u32,
    /// Messages processed at once by the worker.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The console's own listener, never the webhook one (which tunnels expose). It asks every
    /// browser for its token (`HOOKCATCH_CONSOLE_TOKEN`, or the one kept in the data directory
    /// and printed at start).
    #[serde(default = "default_console_addr")]
    pub console_addr: SocketAddr,
    /// `false` runs no console.
    #[serde(default = "default_console")]
    pub console: bool,
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
fn default_console_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3001))
}
fn default_console() -> bool {
    true
}
fn default_data() -> PathBuf {
    PathBuf::from(".hookcatch")
}
fn default_trusted_proxy_hops() -> usize {
    1
}
fn default_max_attempts() -> u32 {
    5
}
fn default_retention() -> u32 {
    30
}
fn default_concurrency() -> usize {
    16
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: default_addr(),
            data: default_data(),
            trust_forwarded: false,
            trusted_proxy_hops: default_trusted_proxy_hops(),
            max_attempts: default_max_attempts(),
            event_retention_days: default_retention(),
            concurrency: default_concurrency(),
            console_addr: default_console_addr(),
            console: default_console(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub serve: ServeConfig,
    pub routes: Vec<RouteConfig>,
    /// The file it was loaded from (`serve` watches it); None when parsed from text.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// What `local:NAME` references read: the secrets file beside the configuration.
    #[serde(skip)]
    pub local_secrets: LocalSecrets,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::parse(&text, &shown)?;
        let secrets = LocalSecrets::path_beside(path);
        config.local_secrets =
            LocalSecrets::load(&secrets).map_err(|e| ConfigFileError::Invalid {
                path: secrets.display().to_string(),
                message: e.to_string(),
            })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    pub fn parse(text: &str, shown: &str) -> Result<ConfigFile, ConfigFileError> {
        let config: ConfigFile = toml::from_str(text).map_err(|e| FileError::Parse {
            path: shown.to_owned(),
            message: toml_problem(text, e.message(), e.span()),
        })?;
        let mut names = HashSet::new();
        for route in &config.routes {
            route.validate().map_err(|e| ConfigFileError::Invalid {
                path: shown.to_owned(),
                message: e.to_string(),
            })?;
            if !names.insert(route.name.as_str()) {
                return Err(ConfigFileError::Invalid {
                    path: shown.to_owned(),
                    message: format!("route `{}` is defined twice", route.name),
                });
            }
        }
        // A stack's logical ids keep only letters and digits (`Fn::ForEach`'s `&{Route}`).
        let mut ids = std::collections::HashMap::new();
        for route in &config.routes {
            let id = hookcatch::config::logical_id(&route.name);
            if let Some(other) = ids.insert(id, route.name.as_str()) {
                return Err(ConfigFileError::Invalid {
                    path: shown.to_owned(),
                    message: format!(
                        "routes `{other}` and `{}` differ only in `-` or `_`, which a deployed \
                         stack's names drop: rename one",
                        route.name
                    ),
                });
            }
        }
        if config.routes.len() > hookcatch::config::MAX_DEPLOYED_ROUTES {
            return Err(ConfigFileError::Invalid {
                path: shown.to_owned(),
                message: format!(
                    "{} routes: at most {} fit in one stack (CloudFormation's 500 resources)",
                    config.routes.len(),
                    hookcatch::config::MAX_DEPLOYED_ROUTES
                ),
            });
        }
        if !(1..=16).contains(&config.serve.trusted_proxy_hops) {
            return Err(ConfigFileError::Invalid {
                path: shown.to_owned(),
                message: "serve.trusted_proxy_hops must be between 1 and 16".into(),
            });
        }
        if config.routes.is_empty() {
            return Err(ConfigFileError::Invalid {
                path: shown.to_owned(),
                message: "no [[routes]] defined".into(),
            });
        }
        Ok(config)
    }

    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Whether `route`'s secrets can be resolved here: `set`, `not needed`, `missing: …` (the
    /// references that are not), or `in SSM (read by serve)`. Never a value.
    pub fn secrets_status(
        &self,
        route: &RouteConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> String {
        let refs = route.secret_refs();
        if refs.is_empty() {
            return "not needed".into();
        }
        let missing: Vec<String> = refs
            .iter()
            .filter_map(|r| match r {
                SecretRef::Env(name) => env(name)
                    .filter(|v| !v.trim().is_empty())
                    .is_none()
                    .then(|| format!("env:{name}")),
                SecretRef::Local(name) => self
                    .local_secrets
                    .values(&route.name, name)
                    .is_none()
                    .then(|| format!("local:{name}")),
                SecretRef::Ssm(_) | SecretRef::Literal(_) => None,
            })
            .collect();
        if !missing.is_empty() {
            format!("missing: {}", missing.join(", "))
        } else if refs.iter().any(|r| matches!(r, SecretRef::Ssm(_))) {
            "in SSM (read by serve)".into()
        } else {
            "set".into()
        }
    }

    /// `route` with its `local:NAME` references replaced by the secrets file's values: every value
    /// (newest first) in `secrets`, where a rotation keeps two; the newest elsewhere.
    fn with_local_secrets(&self, route: &RouteConfig) -> anyhow::Result<RouteConfig> {
        let name = &route.name;
        route
            .with_route_secrets(|secret| {
                self.local_secrets
                    .values(name, secret)
                    .map(<[String]>::to_vec)
            })
            .map_err(|secret| {
                anyhow::anyhow!(
                    "route `{name}`: `local:{secret}` is not in {} (`hookcatch secrets set {name} {secret} --stdin`)",
                    crate::project::secrets_file::FILE_NAME
                )
            })
    }

    /// Resolves every route's secrets once (SSM only when a route references it).
    pub async fn resolve(&self) -> anyhow::Result<Vec<RouteSettings>> {
        self.resolve_routes(self.routes.iter()).await
    }

    /// One route with its secrets resolved (its own only: `send`, `routes test`, the console's
    /// Test button).
    pub async fn resolve_route(&self, name: &str) -> anyhow::Result<RouteSettings> {
        let route = self
            .route(name)
            .with_context(|| format!("no route `{name}` in the configuration"))?;
        let mut resolved = self.resolve_routes(std::iter::once(route)).await?;
        resolved
            .pop()
            .with_context(|| format!("route `{name}` did not resolve"))
    }

    async fn resolve_routes<'a>(
        &self,
        routes: impl Iterator<Item = &'a RouteConfig>,
    ) -> anyhow::Result<Vec<RouteSettings>> {
        let routes = routes
            .map(|route| self.with_local_secrets(route))
            .collect::<Result<Vec<_>, _>>()?;
        let needs_ssm = routes.iter().any(|r| {
            r.secret_refs()
                .iter()
                .any(|s| matches!(s, SecretRef::Ssm(_)))
        });
        let ssm = if needs_ssm {
            let sdk = hookcatch::aws::sdk_config(std::time::Duration::from_secs(10)).await;
            Some(hookcatch::aws::SsmParameters::new(
                aws_sdk_ssm::Client::new(&sdk),
            ))
        } else {
            None
        };
        let env = |name: &str| std::env::var(name).ok();
        let mut resolved = Vec::with_capacity(routes.len());
        for route in routes {
            let secrets = hookcatch::secrets::resolve(
                &route.secret_refs(),
                &env,
                ssm.as_ref()
                    .map(|s| s as &dyn hookcatch::secrets::ParameterStore),
            )
            .await
            .map_err(|e| anyhow::anyhow!("route `{}`: {e}", route.name))?;
            let settings = RouteSettings::new(route, secrets);
            hookcatch::providers::check_secrets(&settings)?;
            resolved.push(settings);
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hookcatch.toml");
        let config = ConfigFile::load(&path).unwrap();
        assert!(config.route("catch-raw").is_some());
    }

    /// Every `[routes.hydrate]` example in the hydration docs parses and validates, on a route of
    /// the provider it is written for.
    #[test]
    fn the_readme_hydrator_examples_are_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/hydration.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let examples: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .filter(|block| block.starts_with("[routes.hydrate]"))
            .collect();
        assert!(examples.len() >= 2, "{} examples", examples.len());
        for (example, provider) in examples.iter().zip(["stripe", "microsoft-graph"]) {
            let toml = format!(
                "[[routes]]\nname = \"r\"\nprovider = \"{provider}\"\nsecrets = [\"dev-only-secret\"]\n{example}"
            );
            let config = ConfigFile::parse(&toml, "docs/hydration.md")
                .unwrap_or_else(|e| panic!("{e}\n{example}"));
            assert!(config.route("r").unwrap().hydrate.is_some());
        }
    }

    #[test]
    fn mistakes_are_reported_with_the_file() {
        let twice = "[[routes]]\nname = \"a\"\nprovider = \"catch-raw\"\nopen = true\n[[routes]]\nname = \"a\"\nprovider = \"catch-raw\"\nopen = true\n";
        let error = ConfigFile::parse(twice, "x.toml").unwrap_err().to_string();
        assert!(
            error.contains("x.toml") && error.contains("twice"),
            "{error}"
        );
        let typo = "[[routes]]\nname = \"a\"\nprovider = \"catch-raw\"\nsecret = [\"s\"]\n";
        assert!(
            ConfigFile::parse(typo, "x.toml")
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
        let unknown_provider = "[[routes]]\nname = \"a\"\nprovider = \"nope\"\n";
        assert!(ConfigFile::parse(unknown_provider, "x.toml").is_err());
        // Nothing is open by default: an unprotected catch-raw route must say `open = true`.
        let unprotected = "[[routes]]\nname = \"a\"\nprovider = \"catch-raw\"\n";
        let error = ConfigFile::parse(unprotected, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("open = true"), "{error}");
        let colliding = "[[routes]]\nname = \"slack-a\"\nprovider = \"catch-raw\"\nopen = true\n[[routes]]\nname = \"slack_a\"\nprovider = \"catch-raw\"\nopen = true\n";
        let error = ConfigFile::parse(colliding, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("differ only in"), "{error}");
        let too_many: String = (0..=hookcatch::config::MAX_DEPLOYED_ROUTES)
            .map(|i| {
                format!("[[routes]]\nname = \"r{i}\"\nprovider = \"catch-raw\"\nopen = true\n")
            })
            .collect();
        assert!(ConfigFile::parse(&too_many, "x.toml").is_err());
        let needless = "[[routes]]\nname = \"a\"\nprovider = \"catch-raw\"\nopen = true\nallow_ips = [\"10.0.0.0/8\"]\n";
        assert!(ConfigFile::parse(needless, "x.toml").is_err());
    }
}

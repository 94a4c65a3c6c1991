//! A route as deployed on AWS: its `aws` overrides applied, its configuration and secrets under the
//! route's own path in SSM Parameter Store, read in one call at cold start.
//!
//! The layout (decided once; `../shared/CONTRACTS.md`), `{id}` being the route's id
//! ([`crate::model::route_id`]: the name without `-` and `_`, as the template's loop names it):
//! - `/hookcatch/{stack}/routes/{id}/config`: String, the route's JSON (`aws` already merged);
//! - `/hookcatch/{stack}/routes/{id}/secrets/{name}`: SecureString, what `local:{name}` names,
//!   its values newest first, one per line (two during a rotation);
//! - `/hookcatch/{stack}/connections/{name}/…`: reserved for shared connections.

use std::collections::BTreeMap;

use super::{ConfigError, RouteConfig};
pub use crate::model::route_id;
use crate::secrets::SecretRef;

/// Routes one stack can hold: five resources each (function, role, URL, two permissions) under
/// CloudFormation's 500, beside the stack's own.
pub const MAX_DEPLOYED_ROUTES: usize = 90;

/// The template's logical id of a route's function: `Route` and the route's id (`slack-a` →
/// `Routeslacka`).
pub fn logical_id(route: &str) -> String {
    format!("Route{}", route_id(route))
}

/// Where one stack's routes live in SSM Parameter Store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmLayout {
    stack: String,
}

impl SsmLayout {
    pub fn new(stack: &str) -> Result<SsmLayout, String> {
        // CloudFormation's own rule for stack names, which also keeps the path plain.
        let ok = stack.len() <= 128
            && stack.starts_with(|c: char| c.is_ascii_alphabetic())
            && stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if ok {
            Ok(SsmLayout {
                stack: stack.to_owned(),
            })
        } else {
            Err(format!(
                "`{stack}` is not a stack name (a letter, then letters, digits and `-`)"
            ))
        }
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// Every route's parameters (what the consumer reads).
    pub fn routes_path(&self) -> String {
        format!("/hookcatch/{}/routes", self.stack)
    }

    /// One route's parameters (what its function reads, and all its IAM policy allows), by the
    /// route's name.
    pub fn route_path(&self, route: &str) -> String {
        self.path_of_id(&route_id(route))
    }

    /// One route's parameters by its id (what the function knows from the template's loop).
    pub fn path_of_id(&self, id: &str) -> String {
        format!("{}/{id}", self.routes_path())
    }

    pub fn config_name(&self, route: &str) -> String {
        format!("{}/config", self.route_path(route))
    }

    pub fn secret_name(&self, route: &str, secret: &str) -> String {
        format!("{}/secrets/{secret}", self.route_path(route))
    }
}

/// Applies a JSON merge patch (RFC 7386): objects merge key by key, `null` removes a key,
/// anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(
                        target.entry(key.clone()).or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

impl RouteConfig {
    /// The route with its `aws` table merged over it (no `aws` left), validated.
    pub fn with_aws_overrides(&self) -> Result<RouteConfig, ConfigError> {
        let fail = |reason: String| ConfigError::Route {
            route: self.name.clone(),
            reason,
        };
        let Some(patch) = &self.aws else {
            return Ok(self.clone());
        };
        let Some(keys) = patch.as_object() else {
            return Err(fail("`aws` must be a table of route keys".into()));
        };
        if let Some(key) = ["name", "provider", "aws"]
            .into_iter()
            .find(|k| keys.contains_key(*k))
        {
            return Err(fail(format!("`aws.{key}` cannot differ from the route's")));
        }
        let mut merged = serde_json::to_value(RouteConfig {
            aws: None,
            ..self.clone()
        })
        .map_err(|e| fail(e.to_string()))?;
        merge_patch(&mut merged, patch);
        let route: RouteConfig =
            serde_json::from_value(merged).map_err(|e| fail(format!("`aws`: {e}")))?;
        route.validate()?;
        Ok(route)
    }

    /// The route as its function runs it on AWS, under `layout`: overrides applied, and every
    /// secret in the route's own SSM path (`local:NAME`), since that path is all it may read.
    pub fn for_aws(&self, layout: &SsmLayout) -> Result<RouteConfig, ConfigError> {
        let mut route = self.with_aws_overrides()?;
        // A per-instance bucket bounds nothing on Lambda: reserved concurrency is the bound there.
        route.rate_limit = None;
        // `deploy` applies it to the function; the function itself never reads it.
        route.reserved_concurrency = None;
        let own = format!("{}/", layout.route_path(&route.name));
        for secret in route.secret_refs() {
            let reason = match &secret {
                SecretRef::Local(_) => continue,
                SecretRef::Ssm(name) if name.starts_with(&own) => continue,
                SecretRef::Ssm(name) => format!(
                    "`ssm:{name}` is outside the route's own path ({own}), which is all its \
                     function may read: write the value with `hookcatch secrets set {} NAME --aws \
                     --stack {}` and reference it as `local:NAME`",
                    route.name,
                    layout.stack()
                ),
                other => format!(
                    "{} never deploys: move it with `hookcatch secrets set {} NAME --aws --stack {}` \
                     and reference it as `local:NAME`",
                    other.kind_name(),
                    route.name,
                    layout.stack()
                ),
            };
            return Err(ConfigError::Route {
                route: route.name.clone(),
                reason,
            });
        }
        Ok(route)
    }

    /// The route with each `local:NAME` replaced by the values `lookup` finds: every value (newest
    /// first) in `secrets`, where a rotation keeps two; the newest elsewhere. `Err` names the first
    /// secret `lookup` does not know.
    pub fn with_route_secrets(
        &self,
        lookup: impl Fn(&str) -> Option<Vec<String>>,
    ) -> Result<RouteConfig, String> {
        let mut route = self.clone();
        let mut expanded = Vec::with_capacity(route.secrets.len());
        for secret in &route.secrets {
            match secret {
                SecretRef::Local(name) => {
                    let values = lookup(name).filter(|v| !v.is_empty()).ok_or(name.clone())?;
                    expanded.extend(values.into_iter().map(SecretRef::Literal));
                }
                other => expanded.push(other.clone()),
            }
        }
        route.secrets = expanded;
        let mut absent = None;
        route.map_secret_refs(|secret| match secret {
            SecretRef::Local(name) => match lookup(name).and_then(|v| v.into_iter().next()) {
                Some(value) => SecretRef::Literal(value),
                None => {
                    absent.get_or_insert_with(|| name.clone());
                    secret.clone()
                }
            },
            other => other.clone(),
        });
        match absent {
            Some(name) => Err(name),
            None => Ok(route),
        }
    }
}

/// One route's parameters, as a `GetParametersByPath` under its path returned them.
#[derive(Debug, Clone)]
pub struct RouteParameters {
    pub config: RouteConfig,
    /// Each secret's values, newest first.
    secrets: BTreeMap<String, Vec<String>>,
}

impl RouteParameters {
    /// Groups `parameters` (full name, value) read under `layout.routes_path()` or one route's
    /// path by route id. A route without a `config` parameter is an error naming it.
    pub fn group(
        layout: &SsmLayout,
        parameters: Vec<(String, String)>,
    ) -> Result<BTreeMap<String, RouteParameters>, ConfigError> {
        let prefix = format!("{}/", layout.routes_path());
        let mut configs = BTreeMap::new();
        let mut secrets: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (name, value) in parameters {
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let mut parts = rest.splitn(3, '/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(route), Some("config"), None) => {
                    configs.insert(route.to_owned(), (name.clone(), value));
                }
                (Some(route), Some("secrets"), Some(secret)) => {
                    let values = value
                        .lines()
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect();
                    secrets
                        .entry(route.to_owned())
                        .or_default()
                        .insert(secret.to_owned(), values);
                }
                _ => {}
            }
        }
        if let Some(route) = secrets.keys().find(|r| !configs.contains_key(*r)) {
            return Err(ConfigError::Route {
                route: route.clone(),
                reason: format!(
                    "{} has secrets but no configuration: push it with `hookcatch deploy` \
                     (or `hookcatch routes push`)",
                    layout.route_path(route)
                ),
            });
        }
        configs
            .into_iter()
            .map(|(route, (parameter, json))| {
                let config: RouteConfig =
                    serde_json::from_str(&json).map_err(|e| ConfigError::Route {
                        route: route.clone(),
                        reason: format!("{parameter}: {e}"),
                    })?;
                if route_id(&config.name) != route {
                    return Err(ConfigError::Route {
                        route,
                        reason: format!("{parameter} holds route `{}`", config.name),
                    });
                }
                config.validate()?;
                let secrets = secrets.remove(&route).unwrap_or_default();
                Ok((route, RouteParameters { config, secrets }))
            })
            .collect()
    }

    /// The route's hydrator with its secrets filled in (the consumer's view): a route whose own
    /// signing secret is missing must not keep the consumer from starting.
    pub fn resolved_hydrator(
        &self,
        layout: &SsmLayout,
    ) -> Result<Option<super::HydrateConfig>, ConfigError> {
        if self.config.hydrate.is_none() {
            return Ok(None);
        }
        let mut hydrator_only = self.config.clone();
        hydrator_only.secrets.clear();
        hydrator_only.verify_tokens.clear();
        hydrator_only.channels.clear();
        let only = RouteParameters {
            config: hydrator_only,
            secrets: self.secrets.clone(),
        };
        Ok(only.resolved_config(layout)?.hydrate)
    }

    /// The route with its `local:NAME` secrets filled in from its `secrets/NAME` parameters.
    pub fn resolved_config(&self, layout: &SsmLayout) -> Result<RouteConfig, ConfigError> {
        let route = &self.config.name;
        self.config
            .with_route_secrets(|name| self.secrets.get(name).cloned())
            .map_err(|missing| ConfigError::Route {
                route: route.clone(),
                reason: format!(
                    "`local:{missing}` needs the SecureString {}: `hookcatch secrets set {route} \
                     {missing} --aws --stack {}`",
                    layout.secret_name(route, &missing),
                    layout.stack()
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(json: serde_json::Value) -> RouteConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn logical_ids_drop_what_foreach_drops() {
        assert_eq!(logical_id("slack-a"), "Routeslacka");
        assert_eq!(logical_id("zoho_crm2"), "Routezohocrm2");
        let layout = SsmLayout::new("prod").unwrap();
        assert_eq!(
            layout.route_path("slack-a"),
            "/hookcatch/prod/routes/slacka"
        );
        assert_eq!(
            crate::model::envelope::body_key("slack-a", "e1"),
            "bodies/slacka/e1"
        );
    }

    #[test]
    fn aws_overrides_merge_and_are_validated() {
        let twilio = route(serde_json::json!({
            "name": "sms", "provider": "twilio", "secrets": ["local:auth-token"],
            "public_url": "https://example.test/local",
            "allow_ips": ["127.0.0.1/32"],
            "aws": {"public_url": "https://hooks.example.test/sms", "allow_ips": null},
        }));
        let deployed = twilio.with_aws_overrides().unwrap();
        assert_eq!(
            deployed.public_url.as_deref(),
            Some("https://hooks.example.test/sms")
        );
        assert!(deployed.allow_ips.is_empty() && deployed.aws.is_none());
        let renamed = route(serde_json::json!({
            "name": "sms", "provider": "twilio", "secrets": ["local:t"], "aws": {"name": "x"},
        }));
        assert!(renamed.with_aws_overrides().is_err());
        let broken = route(serde_json::json!({
            "name": "sms", "provider": "twilio", "secrets": ["local:t"], "aws": {"public_url": "ftp://x"},
        }));
        let error = broken.with_aws_overrides().unwrap_err().to_string();
        assert!(error.contains("public_url"), "{error}");
    }

    #[test]
    fn only_the_routes_own_secrets_deploy() {
        let layout = SsmLayout::new("prod").unwrap();
        let with = |secret: &str| {
            route(serde_json::json!({"name": "gh", "provider": "github", "secrets": [secret]}))
                .for_aws(&layout)
        };
        assert!(with("local:signing").is_ok());
        assert!(with("ssm:/hookcatch/prod/routes/gh/secrets/signing").is_ok());
        assert!(with("ssm:/hookcatch/prod/routes/gh-2/secrets/signing").is_err());
        let outside = with("ssm:/elsewhere").unwrap_err().to_string();
        assert!(outside.contains("outside"), "{outside}");
        let literal = with("dev-only-literal").unwrap_err().to_string();
        assert!(
            literal.contains("never deploys")
                && literal.contains("secrets set gh NAME --aws")
                && !literal.contains("dev-only-literal"),
            "{literal}"
        );
        assert!(with("env:GH_SECRET").is_err());
        let limited = route(serde_json::json!({
            "name": "gh", "provider": "github", "secrets": ["local:s"],
            "rate_limit": {"per_second": 5}, "aws": {"reserved_concurrency": 20},
        }));
        assert_eq!(
            limited.with_aws_overrides().unwrap().reserved_concurrency,
            Some(20)
        );
        let deployed = limited.for_aws(&layout).unwrap();
        assert_eq!(deployed.rate_limit, None, "local only");
        // Deploy sets it on the function: the function's configuration never carries it.
        assert_eq!(deployed.reserved_concurrency, None);
        assert!(
            route(serde_json::json!({
                "name": "gh", "provider": "github", "secrets": ["local:s"],
                "reserved_concurrency": 0,
            }))
            .validate()
            .is_err()
        );
        assert!(SsmLayout::new("a/b").is_err() && SsmLayout::new("1abc").is_err());
    }

    #[test]
    fn parameters_group_by_route_and_fill_local_secrets() {
        let layout = SsmLayout::new("s").unwrap();
        let config = serde_json::json!({
            "name": "slack-a", "provider": "slack", "secrets": ["local:signing"],
        });
        let parameters = vec![
            (layout.config_name("slack-a"), config.to_string()),
            (
                layout.secret_name("slack-a", "signing"),
                "dev-new\ndev-old\n".into(),
            ),
            ("/hookcatch/other/routes/x/config".into(), "{}".into()),
        ];
        let routes = RouteParameters::group(&layout, parameters).unwrap();
        assert_eq!(routes.len(), 1);
        let resolved = routes["slacka"].resolved_config(&layout).unwrap();
        assert_eq!(
            resolved.secrets,
            [
                SecretRef::Literal("dev-new".into()),
                SecretRef::Literal("dev-old".into())
            ]
        );
        let lonely = vec![(
            layout.config_name("gh"),
            serde_json::json!({"name": "gh", "provider": "github", "secrets": ["local:k"]})
                .to_string(),
        )];
        let routes = RouteParameters::group(&layout, lonely).unwrap();
        let error = routes["gh"]
            .resolved_config(&layout)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/hookcatch/s/routes/gh/secrets/k")
                && error.contains("secrets set gh k --aws"),
            "{error}"
        );
        // The consumer needs a route's hydrator secrets only, not its signing secret.
        let hydrated = serde_json::json!({
            "name": "st", "provider": "stripe", "secrets": ["local:signing"],
            "hydrate": {"kind": "http", "base_url": "https://api.stripe.com",
                        "auth": {"type": "bearer", "token": "local:api-key"},
                        "requests": [{"name": "e", "path": "/v2/core/events/{id}", "type": "e", "id": "/id"}]},
        });
        let only_key = vec![
            (layout.config_name("st"), hydrated.to_string()),
            (layout.secret_name("st", "api-key"), "dev-key".into()),
        ];
        let routes = RouteParameters::group(&layout, only_key).unwrap();
        assert!(routes["st"].resolved_config(&layout).is_err());
        let hydrator = routes["st"].resolved_hydrator(&layout).unwrap().unwrap();
        assert_eq!(
            hydrator.secret_refs(),
            [&SecretRef::Literal("dev-key".into())]
        );
        let misnamed = vec![(
            layout.config_name("a"),
            serde_json::json!({"name": "b", "provider": "catch-raw", "open": true}).to_string(),
        )];
        assert!(RouteParameters::group(&layout, misnamed).is_err());
    }
}

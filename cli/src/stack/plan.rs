//! The routes of `hookcatch.toml` as a stack runs them: each route's function, configuration and
//! secrets under the stack's SSM layout, the configuration digest, and the reservations wanted.
//! The steps that act on the plan are beside it: `ssm.rs` pushes it, `sam.rs` builds and deploys
//! it, `reservations.rs` applies its concurrency, `env_json.rs` describes one function of it.

use std::collections::{BTreeMap, BTreeSet};

use hookcatch::ProviderKind;
use hookcatch::config::{SsmLayout, logical_id, route_id};
use hookcatch::secrets::SecretRef;
use sha2::{Digest, Sha256};

use crate::project::config::ConfigFile;

/// CloudFormation's limit on a parameter value: the `Routes` list must fit in it.
const MAX_PARAMETER_BYTES: usize = 4096;

/// One route as deployed.
#[derive(Debug, Clone)]
pub struct DeployedRoute {
    pub name: String,
    pub provider: ProviderKind,
    /// The function's logical id in the template (and its Output's, with `Url`).
    pub logical_id: String,
    /// What its `config` parameter holds: the route with its `aws` table merged.
    pub config_json: String,
    /// The full SSM names of the secrets it reads.
    pub secrets: BTreeSet<String>,
    /// Its `reserved_concurrency` (after the `aws` table), which `deploy` sets on the function.
    pub reserved_concurrency: Option<u32>,
}

/// Every route of a configuration file, checked for one stack.
#[derive(Debug, Clone)]
pub struct Plan {
    pub layout: SsmLayout,
    pub routes: Vec<DeployedRoute>,
}

impl Plan {
    pub fn new(config: &ConfigFile, stack: &str) -> anyhow::Result<Plan> {
        let layout = SsmLayout::new(stack).map_err(anyhow::Error::msg)?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let deployed = route.for_aws(&layout)?;
            let secrets = deployed
                .secret_refs()
                .into_iter()
                .filter_map(|secret| match secret {
                    SecretRef::Local(name) => Some(layout.secret_name(&deployed.name, &name)),
                    SecretRef::Ssm(name) => Some(name),
                    // `for_aws` refused the rest.
                    SecretRef::Env(_) | SecretRef::Literal(_) => None,
                })
                .collect();
            let reserved_concurrency = route.with_aws_overrides()?.reserved_concurrency;
            routes.push(DeployedRoute {
                reserved_concurrency,
                name: deployed.name.clone(),
                provider: deployed.provider,
                logical_id: logical_id(&deployed.name),
                config_json: serde_json::to_string(&deployed)?,
                secrets,
            });
        }
        let plan = Plan { layout, routes };
        if plan.routes_parameter().len() > MAX_PARAMETER_BYTES {
            return Err(anyhow::anyhow!(
                "the route names add up to more than CloudFormation's {MAX_PARAMETER_BYTES} bytes \
                 for the Routes parameter: shorten them or split the routes across stacks"
            ));
        }
        Ok(plan)
    }

    pub fn route(&self, name: &str) -> Option<&DeployedRoute> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The template's `Routes` parameter: the routes' ids.
    pub fn routes_parameter(&self) -> String {
        self.routes
            .iter()
            .map(|r| route_id(&r.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The template's `RouteConfigDigest`: every route's configuration and the version of every
    /// secret it reads, so that an edit or a rotation gives the functions new settings.
    pub fn digest(&self, secret_versions: &BTreeMap<String, i64>) -> String {
        let mut hash = Sha256::new();
        for route in &self.routes {
            hash.update(route.name.as_bytes());
            hash.update([0]);
            hash.update(route.config_json.as_bytes());
            hash.update([0]);
            for secret in &route.secrets {
                let version = secret_versions.get(secret).copied().unwrap_or(0);
                hash.update(format!("{secret}={version}\0").as_bytes());
            }
        }
        hex::encode(&hash.finalize()[..16])
    }

    /// The `--parameter-overrides` of `sam deploy` for this plan.
    pub fn parameter_overrides(&self, digest: &str) -> Vec<String> {
        vec![
            format!("Routes={}", self.routes_parameter()),
            format!("RouteConfigDigest={digest}"),
        ]
    }

    /// Each route's reserved concurrency as `deploy` leaves it: the route's own
    /// `reserved_concurrency`, else the stack-wide `RouteReservedConcurrency`, else none.
    pub fn reservations(&self, stack_wide: Option<u32>) -> Vec<(&DeployedRoute, Option<u32>)> {
        self.routes
            .iter()
            .map(|route| (route, route.reserved_concurrency.or(stack_wide)))
            .collect()
    }
}

/// The template's `RouteReservedConcurrency` among the user's `--parameter`s, which `deploy`
/// always passes (empty when not given): a value left from an earlier deploy would otherwise
/// stay in the stack unseen, and `deploy` could not tell it from a route's own.
pub fn stack_wide_reservation(parameters: &[String]) -> Result<Option<u32>, String> {
    let Some(value) = parameters
        .iter()
        .find_map(|p| p.strip_prefix("RouteReservedConcurrency="))
    else {
        return Ok(None);
    };
    match value.trim_matches('"') {
        "" => Ok(None),
        number => match number.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "`RouteReservedConcurrency={value}`: give a number of at least 1, or leave it out"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::env_json::{StackResources, env_json};
    use crate::stack::sam::sam_commands;
    use crate::stack::sam::{route_functions, route_urls, stack_route_functions};

    fn config(text: &str) -> ConfigFile {
        ConfigFile::parse(text, "hookcatch.toml").unwrap()
    }

    const TWO_SLACKS_AND_A_GITHUB: &str = r#"
[[routes]]
name = "slack-a"
provider = "slack"
secrets = ["local:signing"]

[[routes]]
name = "slack-b"
provider = "slack"
secrets = ["local:signing"]

[[routes]]
name = "github"
provider = "github"
secrets = ["local:signing"]
"#;

    #[test]
    fn a_plan_names_each_function_and_its_secrets() {
        let plan = Plan::new(&config(TWO_SLACKS_AND_A_GITHUB), "prod").unwrap();
        assert_eq!(plan.routes_parameter(), "slacka,slackb,github");
        let slack = plan.route("slack-a").unwrap();
        assert_eq!(slack.logical_id, "Routeslacka");
        assert_eq!(
            slack.secrets.iter().collect::<Vec<_>>(),
            ["/hookcatch/prod/routes/slacka/secrets/signing"]
        );
        // The deployed JSON loads as a route and names its secret, never a value.
        let loaded: hookcatch::RouteConfig = serde_json::from_str(&slack.config_json).unwrap();
        assert_eq!(loaded.secrets, [SecretRef::Local("signing".into())]);
    }

    #[test]
    fn the_digest_follows_configuration_and_secret_versions() {
        let plan = Plan::new(&config(TWO_SLACKS_AND_A_GITHUB), "prod").unwrap();
        let mut versions = BTreeMap::new();
        let first = plan.digest(&versions);
        assert_eq!(first.len(), 32);
        versions.insert("/hookcatch/prod/routes/github/secrets/signing".into(), 2);
        let rotated = plan.digest(&versions);
        assert_ne!(first, rotated);
        let edited = config(&TWO_SLACKS_AND_A_GITHUB.replace(
            "name = \"github\"\nprovider = \"github\"",
            "name = \"github\"\nprovider = \"github\"\nmax_body_bytes = 1000",
        ));
        assert_ne!(
            Plan::new(&edited, "prod").unwrap().digest(&versions),
            rotated
        );
    }

    #[test]
    fn literal_secrets_and_oversized_lists_never_deploy() {
        let literal = config(
            "[[routes]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [\"dev-only-literal\"]\n",
        );
        let error = Plan::new(&literal, "prod").unwrap_err().to_string();
        assert!(
            error.contains("secrets set gh NAME --aws") && !error.contains("dev-only-literal"),
            "{error}"
        );
        let long: String = (0..80)
            .map(|i| {
                format!(
                    "[[routes]]\nname = \"route-{}-{i:02}\"\nprovider = \"catch-raw\"\nopen = true\n",
                    "x".repeat(50)
                )
            })
            .collect();
        let error = Plan::new(&config(&long), "prod").unwrap_err().to_string();
        assert!(error.contains("4096"), "{error}");
    }

    #[test]
    fn sam_gets_the_routes_the_digest_and_the_users_parameters() {
        let plan = Plan::new(&config(TWO_SLACKS_AND_A_GITHUB), "prod").unwrap();
        let (build, deploy) =
            sam_commands(&plan, "d1g", &["Architecture=x86_64".to_owned()], false);
        assert_eq!(
            build,
            ["build", "--parameter-overrides", "Architecture=x86_64"]
        );
        assert_eq!(
            deploy,
            [
                "deploy",
                "--stack-name",
                "prod",
                "--parameter-overrides",
                "Routes=slacka,slackb,github",
                "RouteConfigDigest=d1g",
                "Architecture=x86_64",
                "RouteReservedConcurrency=\"\"",
            ]
        );
        let (_, deploy) = sam_commands(
            &plan,
            "d1g",
            &["RouteReservedConcurrency=5".to_owned()],
            false,
        );
        assert_eq!(deploy.last().unwrap(), "RouteReservedConcurrency=5");
        let outputs = r#"[{"OutputKey": "RouteslackbUrl", "OutputValue": "https://b.lambda-url.test/"},
            {"OutputKey": "RouteslackbFunctionArn", "OutputValue": "prod-Routeslackb-X1"},
            {"OutputKey": "RoutegoneFunctionArn", "OutputValue": "prod-Routegone-Y2"},
            {"OutputKey": "EventsQueueUrl", "OutputValue": "https://sqs.test/q"}]"#;
        let urls = route_urls(&plan, outputs).unwrap();
        assert_eq!(urls.len(), 1);
        assert_eq!(urls["slack-b"], "https://b.lambda-url.test/");
        assert!(route_urls(&plan, "not json").is_err());
        let functions = route_functions(&plan, outputs).unwrap();
        assert_eq!(functions.len(), 1);
        assert_eq!(functions["slack-b"], "prod-Routeslackb-X1");
        // The quota check counts every route function the stack has now, gone routes too.
        assert_eq!(
            stack_route_functions(outputs).unwrap(),
            ["prod-Routegone-Y2", "prod-Routeslackb-X1"]
        );
    }

    #[test]
    fn a_routes_own_reservation_wins_over_the_stack_wide_one() {
        let text = TWO_SLACKS_AND_A_GITHUB.replace(
            "name = \"github\"\nprovider = \"github\"",
            "name = \"github\"\nprovider = \"github\"\naws = { reserved_concurrency = 40 }",
        );
        let plan = Plan::new(&config(&text), "prod").unwrap();
        let github = plan.route("github").unwrap();
        assert_eq!(github.reserved_concurrency, Some(40));
        assert!(!github.config_json.contains("reserved_concurrency"));
        let wanted = |stack_wide| {
            plan.reservations(stack_wide)
                .into_iter()
                .map(|(route, n)| (route.name.as_str(), n))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            wanted(None),
            [("slack-a", None), ("slack-b", None), ("github", Some(40))]
        );
        assert_eq!(
            wanted(Some(5)),
            [
                ("slack-a", Some(5)),
                ("slack-b", Some(5)),
                ("github", Some(40))
            ]
        );
        let parameters = |p: &str| stack_wide_reservation(&[p.to_owned()]);
        assert_eq!(parameters("RouteReservedConcurrency=7"), Ok(Some(7)));
        assert_eq!(parameters("RouteReservedConcurrency=\"\""), Ok(None));
        assert_eq!(parameters("Architecture=x86_64"), Ok(None));
        assert!(parameters("RouteReservedConcurrency=0").is_err());
        assert!(parameters("RouteReservedConcurrency=many").is_err());
    }

    #[test]
    fn env_json_names_paths_and_resources_only() {
        let plan = Plan::new(&config(TWO_SLACKS_AND_A_GITHUB), "prod").unwrap();
        let resources = StackResources {
            queue_url: "http://queue".into(),
            bucket: None,
            table: Some("events".into()),
        };
        let route = env_json(&plan, "slack-b", &resources).unwrap();
        assert_eq!(
            route,
            serde_json::json!({"Routeslackb": {
                "HOOKCATCH_ROUTE_PATH": "/hookcatch/prod/routes/slackb",
                "HOOKCATCH_QUEUE_URL": "http://queue",
            }})
        );
        let consumer = env_json(&plan, "consumer", &resources).unwrap();
        assert_eq!(
            consumer["ConsumerFunction"]["HOOKCATCH_ROUTES_PATH"],
            "/hookcatch/prod/routes"
        );
        assert!(env_json(&plan, "nope", &resources).is_err());
    }
}

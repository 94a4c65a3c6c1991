//! The routes of `hookcatch.toml` as a stack runs them: the SSM parameters each function reads
//! (`hookcatch routes push`), the template's parameters, the secrets on AWS
//! (`hookcatch secrets set --aws`), and what `sam local invoke --env-vars` reads (`env-json`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use hookcatch::ProviderKind;
use hookcatch::config::{ConsumerEnv, IngestEnv, SsmLayout, logical_id, route_id};
use hookcatch::secrets::SecretRef;
use sha2::{Digest, Sha256};

use crate::config::ConfigFile;
use crate::secrets_file::SetMode;

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
}

/// Every route of a configuration file, checked for one stack.
#[derive(Debug, Clone)]
pub struct Plan {
    pub layout: SsmLayout,
    pub routes: Vec<DeployedRoute>,
}

impl Plan {
    pub fn new(config: &ConfigFile, stack: &str) -> Result<Plan, String> {
        let layout = SsmLayout::new(stack)?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let deployed = route.for_aws(&layout).map_err(|e| e.to_string())?;
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
            routes.push(DeployedRoute {
                name: deployed.name.clone(),
                provider: deployed.provider,
                logical_id: logical_id(&deployed.name),
                config_json: serde_json::to_string(&deployed).map_err(|e| e.to_string())?,
                secrets,
            });
        }
        let plan = Plan { layout, routes };
        if plan.routes_parameter().len() > MAX_PARAMETER_BYTES {
            return Err(format!(
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
}

/// What `routes push` did.
#[derive(Debug)]
pub struct Pushed {
    pub digest: String,
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

fn describe<E: std::error::Error + 'static>(error: &aws_sdk_ssm::error::SdkError<E>) -> String {
    aws_sdk_ssm::error::DisplayErrorContext(error).to_string()
}

/// The version of each named parameter (no values are read); missing ones are left out.
pub async fn versions(
    ssm: &aws_sdk_ssm::Client,
    names: &BTreeSet<String>,
) -> Result<BTreeMap<String, i64>, String> {
    let names: Vec<String> = names.iter().cloned().collect();
    let mut found = BTreeMap::new();
    // GetParameters takes at most 10 names per call.
    for chunk in names.chunks(10) {
        let output = ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| format!("reading SSM parameters failed: {}", describe(&e)))?;
        for parameter in output.parameters() {
            if let Some(name) = parameter.name() {
                found.insert(name.to_owned(), parameter.version());
            }
        }
    }
    Ok(found)
}

/// Writes each route's `config` parameter and removes those of routes no longer configured (their
/// secrets stay, for a route that comes back). Refuses, before writing anything, when a secret a
/// route reads is not in SSM: its function would fail at its first request.
pub async fn push(
    sdk: &aws_config::SdkConfig,
    plan: &Plan,
    dry_run: bool,
) -> Result<Pushed, String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let wanted: BTreeSet<String> = plan
        .routes
        .iter()
        .flat_map(|r| r.secrets.iter().cloned())
        .collect();
    let secret_versions = versions(&ssm, &wanted).await?;
    let missing: Vec<String> = plan
        .routes
        .iter()
        .flat_map(|route| {
            route
                .secrets
                .iter()
                .filter(|s| !secret_versions.contains_key(*s))
                .map(|secret| {
                    let name = secret.rsplit('/').next().unwrap_or(secret);
                    format!(
                        "  {secret}: hookcatch secrets set {} {name} --aws --stack {} --stdin",
                        route.name,
                        plan.layout.stack()
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "these secrets are not in SSM yet (nothing was pushed):\n{}",
            missing.join("\n")
        ));
    }
    let mut existing = Vec::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path(plan.layout.routes_path())
        .recursive(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("listing SSM parameters failed: {}", describe(&e)))?;
        existing.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .filter(|name| name.ends_with("/config"))
                .map(str::to_owned),
        );
    }
    let written: Vec<String> = plan
        .routes
        .iter()
        .map(|r| plan.layout.config_name(&r.name))
        .collect();
    let removed: Vec<String> = existing
        .into_iter()
        .filter(|name| !written.contains(name))
        .collect();
    if !dry_run {
        for route in &plan.routes {
            ssm.put_parameter()
                .name(plan.layout.config_name(&route.name))
                .value(&route.config_json)
                .r#type(ParameterType::String)
                // Standard (free) up to 4 KB; a longer configuration needs the advanced tier.
                .tier(ParameterTier::IntelligentTiering)
                .overwrite(true)
                .send()
                .await
                .map_err(|e| format!("writing route `{}` failed: {}", route.name, describe(&e)))?;
        }
        for name in &removed {
            ssm.delete_parameter()
                .name(name)
                .send()
                .await
                .map_err(|e| format!("removing {name} failed: {}", describe(&e)))?;
        }
    }
    Ok(Pushed {
        digest: plan.digest(&secret_versions),
        written,
        removed,
    })
}

/// `secrets set --aws`: the route's secret NAME as a SecureString in its own path, its values
/// newest first, one per line. Returns how many values it now holds.
pub async fn set_secret(
    sdk: &aws_config::SdkConfig,
    layout: &SsmLayout,
    route: &str,
    name: &str,
    value: &str,
    mode: SetMode,
) -> Result<usize, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "`{name}` is not a secret name (letters, digits, `-`, `_`, `.`)"
        ));
    }
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let parameter = layout.secret_name(route, name);
    let current = match ssm
        .get_parameter()
        .name(&parameter)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(output) => output
            .parameter()
            .and_then(|p| p.value())
            .map(|v| v.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Vec::new()
        }
        Err(e) => return Err(format!("reading {parameter} failed: {}", describe(&e))),
    };
    let values = crate::secrets_file::next_values(current, value, mode, route, name)
        .map_err(|e| e.to_string())?;
    ssm.put_parameter()
        .name(&parameter)
        .value(values.join("\n"))
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| format!("writing {parameter} failed: {}", describe(&e)))?;
    Ok(values.len())
}

/// The `sam` program that `deploy` runs (`$HOOKCATCH_SAM`, else `sam` on the PATH), in the
/// directory of `template.yaml` and `samconfig.toml`.
pub struct Sam {
    pub program: std::ffi::OsString,
    pub dir: std::path::PathBuf,
}

impl Sam {
    /// `sam` in the directory of the configuration file `config` (where the template is).
    pub fn beside(config: &std::path::Path) -> Sam {
        let dir = config
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        Sam {
            program: std::env::var_os("HOOKCATCH_SAM").unwrap_or_else(|| "sam".into()),
            dir: dir.to_path_buf(),
        }
    }

    fn command(&self, args: &[String]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(args).current_dir(&self.dir);
        command
    }

    /// Runs `sam ARGS` in the terminal (its prompts and progress are the user's to see).
    pub fn run(&self, args: &[String]) -> Result<(), String> {
        let status = self.command(args).status().map_err(|e| self.not_found(e))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`sam {}` failed ({status})", args.join(" ")))
        }
    }

    /// Each route's Function URL among the stack's Outputs (`sam list stack-outputs`).
    pub fn route_urls(&self, plan: &Plan) -> Result<BTreeMap<String, String>, String> {
        let outputs = self.output(&[
            "list".into(),
            "stack-outputs".into(),
            "--stack-name".into(),
            plan.layout.stack().to_owned(),
            "--output".into(),
            "json".into(),
        ])?;
        route_urls(plan, &outputs)
    }

    /// Runs `sam ARGS` and returns what it printed.
    pub fn output(&self, args: &[String]) -> Result<String, String> {
        let output = self.command(args).output().map_err(|e| self.not_found(e))?;
        if output.status.success() {
            String::from_utf8(output.stdout).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "`sam {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn not_found(&self, error: std::io::Error) -> String {
        format!(
            "cannot run {} ({error}): deploying needs the SAM CLI and cargo-lambda on the PATH \
             (`scripts/test` installs both into .venv; `. .venv/bin/activate`)",
            self.program.to_string_lossy()
        )
    }
}

/// The `sam` arguments of a deploy: build, then deploy with the routes, the digest and the
/// user's own template parameters.
pub fn sam_commands(
    plan: &Plan,
    digest: &str,
    parameters: &[String],
    guided: bool,
) -> (Vec<String>, Vec<String>) {
    let mut build = vec!["build".to_owned()];
    let mut deploy = vec![
        "deploy".to_owned(),
        "--stack-name".to_owned(),
        plan.layout.stack().to_owned(),
    ];
    if guided {
        deploy.push("--guided".to_owned());
    }
    if !parameters.is_empty() {
        build.push("--parameter-overrides".to_owned());
        build.extend(parameters.iter().cloned());
    }
    deploy.push("--parameter-overrides".to_owned());
    deploy.extend(plan.parameter_overrides(digest));
    deploy.extend(parameters.iter().cloned());
    (build, deploy)
}

/// Each route's Function URL among a stack's Outputs (`sam list stack-outputs --output json`).
pub fn route_urls(plan: &Plan, outputs_json: &str) -> Result<BTreeMap<String, String>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        output_key: String,
        output_value: String,
    }
    let outputs: Vec<Output> = serde_json::from_str(outputs_json).map_err(|e| {
        format!("the stack's outputs are not what `sam list stack-outputs` prints: {e}")
    })?;
    Ok(plan
        .routes
        .iter()
        .filter_map(|route| {
            let key = format!("{}Url", route.logical_id);
            outputs
                .iter()
                .find(|o| o.output_key == key)
                .map(|o| (route.name.clone(), o.output_value.clone()))
        })
        .collect())
}

/// What `deploy` prints: each route, its provider, its Function URL and where to paste it.
pub fn urls_table(plan: &Plan, urls: &BTreeMap<String, String>) -> String {
    use crate::inspect::terminal_safe;
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["route", "provider", "Function URL", "paste it into"]);
    for route in &plan.routes {
        table.add_row([
            terminal_safe(&route.name),
            route.provider.as_str().to_owned(),
            urls.get(&route.name)
                .map(|url| terminal_safe(url))
                .unwrap_or_else(|| "not in the stack's outputs".into()),
            hookcatch::providers::paste_hint(route.provider).to_owned(),
        ]);
    }
    table.to_string()
}

/// The deployed URLs `routes list` shows: `{data}/deployed.json`, written by `deploy` and
/// `routes list --aws`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DeployedUrls {
    pub stack: String,
    pub urls: BTreeMap<String, String>,
}

impl DeployedUrls {
    fn path(data: &std::path::Path) -> std::path::PathBuf {
        data.join("deployed.json")
    }

    /// The cached URLs; none when nothing was deployed from here (or the file is unreadable).
    pub fn load(data: &std::path::Path) -> DeployedUrls {
        std::fs::read(Self::path(data))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, data: &std::path::Path) -> Result<(), String> {
        std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
        let path = Self::path(data);
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

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
) -> Result<serde_json::Value, String> {
    let mut variables = serde_json::Map::new();
    let mut set = |name: &str, value: &str| {
        variables.insert(name.to_owned(), value.into());
    };
    let logical = if function == "consumer" {
        let table = resources
            .table
            .as_deref()
            .ok_or("the consumer needs --table (the stack's EventsTableName)")?;
        set(ConsumerEnv::TABLE, table);
        set(ConsumerEnv::ROUTES_PATH, &plan.layout.routes_path());
        set(ConsumerEnv::QUEUE_URL, &resources.queue_url);
        if let Some(bucket) = &resources.bucket {
            set(ConsumerEnv::BUCKET, bucket);
        }
        "ConsumerFunction".to_owned()
    } else {
        let route = plan
            .route(function)
            .ok_or_else(|| format!("no route `{function}` in the configuration (or `consumer`)"))?;
        set(IngestEnv::ROUTE_PATH, &plan.layout.route_path(&route.name));
        set(IngestEnv::QUEUE_URL, &resources.queue_url);
        if let Some(bucket) = &resources.bucket {
            set(IngestEnv::BUCKET, bucket);
        }
        route.logical_id.clone()
    };
    Ok(serde_json::json!({ logical: variables }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let error = Plan::new(&literal, "prod").unwrap_err();
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
        let error = Plan::new(&config(&long), "prod").unwrap_err();
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
                "Architecture=x86_64"
            ]
        );
        let outputs = r#"[{"OutputKey": "RouteslackbUrl", "OutputValue": "https://b.lambda-url.test/"},
            {"OutputKey": "EventsQueueUrl", "OutputValue": "https://sqs.test/q"}]"#;
        let urls = route_urls(&plan, outputs).unwrap();
        assert_eq!(urls.len(), 1);
        assert_eq!(urls["slack-b"], "https://b.lambda-url.test/");
        assert!(route_urls(&plan, "not json").is_err());
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

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
            let reserved_concurrency = route
                .with_aws_overrides()
                .map_err(|e| e.to_string())?
                .reserved_concurrency;
            routes.push(DeployedRoute {
                reserved_concurrency,
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

/// What `deploy` changed of one route function's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationChange {
    pub route: String,
    pub before: Option<u32>,
    pub after: Option<u32>,
}

impl std::fmt::Display for ReservationChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |n: Option<u32>| n.map_or("none".to_owned(), |n| n.to_string());
        write!(
            f,
            "route {}: reserved concurrency {} (was {})",
            self.route,
            show(self.after),
            show(self.before)
        )
    }
}

/// Before anything changes: refuses reservations the account cannot hold. What the stack's
/// route functions hold now (named in its current Outputs, none before the first deploy) is
/// counted as given back.
pub async fn check_reservations(
    lambda: &crate::lambda::Lambda,
    current_functions: &[String],
    wanted: u32,
) -> Result<(), String> {
    let account = lambda.account_concurrency().await?;
    let mut held = 0;
    for function in current_functions {
        held += lambda.reserved_concurrency(function).await?.unwrap_or(0);
    }
    crate::lambda::check_quota(account, held, wanted)
}

/// After `sam deploy`: sets each route function's reservation to what the plan wants, lowering
/// and removing before raising, so the account's total never passes the end state's.
pub async fn apply_reservations(
    lambda: &crate::lambda::Lambda,
    wanted: &[(&DeployedRoute, Option<u32>)],
    functions: &BTreeMap<String, String>,
) -> Result<Vec<ReservationChange>, String> {
    let mut changes = Vec::new();
    for (route, after) in wanted {
        let function = functions.get(&route.name).ok_or_else(|| {
            format!(
                "the stack's Outputs name no function for route `{}` ({}FunctionArn): deploy the \
                 current template",
                route.name, route.logical_id
            )
        })?;
        let before = lambda.reserved_concurrency(function).await?;
        if before != *after {
            changes.push((
                function.clone(),
                ReservationChange {
                    route: route.name.clone(),
                    before,
                    after: *after,
                },
            ));
        }
    }
    // Lowering first: None and smaller values sort before larger ones.
    changes.sort_by_key(|(_, change)| {
        let raise = change.after.unwrap_or(0) > change.before.unwrap_or(0);
        (raise, change.after)
    });
    for (function, change) in &changes {
        match change.after {
            Some(n) => lambda.reserve_concurrency(function, n).await?,
            None => lambda.remove_reserved_concurrency(function).await?,
        }
    }
    Ok(changes.into_iter().map(|(_, change)| change).collect())
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

    /// The stack's Outputs as `sam list stack-outputs --output json` prints them.
    pub fn stack_outputs(&self, stack: &str) -> Result<String, String> {
        self.output(&[
            "list".into(),
            "stack-outputs".into(),
            "--stack-name".into(),
            stack.to_owned(),
            "--output".into(),
            "json".into(),
        ])
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
    if !parameters
        .iter()
        .any(|p| p.starts_with("RouteReservedConcurrency="))
    {
        // SAM reads `""` as the empty value; a bare `KEY=` is not a parameter to it.
        deploy.push("RouteReservedConcurrency=\"\"".to_owned());
    }
    (build, deploy)
}

/// A stack's Outputs (`sam list stack-outputs --output json`), by key.
fn outputs_by_key(outputs_json: &str) -> Result<BTreeMap<String, String>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        output_key: String,
        output_value: String,
    }
    let outputs: Vec<Output> = serde_json::from_str(outputs_json).map_err(|e| {
        format!("the stack's outputs are not what `sam list stack-outputs` prints: {e}")
    })?;
    Ok(outputs
        .into_iter()
        .map(|o| (o.output_key, o.output_value))
        .collect())
}

/// Each route's `{logical id}{suffix}` Output.
fn route_outputs(
    plan: &Plan,
    outputs_json: &str,
    suffix: &str,
) -> Result<BTreeMap<String, String>, String> {
    let outputs = outputs_by_key(outputs_json)?;
    Ok(plan
        .routes
        .iter()
        .filter_map(|route| {
            outputs
                .get(&format!("{}{suffix}", route.logical_id))
                .map(|value| (route.name.clone(), value.clone()))
        })
        .collect())
}

/// Each route's Function URL among a stack's Outputs.
pub fn route_urls(plan: &Plan, outputs_json: &str) -> Result<BTreeMap<String, String>, String> {
    route_outputs(plan, outputs_json, "Url")
}

/// The Function URLs of the routes named, among a stack's Outputs (those it has).
pub fn urls_of_routes<'a>(
    names: impl IntoIterator<Item = &'a str>,
    outputs_json: &str,
) -> Result<BTreeMap<String, String>, String> {
    let outputs = outputs_by_key(outputs_json)?;
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let url = outputs.get(&format!("{}Url", hookcatch::config::logical_id(name)))?;
            Some((name.to_owned(), url.clone()))
        })
        .collect())
}

/// Each route's function (its ARN) among a stack's Outputs.
pub fn route_functions(
    plan: &Plan,
    outputs_json: &str,
) -> Result<BTreeMap<String, String>, String> {
    route_outputs(plan, outputs_json, "FunctionArn")
}

/// Every route function a stack's Outputs name, including routes the plan no longer has.
pub fn stack_route_functions(outputs_json: &str) -> Result<Vec<String>, String> {
    Ok(outputs_by_key(outputs_json)?
        .into_iter()
        .filter(|(key, _)| key.starts_with("Route") && key.ends_with("FunctionArn"))
        .map(|(_, value)| value)
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

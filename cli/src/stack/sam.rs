//! The `sam` program `deploy` runs, the arguments it gets, and the stack's Outputs it prints.

use std::collections::BTreeMap;

use crate::stack::plan::Plan;

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
    pub fn run(&self, args: &[String]) -> anyhow::Result<()> {
        let status = self.command(args).status().map_err(|e| self.not_found(e))?;
        if status.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "`sam {}` failed ({status})",
                args.join(" ")
            ))
        }
    }

    /// The stack's Outputs as `sam list stack-outputs --output json` prints them.
    pub fn stack_outputs(&self, stack: &str) -> anyhow::Result<String> {
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
    pub fn output(&self, args: &[String]) -> anyhow::Result<String> {
        let output = self.command(args).output().map_err(|e| self.not_found(e))?;
        if output.status.success() {
            Ok(String::from_utf8(output.stdout)?)
        } else {
            Err(anyhow::anyhow!(
                "`sam {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn not_found(&self, error: std::io::Error) -> anyhow::Error {
        anyhow::anyhow!(
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
fn outputs_by_key(outputs_json: &str) -> anyhow::Result<BTreeMap<String, String>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        output_key: String,
        output_value: String,
    }
    let outputs: Vec<Output> = serde_json::from_str(outputs_json).map_err(|e| {
        anyhow::anyhow!("the stack's outputs are not what `sam list stack-outputs` prints: {e}")
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
) -> anyhow::Result<BTreeMap<String, String>> {
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
pub fn route_urls(plan: &Plan, outputs_json: &str) -> anyhow::Result<BTreeMap<String, String>> {
    route_outputs(plan, outputs_json, "Url")
}

/// The Function URLs of the routes named, among a stack's Outputs (those it has).
pub fn urls_of_routes<'a>(
    names: impl IntoIterator<Item = &'a str>,
    outputs_json: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
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
) -> anyhow::Result<BTreeMap<String, String>> {
    route_outputs(plan, outputs_json, "FunctionArn")
}

/// Every route function a stack's Outputs name, including routes the plan no longer has.
pub fn stack_route_functions(outputs_json: &str) -> anyhow::Result<Vec<String>> {
    Ok(outputs_by_key(outputs_json)?
        .into_iter()
        .filter(|(key, _)| key.starts_with("Route") && key.ends_with("FunctionArn"))
        .map(|(_, value)| value)
        .collect())
}

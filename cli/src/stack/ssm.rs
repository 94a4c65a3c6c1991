//! The stack's SSM parameters: each route's configuration (`routes push`) and its secrets
//! (`secrets set --aws`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use hookcatch::config::SsmLayout;

use crate::project::rotation::SetMode;
use crate::stack::plan::Plan;

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
) -> anyhow::Result<BTreeMap<String, i64>> {
    let names: Vec<String> = names.iter().cloned().collect();
    let mut found = BTreeMap::new();
    // GetParameters takes at most 10 names per call.
    for chunk in names.chunks(10) {
        let output = ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("reading SSM parameters failed: {}", describe(&e)))?;
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
) -> anyhow::Result<Pushed> {
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
        return Err(anyhow::anyhow!(
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
        let page =
            page.map_err(|e| anyhow::anyhow!("listing SSM parameters failed: {}", describe(&e)))?;
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
                .map_err(|e| {
                    anyhow::anyhow!("writing route `{}` failed: {}", route.name, describe(&e))
                })?;
        }
        for name in &removed {
            ssm.delete_parameter()
                .name(name)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("removing {name} failed: {}", describe(&e)))?;
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
) -> anyhow::Result<usize> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(anyhow::anyhow!(
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
        Err(e) => {
            return Err(anyhow::anyhow!(
                "reading {parameter} failed: {}",
                describe(&e)
            ));
        }
    };
    let values = crate::project::rotation::next_values(current, value, mode, route, name)?;
    ssm.put_parameter()
        .name(&parameter)
        .value(values.join("\n"))
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("writing {parameter} failed: {}", describe(&e)))?;
    Ok(values.len())
}

//! The routes' Function URLs as `deploy` prints them and `routes list` remembers them.

use std::collections::BTreeMap;

use crate::stack::plan::Plan;

/// What `deploy` prints: each route, its provider, its Function URL and where to paste it.
pub fn urls_table(plan: &Plan, urls: &BTreeMap<String, String>) -> String {
    use crate::term::terminal_safe;
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

    pub fn save(&self, data: &std::path::Path) -> anyhow::Result<()> {
        // The data directory `serve` will use: created owner-only, as `serve` creates it.
        crate::store::create_private_dir(data)
            .map_err(|e| anyhow::anyhow!("{}: {e}", data.display()))?;
        let path = Self::path(data);
        let text = serde_json::to_vec_pretty(self)?;
        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `deploy` may run before `serve` ever did: the data directory it creates is owner-only too.
    #[test]
    fn the_data_directory_deploy_creates_is_private() {
        let data = std::env::temp_dir()
            .join(format!("hookcatch-urls-{}", uuid::Uuid::now_v7()))
            .join("data");
        DeployedUrls::default().save(&data).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&data).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        assert!(DeployedUrls::path(&data).is_file());
    }
}

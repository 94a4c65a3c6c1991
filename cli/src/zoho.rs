//! `hookcatch zoho renew`: enables or renews a zoho-crm route's notification channels with Zoho,
//! pointing them at a notify URL, with the route's OAuth client (its `hydrate` table). Zoho drops a
//! channel at its expiry (at most a day on API v2–v3, a week from v4), so this must run well before.

use std::path::Path;
use std::sync::Arc;

use hookcatch::ProviderKind;
use hookcatch::config::HydrateConfig;
use hookcatch::hydrate::{WatchChannel, WatchOutcome, ZohoHydrator};

use crate::project::config::ConfigFile;
use crate::store::LocalStore;

pub async fn renew(
    config: &ConfigFile,
    route: Option<&str>,
    notify_url: &str,
    days: i64,
    data: &Path,
) -> anyhow::Result<Vec<WatchOutcome>> {
    let settings = config.resolve().await?;
    let zoho_routes: Vec<_> = settings
        .iter()
        .filter(|s| s.config.provider == ProviderKind::ZohoCrm)
        .filter(|s| route.is_none_or(|name| s.config.name == name))
        .collect();
    let settings = match zoho_routes.as_slice() {
        [one] => *one,
        [] => anyhow::bail!("no zoho-crm route matches; name one with --route"),
        _ => anyhow::bail!("several zoho-crm routes: name one with --route"),
    };
    let Some(HydrateConfig::ZohoCrm(oauth)) = &settings.config.hydrate else {
        return Err(anyhow::anyhow!(
            "route `{}` has no `hydrate` table: its OAuth client is what talks to Zoho",
            settings.config.name
        ));
    };
    let [client_secret, refresh_token] = settings.hydrate_secrets.as_slice() else {
        anyhow::bail!("the hydrate table needs client_secret and refresh_token");
    };
    // The token cache is the local store's, shared with `serve`.
    let store = LocalStore::open(data)?;
    let zoho = ZohoHydrator::new(
        &settings.config.name,
        oauth,
        client_secret.clone(),
        refresh_token.clone(),
        Arc::new(store),
        Arc::new(hookcatch::clock::SystemClock),
    );
    let channels: Vec<WatchChannel<'_>> = settings
        .config
        .channels
        .iter()
        .zip(&settings.channel_tokens)
        .map(|(channel, (_, token))| WatchChannel {
            id: &channel.id,
            token: token.expose(),
            events: &channel.events,
        })
        .collect();
    if let Some(channel) = channels.iter().find(|c| c.events.is_empty()) {
        return Err(anyhow::anyhow!(
            "channel {} lists no `events` (such as \"Leads.all\") to watch",
            channel.id
        ));
    }
    let outcomes = zoho.watch(&channels, notify_url, days).await;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err().map(ToString::to_string))
        .collect();
    if failed.is_empty() {
        Ok(outcomes.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(anyhow::anyhow!(failed.join("; ")))
    }
}

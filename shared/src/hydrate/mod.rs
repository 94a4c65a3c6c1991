//! Hydrators: id-only notifications in, full records out, within the provider's API limits.

mod http;

mod token;
mod zoho;

pub use http::HttpHydrator;

pub use token::{OAuthRefresh, TokenSource};
pub use zoho::{
    MAX_IDS_PER_NOTIFICATION as ZOHO_MAX_IDS_PER_NOTIFICATION, WatchChannel, WatchOutcome,
    ZohoHydrator,
};

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{HydrateConfig, RouteSettings};
use crate::ports::{Hydrator, TokenCache};
use crate::secrets::Secret;

/// The HTTP client of one hydrator (rustls; one connection pool for all its calls).
fn http_client(timeout_ms: u64) -> reqwest::Client {
    crate::tls::https_client_builder()
        .timeout(std::time::Duration::from_millis(timeout_ms))
        .build()
        .expect("an HTTP client with rustls builds")
}

/// Builds the hydrator a route configures (if any), once at start.
pub fn hydrator_for(
    settings: &RouteSettings,
    tokens: Arc<dyn TokenCache>,
    clock: Arc<dyn Clock>,
) -> Option<Arc<dyn Hydrator>> {
    let config = settings.config.hydrate.as_ref()?;
    Some(build(
        &settings.config.name,
        config,
        &settings.hydrate_secrets,
        tokens,
        clock,
    ))
}

/// Builds a hydrator for `route` from its configuration and its resolved secrets (in
/// [`HydrateConfig::secret_refs`] order).
pub fn build(
    route: &str,
    config: &HydrateConfig,
    secrets: &[Secret],
    tokens: Arc<dyn TokenCache>,
    clock: Arc<dyn Clock>,
) -> Arc<dyn Hydrator> {
    match config {
        HydrateConfig::ZohoCrm(zoho) => {
            let [client_secret, refresh_token, channel_tokens @ ..] = secrets else {
                unreachable!("a zoho-crm hydrator resolves its client secret and refresh token")
            };
            let mut hydrator = ZohoHydrator::new(
                route,
                zoho,
                client_secret.clone(),
                refresh_token.clone(),
                tokens,
                clock,
            );
            if let Some(renew) = &zoho.renew {
                hydrator = hydrator.with_renewal(renew.clone(), channel_tokens.to_vec());
            }
            Arc::new(hydrator)
        }
        HydrateConfig::Http(http) => {
            Arc::new(HttpHydrator::new(route, http, secrets, tokens, clock))
        }
    }
}

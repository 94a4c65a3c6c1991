//! A route with its secret references resolved, once at start.

use super::RouteConfig;
#[cfg(any(test, feature = "testing"))]
use crate::secrets::SecretRef;

/// A route with its secrets resolved: what a verifier is built from.
#[derive(Clone)]
pub struct RouteSettings {
    pub config: RouteConfig,
    /// Resolved `secrets`, newest first.
    pub secrets: Vec<crate::secrets::Secret>,
    /// Resolved `verify_tokens` (meta).
    pub verify_tokens: Vec<crate::secrets::Secret>,
    /// Each zoho-crm channel id with its resolved token.
    pub channel_tokens: Vec<(String, crate::secrets::Secret)>,
    /// The hydrator's resolved secrets, in [`HydrateConfig`]'s order.
    pub hydrate_secrets: Vec<crate::secrets::Secret>,
}

impl RouteSettings {
    /// `resolved` holds the values of [`RouteConfig::secret_refs`], in that order.
    pub fn new(config: RouteConfig, resolved: Vec<crate::secrets::Secret>) -> Self {
        let mut values = resolved.into_iter();
        let secrets = values.by_ref().take(config.secrets.len()).collect();
        let verify_tokens = values.by_ref().take(config.verify_tokens.len()).collect();
        let channel_tokens = config
            .channels
            .iter()
            .zip(values.by_ref())
            .map(|(channel, token)| (channel.id.clone(), token))
            .collect();
        let hydrate_secrets = values.collect();
        RouteSettings {
            config,
            secrets,
            verify_tokens,
            channel_tokens,
            hydrate_secrets,
        }
    }

    /// Settings with `secrets` replaced by these literal values and every other secret reference
    /// literal too (tests and examples).
    #[cfg(any(test, feature = "testing"))]
    pub fn with_secrets(mut config: RouteConfig, secrets: &[&str]) -> Self {
        config.secrets = secrets.iter().map(|s| SecretRef::parse(s)).collect();
        let resolved = config
            .secret_refs()
            .into_iter()
            .map(|r| match r {
                SecretRef::Literal(value) => crate::secrets::Secret::new(value),
                other => panic!("with_secrets needs literal secrets, not {other:?}"),
            })
            .collect();
        RouteSettings::new(config, resolved)
    }
}

impl std::fmt::Debug for RouteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.secrets.len()
            + self.verify_tokens.len()
            + self.channel_tokens.len()
            + self.hydrate_secrets.len();
        f.debug_struct("RouteSettings")
            .field("config", &self.config)
            .field("secrets", &format_args!("[{count} redacted]"))
            .finish()
    }
}

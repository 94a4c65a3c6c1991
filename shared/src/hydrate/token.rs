//! One OAuth access token per hydrator, shared by every task of a process (single flight) and by
//! every process (a cache with a refresh lease), so a burst of cold starts refreshes once.
//!
//! The shared copy is sealed (AES-256-GCM) under a key derived from the hydrator's own client
//! secret and refresh token: whoever can read the table or `hookcatch.db` but not those secrets
//! (which stay in SSM SecureString or the local config) cannot use the token, and whoever holds them
//! could mint one anyway.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::Duration;

use crate::clock::Clock;
use crate::ports::{CachedToken, HydrateError, Lease, TokenCache};
use crate::secrets::Secret;

/// A token is refreshed this long before it expires, so no call starts with an expiring one.
const EXPIRY_MARGIN_MS: i64 = 60_000;
/// How long a refresh lease lasts: longer than one refresh call may take.
const LEASE_MS: i64 = 15_000;
/// How long a process waits for another's refresh before giving up (and retrying the message).
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(10);

/// How an access token is obtained from a token endpoint: the refresh-token grant when a refresh
/// token is set, else the client-credentials grant.
pub struct OAuthRefresh {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
}

pub struct TokenSource {
    key: String,
    seal: TokenSeal,
    holder: String,
    refresh: OAuthRefresh,
    http: reqwest::Client,
    cache: Arc<dyn TokenCache>,
    clock: Arc<dyn Clock>,
    current: tokio::sync::Mutex<Option<CachedToken>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl TokenSource {
    pub fn new(
        key: String,
        refresh: OAuthRefresh,
        http: reqwest::Client,
        cache: Arc<dyn TokenCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TokenSource {
            seal: TokenSeal::new(&refresh, &key),
            key,
            holder: uuid::Uuid::now_v7().to_string(),
            refresh,
            http,
            cache,
            clock,
            current: tokio::sync::Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Refreshes this process made (for logs and tests).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn usable(&self, token: &CachedToken, rejected: Option<&str>) -> bool {
        token.expires_at_ms - EXPIRY_MARGIN_MS > self.clock.now_ms()
            && rejected != Some(token.access_token.as_str())
    }

    /// A live token. `rejected` is a token the API just refused (401): never returned again.
    pub async fn token(&self, rejected: Option<&str>) -> Result<CachedToken, HydrateError> {
        // Single flight within the process: one task refreshes, the others wait for it here.
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && self.usable(token, rejected)
        {
            return Ok(token.clone());
        }
        let started = self.clock.now_ms();
        loop {
            let shared = self.load_shared().await?;
            if let Some(token) = shared
                && self.usable(&token, rejected)
            {
                *current = Some(token.clone());
                return Ok(token);
            }
            let now = self.clock.now_ms();
            if self
                .cache
                .try_lease(Lease {
                    key: &self.key,
                    holder: &self.holder,
                    now_ms: now,
                    until_ms: now + LEASE_MS,
                })
                .await
                .map_err(transient)?
            {
                // Storing a token frees the lease: another process may have refreshed between our
                // read and our lease. Refresh only if the shared token is still unusable.
                if let Some(token) = self.load_shared().await?
                    && self.usable(&token, rejected)
                {
                    *current = Some(token.clone());
                    return Ok(token);
                }
                let token = self.refresh_now().await?;
                let sealed = CachedToken {
                    access_token: self.seal.seal(&token.access_token)?,
                    ..token.clone()
                };
                self.cache
                    .store_token(&self.key, &sealed)
                    .await
                    .map_err(transient)?;
                *current = Some(token.clone());
                return Ok(token);
            }
            if now - started > WAIT_FOR_OTHERS.as_millis() as i64 {
                return Err(HydrateError::Transient(
                    "another consumer's token refresh did not finish".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The shared token, unsealed. One this process cannot open (written before tokens were sealed,
    /// or under a rotated secret) counts as none, so it is refreshed.
    async fn load_shared(&self) -> Result<Option<CachedToken>, HydrateError> {
        let shared = self.cache.load_token(&self.key).await.map_err(transient)?;
        Ok(shared.and_then(|token| {
            let access_token = self.seal.open(&token.access_token)?;
            Some(CachedToken {
                access_token,
                ..token
            })
        }))
    }

    async fn refresh_now(&self) -> Result<CachedToken, HydrateError> {
        #[derive(serde::Deserialize)]
        struct Response {
            access_token: Option<String>,
            expires_in: Option<i64>,
            api_domain: Option<String>,
            error: Option<String>,
        }
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            match &self.refresh.refresh_token {
                Some(refresh_token) => form
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh_token.expose()),
                None => form.append_pair("grant_type", "client_credentials"),
            };
            form.append_pair("client_id", &self.refresh.client_id)
                .append_pair("client_secret", self.refresh.client_secret.expose());
            if let Some(scope) = &self.refresh.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let response = self
            .http
            .post(&self.refresh.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| HydrateError::Transient(format!("token refresh: {}", e.without_url())))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(HydrateError::RateLimited);
        }
        if status.is_server_error() {
            return Err(HydrateError::Transient(format!(
                "token refresh: HTTP {status}"
            )));
        }
        let body: Response = read_json(response, "token refresh").await?;
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match body {
            Response {
                access_token: Some(access_token),
                expires_in,
                api_domain,
                error: None,
            } => {
                tracing::info!(key = %self.key, "access token refreshed");
                Ok(CachedToken {
                    access_token,
                    api_domain: api_domain.unwrap_or_default(),
                    expires_at_ms: self.clock.now_ms() + expires_in.unwrap_or(3600) * 1000,
                })
            }
            // Zoho answers 200 with {"error":"invalid_code"} for a revoked refresh token, OAuth
            // servers 400 with {"error":"invalid_grant"}: a retry cannot help, and it must be loud.
            Response { error, .. } => Err(HydrateError::Failed(format!(
                "token refresh refused: {}",
                error.unwrap_or_else(|| format!("HTTP {status} without a token"))
            ))),
        }
    }
}

/// AES-256-GCM under a key derived (HKDF-SHA256) from the hydrator's secrets; the cache key is the
/// associated data, so a sealed token cannot be moved to another hydrator's item.
struct TokenSeal {
    key: ring::aead::LessSafeKey,
    cache_key: String,
}

const SEALED_PREFIX: &str = "sealed1.";

impl TokenSeal {
    fn new(refresh: &OAuthRefresh, cache_key: &str) -> Self {
        let mut material = Vec::new();
        for secret in std::iter::once(&refresh.client_secret).chain(&refresh.refresh_token) {
            let bytes = secret.expose().as_bytes();
            material.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            material.extend_from_slice(bytes);
        }
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"hookcatch access token cache");
        let info = [cache_key.as_bytes()];
        let prk = salt.extract(&material);
        material.fill(0);
        let okm = prk
            .expand(&info, &ring::aead::AES_256_GCM)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        TokenSeal {
            key: ring::aead::LessSafeKey::new(ring::aead::UnboundKey::from(okm)),
            cache_key: cache_key.to_owned(),
        }
    }

    fn seal(&self, access_token: &str) -> Result<String, HydrateError> {
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; ring::aead::NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| HydrateError::Transient("no randomness to seal the token".into()))?;
        let mut sealed = access_token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(self.cache_key.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| HydrateError::Transient("sealing the token failed".into()))?;
        let mut framed = nonce.to_vec();
        framed.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(framed)))
    }

    fn open(&self, stored: &str) -> Option<String> {
        let framed = URL_SAFE_NO_PAD
            .decode(stored.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if framed.len() < ring::aead::NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = framed.split_at(ring::aead::NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .key
            .open_in_place(
                nonce,
                ring::aead::Aad::from(self.cache_key.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

fn transient(error: crate::ports::StoreError) -> HydrateError {
    HydrateError::Transient(format!("token cache: {error}"))
}

/// Sends an API call; a failure to get an answer is transient, named without the URL (which can
/// carry ids and keys).
pub(super) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, HydrateError> {
    request
        .send()
        .await
        .map_err(|e| HydrateError::Transient(e.without_url().to_string()))
}

/// Reads a JSON body (reqwest's `json` feature is not enabled: serde_json does it).
/// Up to [`crate::tls::MAX_RESPONSE_BYTES`]: a larger answer fails unread, for good; `what` names
/// the call in the error.
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, HydrateError> {
    let bytes = crate::tls::read_capped(response, crate::tls::MAX_RESPONSE_BYTES)
        .await
        .map_err(|error| match error {
            crate::tls::ReadError::TooLarge(_) => HydrateError::Failed(format!("{what}: {error}")),
            crate::tls::ReadError::Failed(_) => HydrateError::Transient(format!("{what}: {error}")),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| HydrateError::Transient(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh(secret: &str) -> OAuthRefresh {
        OAuthRefresh {
            token_url: "https://accounts.example.com/oauth/v2/token".into(),
            client_id: "client".into(),
            client_secret: Secret::new(secret),
            refresh_token: Some(Secret::new("dev-test-refresh-token")),
            scope: None,
        }
    }

    #[test]
    fn a_sealed_token_opens_only_with_the_same_secrets_and_cache_key() {
        let seal = TokenSeal::new(&refresh("dev-test-client-secret"), "zoho-crm#crm#client");
        let sealed = seal.seal("1000.dev-access-token").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX), "{sealed}");
        assert!(!sealed.contains("dev-access-token"));
        assert_ne!(
            sealed,
            seal.seal("1000.dev-access-token").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(seal.open(&sealed).as_deref(), Some("1000.dev-access-token"));

        let rotated = TokenSeal::new(&refresh("dev-test-rotated-secret"), "zoho-crm#crm#client");
        assert_eq!(rotated.open(&sealed), None, "a rotated secret refreshes");
        let other = TokenSeal::new(&refresh("dev-test-client-secret"), "zoho-crm#other#client");
        assert_eq!(other.open(&sealed), None, "bound to its cache item");
        for stored in [
            "1000.dev-access-token",
            "sealed1.",
            "sealed1.AAAA",
            "sealed1.!!",
        ] {
            assert_eq!(
                seal.open(stored),
                None,
                "{stored}: unsealed or broken counts as none"
            );
        }
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(seal.open(&String::from_utf8(tampered).unwrap()), None);
    }
}

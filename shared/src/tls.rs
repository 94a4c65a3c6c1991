//! The HTTPS clients: rustls with the ring crypto provider, for the AWS SDK and for reqwest alike.
//!
//! The SDK's default client would link aws-lc-rs, which makes each zipped bootstrap about 0.7 MiB
//! larger than ring does (BENCHMARKS.md §3). What ring lacks is post-quantum (ML-KEM) key
//! exchange; connections use X25519 instead.

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The AWS SDK's HTTPS client: one per `SdkConfig`, shared by the clients made from it.
pub fn aws_https_client() -> aws_sdk_sqs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// A reqwest builder whose TLS uses ring. reqwest is built without a provider of its own and takes
/// the process default, which this installs (once; later calls find it installed).
///
/// Redirects are never followed: a 3xx is the answer. Following one would send a configured header
/// (an API key) or a token request's secrets to whatever host the answer names, over http too.
pub fn https_client_builder() -> reqwest::ClientBuilder {
    // Err only means a provider is already installed, which is all this needs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}

/// Whether hookcatch may send credentials to `url`: https, or plain http to this machine only
/// (a local fake or proxy), never http across a network.
pub fn is_safe_outbound_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => url.host_str().is_some_and(|host| {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

/// Largest answer read from an API (hydration, tokens): a larger one fails without being buffered.
pub const MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No retry can shrink it.
    #[error("response too large: over {} KiB", .0 / 1024)]
    TooLarge(usize),
    #[error("reading the response failed: {0}")]
    Failed(String),
}

/// The body of `response`, read chunk by chunk up to `max` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Failed(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reqwest_finds_the_ring_provider_every_time() {
        // Without an installed provider reqwest's builder fails ("no provider set").
        for _ in 0..2 {
            https_client_builder()
                .build()
                .expect("a rustls client with ring builds");
        }
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn credentials_go_over_https_or_to_this_machine_only() {
        for safe in [
            "https://api.stripe.com/v1",
            "http://127.0.0.1:9000/x",
            "http://localhost:8080",
            "http://[::1]:80/",
        ] {
            assert!(is_safe_outbound_url(safe), "{safe}");
        }
        for unsafe_url in [
            "http://api.example.com",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest",
            "ftp://x",
            "api.example.com",
            "http://127.0.0.1.example.com/",
        ] {
            assert!(!is_safe_outbound_url(unsafe_url), "{unsafe_url}");
        }
    }
}

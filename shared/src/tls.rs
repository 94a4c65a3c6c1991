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
pub fn https_client_builder() -> reqwest::ClientBuilder {
    // Err only means a provider is already installed, which is all this needs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
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
}

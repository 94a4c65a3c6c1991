//! A SigV4-signed JSON client for the AWS calls the CLI makes outside the SDK clients it already
//! has: Lambda's reserved concurrency for `deploy` (`reservations.rs`) and CloudWatch Logs'
//! `FilterLogEvents` for `refusals --aws` (`logs.rs`).
//!
//! They are signed with the SDK's own SigV4 signer and sent with reqwest, both already in the CLI:
//! aws-sdk-lambda and aws-sdk-cloudwatchlogs for five calls would add their compile time to the
//! quick start's first build, which is at its budget (BENCHMARKS.md §8).

use anyhow::Context;
use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// A SigV4-signed JSON client for one AWS service of the user's environment.
pub struct SignedClient {
    http: reqwest::Client,
    sdk: aws_config::SdkConfig,
    service: &'static str,
    endpoint: String,
}

impl SignedClient {
    /// A client of `service` (its signing name and endpoint prefix): `AWS_ENDPOINT_URL_{SERVICE}`,
    /// else `AWS_ENDPOINT_URL`, else the service's regional endpoint.
    pub fn new(sdk: &aws_config::SdkConfig, service: &'static str) -> anyhow::Result<SignedClient> {
        let region = sdk
            .region()
            .context("no AWS region: set AWS_REGION or a profile's region")?
            .to_string();
        let endpoint = std::env::var(format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase()))
            .ok()
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| {
                let suffix = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://{service}.{region}.{suffix}")
            });
        let http = hookcatch::tls::https_client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(SignedClient {
            http,
            sdk: sdk.clone(),
            service,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends `method path` with `headers` and `body` signed, and returns the answer's status and
    /// body; an AWS error answer becomes its message.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let credentials = self
            .sdk
            .credentials_provider()
            .context("no AWS credentials configured")?
            .provide_credentials()
            .await
            .map_err(|e| anyhow::anyhow!("AWS credentials: {e}"))?;
        let identity = credentials.into();
        let region = self.sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let url = format!("{}{path}", self.endpoint);
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| anyhow::anyhow!("signing the request failed: {e}"))?
            .into_parts();
        let mut request = http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(body.to_vec())?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request)?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| anyhow::anyhow!("{} {url}: {e}", self.service))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| anyhow::anyhow!("{} {url}: {e}", self.service))?;
        if status >= 300 {
            #[derive(serde::Deserialize)]
            struct AwsError {
                #[serde(alias = "Message")]
                message: Option<String>,
                /// The JSON protocols' error code (`…#ResourceNotFoundException`).
                #[serde(rename = "__type")]
                kind: Option<String>,
            }
            let error = serde_json::from_slice::<AwsError>(&body).ok();
            let kind = error
                .as_ref()
                .and_then(|e| e.kind.as_deref())
                .map(|k| format!(" ({})", k.rsplit('#').next().unwrap_or(k)))
                .unwrap_or_default();
            let message = error
                .and_then(|e| e.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            return Err(anyhow::anyhow!(
                "{method} {path} answered {status}{kind}: {message}"
            ));
        }
        Ok((status, body.to_vec()))
    }
}

//! The AWS calls the CLI makes outside the SDK clients it already has: Lambda's reserved
//! concurrency for `deploy` (the account's quota, each route function's reservation) and
//! CloudWatch Logs' `FilterLogEvents` for `refusals --aws`.
//!
//! They are signed with the SDK's own SigV4 signer and sent with reqwest, both already in the CLI:
//! aws-sdk-lambda and aws-sdk-cloudwatchlogs for five calls would add their compile time to the
//! quick start's first build, which is at its budget (BENCHMARKS.md §8).

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// Lambda keeps at least this much of an account's concurrency unreserved.
pub const MIN_UNRESERVED: u32 = 100;

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
    pub fn new(sdk: &aws_config::SdkConfig, service: &'static str) -> Result<SignedClient, String> {
        let region = sdk
            .region()
            .ok_or("no AWS region: set AWS_REGION or a profile's region")?
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
            .build()
            .map_err(|e| e.to_string())?;
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
    ) -> Result<(u16, Vec<u8>), String> {
        let credentials = self
            .sdk
            .credentials_provider()
            .ok_or("no AWS credentials configured")?
            .provide_credentials()
            .await
            .map_err(|e| format!("AWS credentials: {e}"))?;
        let identity = credentials.into();
        let region = self.sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let url = format!("{}{path}", self.endpoint);
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing the request failed: {e}"))?
            .into_parts();
        let mut request = http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(body.to_vec()).map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|e| e.to_string())?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| format!("{} {url}: {e}", self.service))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{} {url}: {e}", self.service))?;
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
            return Err(format!(
                "{method} {path} answered {status}{kind}: {message}"
            ));
        }
        Ok((status, body.to_vec()))
    }
}

/// What `GetAccountSettings` says of the account's concurrency in this region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountConcurrency {
    pub quota: u32,
    pub unreserved: u32,
}

/// The Lambda calls of `deploy`.
pub struct Lambda {
    client: SignedClient,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reservation {
    reserved_concurrent_executions: Option<u32>,
}

impl Lambda {
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Lambda, String> {
        Ok(Lambda {
            client: SignedClient::new(sdk, "lambda")?,
        })
    }

    async fn json(&self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self
            .client
            .send(method, path, &[("content-type", "application/json")], body)
            .await?
            .1)
    }

    pub async fn account_concurrency(&self) -> Result<AccountConcurrency, String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Limit {
            concurrent_executions: u32,
            unreserved_concurrent_executions: u32,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Settings {
            account_limit: Limit,
        }
        let body = self
            .json("GET", "/2016-08-19/account-settings/", b"")
            .await
            .map_err(|e| format!("reading the account's Lambda concurrency failed: {e}"))?;
        let settings: Settings = serde_json::from_slice(&body)
            .map_err(|e| format!("GetAccountSettings answered something else: {e}"))?;
        Ok(AccountConcurrency {
            quota: settings.account_limit.concurrent_executions,
            unreserved: settings.account_limit.unreserved_concurrent_executions,
        })
    }

    fn concurrency_path(version: &str, function: &str) -> String {
        let name: String = form_urlencoded::byte_serialize(function.as_bytes()).collect();
        format!("/{version}/functions/{name}/concurrency")
    }

    /// The function's reserved concurrency; none when it has no reservation.
    pub async fn reserved_concurrency(&self, function: &str) -> Result<Option<u32>, String> {
        let body = self
            .json("GET", &Self::concurrency_path("2019-09-30", function), b"")
            .await
            .map_err(|e| format!("reading {function}'s reserved concurrency failed: {e}"))?;
        let reservation: Reservation = serde_json::from_slice(&body)
            .map_err(|e| format!("GetFunctionConcurrency answered something else: {e}"))?;
        Ok(reservation.reserved_concurrent_executions)
    }

    pub async fn reserve_concurrency(&self, function: &str, reserved: u32) -> Result<(), String> {
        let body = serde_json::json!({ "ReservedConcurrentExecutions": reserved }).to_string();
        self.json(
            "PUT",
            &Self::concurrency_path("2017-10-31", function),
            body.as_bytes(),
        )
        .await
        .map_err(|e| format!("reserving {reserved} for {function} failed: {e}"))?;
        Ok(())
    }

    pub async fn remove_reserved_concurrency(&self, function: &str) -> Result<(), String> {
        self.json(
            "DELETE",
            &Self::concurrency_path("2017-10-31", function),
            b"",
        )
        .await
        .map_err(|e| format!("removing {function}'s reserved concurrency failed: {e}"))?;
        Ok(())
    }
}

/// Refuses a set of reservations the account cannot hold: Lambda keeps [`MIN_UNRESERVED`] of the
/// quota unreserved, and what this stack's functions hold now is given back before the new total
/// is taken.
pub fn check_quota(
    account: AccountConcurrency,
    held_by_stack: u32,
    wanted: u32,
) -> Result<(), String> {
    let available = (account.unreserved + held_by_stack).saturating_sub(MIN_UNRESERVED);
    if wanted <= available {
        return Ok(());
    }
    Err(format!(
        "the routes reserve {wanted} concurrent executions in total, but this account can reserve \
         at most {available} more here: its quota is {}, {} of it is unreserved now ({held_by_stack} \
         of what is reserved belongs to this stack's routes), and Lambda keeps at least \
         {MIN_UNRESERVED} unreserved. Lower `reserved_concurrency`, or ask AWS to raise the \
         quota (Service Quotas, \"Concurrent executions\"). Nothing was changed.",
        account.quota, account.unreserved
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_keeps_one_hundred_unreserved_and_counts_the_stacks_own() {
        let account = AccountConcurrency {
            quota: 1000,
            unreserved: 150,
        };
        assert!(check_quota(account, 0, 50).is_ok());
        let error = check_quota(account, 0, 51).unwrap_err();
        assert!(
            error.contains("reserve 51") && error.contains("at most 50") && error.contains("1000"),
            "{error}"
        );
        // What the stack holds now is given back first.
        assert!(check_quota(account, 30, 80).is_ok());
        assert!(check_quota(account, 30, 81).is_err());
        // A new account (quota 10) can reserve nothing.
        let new = AccountConcurrency {
            quota: 10,
            unreserved: 10,
        };
        assert!(check_quota(new, 0, 1).unwrap_err().contains("at most 0"));
        assert!(check_quota(new, 0, 0).is_ok());
    }

    #[test]
    fn function_names_are_escaped_in_the_path() {
        assert_eq!(
            Lambda::concurrency_path("2017-10-31", "stack-Routegithub-AbC"),
            "/2017-10-31/functions/stack-Routegithub-AbC/concurrency"
        );
        assert_eq!(
            Lambda::concurrency_path("2017-10-31", "arn:aws:lambda:us-east-1:1:function:f/x"),
            "/2017-10-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%2Fx/concurrency"
        );
    }
}

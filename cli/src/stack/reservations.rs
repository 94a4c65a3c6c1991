//! Lambda's reserved concurrency as `deploy` owns it: the account's quota checked before anything
//! changes, each route function's reservation set after `sam deploy`, lowering before raising.

use anyhow::Context;
use std::collections::BTreeMap;

use crate::stack::plan::DeployedRoute;
use crate::stack::sigv4::SignedClient;

/// Lambda keeps at least this much of an account's concurrency unreserved.
pub const MIN_UNRESERVED: u32 = 100;

/// What `deploy` changed of one route function's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationChange {
    pub route: String,
    pub before: Option<u32>,
    pub after: Option<u32>,
}

impl std::fmt::Display for ReservationChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |n: Option<u32>| n.map_or("none".to_owned(), |n| n.to_string());
        write!(
            f,
            "route {}: reserved concurrency {} (was {})",
            self.route,
            show(self.after),
            show(self.before)
        )
    }
}

/// Before anything changes: refuses reservations the account cannot hold. What the stack's
/// route functions hold now (named in its current Outputs, none before the first deploy) is
/// counted as given back.
pub async fn check_reservations(
    lambda: &Lambda,
    current_functions: &[String],
    wanted: u32,
) -> anyhow::Result<()> {
    let account = lambda.account_concurrency().await?;
    let mut held = 0;
    for function in current_functions {
        held += lambda.reserved_concurrency(function).await?.unwrap_or(0);
    }
    check_quota(account, held, wanted).map_err(anyhow::Error::msg)
}

/// After `sam deploy`: sets each route function's reservation to what the plan wants, lowering
/// and removing before raising, so the account's total never passes the end state's.
pub async fn apply_reservations(
    lambda: &Lambda,
    wanted: &[(&DeployedRoute, Option<u32>)],
    functions: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<ReservationChange>> {
    let mut changes = Vec::new();
    for (route, after) in wanted {
        let function = functions.get(&route.name).with_context(|| {
            format!(
                "the stack's Outputs name no function for route `{}` ({}FunctionArn): deploy the \
                 current template",
                route.name, route.logical_id
            )
        })?;
        let before = lambda.reserved_concurrency(function).await?;
        if before != *after {
            changes.push((
                function.clone(),
                ReservationChange {
                    route: route.name.clone(),
                    before,
                    after: *after,
                },
            ));
        }
    }
    // Lowering first: None and smaller values sort before larger ones.
    changes.sort_by_key(|(_, change)| {
        let raise = change.after.unwrap_or(0) > change.before.unwrap_or(0);
        (raise, change.after)
    });
    for (function, change) in &changes {
        match change.after {
            Some(n) => lambda.reserve_concurrency(function, n).await?,
            None => lambda.remove_reserved_concurrency(function).await?,
        }
    }
    Ok(changes.into_iter().map(|(_, change)| change).collect())
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
    pub fn new(sdk: &aws_config::SdkConfig) -> anyhow::Result<Lambda> {
        Ok(Lambda {
            client: SignedClient::new(sdk, "lambda")?,
        })
    }

    async fn json(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self
            .client
            .send(method, path, &[("content-type", "application/json")], body)
            .await?
            .1)
    }

    pub async fn account_concurrency(&self) -> anyhow::Result<AccountConcurrency> {
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
            .map_err(|e| anyhow::anyhow!("reading the account's Lambda concurrency failed: {e}"))?;
        let settings: Settings = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("GetAccountSettings answered something else: {e}"))?;
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
    pub async fn reserved_concurrency(&self, function: &str) -> anyhow::Result<Option<u32>> {
        let body = self
            .json("GET", &Self::concurrency_path("2019-09-30", function), b"")
            .await
            .map_err(|e| {
                anyhow::anyhow!("reading {function}'s reserved concurrency failed: {e}")
            })?;
        let reservation: Reservation = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("GetFunctionConcurrency answered something else: {e}"))?;
        Ok(reservation.reserved_concurrent_executions)
    }

    pub async fn reserve_concurrency(&self, function: &str, reserved: u32) -> anyhow::Result<()> {
        let body = serde_json::json!({ "ReservedConcurrentExecutions": reserved }).to_string();
        self.json(
            "PUT",
            &Self::concurrency_path("2017-10-31", function),
            body.as_bytes(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("reserving {reserved} for {function} failed: {e}"))?;
        Ok(())
    }

    pub async fn remove_reserved_concurrency(&self, function: &str) -> anyhow::Result<()> {
        self.json(
            "DELETE",
            &Self::concurrency_path("2017-10-31", function),
            b"",
        )
        .await
        .map_err(|e| anyhow::anyhow!("removing {function}'s reserved concurrency failed: {e}"))?;
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

//! The requests the route functions refused, read from their CloudWatch logs.

use crate::stack::sigv4::SignedClient;
use crate::views::LoggedRefusal;

/// What CloudWatch Logs filters on before sending anything: the refusal lines only.
const REFUSAL_PATTERN: &str =
    r#"{ ($.fields.outcome = "refused") || ($.fields.outcome = "too_large") }"#;

/// The refusal a log line records, if it is one (the metric documents beside it are not).
pub fn parse_refusal(message: &str) -> Option<(String, Option<u16>, String, String)> {
    let line: serde_json::Value = serde_json::from_str(message.trim()).ok()?;
    if line.get("_aws").is_some() {
        return None;
    }
    let fields = line.get("fields").unwrap_or(&line);
    let text = |name: &str| fields[name].as_str().map(str::to_owned);
    let outcome = text("outcome")?;
    if outcome != "refused" && outcome != "too_large" {
        return None;
    }
    let status = fields["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok());
    let reason = text("reason")
        .or_else(|| text("message"))
        .unwrap_or(outcome);
    Some((
        text("route")?,
        status,
        reason,
        text("source_ip").unwrap_or_default(),
    ))
}

/// The refusals the route functions logged since `since_ms`, newest first, at most `limit`: one
/// `FilterLogEvents` query per log group, a bounded number of pages each. A function never invoked
/// has no log group yet, and is skipped.
pub async fn refusals_from_logs(
    sdk: &aws_config::SdkConfig,
    log_groups: &[String],
    since_ms: i64,
    limit: usize,
) -> anyhow::Result<Vec<LoggedRefusal>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        #[serde(default)]
        events: Vec<Event>,
        next_token: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        timestamp: i64,
        message: String,
    }
    let logs = SignedClient::new(sdk, "logs")?;
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "Logs_20140328.FilterLogEvents"),
    ];
    let mut found = Vec::new();
    for group in log_groups {
        let mut token: Option<String> = None;
        for _ in 0..20 {
            let request = serde_json::json!({
                "logGroupName": group,
                "startTime": since_ms,
                "filterPattern": REFUSAL_PATTERN,
                "nextToken": token,
            });
            let answer = match logs
                .send("POST", "/", &headers, request.to_string().as_bytes())
                .await
            {
                Ok((_, body)) => body,
                Err(e) if e.to_string().contains("(ResourceNotFoundException)") => break,
                Err(e) => return Err(anyhow::anyhow!("reading {group} failed: {e}")),
            };
            let page: Page = serde_json::from_slice(&answer)
                .map_err(|e| anyhow::anyhow!("FilterLogEvents answered something else: {e}"))?;
            found.extend(page.events.iter().filter_map(|event| {
                let (route, status, reason, source_ip) = parse_refusal(&event.message)?;
                Some(LoggedRefusal {
                    at_ms: event.timestamp,
                    route,
                    status,
                    reason,
                    source_ip,
                    log_group: group.clone(),
                })
            }));
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
    found.truncate(limit);
    Ok(found)
}

/// The log group of each route function a stack's Outputs name.
pub fn route_log_groups(outputs_json: &str) -> anyhow::Result<Vec<String>> {
    Ok(crate::stack::sam::stack_route_functions(outputs_json)?
        .iter()
        .map(|arn| format!("/aws/lambda/{}", arn.rsplit(':').next().unwrap_or(arn)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_lines_are_read_and_everything_else_is_not() {
        let refused = r#"{"level":"WARN","fields":{"message":"request refused","route":"shop","reason":"api key mismatch","outcome":"refused","status":401,"source_ip":"203.0.113.9"}}"#;
        assert_eq!(
            parse_refusal(refused),
            Some((
                "shop".into(),
                Some(401),
                "api key mismatch".into(),
                "203.0.113.9".into()
            ))
        );
        let too_large = r#"{"level":"WARN","fields":{"message":"body over the route's cap","route":"shop","body_len":9,"outcome":"too_large","status":413,"source_ip":""}}"#;
        assert_eq!(
            parse_refusal(too_large).unwrap().2,
            "body over the route's cap"
        );
        for other in [
            r#"{"level":"INFO","fields":{"message":"handshake answered","route":"shop","outcome":"handshake"}}"#,
            r#"{"_aws":{"CloudWatchMetrics":[]},"outcome":"refused","route":"shop"}"#,
            "START RequestId: 1 Version: $LATEST",
            "",
        ] {
            assert_eq!(parse_refusal(other), None, "{other}");
        }
        let outputs = r#"[{"OutputKey":"RouteshopFunctionArn","OutputValue":"arn:aws:lambda:us-east-1:1:function:prod-Routeshop-X"}]"#;
        assert_eq!(
            route_log_groups(outputs).unwrap(),
            ["/aws/lambda/prod-Routeshop-X"]
        );
    }
}

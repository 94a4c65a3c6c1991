//! The `--aws` side of the inspection commands: the deployed DynamoDB table and SQS queues.

use std::time::Duration;

use hookcatch::aws::DynamoStore;

/// Clients for a deployment, from the usual AWS environment (profile, region, `AWS_ENDPOINT_URL`).
pub async fn sdk() -> aws_config::SdkConfig {
    hookcatch::aws::sdk_config(Duration::from_secs(30)).await
}

pub fn store(sdk: &aws_config::SdkConfig, table: &str) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)
}

/// Moves every message from the dead-letter queue back to the events queue: receive, send, then
/// delete (SQS's own move task is not available on every SQS-compatible server). A message is
/// deleted from the DLQ only after it was sent, so an interruption duplicates at worst, and the
/// consumer's idempotency absorbs a duplicate.
pub async fn redrive(
    sdk: &aws_config::SdkConfig,
    dlq_url: &str,
    queue_url: &str,
    progress: &indicatif::ProgressBar,
) -> Result<usize, String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let describe =
        |e: &dyn std::error::Error| aws_sdk_sqs::error::DisplayErrorContext(e).to_string();
    let mut moved = 0;
    loop {
        let output = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| format!("receiving from the DLQ failed: {}", describe(&e)))?;
        let messages = output.messages();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            let body = message.body().unwrap_or_default();
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| format!("re-sending to the events queue failed: {}", describe(&e)))?;
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| format!("deleting from the DLQ failed: {}", describe(&e)))?;
            }
            moved += 1;
            progress.inc(1);
        }
    }
}

/// Queues a replay of a stored event of the deployed stack: its route's configuration as deployed
/// (SSM), the envelope rebuilt from the stored event, sent to the events queue, where the consumer
/// function replaces the event and applies the route's current rules (newer-wins).
pub async fn replay_stored_event(
    sdk: &aws_config::SdkConfig,
    table: &str,
    queue_url: &str,
    layout: &hookcatch::config::SsmLayout,
    event_id: &str,
) -> Result<String, String> {
    // The table is keyed by route and dedup key: an id alone is found by Scan.
    let event = store(sdk, table)
        .scan_events(None, Some(event_id))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| {
            format!("no stored event `{event_id}` in {table} (a dead one is replayed from the DLQ)")
        })?;
    replay_on_stack(sdk, queue_url, layout, &event).await
}

/// Queues a replay of `event`, a stored event of the stack, with its route's deployed
/// configuration.
pub async fn replay_on_stack(
    sdk: &aws_config::SdkConfig,
    queue_url: &str,
    layout: &hookcatch::config::SsmLayout,
    event: &hookcatch::ports::EventItem,
) -> Result<String, String> {
    use hookcatch::ports::Queue;
    let event_id = &event.event_id;
    let parameter = layout.config_name(&event.route);
    let config = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(&parameter)
        .send()
        .await
        .map_err(|e| {
            format!(
                "event `{event_id}` arrived on route `{}`, whose configuration {parameter} cannot \
                 be read: {}",
                event.route,
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    let route: hookcatch::RouteConfig = serde_json::from_str(
        config
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default(),
    )
    .map_err(|e| format!("{parameter} is not a route configuration: {e}"))?;
    let envelope = hookcatch::ingest::replay_envelope(&route, event).map_err(|e| e.to_string())?;
    hookcatch::aws::SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queue_url)
        .send(envelope.to_message())
        .await
        .map_err(|e| format!("sending the replay to the events queue failed: {e}"))?;
    Ok(format!(
        "event {event_id} queued for replay with route `{}`'s deployed rules",
        route.name
    ))
}

/// Resends `event`, a stored event of the stack, to its route's Function URL `url`, signed with
/// the route's deployed configuration and secrets (SSM, decrypted on this machine with the
/// caller's credentials), as the route function itself reads them.
pub async fn resend_on_stack(
    sdk: &aws_config::SdkConfig,
    layout: &hookcatch::config::SsmLayout,
    event: hookcatch::ports::EventItem,
    url: &str,
) -> Result<crate::replay::Resent, String> {
    use hookcatch::runtime::lambda::{deployed_route, route_settings};
    let parameters = hookcatch::aws::SsmParameters::new(aws_sdk_ssm::Client::new(sdk));
    let id = hookcatch::config::route_id(&event.route);
    let config = deployed_route(&parameters, layout, &id)
        .await
        .map_err(|e| format!("the route's deployed configuration: {e}"))?;
    // An `env:` secret is the function's environment, which this machine does not have.
    let settings = route_settings(config, &|_| None, &parameters)
        .await
        .map_err(|e| format!("Resend signs with the route's deployed secrets: {e}"))?;
    crate::replay::resend(&settings, event, url).await
}

/// A message in the dead-letter queue, as listed.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    /// When it was first sent (SQS's `SentTimestamp`, kept when a message moves to the DLQ).
    pub sent_ms: Option<i64>,
    /// How often it has been received, listings of the DLQ included.
    pub receives: Option<u32>,
}

/// Up to `limit` messages of the dead-letter queue, left where they are: each receive uses a zero
/// visibility timeout, so a message is at once visible again. Receiving does count toward the
/// message's receive count, which on the DLQ moves nothing (it has no redrive of its own). SQS
/// answers each receive with a sample, so this receives until a round brings nothing new (or
/// nothing at all).
pub async fn peek_dead_letters(
    sdk: &aws_config::SdkConfig,
    dlq_url: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, String> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attribute;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut found: Vec<DeadLetter> = Vec::new();
    let mut rounds_without_news = 0;
    // Bounded: a queue of thousands is listed in part, newest-first order is not SQS's.
    for _ in 0..50 {
        if found.len() >= limit || rounds_without_news >= 2 {
            break;
        }
        let output = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .message_system_attribute_names(Attribute::SentTimestamp)
            .message_system_attribute_names(Attribute::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading the DLQ failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        // A long poll that finds nothing means nothing is visible: an empty DLQ costs one wait.
        if output.messages().is_empty() {
            break;
        }
        let before = found.len();
        for message in output.messages() {
            let Some(id) = message.message_id() else {
                continue;
            };
            if found.iter().any(|d| d.message_id == id) {
                continue;
            }
            let attribute = |name: Attribute| {
                message
                    .attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
            };
            found.push(DeadLetter {
                message_id: id.to_owned(),
                body: message.body().unwrap_or_default().to_owned(),
                sent_ms: attribute(Attribute::SentTimestamp),
                receives: attribute(Attribute::ApproximateReceiveCount).map(|n: i64| n as u32),
            });
        }
        rounds_without_news = if found.len() == before {
            rounds_without_news + 1
        } else {
            0
        };
    }
    found.truncate(limit);
    Ok(found)
}

/// Approximate number of messages waiting in a queue, for the progress bar.
pub async fn approximate_depth(sdk: &aws_config::SdkConfig, queue_url: &str) -> Option<u64> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let output = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()?;
    output
        .attributes()?
        .get(&QueueAttributeName::ApproximateNumberOfMessages)?
        .parse()
        .ok()
}

/// A request a route function refused, as its log line says (`ingest` writes one WARN line per
/// refusal, with the route, the status, the reason and the sender's address).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggedRefusal {
    pub at_ms: i64,
    pub route: String,
    pub status: Option<u16>,
    pub reason: String,
    pub source_ip: String,
    pub log_group: String,
}

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
) -> Result<Vec<LoggedRefusal>, String> {
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
    let logs = crate::lambda::SignedClient::new(sdk, "logs")?;
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
                Err(e) if e.contains("(ResourceNotFoundException)") => break,
                Err(e) => return Err(format!("reading {group} failed: {e}")),
            };
            let page: Page = serde_json::from_slice(&answer)
                .map_err(|e| format!("FilterLogEvents answered something else: {e}"))?;
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
pub fn route_log_groups(outputs_json: &str) -> Result<Vec<String>, String> {
    Ok(crate::deployment::stack_route_functions(outputs_json)?
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

//! Replay and Resend of a stored event of the deployed stack, with its route's configuration and
//! secrets as deployed (SSM).

use crate::send::Resent;
use anyhow::Context;

/// Queues a replay of a stored event of the deployed stack: its route's configuration as deployed
/// (SSM), the envelope rebuilt from the stored event, sent to the events queue, where the consumer
/// function replaces the event and applies the route's current rules (newer-wins).
pub async fn replay_stored_event(
    sdk: &aws_config::SdkConfig,
    table: &str,
    queue_url: &str,
    layout: &hookcatch::config::SsmLayout,
    event_id: &str,
) -> anyhow::Result<String> {
    // The table is keyed by route and dedup key: an id alone is found by Scan.
    let event = crate::stack::store(sdk, table)
        .scan_events(None, Some(event_id))
        .await?
        .into_iter()
        .next()
        .with_context(|| {
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
) -> anyhow::Result<String> {
    use hookcatch::ports::Queue;
    let event_id = &event.event_id;
    let parameter = layout.config_name(&event.route);
    let config = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(&parameter)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
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
    .map_err(|e| anyhow::anyhow!("{parameter} is not a route configuration: {e}"))?;
    let envelope = hookcatch::ingest::replay_envelope(&route, event)?;
    hookcatch::aws::SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queue_url)
        .send(envelope.to_message())
        .await
        .map_err(|e| anyhow::anyhow!("sending the replay to the events queue failed: {e}"))?;
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
) -> anyhow::Result<Resent> {
    use hookcatch::runtime::lambda::{deployed_route, route_settings};
    let parameters = hookcatch::aws::SsmParameters::new(aws_sdk_ssm::Client::new(sdk));
    let id = hookcatch::config::route_id(&event.route);
    let config = deployed_route(&parameters, layout, &id)
        .await
        .map_err(|e| anyhow::anyhow!("the route's deployed configuration: {e}"))?;
    // An `env:` secret is the function's environment, which this machine does not have.
    let settings = route_settings(config, &|_| None, &parameters)
        .await
        .map_err(|e| anyhow::anyhow!("Resend signs with the route's deployed secrets: {e}"))?;
    crate::send::resend(&settings, event, url).await
}

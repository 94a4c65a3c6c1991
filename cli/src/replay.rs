//! Running a stored event again, two ways: **replay** (`hookcatch replay --event`, the console's
//! Replay) re-runs the consumer on it with the route's current rules and hydrators; **resend** (the
//! console's Resend) sends its request to the route again, re-signed, through verification.

use anyhow::Context;
use hookcatch::RouteConfig;
use hookcatch::ports::{EventItem, Queue};

use crate::project::config::ConfigFile;
use crate::send::{Resent, resend};
use crate::store::LocalStore;

/// The stored event `event_id` and the route it arrived on, as configured now.
async fn stored<'a>(
    store: &LocalStore,
    config: &'a ConfigFile,
    event_id: &str,
) -> anyhow::Result<(EventItem, &'a RouteConfig)> {
    let event = store
        .find_event_by_id(event_id.to_owned())
        .await?
        .with_context(|| {
            format!(
                "no stored event `{event_id}` (a queued or dead one is replayed from the queue)"
            )
        })?;
    let route = config.route(&event.route).with_context(|| {
        format!(
            "event `{event_id}` arrived on route `{}`, which is no longer configured",
            event.route
        )
    })?;
    Ok((event, route))
}

/// Queues a replay of the stored event: the consumer replaces it and applies the route's current
/// record rules (newer-wins: a record stays if a newer version is stored) and hydrators to it.
pub async fn replay_event(
    store: &LocalStore,
    config: &ConfigFile,
    event_id: &str,
) -> anyhow::Result<String> {
    let (event, route) = stored(store, config, event_id).await?;
    let envelope = hookcatch::ingest::replay_envelope(route, &event)?;
    store.send(envelope.to_message()).await?;
    Ok(format!(
        "event {event_id} queued for replay with route `{}`'s current rules",
        route.name
    ))
}

/// Sends the stored event's request again to its route's URL (`route_url` of its name), re-signed
/// with the route's current secret under a fresh delivery id and timestamp (as `hookcatch send`
/// does).
pub async fn resend_event(
    store: &LocalStore,
    config: &ConfigFile,
    event_id: &str,
    route_url: &(dyn Fn(&str) -> String + Sync),
) -> anyhow::Result<Resent> {
    let (event, route) = stored(store, config, event_id).await?;
    let url = route_url(&route.name);
    let settings = config.resolve_route(&route.name).await?;
    resend(&settings, event, &url).await
}

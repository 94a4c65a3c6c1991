//! Running a stored event again, two ways: **replay** (`hookcatch replay --event`, the console's
//! Replay) re-runs the consumer on it with the route's current rules and hydrators; **resend** (the
//! console's Resend) sends its request to the route again, re-signed, through verification.

use hookcatch::clock::{Clock, SystemClock};
use hookcatch::ports::{EventItem, Queue, StoredBody};
use hookcatch::{InboundRequest, RouteConfig};

use crate::config::ConfigFile;
use crate::store::LocalStore;

/// The stored event `event_id` and the route it arrived on, as configured now.
async fn stored<'a>(
    store: &LocalStore,
    config: &'a ConfigFile,
    event_id: &str,
) -> Result<(EventItem, &'a RouteConfig), String> {
    let event = store
        .find_event_by_id(event_id.to_owned())
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no stored event `{event_id}` (a queued or dead one is replayed from the queue)"
            )
        })?;
    let route = config.route(&event.route).ok_or_else(|| {
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
) -> Result<String, String> {
    let (event, route) = stored(store, config, event_id).await?;
    let envelope = hookcatch::ingest::replay_envelope(route, &event).map_err(|e| e.to_string())?;
    store
        .send(envelope.to_message())
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "event {event_id} queued for replay with route `{}`'s current rules",
        route.name
    ))
}

/// What a resend did.
#[derive(Debug)]
pub struct Resent {
    pub status: u16,
    pub body: String,
    /// Whether the route's dedup rule takes the resend as a new event (else a duplicate of this one).
    pub new_event: bool,
}

impl Resent {
    pub fn summary(&self, event_id: &str) -> String {
        let verdict = if !(200..300).contains(&self.status) {
            "refused"
        } else if self.new_event {
            "accepted as a new event"
        } else {
            "accepted, and stored as a duplicate of this event (the route dedups on the body): \
             Replay re-runs the rules on it instead"
        };
        format!(
            "resent {event_id}: {} {}, {verdict}",
            self.status,
            self.body.trim()
        )
    }
}

/// Sends the stored event's request again to its route's URL (`route_url` of its name), re-signed
/// with the route's current secret under a fresh delivery id and timestamp (as `hookcatch send`
/// does).
pub async fn resend_event(
    store: &LocalStore,
    config: &ConfigFile,
    event_id: &str,
    route_url: &(dyn Fn(&str) -> String + Sync),
) -> Result<Resent, String> {
    let (event, route) = stored(store, config, event_id).await?;
    let url = route_url(&route.name);
    let settings = config.resolve_route(&route.name).await?;
    resend(&settings, event, &url).await
}

/// Sends `event`'s request again to `url`, re-signed with `settings`' secret under a fresh
/// delivery id and timestamp: what a local and a stack's Resend share.
pub async fn resend(
    settings: &hookcatch::config::RouteSettings,
    event: EventItem,
    url: &str,
) -> Result<Resent, String> {
    let StoredBody::Inline(body) = event.body else {
        return Err(format!(
            "event {}'s body is in object storage (over the inline limit): Resend sends inline \
             bodies only",
            event.event_id
        ));
    };
    let request = InboundRequest {
        method: event.method,
        path: event.path,
        raw_query: event.query,
        headers: event.headers,
        body,
        source_ip: None,
        // What Twilio signs: the URL it calls.
        called_url: Some(url.split('?').next().unwrap_or_default().to_owned()),
    };
    let request =
        hookcatch::providers::sign::resend_request(settings, request, SystemClock.now_ms())
            .map_err(|e| e.to_string())?;
    let (status, body) = crate::send::send(&request, url).await?;
    Ok(Resent {
        status,
        body,
        new_event: hookcatch::providers::sign::resend_is_new(settings),
    })
}

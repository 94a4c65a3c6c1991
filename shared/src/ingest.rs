//! The ingest core: raw request → verified → envelope → enqueue → reply.
//!
//! The sender gets a 2xx only after the queue durably accepted the envelope; any failure to enqueue
//! is a 503, so the sender retries and nothing acknowledged is ever lost.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::Clock;
use crate::config::{RouteConfig, RouteSettings, SharedRules};
use crate::metrics::Outcome;
use crate::model::envelope::{BodyLocation, Envelope, SCHEMA_VERSION};
use crate::model::request::{InboundRequest, Reply};
use crate::ports::{BlobStore, EventItem, Queue, StoredBody};
use crate::providers::{Inspection, VerifiedRequest, Verifier, verifier_for};

/// No provider sends more than a few dozen headers; more is an attack on the verifiers' lookups
/// and on the stored item's size. Locally hyper refuses over 100 headers by itself.
pub const MAX_HEADERS: usize = 100;
/// Names and values together; signatures and JWTs fit many times over.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The queue message that runs a stored event through the consumer again (a replay): the request
/// as it was received and verified then, under its own id and receive time, with the route's
/// rules as they are now and the hydrator it was marked for. The consumer replaces the stored
/// event and applies its records again.
pub fn replay_envelope(route: &RouteConfig, event: &EventItem) -> Result<Envelope, ReplayError> {
    let provider = route.provider;
    if event.route != route.name || event.provider != provider.as_str() {
        return Err(ReplayError::RouteChanged {
            route: event.route.clone(),
            received_as: event.provider.clone(),
            now: format!("{} ({})", route.name, provider.as_str()),
        });
    }
    let (body, inline) = match &event.body {
        StoredBody::Inline(bytes) => (BodyLocation::Inline(bytes.clone()), Some(bytes.as_ref())),
        StoredBody::External { bucket, key } => (
            BodyLocation::External {
                bucket: bucket.clone(),
                key: key.clone(),
            },
            None,
        ),
    };
    Ok(Envelope {
        v: SCHEMA_VERSION,
        id: event.event_id.clone(),
        route: event.route.clone(),
        provider: provider.as_str().to_owned(),
        received_at_ms: event.received_at_ms,
        delivery_id: event.delivery_id.clone(),
        test_ping: event.test_ping,
        replay: true,
        replaces: Some(event.dedup_key.clone()),
        hydrate: crate::providers::stored_hydrator(provider, inline).map(str::to_owned),
        rules: SharedRules::from(crate::providers::rules_for(route)),
        method: event.method.clone(),
        path: event.path.clone(),
        query: event.query.clone(),
        headers: event.headers.clone(),
        source_ip: event.source_ip.clone(),
        body_len: event.body_len,
        body_sha256: String::new(),
        body,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The rules of another provider would read the stored request as something it is not.
    #[error("event of route `{route}` was received as {received_as}; the route is now {now}")]
    RouteChanged {
        route: String,
        received_as: String,
        now: String,
    },
}

pub struct Ingestor {
    route: RouteConfig,
    /// The route's rules with the provider's defaults applied, once (every envelope carries them).
    rules: SharedRules,
    verifier: Box<dyn Verifier>,
    queue: Arc<dyn Queue>,
    blobs: Option<Arc<dyn BlobStore>>,
    clock: Arc<dyn Clock>,
    enqueue_timeout: Duration,
}

impl Ingestor {
    pub fn new(
        settings: &RouteSettings,
        queue: Arc<dyn Queue>,
        blobs: Option<Arc<dyn BlobStore>>,
        clock: Arc<dyn Clock>,
        enqueue_timeout: Duration,
    ) -> Self {
        Ingestor {
            route: settings.config.clone(),
            rules: SharedRules::rendered(crate::providers::rules_for(&settings.config)),
            verifier: verifier_for(settings),
            queue,
            blobs,
            clock,
            enqueue_timeout,
        }
    }

    pub fn route(&self) -> &RouteConfig {
        &self.route
    }

    /// Handles one request end to end and says what the sender gets.
    pub async fn handle(&self, request: InboundRequest) -> Reply {
        self.handle_with_outcome(request).await.0
    }

    /// As [`Ingestor::handle`], with what became of the request (for a local console's counts).
    pub async fn handle_with_outcome(&self, request: InboundRequest) -> (Reply, Outcome) {
        self.handle_admitting(request, &|| None).await
    }

    /// As [`Ingestor::handle_with_outcome`], with `admit` asked about each *verified* request
    /// before it is queued: its `Some(reply)` (a rate limit's 429) is what the sender gets
    /// instead. Refused and handshake requests never reach it, so they cannot spend what it counts.
    pub async fn handle_admitting(
        &self,
        request: InboundRequest,
        admit: &(dyn Fn() -> Option<Reply> + Sync),
    ) -> (Reply, Outcome) {
        let (reply, outcome, reason) = self.process(request, admit).await;
        crate::metrics::request(&self.route.name, outcome, reason);
        (reply, outcome)
    }

    /// The reply, the outcome and, for a refusal, its reason.
    async fn process(
        &self,
        request: InboundRequest,
        admit: &(dyn Fn() -> Option<Reply> + Sync),
    ) -> (Reply, Outcome, Option<&'static str>) {
        let route = self.route.name.as_str();
        // Refusals are logged with the sender's address and the status it got: on AWS these
        // lines are where `hookcatch refusals --aws` finds them (nothing a stranger sends is stored).
        let source_ip = request.source_ip.clone().unwrap_or_default();
        if request.body.len() > self.route.max_body_bytes() {
            tracing::warn!(
                route,
                body_len = request.body.len(),
                outcome = "too_large",
                status = 413,
                source_ip,
                "body over the route's cap"
            );
            return (
                Reply::error(413, "payload_too_large"),
                Outcome::TooLarge,
                None,
            );
        }
        let header_bytes: usize = request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        if request.headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
            tracing::warn!(
                route,
                headers = request.headers.len(),
                header_bytes,
                outcome = "too_large",
                status = 431,
                source_ip,
                "headers over the limit"
            );
            return (
                Reply::error(431, "request_header_fields_too_large"),
                Outcome::TooLarge,
                None,
            );
        }
        let now_ms = self.clock.now_ms();
        match self.verifier.inspect(request, now_ms) {
            Err(refusal) => {
                let reply = refusal.reply();
                tracing::warn!(
                    route,
                    reason = refusal.label(),
                    outcome = "refused",
                    status = reply.status,
                    source_ip,
                    "request refused"
                );
                (reply, Outcome::Refused, Some(refusal.label()))
            }
            Ok(Inspection::Answer(reply)) => {
                tracing::info!(route, outcome = "handshake", "handshake answered");
                (reply, Outcome::Handshake, None)
            }
            Ok(Inspection::Accept(verified)) => {
                if let Some(refused) = admit() {
                    tracing::warn!(
                        route,
                        reason = "rate_limited",
                        outcome = "refused",
                        status = refused.status,
                        source_ip,
                        "verified request over the route's rate limit"
                    );
                    return (refused, Outcome::Refused, Some("rate_limited"));
                }
                let (reply, outcome) = self.enqueue(verified, now_ms).await;
                (reply, outcome, None)
            }
        }
    }

    async fn enqueue(&self, verified: VerifiedRequest, now_ms: i64) -> (Reply, Outcome) {
        let route = self.route.name.as_str();
        let id = uuid::Uuid::now_v7().to_string();
        let mut envelope = self.envelope(&id, verified, now_ms);
        let mut message = envelope.to_message();
        if message.len() > self.queue.max_message_bytes() {
            let Some(blobs) = &self.blobs else {
                tracing::error!(route, event_id = %id, "body needs object storage but no bucket is configured");
                return (Reply::error(413, "payload_too_large"), Outcome::TooLarge);
            };
            let key = crate::model::envelope::body_key(route, &id);
            let BodyLocation::Inline(body) = std::mem::replace(
                &mut envelope.body,
                BodyLocation::External {
                    bucket: blobs.location().to_owned(),
                    key: key.clone(),
                },
            ) else {
                unreachable!("a new envelope carries its body inline")
            };
            match tokio::time::timeout(self.enqueue_timeout, blobs.put(&key, body)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(route, event_id = %id, %error, outcome = "queue_failed", "storing the large body failed");
                    return (Reply::error(503, "unavailable"), Outcome::QueueFailed);
                }
                Err(_) => {
                    tracing::error!(route, event_id = %id, outcome = "queue_failed", "storing the large body timed out");
                    return (Reply::error(503, "unavailable"), Outcome::QueueFailed);
                }
            }
            message = envelope.to_message();
        }
        match tokio::time::timeout(self.enqueue_timeout, self.queue.send(message)).await {
            Ok(Ok(())) => {
                tracing::info!(route, event_id = %id, body_len = envelope.body_len, outcome = "accepted", "event queued");
                (self.accepted_reply(&id), Outcome::Accepted)
            }
            Ok(Err(error)) => {
                tracing::error!(route, event_id = %id, %error, outcome = "queue_failed", "enqueue failed; sender will retry");
                (Reply::error(503, "unavailable"), Outcome::QueueFailed)
            }
            Err(_) => {
                tracing::error!(route, event_id = %id, outcome = "queue_failed", "enqueue timed out; sender will retry");
                (Reply::error(503, "unavailable"), Outcome::QueueFailed)
            }
        }
    }

    fn envelope(&self, id: &str, verified: VerifiedRequest, now_ms: i64) -> Envelope {
        let delivery_id = verified.delivery_id().map(str::to_owned);
        let test_ping = verified.is_test_ping();
        let hydrate = verified.hydrator().map(str::to_owned);
        let request = verified.into_request();
        let body: Bytes = request.body;
        Envelope {
            v: SCHEMA_VERSION,
            id: id.to_owned(),
            route: self.route.name.clone(),
            provider: self.route.provider.as_str().to_owned(),
            received_at_ms: now_ms,
            delivery_id,
            test_ping,
            replay: false,
            replaces: None,
            hydrate,
            rules: self.rules.clone(),
            method: request.method,
            path: request.path,
            query: request.raw_query,
            headers: request.headers,
            source_ip: request.source_ip,
            body_len: body.len() as u64,
            // Hashed by the consumer: the sender should not wait for a second pass over the body.
            body_sha256: String::new(),
            body: BodyLocation::Inline(body),
        }
    }

    fn accepted_reply(&self, id: &str) -> Reply {
        let shape = &self.route.response;
        let body = match &shape.body {
            Some(template) => template.replace("{{event_id}}", id),
            None => {
                #[derive(serde::Serialize)]
                struct Queued<'a> {
                    status: &'static str,
                    id: &'a str,
                }
                serde_json::to_string(&Queued {
                    status: "queued",
                    id,
                })
                .expect("two strings always serialize")
            }
        };
        let mut reply = Reply::new(shape.status, &shape.content_type, body);
        reply.headers.extend(
            shape
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthConfig, ResponseShape};
    use crate::testing::fakes::{FixedClock, MemoryBlobs, MemoryQueue};

    fn route(json: &str) -> RouteConfig {
        serde_json::from_str(json).unwrap()
    }

    fn ingestor(
        config: RouteConfig,
        queue: Arc<MemoryQueue>,
        blobs: Option<Arc<MemoryBlobs>>,
    ) -> Ingestor {
        let settings = RouteSettings::with_secrets(config, &["k1"]);
        Ingestor::new(
            &settings,
            queue,
            blobs.map(|b| b as Arc<dyn BlobStore>),
            Arc::new(FixedClock::new(1_700_000_000_000)),
            Duration::from_millis(200),
        )
    }

    fn post(body: &'static [u8]) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(body),
            source_ip: Some("198.51.100.7".into()),
            called_url: None,
        }
    }

    #[tokio::test]
    async fn accepted_only_after_enqueue_and_body_is_exact() {
        let queue = Arc::new(MemoryQueue::default());
        let ingest = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            queue.clone(),
            None,
        );
        let (reply, outcome, _) = ingest.process(post(b"{\"a\": 1}"), &|| None).await;
        assert_eq!(outcome, Outcome::Accepted);
        assert_eq!(reply.status, 200);
        let messages = queue.messages();
        assert_eq!(messages.len(), 1);
        let envelope = Envelope::from_message(&messages[0]).unwrap();
        let reply_json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(reply_json["id"], envelope.id.as_str());
        assert_eq!(reply_json["status"], "queued");
        assert_eq!(
            envelope.body,
            BodyLocation::Inline(Bytes::from_static(b"{\"a\": 1}"))
        );
        assert_eq!(envelope.body_sha256, "", "the consumer hashes the body");
        assert_eq!(envelope.received_at_ms, 1_700_000_000_000);
    }

    #[tokio::test]
    async fn queue_failure_is_503_never_2xx() {
        let queue = Arc::new(MemoryQueue::default());
        queue.fail_sends(true);
        let ingest = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            queue.clone(),
            None,
        );
        let (reply, outcome, _) = ingest.process(post(b"{}"), &|| None).await;
        assert_eq!((reply.status, outcome), (503, Outcome::QueueFailed));
        assert!(queue.messages().is_empty());
    }

    #[tokio::test]
    async fn stalled_queue_times_out_as_503() {
        let queue = Arc::new(MemoryQueue::default());
        queue.stall_sends(true);
        let ingest = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            queue.clone(),
            None,
        );
        let reply = ingest.handle(post(b"{}")).await;
        assert_eq!(reply.status, 503);
    }

    #[tokio::test]
    async fn refused_requests_are_401_and_not_queued() {
        let queue = Arc::new(MemoryQueue::default());
        let mut config = route(r#"{"name":"raw","provider":"catch-raw","secrets":["k1"]}"#);
        config.auth = Some(AuthConfig::ApiKey {
            header: Some("x-api-key".into()),
            query: None,
        });
        let ingest = ingestor(config, queue.clone(), None);
        let reply = ingest.handle(post(b"{}")).await;
        assert_eq!(reply.status, 401);
        assert_eq!(&reply.body[..], br#"{"error":"unauthorized"}"#);
        assert!(queue.messages().is_empty());
    }

    #[tokio::test]
    async fn too_many_or_too_large_headers_are_431_and_not_queued() {
        let queue = Arc::new(MemoryQueue::default());
        let ingest = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            queue.clone(),
            None,
        );
        let with_headers = |headers: Vec<(String, String)>| {
            let mut request = post(b"{}");
            request.headers = headers;
            request
        };
        let many = (0..=MAX_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".to_owned()))
            .collect();
        let reply = ingest.handle(with_headers(many)).await;
        assert_eq!(reply.status, 431);
        assert_eq!(
            &reply.body[..],
            br#"{"error":"request_header_fields_too_large"}"#
        );
        let huge = vec![("x-big".to_owned(), "a".repeat(MAX_HEADER_BYTES))];
        assert_eq!(ingest.handle(with_headers(huge)).await.status, 431);
        assert!(queue.messages().is_empty());

        let at_limit = (0..MAX_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".repeat(100)))
            .collect();
        assert_eq!(ingest.handle(with_headers(at_limit)).await.status, 200);
        assert_eq!(queue.messages().len(), 1);
    }

    #[tokio::test]
    async fn over_cap_is_413() {
        let queue = Arc::new(MemoryQueue::default());
        let ingest = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","max_body_bytes":4}"#),
            queue.clone(),
            None,
        );
        assert_eq!(ingest.handle(post(b"12345")).await.status, 413);
        assert!(queue.messages().is_empty());
    }

    #[tokio::test]
    async fn large_bodies_go_to_object_storage_by_claim_check() {
        // Text bodies travel as text: 900 KiB still fits in one message (base64 would not)...
        static TEXT: [u8; 900 * 1024] = [b'x'; 900 * 1024];
        let inline_queue = Arc::new(MemoryQueue::default());
        let inline = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            inline_queue.clone(),
            Some(Arc::new(MemoryBlobs::new("bucket-0"))),
        );
        assert_eq!(inline.handle(post(&TEXT)).await.status, 200);
        let envelope = Envelope::from_message(&inline_queue.messages()[0]).unwrap();
        assert_eq!(
            envelope.body,
            BodyLocation::Inline(Bytes::from_static(&TEXT))
        );
        // ...and over the message limit a body goes by claim check.
        static BIG: [u8; 1100 * 1024] = [b'x'; 1100 * 1024];
        let queue = Arc::new(MemoryQueue::default());
        let blobs = Arc::new(MemoryBlobs::new("bucket-1"));
        let ingest = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            queue.clone(),
            Some(blobs.clone()),
        );
        let reply = ingest.handle(post(&BIG)).await;
        assert_eq!(reply.status, 200);
        let envelope = Envelope::from_message(&queue.messages()[0]).unwrap();
        let BodyLocation::External { bucket, key } = &envelope.body else {
            panic!("expected a claim check, got an inline body");
        };
        assert_eq!(bucket, "bucket-1");
        assert_eq!(blobs.get(bucket, key).await.unwrap().len(), BIG.len());
        assert_eq!(envelope.body_len, BIG.len() as u64);

        // Without object storage the same body cannot be queued: refused, not half-stored.
        let without = ingestor(
            route(r#"{"name":"raw","provider":"catch-raw","open":true}"#),
            queue.clone(),
            None,
        );
        assert_eq!(without.handle(post(&BIG)).await.status, 413);
    }

    #[tokio::test]
    async fn response_is_shaped_per_route() {
        let queue = Arc::new(MemoryQueue::default());
        let mut config = route(r#"{"name":"raw","provider":"catch-raw","open":true}"#);
        config.response = ResponseShape {
            status: 202,
            content_type: "text/plain".into(),
            headers: [("X-Handled-By".to_owned(), "hookcatch".to_owned())].into(),
            body: Some("ok {{event_id}}".into()),
        };
        let ingest = ingestor(config, queue.clone(), None);
        let reply = ingest.handle(post(b"")).await;
        assert_eq!(reply.status, 202);
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert_eq!(reply.header("x-handled-by"), Some("hookcatch"));
        let envelope = Envelope::from_message(&queue.messages()[0]).unwrap();
        assert_eq!(reply.body, Bytes::from(format!("ok {}", envelope.id)));
        assert!(
            envelope.test_ping,
            "an empty body is recorded as a test ping"
        );
    }
}

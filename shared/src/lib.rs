//! hookcatch core: everything the route Lambdas, the consumer Lambda and the local binary share.
//!
//! The flow is `InboundRequest` → [`verify`] → [`VerifiedRequest`] → [`Envelope`] → [`ports::Queue`]
//! on the ingest side, and [`Envelope`] → hydrate (if id-only) → [`ports::EventStore`] on the consume
//! side. Nothing here knows about Lambda event types: the entrypoints translate at the edge.

pub mod aws;
pub mod clock;
pub mod config;
pub mod consume;
pub mod envelope;
pub mod extract;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
#[doc(hidden)]
pub mod fuzzing;
pub mod hydrate;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod multipart;
pub mod ports;
pub mod request;
pub mod secrets;
pub mod sign;
pub mod tls;
pub mod verify;

pub use config::{ProviderKind, RouteConfig, RouteSettings};
pub use consume::{ConsumeError, Consumer};
pub use envelope::Envelope;
pub use ingest::Ingestor;
pub use request::{InboundRequest, Reply};
pub use verify::VerifiedRequest;

//! hookcatch core: everything the route Lambdas, the consumer Lambda and the local binary share.
//!
//! The flow is `InboundRequest` → [`providers`] → [`VerifiedRequest`] → [`Envelope`] →
//! [`ports::Queue`] on the ingest side, and [`Envelope`] → hydrate (if id-only) →
//! [`ports::EventStore`] on the consume side.
//!
//! The modules stand on floors; a file imports its own floor and those below, never one above
//! (`tests/it/layers.rs` checks it). Read bottom-up:
//!
//! | floor | modules | what |
//! |---|---|---|
//! | 0 | [`model`] | the request, values, rules, envelope: plain data |
//! | 1 | [`ports`], [`clock`], [`secrets`], [`metrics`], [`tls`] | the capabilities the cores need, and leaf utilities |
//! | 2 | [`config`] | what the user writes, parsed and validated |
//! | 3 | [`providers`], [`hydrate`] | what each provider is (verify, sign, default rules); hydrators |
//! | 4 | [`ingest`], [`consume`] | the two cores |
//! | 5 | [`edge`], [`aws`] | the front doors' translations; the AWS adapters |
//! | 6 | [`runtime`] | the Lambdas' wiring and logging |
//!
//! [`testing`] (feature `testing`) may import anything; nothing imports it.

pub mod model;

pub mod clock;
pub mod metrics;
pub mod ports;
pub mod secrets;
pub mod tls;

pub mod config;

pub mod hydrate;
pub mod providers;

pub mod consume;
pub mod ingest;

pub mod aws;
pub mod edge;

pub mod runtime;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{ProviderKind, RouteConfig, RouteSettings};
pub use consume::{ConsumeError, Consumer};
pub use ingest::Ingestor;
pub use model::envelope::Envelope;
pub use model::request::{InboundRequest, Reply};
pub use providers::VerifiedRequest;

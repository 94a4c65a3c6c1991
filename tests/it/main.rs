//! Integration tests: the real handlers and the release `bootstrap` binaries, with the real AWS SDK
//! clients talking to an AWS-compatible server (moto) on loopback. The README's test command starts
//! that server and sets `AWS_ENDPOINT_URL`; see `support.rs`.

mod bootstrap;
mod event_samples;
mod pipeline;
mod support;

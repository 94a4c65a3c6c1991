//! Integration tests: the real handlers and the release `bootstrap` binaries, with the real AWS SDK
//! clients talking to an AWS-compatible server (moto) on loopback. The README's test command starts
//! that server and sets `AWS_ENDPOINT_URL`; see `support.rs`.

// Test support code outside #[test] functions: a failed unwrap is a failed test, which is the point.
#![allow(clippy::unwrap_used)]

mod bootstrap;
mod cli_aws;
mod conformance;
mod console;
mod deployed;
mod docs;
mod event_samples;
mod fake_api;
mod fake_lambda;
mod fake_runtime;
mod fake_zoho;
mod fault_proxy;
mod faults;
mod fuzz_corpus;
mod hostile;
mod http_hydration;
mod hydration;
mod layers;
mod local;
mod logs;
mod pipeline;
mod replays;
mod routes;
mod support;
mod template;
mod webdriver;

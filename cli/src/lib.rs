//! The `hookcatch` binary's pieces: the local store, `serve`, `send`, and the inspection commands.

pub mod aws;
pub mod config;
pub mod console;
pub mod deployment;
pub mod handshakes;
pub mod inspect;
pub mod lambda;
pub mod refusals;
pub mod reload;
pub mod replay;
pub mod routes;
pub mod secrets_file;
pub mod send;
pub mod serve;
pub mod store;
pub mod zoho;

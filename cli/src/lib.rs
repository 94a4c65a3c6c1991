//! The `hookcatch` binary's pieces: the local store, `serve`, `send`, and the inspection commands.

pub mod aws;
pub mod config;
pub mod inspect;
pub mod send;
pub mod serve;
pub mod store;
pub mod zoho;

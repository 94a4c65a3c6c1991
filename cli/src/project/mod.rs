//! Floor 1: the user's files: `hookcatch.toml` (read, and edited by `routes add|edit|rm`), the
//! secrets file beside it, and how a secret's values rotate.

pub mod config;
pub mod files;
pub mod rotation;
pub mod routes_edit;
pub mod secrets_file;

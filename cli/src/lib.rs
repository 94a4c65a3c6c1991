//! The `hookcatch` binary's pieces, on floors whose imports point one way (down), as the core's do;
//! `tests/it/layers.rs` keeps them. Bottom first:
//!
//! | floor | modules | what |
//! |---|---|---|
//! | 0 | `term`, `server` | text for a terminal: stored strings made inert, times; a router served with read deadlines and a connection cap |
//! | 1 | `project`, `store`, `send` | the user's files; this machine's store; the requests hookcatch sends |
//! | 2 | `views`, `replay`, `handshakes`, `refusals` | what is shown of events, records and routes; a local replay; what `serve` saw |
//! | 3 | `stack`, `zoho` | the deployed stack as the CLI drives it (SSM, `sam`, Lambda, queues, logs); Zoho channel renewal |
//! | 4 | `source` | where the console reads and acts: this machine's store (`local`) or a deployed stack (`stack`), one trait |
//! | 5 | `console` | the web console, written once over a `Source`: one file per page |
//! | 6 | `serve` | `hookcatch serve` as a runtime: the webhook edge, the at-once store path, the worker, reloads |
//! | 7 | `commands` | one file per subcommand: its arguments, the order of its steps, what it prints |
//!
//! `main.rs` parses, sets up tracing and dispatches.

pub mod commands;
pub mod console;
pub mod handshakes;
pub mod project;
pub mod refusals;
pub mod replay;
pub mod send;
pub mod serve;
pub mod server;
pub mod source;
pub mod stack;
pub mod store;
pub mod term;
pub mod views;
pub mod zoho;

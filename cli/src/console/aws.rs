//! `hookcatch console --aws`: the same console, pages and gate over a deployed stack
//! (`source/stack.rs` says where each page reads).

use std::sync::Arc;

use tokio::sync::watch;

use super::{ConsoleSettings, Started, start_over};
pub use crate::source::stack::StackContext;
use crate::source::stack::StackSource;

/// The console over the stack `context` names.
pub async fn start(
    settings: ConsoleSettings,
    context: StackContext,
    stopped: watch::Receiver<bool>,
) -> Result<Started, String> {
    start_over(settings, Arc::new(StackSource::new(context)), None, stopped).await
}

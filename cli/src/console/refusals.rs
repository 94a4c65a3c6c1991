//! The refused requests (`/refusals`): `serve`'s from its memory, a stack's from its route
//! functions' logs.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Console;
use super::pages::{RefusalRow, RefusalsPage};
use super::render::{refusal, render};
use crate::source::RefusalView;

pub(super) fn router() -> Router<Arc<Console>> {
    Router::new().route("/refusals", get(refusals_page))
}

async fn refusals_page(State(console): State<Arc<Console>>) -> Response {
    let source = console.source.as_ref();
    let (intro, refusals) = match source.refusals().await {
        Ok(read) => read,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let rows = refusals
        .iter()
        .map(|refused| match refused {
            RefusalView::Served(refused) => RefusalRow::new(refused),
            RefusalView::Logged(refused) => RefusalRow::from_logged(refused),
        })
        .collect();
    render(&RefusalsPage {
        data_dir: source.label().to_owned(),
        intro,
        rows,
    })
    .into_response()
}

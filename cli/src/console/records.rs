//! The records the events produced (`/records`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::Console;
use super::pages::{RecordRow, RecordsPage};
use super::render::{refusal, render};
use crate::source::IndexEntry;

/// How many records the page shows: the most recently written.
const SHOWN: usize = 200;

pub(super) fn router() -> Router<Arc<Console>> {
    Router::new().route("/records", get(records_page))
}

/// The list's record filters.
#[derive(Debug, Default, Deserialize)]
struct RecordQuery {
    #[serde(default)]
    route: String,
    #[serde(default, rename = "type")]
    record_type: String,
}

async fn records_page(
    State(console): State<Arc<Console>>,
    Query(query): Query<RecordQuery>,
) -> Response {
    let source = console.source.as_ref();
    let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let records = match source
        .records(nonempty(&query.route), nonempty(&query.record_type), SHOWN)
        .await
    {
        Ok(records) => records,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    render(&RecordsPage {
        data_dir: source.label().to_owned(),
        route: query.route,
        record_type: query.record_type,
        records: records
            .iter()
            .map(|(record, at)| RecordRow {
                detail: at.as_ref().map(IndexEntry::link_query).unwrap_or_default(),
                ..RecordRow::new(record)
            })
            .collect(),
    })
    .into_response()
}

//! Pages as HTML, the error and message pages, and the console's two assets.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::pages::MessagePage;

pub(super) fn refusal(status: StatusCode, message: &str) -> Response {
    let page = MessagePage {
        data_dir: String::new(),
        title: status.canonical_reason().unwrap_or("Refused").to_owned(),
        message: message.to_owned(),
    };
    (status, render(&page)).into_response()
}

pub(super) fn render(page: &impl Template) -> Html<String> {
    Html(page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a console page failed to render");
        "<!doctype html><title>error</title><p>This page failed to render; see serve's log.</p>"
            .to_owned()
    }))
}

pub(super) fn not_found_page(data_dir: &str) -> Response {
    let page = MessagePage {
        data_dir: data_dir.to_owned(),
        title: "Not found".into(),
        message: "Nothing here. The events are at /.".into(),
    };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

/// A page that says one thing, under the console's header.
pub(super) fn message_page(
    data_dir: &str,
    status: StatusCode,
    title: &str,
    message: String,
) -> Response {
    let page = MessagePage {
        data_dir: data_dir.to_owned(),
        title: title.to_owned(),
        message,
    };
    (status, render(&page)).into_response()
}

pub(super) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/console.js"),
    )
}

pub(super) async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console.css"),
    )
}

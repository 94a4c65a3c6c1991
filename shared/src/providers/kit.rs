//! What every provider's signing code shares: the error, the Test request and what proves it
//! arrived, request builders and header edits. A leaf: the families and the dispatch in `sign.rs`
//! import it, and it imports neither, so no loop runs through the providers folder.

use crate::config::RouteSettings;
use crate::model::request::InboundRequest;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("route `{0}` has no secret to sign with")]
    NoSecret(String),
    #[error("route `{0}`: Twilio signs the URL it calls; set `public_url` or the URL called")]
    NoUrl(String),
}

/// What a route's Test sends, before `sign::sign` adds the credentials.
#[derive(Debug)]
pub struct TestRequest {
    pub request: InboundRequest,
    pub expect: TestExpect,
}

/// What proves a Test arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestExpect {
    /// Accepted (2xx), and stored as an event with `test_ping: true`.
    Stored,
    /// A handshake, answered: the reply contains this (the challenge, echoed or signed).
    Answer(String),
}

/// A POST with these headers and no body.
pub(crate) fn empty_post(headers: &[(&str, &str)]) -> InboundRequest {
    InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        raw_query: String::new(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: bytes::Bytes::new(),
        source_ip: None,
        called_url: None,
    }
}

/// A JSON POST of `body` with these headers.
pub(crate) fn json_post(headers: &[(&str, &str)], body: serde_json::Value) -> InboundRequest {
    let mut request = empty_post(headers);
    request
        .headers
        .push(("content-type".into(), "application/json".into()));
    request.body = serde_json::to_vec(&body)
        .expect("a JSON value serializes")
        .into();
    request
}

/// Edits a JSON object body in place (a non-object body is replaced by an object).
pub(crate) fn rewrite_json(
    request: &mut InboundRequest,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let mut body: serde_json::Value = serde_json::from_slice(&request.body)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    edit(&mut body);
    request.body = serde_json::to_vec(&body)
        .expect("a JSON value serializes")
        .into();
}

pub(crate) fn first_secret(settings: &RouteSettings) -> Result<&str, SignError> {
    settings
        .secrets
        .first()
        .map(|s| s.expose())
        .ok_or_else(|| SignError::NoSecret(settings.config.name.clone()))
}

pub(crate) fn remove_header(request: &mut InboundRequest, name: &str) {
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

/// Replaces a header (names compare case-insensitively) or adds it.
pub fn set_header(request: &mut InboundRequest, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    request.headers.retain(|(n, _)| *n != name);
    request.headers.push((name, value.to_owned()));
}

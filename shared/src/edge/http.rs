//! The local front door (`hookcatch serve`): `http` request parts ⇄ [`InboundRequest`], and
//! [`Reply`] → `http::Response`.

use bytes::Bytes;

use crate::model::request::{InboundRequest, Reply, header_pairs};

/// The request as the local server received it. The path is the URI's, the caller narrows it to
/// the part below its route; the source address and called URL are the caller's to vouch for.
pub fn inbound_from_http(
    parts: &http::request::Parts,
    body: Bytes,
    source_ip: Option<String>,
) -> InboundRequest {
    InboundRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        raw_query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: header_pairs(&parts.headers),
        body,
        source_ip,
        called_url: None,
    }
}

/// The reply as an HTTP response; a header that is not valid HTTP makes it a bare 500.
pub fn response_from_reply(reply: Reply) -> http::Response<Bytes> {
    let mut builder = http::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    builder.body(reply.body).unwrap_or_else(|_| {
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_http_keeps_raw_query_and_lowercases_headers() {
        let request = http::Request::builder()
            .method("POST")
            .uri("https://example.test/hook/x?zapikey=a%2Bb&x=1")
            .header("X-Api-Key", "k")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let inbound = inbound_from_http(&parts, Bytes::from_static(b"{}"), None);
        assert_eq!(inbound.path, "/hook/x");
        assert_eq!(inbound.raw_query, "zapikey=a%2Bb&x=1");
        assert_eq!(inbound.query_param("zapikey").as_deref(), Some("a+b"));
        assert_eq!(inbound.header("x-api-key"), Some("k"));
        assert_eq!(inbound.headers[0].0, "x-api-key");
    }

    #[test]
    fn replies_keep_status_headers_and_body_and_bad_headers_are_500() {
        let response = response_from_reply(Reply::new(202, "application/json", "{}"));
        assert_eq!(response.status(), 202);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(&response.body()[..], b"{}");
        let invalid = response_from_reply(Reply {
            status: 200,
            headers: vec![("bad name".into(), "v".into())],
            body: Bytes::new(),
        });
        assert_eq!(invalid.status(), 500);
    }
}

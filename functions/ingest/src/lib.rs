//! Route Lambda handler: translates a Function URL event to the ingest core and back.

use bytes::Bytes;
use hookcatch::{InboundRequest, Ingestor, Reply};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// Converts a Function URL request (body already base64-decoded by lambda_http when
/// `isBase64Encoded` was set) to the exact bytes and headers the core verifies.
pub fn inbound_from_lambda(request: Request) -> InboundRequest {
    let source_ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text.into_bytes()),
        Body::Binary(binary) => Bytes::from(binary),
        other => Bytes::copy_from_slice(&other),
    };
    InboundRequest::from_http(&parts, bytes, source_ip)
}

pub fn reply_to_lambda(reply: Reply) -> Response<Body> {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    let body = match String::from_utf8(reply.body.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(binary) => Body::Binary(binary.into_bytes()),
    };
    builder.body(body).unwrap_or_else(|error| {
        tracing::error!(%error, "reply could not be built; answering 500");
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// Fuzz entry (`fuzz/`, and the corpus replay in the tests): any bytes as the runtime's payload.
///
/// lambda_http panics on some events Lambda does not send (a body flagged base64 that is not, a
/// Host header that is no URL host; both found by this target). lambda_runtime turns such a panic
/// into an invocation error, so the sender gets a 5xx and retries, and the process serves on (the
/// bootstrap test shows it). Those panics are tolerated here; hookcatch's own conversion after
/// them must never panic.
#[doc(hidden)]
pub fn fuzz_function_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let decoded = std::panic::catch_unwind(|| lambda_http::request::from_str(text));
    std::panic::set_hook(hook);
    if let Ok(Ok(request)) = decoded {
        let inbound = inbound_from_lambda(request);
        let _ = (inbound.header("content-type"), inbound.body.len());
    }
}

pub async fn handle(
    ingestor: &Ingestor,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    Ok(reply_to_lambda(
        ingestor.handle(inbound_from_lambda(request)).await,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_function_url_bodies_are_decoded_to_exact_bytes() {
        let event = r#"{"version":"2.0","routeKey":"$default","rawPath":"/","rawQueryString":"zapikey=k&x=%2F",
            "headers":{"content-type":"application/x-www-form-urlencoded","X-Custom":"v"},
            "requestContext":{"accountId":"123","apiId":"u","domainName":"u.lambda-url.us-east-1.on.aws","domainPrefix":"u",
              "http":{"method":"POST","path":"/","protocol":"HTTP/1.1","sourceIp":"203.0.113.5","userAgent":"t"},
              "requestId":"r","routeKey":"$default","stage":"$default","time":"12/Mar/2020:19:03:58 +0000","timeEpoch":1583348638390},
            "body":"YT0xJmI9JUZG","isBase64Encoded":true}"#;
        let request = lambda_http::request::from_str(event).unwrap();
        let inbound = inbound_from_lambda(request);
        assert_eq!(&inbound.body[..], b"a=1&b=%FF");
        assert_eq!(inbound.method, "POST");
        assert_eq!(inbound.raw_query, "zapikey=k&x=%2F");
        assert_eq!(inbound.source_ip.as_deref(), Some("203.0.113.5"));
        assert_eq!(inbound.header("x-custom"), Some("v"));
    }

    #[test]
    fn replies_keep_status_headers_and_binary_bodies() {
        let response = reply_to_lambda(Reply {
            status: 202,
            headers: vec![("x-a".into(), "b".into())],
            body: Bytes::from_static(b"\xff\x00"),
        });
        assert_eq!(response.status(), 202);
        assert_eq!(response.headers()["x-a"], "b");
        assert_eq!(response.body(), &Body::Binary(vec![0xff, 0]));
    }
}

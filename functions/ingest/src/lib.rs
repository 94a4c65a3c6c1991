//! Route Lambda handler: translates a Function URL event to the ingest core and back.
//!
//! The event is decoded as the Function URL type itself (`aws_lambda_events`, run by lambda_http's
//! runtime), not through lambda_http's `http::Request` adapter: that adapter buffers the event in an
//! untagged enum and rebuilds a URI, which cost more than verifying and enveloping a 1 KiB webhook
//! (BENCHMARKS.md §1), and the core wants header pairs and exact bytes anyway.

use base64::Engine;
use bytes::Bytes;
use hookcatch::{InboundRequest, Ingestor, Reply};
pub use lambda_http::aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use lambda_http::http::{HeaderName, HeaderValue};

/// An event Lambda would not send. The handler fails the invocation, so the sender gets a 5xx and
/// retries rather than a refusal for a request it may have made correctly.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the body is flagged base64 but is not: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the event has no HTTP method")]
    NoMethod,
}

/// Converts a Function URL event to the exact bytes and headers the core verifies.
pub fn inbound_from_function_url(
    event: LambdaFunctionUrlRequest,
) -> Result<InboundRequest, EventError> {
    let http = event.request_context.http;
    let method = http.method.ok_or(EventError::NoMethod)?;
    let body = match event.body {
        None => Bytes::new(),
        Some(body) if event.is_base64_encoded => {
            Bytes::from(base64::engine::general_purpose::STANDARD.decode(body)?)
        }
        Some(body) => Bytes::from(body.into_bytes()),
    };
    let mut headers = hookcatch::request::header_pairs(&event.headers);
    // Function URLs move the Cookie header into its own list; put it back as the sender sent it.
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        headers.retain(|(name, _)| name != "cookie");
        headers.push(("cookie".to_owned(), cookies.join("; ")));
    }
    Ok(InboundRequest {
        method,
        path: event.raw_path.unwrap_or_else(|| "/".to_owned()),
        raw_query: event.raw_query_string.unwrap_or_default(),
        headers,
        body,
        source_ip: http.source_ip,
    })
}

pub fn reply_to_function_url(reply: Reply) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = reply.status.into();
    for (name, value) in &reply.headers {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(name), Ok(value)) => {
                response.headers.append(name, value);
            }
            _ => {
                tracing::error!(header = %name, "reply header is not valid HTTP; answering 500");
                let mut failed = LambdaFunctionUrlResponse::default();
                failed.status_code = 500;
                return failed;
            }
        }
    }
    match String::from_utf8(reply.body.to_vec()) {
        Ok(text) if text.is_empty() => {}
        Ok(text) => response.body = Some(text),
        Err(binary) => {
            response.body =
                Some(base64::engine::general_purpose::STANDARD.encode(binary.as_bytes()));
            response.is_base64_encoded = true;
        }
    }
    response
}

/// Fuzz entry (`fuzz/`, and the corpus replay in the tests): any bytes as the runtime's payload,
/// decoded as lambda_runtime decodes it. Nothing on this path may panic.
#[doc(hidden)]
pub fn fuzz_function_url(data: &[u8]) {
    if let Ok(event) = serde_json::from_slice::<LambdaFunctionUrlRequest>(data)
        && let Ok(inbound) = inbound_from_function_url(event)
    {
        let _ = (inbound.header("content-type"), inbound.body.len());
    }
}

pub async fn handle(
    ingestor: &Ingestor,
    event: LambdaFunctionUrlRequest,
) -> Result<LambdaFunctionUrlResponse, EventError> {
    let inbound = inbound_from_function_url(event)?;
    Ok(reply_to_function_url(ingestor.handle(inbound).await))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> LambdaFunctionUrlRequest {
        serde_json::from_str(json).unwrap()
    }

    const EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/in","rawQueryString":"zapikey=k&x=%2F",
        "cookies":["a=1","b=2"],
        "headers":{"content-type":"application/x-www-form-urlencoded","X-Custom":"v","host":"u.lambda-url.us-east-1.on.aws"},
        "requestContext":{"accountId":"123","apiId":"u","domainName":"u.lambda-url.us-east-1.on.aws","domainPrefix":"u",
          "http":{"method":"POST","path":"/in","protocol":"HTTP/1.1","sourceIp":"203.0.113.5","userAgent":"t"},
          "requestId":"r","routeKey":"$default","stage":"$default","time":"12/Mar/2020:19:03:58 +0000","timeEpoch":1583348638390},
        "body":"YT0xJmI9JUZG","isBase64Encoded":true}"#;

    #[test]
    fn base64_function_url_bodies_are_decoded_to_exact_bytes() {
        let inbound = inbound_from_function_url(event(EVENT)).unwrap();
        assert_eq!(&inbound.body[..], b"a=1&b=%FF");
        assert_eq!(inbound.method, "POST");
        assert_eq!(inbound.path, "/in");
        assert_eq!(inbound.raw_query, "zapikey=k&x=%2F");
        assert_eq!(inbound.source_ip.as_deref(), Some("203.0.113.5"));
        assert_eq!(inbound.header("x-custom"), Some("v"));
        assert_eq!(inbound.header("cookie"), Some("a=1; b=2"));
        assert_eq!(inbound.headers.len(), 4);
    }

    #[test]
    fn text_bodies_stay_as_sent_and_broken_events_are_errors() {
        let text = EVENT
            .replace("YT0xJmI9JUZG", "a=1&b=%FF")
            .replace("\"isBase64Encoded\":true", "\"isBase64Encoded\":false");
        let inbound = inbound_from_function_url(event(&text)).unwrap();
        assert_eq!(&inbound.body[..], b"a=1&b=%FF");
        // A body flagged base64 that is not (lambda_http's adapter panicked on this one).
        let broken = EVENT.replace("YT0xJmI9JUZG", "not base64!");
        assert!(matches!(
            inbound_from_function_url(event(&broken)),
            Err(EventError::Base64(_))
        ));
        let no_method = EVENT.replace("\"method\":\"POST\",", "");
        assert!(matches!(
            inbound_from_function_url(event(&no_method)),
            Err(EventError::NoMethod)
        ));
    }

    #[test]
    fn replies_keep_status_headers_and_binary_bodies() {
        let response = reply_to_function_url(Reply {
            status: 202,
            headers: vec![("x-a".into(), "b".into())],
            body: Bytes::from_static(b"\xff\x00"),
        });
        assert_eq!(response.status_code, 202);
        assert_eq!(response.headers["x-a"], "b");
        assert_eq!(response.body.as_deref(), Some("/wA="));
        assert!(response.is_base64_encoded);
        let text = reply_to_function_url(Reply::new(200, "application/json", "{}"));
        assert_eq!(text.body.as_deref(), Some("{}"));
        assert!(!text.is_base64_encoded);
        let invalid = reply_to_function_url(Reply {
            status: 200,
            headers: vec![("bad name".into(), "v".into())],
            body: Bytes::new(),
        });
        assert_eq!(invalid.status_code, 500);
    }
}

//! Route Lambda handler: a Function URL event through the ingest core and back. The event's
//! codec is the core's (`hookcatch::edge::function_url`); the reply is written here, with the
//! Lambda response type.

use base64::Engine;
use hookcatch::Ingestor;
pub use hookcatch::edge::function_url::{
    EventError, FunctionUrlEvent, FunctionUrlPayload, inbound_from_function_url,
};
use hookcatch::model::request::Reply;
pub use lambda_http::aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use lambda_http::http::{HeaderName, HeaderValue};

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

pub async fn handle(
    ingestor: &Ingestor,
    event: FunctionUrlEvent,
) -> Result<LambdaFunctionUrlResponse, EventError> {
    let inbound = inbound_from_function_url(event)?;
    Ok(reply_to_function_url(ingestor.handle(inbound).await))
}

/// Test support (the `testing` feature, never in the bootstrap): the fuzz entry and the oracle
/// that holds the core's Function URL view to the complete `aws_lambda_events` type.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::{FunctionUrlEvent, FunctionUrlPayload, inbound_from_function_url};
    use lambda_http::aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;

    /// Fuzz entry (`fuzz/`, and the corpus replay in the tests): any bytes as the runtime's payload.
    /// Nothing on this path may panic, and an input that the complete `aws_lambda_events` type and the
    /// view, or the function's payload, both decode must give the same request both ways.
    pub fn fuzz_function_url(data: &[u8]) {
        let view = serde_json::from_slice::<FunctionUrlEvent>(data);
        let payload = serde_json::from_slice::<FunctionUrlPayload>(data);
        if let Ok(complete) = serde_json::from_slice::<LambdaFunctionUrlRequest>(data) {
            // The view may refuse what only the complete type takes: header values given as arrays
            // (http_serde accepts them; Lambda never sends them), which the sample test rules out.
            if let Ok(view) = &view {
                assert_same_event(view, &complete);
            }
            if let Ok(payload) = &payload {
                assert_same_event(&payload.0, &complete);
            }
        }
        if let Ok(event) = view
            && let Ok(inbound) = inbound_from_function_url(event)
        {
            let _ = (inbound.header("content-type"), inbound.body.len());
        }
    }

    /// Panics unless `view` holds what the complete type decoded from the same event: the oracle of
    /// the fuzz entry and of the sample tests.
    pub fn assert_same_event(view: &FunctionUrlEvent, complete: &LambdaFunctionUrlRequest) {
        let mut ours = view
            .headers
            .as_ref()
            .map(|h| h.0.clone())
            .unwrap_or_default();
        let mut theirs = hookcatch::model::request::header_pairs(&complete.headers);
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "headers");
        assert_eq!(view.raw_path, complete.raw_path, "rawPath");
        assert_eq!(
            view.raw_query_string, complete.raw_query_string,
            "rawQueryString"
        );
        assert_eq!(view.cookies, complete.cookies, "cookies");
        assert_eq!(view.body, complete.body, "body");
        assert_eq!(
            view.is_base64_encoded, complete.is_base64_encoded,
            "isBase64Encoded"
        );
        let http = &complete.request_context.http;
        assert_eq!(view.request_context.http.method, http.method, "method");
        assert_eq!(
            view.request_context.http.source_ip, http.source_ip,
            "sourceIp"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::testing::assert_same_event;
    use super::*;
    use bytes::Bytes;

    fn event(json: &str) -> FunctionUrlEvent {
        let view = serde_json::from_str(json).unwrap();
        assert_same_event(&view, &serde_json::from_str(json).unwrap());
        view
    }

    const EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/in","rawQueryString":"zapikey=k&x=%2F",
        "cookies":["a=1","b=2"],
        "headers":{"content-type":"application/x-www-form-urlencoded","X-Custom":"v","host":"u.lambda-url.us-east-1.on.aws"},
        "requestContext":{"accountId":"123","apiId":"u","domainName":"u.lambda-url.us-east-1.on.aws","domainPrefix":"u",
          "http":{"method":"POST","path":"/in","protocol":"HTTP/1.1","sourceIp":"203.0.113.5","userAgent":"t"},
          "requestId":"r","routeKey":"$default","stage":"$default","time":"12/Mar/2020:19:03:58 +0000","timeEpoch":1583348638390},
        "body":"YT0xJmI9JUZG","isBase64Encoded":true}"#;

    #[test]
    fn the_payload_is_the_view_when_decoded_as_lambda_runtime_decodes() {
        for json in [
            EVENT,
            &EVENT.replace(
                "\"body\":\"YT0xJmI9JUZG\"",
                "\"body\":\"a \\\"quoted\\\" \\u00e9\"",
            ),
        ] {
            let payload: FunctionUrlPayload = serde_path_to_error::deserialize(
                &mut serde_json::Deserializer::from_slice(json.as_bytes()),
            )
            .unwrap();
            assert_same_event(&payload.0, &serde_json::from_str(json).unwrap());
        }
        let broken = serde_path_to_error::deserialize::<_, FunctionUrlPayload>(
            &mut serde_json::Deserializer::from_slice(br#"{"rawPath":"/","requestContext":{}}"#),
        );
        assert!(broken.unwrap_err().to_string().contains("http"));
    }

    #[test]
    fn base64_function_url_bodies_are_decoded_to_exact_bytes() {
        let inbound = inbound_from_function_url(event(EVENT)).unwrap();
        assert_eq!(&inbound.body[..], b"a=1&b=%FF");
        assert_eq!(inbound.method, "POST");
        assert_eq!(inbound.path, "/in");
        assert_eq!(inbound.raw_query, "zapikey=k&x=%2F");
        assert_eq!(inbound.source_ip.as_deref(), Some("203.0.113.5"));
        assert_eq!(
            inbound.called_url.as_deref(),
            Some("https://u.lambda-url.us-east-1.on.aws/in"),
            "Twilio's default signed URL: the Function URL's own host and path"
        );
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

//! Route Lambda handler: translates a Function URL event to the ingest core and back.
//!
//! The event is decoded into [`FunctionUrlEvent`], the fields of the Function URL request the core
//! reads, straight into the core's types. The complete `aws_lambda_events` type also builds an
//! `http::HeaderMap` and a dozen request-context strings the core never reads: 1.5–2.8 µs more
//! per 1 KiB webhook, a fifth of its whole handling (BENCHMARKS.md §1). The tests hold this view
//! to the complete type: every sample, and every fuzz input both decode, gives the same request.

use std::fmt;

use base64::Engine;
use bytes::Bytes;
use hookcatch::{InboundRequest, Ingestor, Reply};
pub use lambda_http::aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use lambda_http::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

/// An event Lambda would not send. The handler fails the invocation, so the sender gets a 5xx and
/// retries rather than a refusal for a request it may have made correctly.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the body is flagged base64 but is not: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the event has no HTTP method")]
    NoMethod,
}

/// The parts of a Function URL request event (payload format 2.0) that reach the core; the other
/// fields are skipped unread.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUrlEvent {
    #[serde(default)]
    raw_path: Option<String>,
    #[serde(default)]
    raw_query_string: Option<String>,
    #[serde(default)]
    headers: Option<HeaderPairs>,
    #[serde(default)]
    cookies: Option<Vec<String>>,
    request_context: RequestContext,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

#[derive(Debug, Deserialize)]
struct RequestContext {
    http: HttpContext,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpContext {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    source_ip: Option<String>,
}

/// The `headers` object as (name, value) pairs in arrival order, names lowercased as `HeaderMap`
/// would (Lambda already joins repeated headers into one comma-separated value).
#[derive(Debug, Default)]
struct HeaderPairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for HeaderPairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = HeaderPairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of header names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderPairs, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((mut name, value)) = map.next_entry::<String, String>()? {
                    name.make_ascii_lowercase();
                    pairs.push((name, value));
                }
                Ok(HeaderPairs(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// The route function's payload: a [`FunctionUrlEvent`], decoded so that lambda_runtime's
/// `serde_path_to_error`, which copies every object key it sees into a `String` to say where an
/// error was, sees only the event's top level. The headers and the request context (most of the
/// keys) are taken as JSON text borrowed from the event and decoded by plain serde_json; the body
/// is read once. Tracking every key took github's 1 KiB event from 2.8 to 4.6 µs (BENCHMARKS.md §1).
#[derive(Debug)]
pub struct Payload(pub FunctionUrlEvent);

/// The event's top level, its two objects left as text (it borrows: the event is decoded from
/// bytes in memory, as lambda_runtime does).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Outline<'a> {
    #[serde(default)]
    raw_path: Option<String>,
    #[serde(default)]
    raw_query_string: Option<String>,
    #[serde(default, borrow)]
    headers: Option<&'a RawValue>,
    #[serde(default)]
    cookies: Option<Vec<String>>,
    #[serde(borrow)]
    request_context: &'a RawValue,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let outline = Outline::deserialize(deserializer)?;
        let headers = outline
            .headers
            .map(|text| serde_json::from_str::<HeaderPairs>(text.get()))
            .transpose()
            .map_err(|e| D::Error::custom(format_args!("headers: {e}")))?;
        let request_context = serde_json::from_str(outline.request_context.get())
            .map_err(|e| D::Error::custom(format_args!("requestContext: {e}")))?;
        Ok(Payload(FunctionUrlEvent {
            raw_path: outline.raw_path,
            raw_query_string: outline.raw_query_string,
            headers,
            cookies: outline.cookies,
            request_context,
            body: outline.body,
            is_base64_encoded: outline.is_base64_encoded,
        }))
    }
}

/// Converts a Function URL event to the exact bytes and headers the core verifies.
pub fn inbound_from_function_url(event: FunctionUrlEvent) -> Result<InboundRequest, EventError> {
    let http = event.request_context.http;
    let method = http.method.ok_or(EventError::NoMethod)?;
    let body = match event.body {
        None => Bytes::new(),
        Some(body) if event.is_base64_encoded => {
            Bytes::from(base64::engine::general_purpose::STANDARD.decode(body)?)
        }
        Some(body) => Bytes::from(body.into_bytes()),
    };
    let mut headers = event.headers.unwrap_or_default().0;
    // Function URLs move the Cookie header into its own list; put it back as the sender sent it.
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        headers.retain(|(name, _)| name != "cookie");
        headers.push(("cookie".to_owned(), cookies.join("; ")));
    }
    let path = event.raw_path.unwrap_or_else(|| "/".to_owned());
    // A Function URL is reached only through its own domain, so its Host names the URL called.
    let called_url = hookcatch::request::find_header(&headers, "host")
        .map(|host| format!("https://{host}{path}"));
    Ok(InboundRequest {
        method,
        path,
        raw_query: event.raw_query_string.unwrap_or_default(),
        headers,
        body,
        source_ip: http.source_ip,
        called_url,
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

/// Fuzz entry (`fuzz/`, and the corpus replay in the tests): any bytes as the runtime's payload.
/// Nothing on this path may panic, and an input that the complete `aws_lambda_events` type and the
/// view, or the function's payload, both decode must give the same request both ways.
#[doc(hidden)]
pub fn fuzz_function_url(data: &[u8]) {
    let view = serde_json::from_slice::<FunctionUrlEvent>(data);
    let payload = serde_json::from_slice::<Payload>(data);
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
#[doc(hidden)]
pub fn assert_same_event(view: &FunctionUrlEvent, complete: &LambdaFunctionUrlRequest) {
    let mut ours = view
        .headers
        .as_ref()
        .map(|h| h.0.clone())
        .unwrap_or_default();
    let mut theirs = hookcatch::request::header_pairs(&complete.headers);
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

pub async fn handle(
    ingestor: &Ingestor,
    event: FunctionUrlEvent,
) -> Result<LambdaFunctionUrlResponse, EventError> {
    let inbound = inbound_from_function_url(event)?;
    Ok(reply_to_function_url(ingestor.handle(inbound).await))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let payload: Payload = serde_path_to_error::deserialize(
                &mut serde_json::Deserializer::from_slice(json.as_bytes()),
            )
            .unwrap();
            assert_same_event(&payload.0, &serde_json::from_str(json).unwrap());
        }
        let broken = serde_path_to_error::deserialize::<_, Payload>(
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

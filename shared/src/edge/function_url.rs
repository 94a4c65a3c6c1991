//! The Function URL front door: its request event (payload format 2.0) ⇄ [`InboundRequest`].
//! One codec for the route Lambda, `hookcatch send` (which reads and writes sample events) and
//! the fuzz targets. The Lambda reply (`Reply` → response) stays with the route function, the
//! only caller that links the Lambda event types.
//!
//! The event is decoded into [`FunctionUrlEvent`], the fields of the request the core reads,
//! straight into the core's types; the complete `aws_lambda_events` type builds much more the
//! core never reads (measured: BENCHMARKS.md §1). The route function's tests hold this view to the
//! complete type: every sample, and every fuzz input both decode, gives the same request.

use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::model::request::InboundRequest;

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
    pub raw_path: Option<String>,
    #[serde(default)]
    pub raw_query_string: Option<String>,
    #[serde(default)]
    pub headers: Option<HeaderPairs>,
    #[serde(default)]
    pub cookies: Option<Vec<String>>,
    pub request_context: RequestContext,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

#[derive(Debug, Deserialize)]
pub struct RequestContext {
    pub http: HttpContext,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpContext {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub source_ip: Option<String>,
}

/// The `headers` object as (name, value) pairs in arrival order, names lowercased as `HeaderMap`
/// would (Lambda already joins repeated headers into one comma-separated value).
#[derive(Debug, Default)]
pub struct HeaderPairs(pub Vec<(String, String)>);

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
pub struct FunctionUrlPayload(pub FunctionUrlEvent);

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

impl<'de> Deserialize<'de> for FunctionUrlPayload {
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
        Ok(FunctionUrlPayload(FunctionUrlEvent {
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
    let called_url = crate::model::request::find_header(&headers, "host")
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

/// The Function URL host written into printed events.
pub const PRINTED_EVENT_HOST: &str = "example.lambda-url.us-east-1.on.aws";

/// The URL a printed event says was called, as the route Lambda will read it.
pub fn printed_event_url(request: &InboundRequest) -> String {
    format!("https://{PRINTED_EVENT_HOST}{}", request.path)
}

/// A Function URL event for `sam local invoke -e`, with the body base64-encoded where AWS would.
pub fn function_url_event(request: &InboundRequest) -> serde_json::Value {
    let content_type = request
        .content_type()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let textual = content_type.starts_with("application/json") || content_type.starts_with("text/");
    let text_body = std::str::from_utf8(&request.body).ok().filter(|_| textual);
    let now = time::OffsetDateTime::now_utc();
    let mut headers = serde_json::Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), value.clone().into());
    }
    headers.insert("host".into(), PRINTED_EVENT_HOST.into());
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "example",
            "domainName": PRINTED_EVENT_HOST,
            "domainPrefix": "example",
            "http": {"method": request.method, "path": request.path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "hookcatch-send"},
            "requestId": uuid::Uuid::now_v7().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "body": match text_body {
            Some(text) => serde_json::Value::String(text.to_owned()),
            None => base64::engine::general_purpose::STANDARD.encode(&request.body).into(),
        },
        "isBase64Encoded": text_body.is_none(),
    })
}

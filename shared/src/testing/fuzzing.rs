//! Entry points of the fuzz targets (`fuzz/`, run with `cargo fuzz` on nightly) and of the replay
//! of their committed corpus in the test suite. Each takes arbitrary bytes and must not panic; the
//! fuzzer adds hangs and unbounded allocation to the failures.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::config::{RouteConfig, RouteSettings};
use crate::model::envelope::Envelope;
use crate::model::request::InboundRequest;
use crate::providers::{Verifier, verifier_for};
use crate::secrets::Secret;

/// The time every verification runs at, so signed inputs stay valid forever.
const NOW_MS: i64 = 1_700_000_000_000;

/// One route per provider with development secrets (the shapes the sign tests use).
pub fn example_routes() -> Vec<RouteSettings> {
    let routes: [(&str, &[&str]); 13] = [
        (
            r#""provider":"catch-raw","auth":{"kind":"api_key","query":"zapikey","header":"x-api-key"},"secrets":["x"]"#,
            &["dev-key"],
        ),
        (r#""provider":"github","secrets":["x"]"#, &["dev-gh"]),
        (r#""provider":"stripe","secrets":["x"]"#, &["whsec_dev"]),
        (r#""provider":"shopify","secrets":["x"]"#, &["dev-shop"]),
        (
            r#""provider":"standard-webhooks","secrets":["x"]"#,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        ),
        (r#""provider":"slack","secrets":["x"]"#, &["dev-slack"]),
        (r#""provider":"zoom","secrets":["x"]"#, &["dev-zoom"]),
        (
            r#""provider":"meta","secrets":["x"],"verify_tokens":["v"]"#,
            &["dev-app", "dev-verify"],
        ),
        (r#""provider":"x","secrets":["x"]"#, &["dev-consumer"]),
        (
            r#""provider":"twilio","secrets":["x"],"public_url":"https://h.test/t""#,
            &["dev-auth-token"],
        ),
        (
            r#""provider":"zoho-crm","channels":[{"id":"1","token":"t"}]"#,
            &["dev-zoho-token"],
        ),
        (
            r#""provider":"microsoft-graph","secrets":["x"]"#,
            &["dev-state"],
        ),
        (
            r#""provider":"generic","secrets":["x"],"signature":{"header":"x-sig","payload":"{timestamp}.{body}","timestamp_header":"x-ts"}"#,
            &["dev-generic"],
        ),
    ];
    routes
        .iter()
        .map(|(route, secrets)| {
            let config: RouteConfig = serde_json::from_str(&format!(r#"{{"name":"r",{route}}}"#))
                .expect("example route parses");
            config.validate().expect("example route is valid");
            RouteSettings::new(config, secrets.iter().map(|s| Secret::new(*s)).collect())
        })
        .collect()
}

fn verifiers() -> &'static [(RouteSettings, Box<dyn Verifier>)] {
    static VERIFIERS: OnceLock<Vec<(RouteSettings, Box<dyn Verifier>)>> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        example_routes()
            .into_iter()
            .map(|settings| {
                let verifier = verifier_for(&settings);
                (settings, verifier)
            })
            .collect()
    })
}

/// Input layout: byte 0 picks the provider, byte 1 the method (even: POST) and whether to sign the
/// request first (bit 1), so the fuzzer reaches the parsing behind each signature check; then
/// `headers \n\n query \n\n body`, headers as `name: value` lines.
pub fn verify(data: &[u8]) {
    let [provider, flags, rest @ ..] = data else {
        return;
    };
    let (settings, verifier) = &verifiers()[usize::from(*provider) % verifiers().len()];
    let mut parts = split(rest, b"\n\n", 3).into_iter();
    let head = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut request = InboundRequest {
        method: if flags % 2 == 0 { "POST" } else { "GET" }.to_owned(),
        path: "/".to_owned(),
        raw_query: String::from_utf8_lossy(query).into_owned(),
        headers,
        body: Bytes::copy_from_slice(body),
        source_ip: Some("203.0.113.7".to_owned()),
        called_url: Some("https://hooks.example/".to_owned()),
    };
    if flags & 2 != 0 {
        // Refusing to sign (a missing secret, a GET) is fine: the unsigned request is checked.
        let _ = crate::providers::sign::sign(settings, &mut request, NOW_MS);
    }
    if let Ok(crate::providers::Inspection::Accept(verified)) = verifier.inspect(request, NOW_MS) {
        // What ingest does next with an accepted request.
        let _ = (
            verified.delivery_id(),
            verified.is_test_ping(),
            verified.hydrator(),
        );
    }
}

/// A queue message as the consumer receives it. An envelope that decodes must survive a round trip.
pub fn envelope(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(envelope) = Envelope::from_message(&text) {
        let again =
            Envelope::from_message(&envelope.to_message()).expect("a written envelope reads");
        let written = Envelope {
            v: crate::model::envelope::SCHEMA_VERSION,
            ..envelope.clone()
        };
        assert_eq!(again, written, "round trip");
        let body = envelope_body(&envelope);
        let _ = crate::model::request::body_json(envelope.content_type(), &body);
        document_agrees(envelope.content_type(), &body);
    }
}

/// The pointer walk reads what a parsed body holds: the same value at every pointer into it.
fn document_agrees(content_type: Option<&str>, body: &[u8]) {
    use crate::model::document::{Document, MAX_LOOKUP_BYTES};
    let parsed = crate::model::request::body_json(content_type, body);
    let document = Document::of(content_type, body);
    // The walk checks syntax only, so it may read a body whose numbers a parse refuses (1e400).
    assert!(
        parsed.is_none() || document.is_some(),
        "what parses can be walked"
    );
    let (Some(parsed), Some(document)) = (parsed, document) else {
        return;
    };
    let mut pointers = vec![String::new()];
    let mut at = 0;
    while at < pointers.len() && pointers.len() < 64 {
        let pointer = pointers[at].clone();
        match parsed.pointer(&pointer) {
            Some(serde_json::Value::Object(map)) => pointers.extend(
                map.keys()
                    .map(|k| format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"))),
            ),
            Some(serde_json::Value::Array(items)) => {
                pointers.extend((0..items.len().min(4)).map(|i| format!("{pointer}/{i}")))
            }
            _ => {}
        }
        at += 1;
    }
    for pointer in pointers.iter().skip(1) {
        let expected = parsed
            .pointer(pointer)
            .filter(|v| v.to_string().len() <= MAX_LOOKUP_BYTES);
        let found = document.pointer(pointer);
        assert_eq!(found.as_ref(), expected, "{pointer}");
    }
}

fn envelope_body(envelope: &Envelope) -> Bytes {
    match &envelope.body {
        crate::model::envelope::BodyLocation::Inline(body) => body.clone(),
        crate::model::envelope::BodyLocation::External { .. } => Bytes::new(),
    }
}

/// Form and multipart bodies: the first line is the content type, the rest the body.
pub fn forms(data: &[u8]) {
    let mut parts = split(data, b"\n", 2).into_iter();
    let content_type = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = Bytes::copy_from_slice(parts.next().unwrap_or_default());
    let _ = crate::model::request::body_json(Some(&content_type), &body);
    let _ = crate::model::request::body_json(Some("application/x-www-form-urlencoded"), &body);
    document_agrees(Some(&content_type), &body);
    document_agrees(Some("application/x-www-form-urlencoded"), &body);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let _ = runtime.block_on(crate::model::multipart::summarize(
        Some(&content_type),
        &body,
    ));
}

/// Splits at most `limit - 1` times on `separator`.
fn split<'a>(data: &'a [u8], separator: &[u8], limit: usize) -> Vec<&'a [u8]> {
    let mut parts = Vec::with_capacity(limit);
    let mut rest = data;
    while parts.len() + 1 < limit {
        match memchr::memmem::find(rest, separator) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + separator.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_the_rest_in_the_last_part() {
        assert_eq!(
            split(b"a\n\nb\n\nc\n\nd", b"\n\n", 3),
            [&b"a"[..], b"b", b"c\n\nd"]
        );
        assert_eq!(split(b"abc", b"\n\n", 3), [&b"abc"[..]]);
    }

    #[test]
    fn every_provider_is_reachable_from_the_first_byte() {
        // `sign::tests` checks that each example route accepts its own signed request.
        let providers: Vec<crate::ProviderKind> =
            example_routes().iter().map(|s| s.config.provider).collect();
        for provider in crate::ProviderKind::ALL {
            assert!(
                providers.contains(&provider),
                "{provider:?} has no example route"
            );
        }
        assert_eq!(verifiers().len(), crate::ProviderKind::ALL.len());
    }

    #[test]
    fn deep_or_broken_inputs_do_not_panic() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        envelope(deep.as_bytes());
        forms(format!("application/json\n{deep}").as_bytes());
        let mut signed_deep = vec![1u8, 2];
        signed_deep.extend_from_slice(b"content-type: application/json\n\n\n\n");
        signed_deep.extend_from_slice(deep.as_bytes());
        for provider in 0..13u8 {
            signed_deep[0] = provider;
            verify(&signed_deep);
        }
        forms(
            b"multipart/form-data; boundary=X\n--X\r\nContent-Disposition: form-data\r\n\r\nv\r\n",
        );
        envelope(br#"{"v":2,"id":"i"}"#);
    }
}

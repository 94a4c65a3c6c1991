//! Twilio: `X-Twilio-Signature` = base64 HMAC-SHA1 (key: the Auth Token) over the URL Twilio
//! requested followed by every POST parameter as `key` + `value`, sorted. JSON bodies are signed
//! through a `bodySHA256` query parameter instead. The URL is the one configured in Twilio
//! (`public_url`), since the Host seen here differs behind a custom domain.

use super::kit::{SignError, first_secret, set_header};
use crate::model::rules::Rules;
use crate::model::value::ValueSource;
use std::borrow::Cow;

use base64::Engine;
use subtle::ConstantTimeEq;

use super::mac::Keys;
use super::{Inspection, Refusal, VerifiedRequest, Verifier, header, require_method};
use crate::config::{MacAlgorithm, RouteSettings};
use crate::model::request::InboundRequest;

pub struct TwilioVerifier {
    keys: Keys,
    public_url: Option<String>,
}

impl TwilioVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        TwilioVerifier {
            keys: Keys::from_secrets(&settings.secrets),
            public_url: settings.config.public_url.clone(),
        }
    }
}

/// The URL Twilio signed: the configured one, or the URL the front door vouches was called
/// (never one built from a Host header a caller chose), plus the raw query.
pub fn signed_url(public_url: Option<&str>, request: &InboundRequest) -> Option<String> {
    let base = public_url.or(request.called_url.as_deref())?;
    let query = request.raw_query.trim_start_matches('?');
    Some(if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    })
}

/// Most form parameters read before the signature is checked; Twilio's callbacks carry a few dozen.
pub const MAX_FORM_PAIRS: usize = 1000;

/// The form parameters Twilio signs, sorted by key then value; none for JSON bodies and GETs.
/// Borrowed from the body where decoding changes nothing, as in most parameters. At most one more
/// than [`MAX_FORM_PAIRS`] are read: an unauthenticated `a&a&a…` of 6 MB would otherwise hold
/// millions of pairs, 20 times its size, before the signature is checked.
pub fn signed_params(request: &InboundRequest) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    if !request.is_form() || request.method.eq_ignore_ascii_case("GET") {
        return Vec::new();
    }
    crate::model::request::sorted_form_pairs(&request.body, MAX_FORM_PAIRS + 1)
}

/// What Twilio signs: the URL, then each parameter's key and value.
fn signed_parts<'a, K, V>(url: &'a str, params: &'a [(K, V)]) -> Vec<&'a [u8]>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    std::iter::once(url.as_bytes())
        .chain(
            params
                .iter()
                .flat_map(|(k, v)| [k.as_ref().as_bytes(), v.as_ref().as_bytes()]),
        )
        .collect()
}

/// Twilio's signature of `url` and `params` (already sorted) with `key`.
pub fn twilio_signature<K, V>(key: &[u8], url: &str, params: &[(K, V)]) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mac = super::hmac(MacAlgorithm::Sha1, key, &signed_parts(url, params));
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// The URL's port variant, as Twilio's own validators also accept it: a URL with a port also
/// without it, and a URL without one also with the scheme's default port.
fn port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    Some(match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{scheme}://{host}{tail}")
        }
        _ => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{scheme}://{authority}:{port}{tail}")
        }
    })
}

impl Verifier for TwilioVerifier {
    fn inspect(&self, request: InboundRequest, _now_ms: i64) -> Result<Inspection, Refusal> {
        require_method(&request, &["POST", "GET"])?;
        let signature = header(&request, "x-twilio-signature", "signature missing")?;
        let given = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| Refusal::Unauthorized("signature malformed"))?;
        // Twilio signs no parameters of a GET (or a HEAD): a body there would be unsigned.
        if !request.body.is_empty() && !request.method.eq_ignore_ascii_case("POST") {
            return Err(Refusal::Unauthorized(
                "body on a request signed without one",
            ));
        }
        let url = signed_url(self.public_url.as_deref(), &request).ok_or(Refusal::Unauthorized(
            "the URL called is unknown: set public_url",
        ))?;
        let params = signed_params(&request);
        if params.len() > MAX_FORM_PAIRS {
            return Err(Refusal::BadRequest(
                "more form parameters than Twilio sends",
            ));
        }
        let signed = |candidate: &str| {
            self.keys
                .matching(
                    MacAlgorithm::Sha1,
                    &signed_parts(candidate, &params),
                    std::slice::from_ref(&given),
                )
                .is_some()
        };
        // The variant is tried only when the URL as written fails: which of the two the sender
        // signed is no secret, and each comparison is constant-time on its own.
        let matched = signed(&url) || port_variant(&url).is_some_and(|variant| signed(&variant));
        if !matched {
            return Err(Refusal::Unauthorized("signature mismatch"));
        }
        // A JSON body is bound to the signed URL through its hash.
        if let Some(claimed) = request.query_param("bodySHA256") {
            let actual = crate::model::request::sha256_hex(&request.body);
            if !bool::from(
                actual
                    .as_bytes()
                    .ct_eq(claimed.to_ascii_lowercase().as_bytes()),
            ) {
                return Err(Refusal::Unauthorized("bodySHA256 mismatch"));
            }
        } else if params.is_empty() && !request.body.is_empty() && !request.is_form() {
            return Err(Refusal::Unauthorized("unsigned body without bodySHA256"));
        }
        // Twilio's own id for the delivery: unsigned, so kept to find it by, never the dedup key.
        let delivery_id = request
            .header("i-twilio-idempotency-token")
            .map(str::to_owned);
        Ok(Inspection::Accept(VerifiedRequest::new(
            request,
            delivery_id,
        )))
    }
}

/// Twilio's idempotency token and the status fields of its messaging and voice callbacks.
pub(super) fn default_rules() -> Rules {
    Rules {
        // What Twilio signs is the URL (its query) and the form's decoded pairs, sorted: their
        // digests are the key (not the body's bytes, which a replayer may reorder or re-encode
        // under the same signature, nor the unsigned `I-Twilio-Idempotency-Token`).
        dedup: Some(ValueSource::parse("sha256:query + sha256:form")),
        event_type: Some(ValueSource::parse(
            "/MessageStatus | /SmsStatus | /CallStatus | /EventType",
        )),
        ..Rules::default()
    }
}

/// Twilio signs the URL it calls plus the sorted form parameters; a JSON body is bound through a
/// `bodySHA256` query parameter added to that URL first.
pub(super) fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
) -> Result<(), SignError> {
    if !request.is_form() && !request.body.is_empty() && request.query_param("bodySHA256").is_none()
    {
        let pair = format!(
            "bodySHA256={}",
            crate::model::request::sha256_hex(&request.body)
        );
        request.raw_query = if request.raw_query.is_empty() {
            pair
        } else {
            format!("{}&{pair}", request.raw_query)
        };
    }
    let url = signed_url(settings.config.public_url.as_deref(), request)
        .ok_or_else(|| SignError::NoUrl(settings.config.name.clone()))?;
    let params = signed_params(request);
    let signature = twilio_signature(first_secret(settings)?.as_bytes(), &url, &params);
    set_header(request, "x-twilio-signature", &signature);
    Ok(())
}

/// Where a Twilio route's URL goes in the console.
pub(super) const PASTE_HINT: &str = "Twilio Console → Phone Numbers → your number → Messaging / Voice → \"A message comes in\" / \"A call comes in\" webhook (or a status callback URL); the same URL as `public_url`";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::secrets::Secret;
    use bytes::Bytes;

    // twilio-python's tests/unit/test_request_validator.py.
    const TOKEN: &str = "12345";
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM_BODY: &str = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const JSON_BODY: &str = "{\"property\": \"value\", \"boolean\": true}";
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    fn verifier(public_url: &str, secrets: &[&str]) -> TwilioVerifier {
        let config: RouteConfig = serde_json::from_value(serde_json::json!({
            "name": "t", "provider": "twilio", "secrets": ["x"], "public_url": public_url
        }))
        .unwrap();
        TwilioVerifier::new(&RouteSettings::with_secrets(config, secrets))
    }

    /// A request as it arrives for `uri` (its query moves to raw_query).
    fn request(query: &str, content_type: &str, body: &str, signature: &str) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: query.into(),
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("x-twilio-signature".into(), signature.into()),
                ("host".into(), "abc.lambda-url.us-east-1.on.aws".into()),
            ],
            body: Bytes::copy_from_slice(body.as_bytes()),
            source_ip: None,
            called_url: Some("https://abc.lambda-url.us-east-1.on.aws/".into()),
        }
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    #[test]
    fn official_form_vector_and_its_port_variants() {
        let params: Vec<(String, String)> = form_urlencoded::parse(FORM_BODY.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut sorted = params.clone();
        sorted.sort();
        assert_eq!(twilio_signature(TOKEN.as_bytes(), URI, &sorted), EXPECTED);

        let v = verifier("https://mycompany.com/myapp.php", &[TOKEN]);
        assert!(
            v.inspect(request("foo=1&bar=2", FORM, FORM_BODY, EXPECTED), 0)
                .is_ok()
        );
        // The SDK's port vectors: signed with :443 added, and with :1234 configured.
        assert!(
            v.inspect(
                request(
                    "foo=1&bar=2",
                    FORM,
                    FORM_BODY,
                    "kvajT1Ptam85bY51eRf/AJRuM3w="
                ),
                0
            )
            .is_ok()
        );
        let with_port = verifier("https://mycompany.com:1234/myapp.php", &[TOKEN]);
        assert!(
            with_port
                .inspect(request("foo=1&bar=2", FORM, FORM_BODY, EXPECTED), 0)
                .is_ok()
        );
        let http = verifier("http://mycompany.com/myapp.php", &[TOKEN]);
        assert!(
            http.inspect(
                request(
                    "foo=1&bar=2",
                    FORM,
                    FORM_BODY,
                    "0ZXoZLH/DfblKGATFgpif+LLRf4="
                ),
                0
            )
            .is_ok()
        );
    }

    #[test]
    fn too_many_form_parameters_are_refused_before_the_signature_is_checked() {
        let v = verifier("https://mycompany.com/myapp.php", &[TOKEN]);
        let hostile = "a&".repeat(3_000_000);
        let refusal = v
            .inspect(request("", FORM, &hostile, EXPECTED), 0)
            .unwrap_err();
        assert!(matches!(refusal, Refusal::BadRequest(_)), "{refusal:?}");
        let at_the_cap = vec!["a=1"; MAX_FORM_PAIRS].join("&");
        let refusal = v
            .inspect(request("", FORM, &at_the_cap, EXPECTED), 0)
            .unwrap_err();
        assert!(matches!(
            refusal,
            Refusal::Unauthorized("signature mismatch")
        ));
    }

    #[test]
    fn duplicate_keys_sort_by_value() {
        // The SDK's duplicate-parameter vector: Digits=5678&Digits=1234 signs as 1234 then 5678.
        let v = verifier("https://mycompany.com/myapp.php", &[TOKEN]);
        let body = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        assert!(
            v.inspect(
                request("foo=1&bar=2", FORM, body, "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
                0
            )
            .is_ok()
        );
    }

    #[test]
    fn official_json_vector_binds_the_body_hash() {
        let v = verifier("https://mycompany.com/myapp.php", &[TOKEN]);
        let query = format!("foo=1&bar=2&bodySHA256={BODY_HASH}");
        let json = "application/json";
        assert!(
            v.inspect(
                request(&query, json, JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4="),
                0
            )
            .is_ok()
        );
        let tampered = JSON_BODY.replace("true", "fals");
        assert_eq!(
            v.inspect(
                request(&query, json, &tampered, "a9nBmqA0ju/hNViExpshrM61xv4="),
                0
            )
            .unwrap_err(),
            Refusal::Unauthorized("bodySHA256 mismatch")
        );
    }

    #[test]
    fn tamper_wrong_token_rotation_and_default_url() {
        let v = verifier("https://mycompany.com/myapp.php", &[TOKEN]);
        let changed = FORM_BODY.replace("Digits=1234", "Digits=1235");
        for bad in [
            request("foo=1&bar=2", FORM, &changed, EXPECTED),
            request("foo=1&bar=3", FORM, FORM_BODY, EXPECTED),
            request(
                "foo=1&bar=2",
                FORM,
                FORM_BODY,
                "RSOYDt4T1cUTdK1PDd93/VVr8B8",
            ),
        ] {
            assert!(v.inspect(bad, 0).is_err());
        }
        let mut missing = request("foo=1&bar=2", FORM, FORM_BODY, EXPECTED);
        missing.headers.retain(|(n, _)| n != "x-twilio-signature");
        assert!(v.inspect(missing, 0).is_err());
        assert!(
            verifier("https://mycompany.com/myapp.php", &["other"])
                .inspect(request("foo=1&bar=2", FORM, FORM_BODY, EXPECTED), 0)
                .is_err()
        );
        assert!(
            verifier("https://mycompany.com/myapp.php", &["other", TOKEN])
                .inspect(request("foo=1&bar=2", FORM, FORM_BODY, EXPECTED), 0)
                .is_ok()
        );
        // Without public_url the Function URL's own host and path are what Twilio signed.
        let config: RouteConfig =
            serde_json::from_str(r#"{"name":"t","provider":"twilio","secrets":["x"]}"#).unwrap();
        let default = TwilioVerifier::new(&RouteSettings::new(config, vec![Secret::new(TOKEN)]));
        let url = "https://abc.lambda-url.us-east-1.on.aws/";
        let mut sorted: Vec<(String, String)> = form_urlencoded::parse(FORM_BODY.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        sorted.sort();
        let signature = twilio_signature(TOKEN.as_bytes(), url, &sorted);
        assert!(
            default
                .inspect(request("", FORM, FORM_BODY, &signature), 0)
                .is_ok()
        );
        // A Host header alone names no URL: a caller could write any (signatures Twilio made for
        // another endpoint of the account would replay here).
        let mut unvouched = request("", FORM, FORM_BODY, &signature);
        unvouched.called_url = None;
        assert_eq!(
            default.inspect(unvouched, 0).unwrap_err(),
            Refusal::Unauthorized("the URL called is unknown: set public_url")
        );
    }

    #[test]
    fn a_get_is_signed_over_the_url_alone_and_carries_no_body() {
        // Python: base64(hmac.new(b"12345", URI, sha1)) = the SDK URL signed without parameters.
        const URL_ONLY: &str = "zYQTYrRWXE7LtzbG4PfP7/bkkGo=";
        let empty: [(&str, &str); 0] = [];
        assert_eq!(twilio_signature(TOKEN.as_bytes(), URI, &empty), URL_ONLY);
        let v = verifier("https://mycompany.com/myapp.php", &[TOKEN]);
        let get = |content_type: &str, body: &str| {
            let mut r = request("foo=1&bar=2", content_type, body, URL_ONLY);
            r.method = "GET".into();
            r
        };
        assert!(matches!(
            v.inspect(get(FORM, ""), 0),
            Ok(Inspection::Accept(_))
        ));
        for (content_type, body) in [
            (FORM, "MessageStatus=delivered"),
            (FORM, FORM_BODY),
            ("application/json", "{\"MessageStatus\":\"delivered\"}"),
            ("text/plain", "x"),
        ] {
            assert_eq!(
                v.inspect(get(content_type, body), 0).unwrap_err(),
                Refusal::Unauthorized("body on a request signed without one"),
                "{body}"
            );
        }
        // A JSON POST without bodySHA256 is refused as before.
        assert!(
            v.inspect(
                request("foo=1&bar=2", "application/json", "{}", URL_ONLY),
                0
            )
            .is_err()
        );
    }
}

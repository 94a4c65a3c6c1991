//! Slack (Events API, slash commands, interactivity): `v0` signature over
//! `v0:{X-Slack-Request-Timestamp}:{raw body}` within ±5 minutes. `url_verification` (JSON) and
//! `ssl_check` (form) are answered here, after the signature check, and never enqueued.

use super::kit::{SignError, TestExpect, TestRequest, first_secret, json_post, set_header};
use serde::Deserialize;

use super::mac::Keys;
use super::{
    Inspection, Refusal, TIMESTAMP_TOLERANCE_SECS, VerifiedRequest, Verifier, echo_reply, header,
    json_body, mentions, require_method, within_window,
};
use crate::config::{MacAlgorithm, RouteSettings};
use crate::model::request::{InboundRequest, Reply};
use crate::model::rules::{RecordRule, Rules};
use crate::model::value::ValueSource;

pub struct SlackVerifier {
    keys: Keys,
}

impl SlackVerifier {
    pub fn new(settings: &RouteSettings) -> Self {
        SlackVerifier {
            keys: Keys::from_secrets(&settings.secrets),
        }
    }
}

#[derive(Deserialize)]
struct Challenge {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    challenge: Option<String>,
}

impl Verifier for SlackVerifier {
    fn inspect(&self, request: InboundRequest, now_ms: i64) -> Result<Inspection, Refusal> {
        require_method(&request, &["POST"])?;
        let timestamp = header(&request, "x-slack-request-timestamp", "timestamp missing")?.trim();
        let signature = header(&request, "x-slack-signature", "signature missing")?;
        let given = signature
            .strip_prefix("v0=")
            .and_then(|h| super::mac::hex_signature(h.trim()))
            .ok_or(Refusal::Unauthorized("signature malformed"))?;
        within_window(timestamp, now_ms, TIMESTAMP_TOLERANCE_SECS)?;
        self.keys
            .matching(
                MacAlgorithm::Sha256,
                &[b"v0:", timestamp.as_bytes(), b":", &request.body],
                &[given],
            )
            .ok_or(Refusal::Unauthorized("signature mismatch"))?;

        if mentions(&request.body, "url_verification")
            && let Some(Challenge {
                kind,
                challenge: Some(challenge),
            }) = json_body::<Challenge>(&request)
            && kind == "url_verification"
        {
            return Ok(Inspection::Answer(echo_reply(&challenge)));
        }
        // Slash commands: Slack checks the certificate with a signed `ssl_check=1` form post.
        if request.is_form()
            && mentions(&request.body, "ssl_check")
            && crate::model::request::form_pairs(&request.body)
                .any(|(k, v)| k == "ssl_check" && v == "1")
        {
            return Ok(Inspection::Answer(Reply::new(200, "text/plain", "")));
        }
        // Retries (`x-slack-retry-num`) keep their `event_id`: the consumer stores one event.
        Ok(Inspection::Accept(VerifiedRequest::new(request, None)))
    }
}

/// Slack's delivery id, event type and the entities it sends whole.
pub(super) fn default_rules() -> Rules {
    Rules {
        dedup: Some(ValueSource::parse("/event_id")),
        // Events API, then slash commands, then interactivity (`payload=` JSON).
        event_type: Some(ValueSource::parse(
            "/event/type | /type | /command | /payload/type",
        )),
        records: slack_record_rules(),
    }
}

/// Slack sends whole entities: keep the latest user, channel and message as records.
/// The first rule whose `when` matches is used, so message edits and deletions come before messages.
fn slack_record_rules() -> Vec<RecordRule> {
    let source = ValueSource::parse;
    let rule = |when: &[&str], record_type: &str, id: &str, version: &str, data: &str| RecordRule {
        when: when.iter().map(|w| (*w).to_owned()).collect(),
        record_type: source(record_type),
        id: source(id),
        version: Some(source(version)),
        data: (!data.is_empty()).then(|| data.to_owned()),
        deleted: false,
    };
    vec![
        rule(
            &["user_change", "team_join"],
            "user",
            "/event/user/id",
            "/event/user/updated | /event_time",
            "/event/user",
        ),
        rule(
            &["channel_created", "channel_rename"],
            "channel",
            "/event/channel/id",
            "/event_time",
            "/event/channel",
        ),
        RecordRule {
            deleted: true,
            ..rule(
                &["channel_deleted"],
                "channel",
                "/event/channel",
                "/event_time",
                "",
            )
        },
        rule(
            &["/event/subtype=message_changed"],
            "message",
            "/event/channel + /event/message/ts",
            "/event/ts",
            "/event/message",
        ),
        RecordRule {
            deleted: true,
            ..rule(
                &["/event/subtype=message_deleted"],
                "message",
                "/event/channel + /event/deleted_ts",
                "/event/ts",
                "",
            )
        },
        rule(
            &["message"],
            "message",
            "/event/channel + /event/ts",
            "/event/ts",
            "/event",
        ),
    ]
}

/// Signs as Slack does: `v0=` HMAC of `v0:{timestamp}:{body}` with the signing secret.
pub(super) fn sign(
    settings: &RouteSettings,
    request: &mut InboundRequest,
    now_ms: i64,
) -> Result<(), SignError> {
    let now = now_ms.div_euclid(1000).to_string();
    let mac = super::hmac_sha256(
        first_secret(settings)?.as_bytes(),
        &[b"v0:", now.as_bytes(), b":", &request.body],
    );
    set_header(request, "x-slack-request-timestamp", &now);
    set_header(
        request,
        "x-slack-signature",
        &format!("v0={}", hex::encode(mac)),
    );
    Ok(())
}

/// Slack's Request URL check, `url_verification`: answered with its `challenge`.
pub(super) fn test_request(nonce: &str) -> TestRequest {
    TestRequest {
        request: json_post(
            &[],
            serde_json::json!({ "token": "hookcatch-test", "challenge": nonce, "type": "url_verification" }),
        ),
        expect: TestExpect::Answer(nonce.to_owned()),
    }
}

/// Where a Slack route's URL goes in the app's settings.
pub(super) const PASTE_HINT: &str = "api.slack.com/apps → your app → Event Subscriptions → Request URL (also Slash Commands and Interactivity → Request URL)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use bytes::Bytes;

    // Slack's published example ("Verifying requests from Slack"), also in python-slack-sdk's tests.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const NOW_MS: i64 = 1_531_420_618_000;

    fn verifier(secrets: &[&str]) -> SlackVerifier {
        let config: RouteConfig =
            serde_json::from_str(r#"{"name":"s","provider":"slack","secrets":["x"]}"#).unwrap();
        SlackVerifier::new(&RouteSettings::with_secrets(config, secrets))
    }

    fn request(timestamp: &str, signature: &str, content_type: &str, body: &str) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            raw_query: String::new(),
            headers: vec![
                ("x-slack-request-timestamp".into(), timestamp.into()),
                ("x-slack-signature".into(), signature.into()),
                ("content-type".into(), content_type.into()),
            ],
            body: Bytes::copy_from_slice(body.as_bytes()),
            source_ip: None,
            called_url: None,
        }
    }

    fn signed(secret: &str, timestamp: &str, content_type: &str, body: &str) -> InboundRequest {
        let mac = super::super::hmac_sha256(
            secret.as_bytes(),
            &[b"v0:", timestamp.as_bytes(), b":", body.as_bytes()],
        );
        request(
            timestamp,
            &format!("v0={}", hex::encode(mac)),
            content_type,
            body,
        )
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    #[test]
    fn official_vector_accepted_and_every_tamper_refused() {
        let v = verifier(&[SECRET]);
        let ok = v.inspect(request(TIMESTAMP, SIGNATURE, FORM, BODY), NOW_MS);
        assert!(matches!(ok, Ok(Inspection::Accept(_))));
        // One body byte, the timestamp, the signature.
        let mut body = BODY.to_owned();
        body.replace_range(0..1, "T");
        for tampered in [
            request(TIMESTAMP, SIGNATURE, FORM, &body),
            request("1531420619", SIGNATURE, FORM, BODY),
            request(TIMESTAMP, &SIGNATURE.replace("b503", "b504"), FORM, BODY),
            request(TIMESTAMP, "a2114d57", FORM, BODY),
        ] {
            assert!(matches!(
                v.inspect(tampered, NOW_MS + 1000),
                Err(Refusal::Unauthorized(_))
            ));
        }
        // Stale and future beyond five minutes; just inside is fine.
        let stale = v.inspect(request(TIMESTAMP, SIGNATURE, FORM, BODY), NOW_MS + 301_000);
        assert_eq!(
            stale.unwrap_err(),
            Refusal::Unauthorized("timestamp too old")
        );
        let future = v.inspect(request(TIMESTAMP, SIGNATURE, FORM, BODY), NOW_MS - 301_000);
        assert_eq!(
            future.unwrap_err(),
            Refusal::Unauthorized("timestamp in the future")
        );
        assert!(
            v.inspect(request(TIMESTAMP, SIGNATURE, FORM, BODY), NOW_MS + 300_000)
                .is_ok()
        );
    }

    #[test]
    fn rotation_wrong_secret_missing_headers_and_methods() {
        let rotated = verifier(&["new-secret", SECRET]);
        assert!(
            rotated
                .inspect(request(TIMESTAMP, SIGNATURE, FORM, BODY), NOW_MS)
                .is_ok()
        );
        let wrong = verifier(&["new-secret"]);
        assert_eq!(
            wrong
                .inspect(request(TIMESTAMP, SIGNATURE, FORM, BODY), NOW_MS)
                .unwrap_err(),
            Refusal::Unauthorized("signature mismatch")
        );
        let mut missing = request(TIMESTAMP, SIGNATURE, FORM, BODY);
        missing.headers.retain(|(n, _)| n != "x-slack-signature");
        assert!(verifier(&[SECRET]).inspect(missing, NOW_MS).is_err());
        let mut get = request(TIMESTAMP, SIGNATURE, FORM, BODY);
        get.method = "GET".into();
        assert!(matches!(
            verifier(&[SECRET]).inspect(get, NOW_MS),
            Err(Refusal::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn url_verification_answered_with_the_challenge_only_when_signed() {
        let v = verifier(&[SECRET]);
        // The body from Slack's url_verification docs.
        let body = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let Ok(Inspection::Answer(reply)) =
            v.inspect(signed(SECRET, TIMESTAMP, "application/json", body), NOW_MS)
        else {
            panic!("url_verification is answered")
        };
        assert_eq!(reply.status, 200);
        assert_eq!(
            &reply.body[..],
            b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        );
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        let forged = v.inspect(signed("other", TIMESTAMP, "application/json", body), NOW_MS);
        assert!(forged.is_err(), "an unsigned challenge gets nothing back");
    }

    #[test]
    fn events_rate_limits_ssl_checks_and_empty_pings() {
        let v = verifier(&[SECRET]);
        let event = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"team_join"}}"#;
        assert!(matches!(
            v.inspect(signed(SECRET, TIMESTAMP, "application/json", event), NOW_MS),
            Ok(Inspection::Accept(_))
        ));
        let limited = r#"{"token":"t","type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}"#;
        assert!(matches!(
            v.inspect(
                signed(SECRET, TIMESTAMP, "application/json", limited),
                NOW_MS
            ),
            Ok(Inspection::Accept(_))
        ));
        let Ok(Inspection::Answer(reply)) = v.inspect(
            signed(SECRET, TIMESTAMP, FORM, "ssl_check=1&token=t"),
            NOW_MS,
        ) else {
            panic!("ssl_check is answered")
        };
        assert_eq!(reply.status, 200);
        let Ok(Inspection::Accept(ping)) =
            v.inspect(signed(SECRET, TIMESTAMP, "application/json", ""), NOW_MS)
        else {
            panic!("an empty signed body is a test ping")
        };
        assert!(ping.is_test_ping());
        let not_json = v.inspect(
            signed(SECRET, TIMESTAMP, "application/json", "{nope"),
            NOW_MS,
        );
        assert!(matches!(not_json, Ok(Inspection::Accept(_))));
    }
}

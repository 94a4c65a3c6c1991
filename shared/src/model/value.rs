//! Values pulled out of a request by configuration: dedup ids, event types, record keys, versions.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::model::document::Document;

/// Where a value comes from. Written as text: `/json/pointer`, `header:name`, `query:name`,
/// `sha256:body` or `sha256:query` (the hex SHA-256 of the exact bytes: a key no unsigned header can
/// change), `sha256:form` (of a form body's decoded pairs, sorted and joined as Twilio signs them,
/// so that a reordered or re-encoded copy has the same key; of the bytes for any other body), or
/// anything else as a literal (`order`). Two operators, always written with spaces around them:
/// `a | b` takes the first alternative that has a value, and `a + b` joins parts with `:` (a
/// composite key; it has a value only when every part has one). `|` binds looser than `+`.
#[derive(Clone, PartialEq, Eq)]
pub enum ValueSource {
    Pointer(String),
    Header(String),
    Query(String),
    /// The SHA-256 of the body's bytes (`sha256:body`), of the raw query (`sha256:query`) or of
    /// a form body's sorted decoded pairs (`sha256:form`).
    Digest(Digested),
    Literal(String),
    FirstOf(Vec<ValueSource>),
    Joined(Vec<ValueSource>),
}

/// What a [`ValueSource::Digest`] hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digested {
    Body,
    Query,
    /// Since envelope v6.
    Form,
}

const FIRST_OF: &str = " | ";
const JOINED: &str = " + ";

impl ValueSource {
    pub fn parse(text: &str) -> Self {
        if text.contains(FIRST_OF) {
            return ValueSource::FirstOf(text.split(FIRST_OF).map(Self::parse).collect());
        }
        if text.contains(JOINED) {
            return ValueSource::Joined(text.split(JOINED).map(Self::parse_one).collect());
        }
        Self::parse_one(text)
    }

    fn parse_one(text: &str) -> Self {
        let text = text.trim();
        if text.starts_with('/') {
            ValueSource::Pointer(text.to_owned())
        } else if let Some(name) = text.strip_prefix("header:") {
            ValueSource::Header(name.to_ascii_lowercase())
        } else if let Some(name) = text.strip_prefix("query:") {
            ValueSource::Query(name.to_owned())
        } else if text == "sha256:body" {
            ValueSource::Digest(Digested::Body)
        } else if text == "sha256:query" {
            ValueSource::Digest(Digested::Query)
        } else if text == "sha256:form" {
            ValueSource::Digest(Digested::Form)
        } else {
            ValueSource::Literal(text.to_owned())
        }
    }

    fn text(&self) -> String {
        let join = |parts: &[ValueSource], op: &str| {
            parts.iter().map(Self::text).collect::<Vec<_>>().join(op)
        };
        match self {
            ValueSource::Pointer(p) => p.clone(),
            ValueSource::Header(h) => format!("header:{h}"),
            ValueSource::Query(q) => format!("query:{q}"),
            ValueSource::Digest(Digested::Body) => "sha256:body".to_owned(),
            ValueSource::Digest(Digested::Query) => "sha256:query".to_owned(),
            ValueSource::Digest(Digested::Form) => "sha256:form".to_owned(),
            ValueSource::Literal(l) => l.clone(),
            ValueSource::FirstOf(parts) => join(parts, FIRST_OF),
            ValueSource::Joined(parts) => join(parts, JOINED),
        }
    }

    /// The value as JSON (pointers keep their type, so numeric versions compare as numbers).
    pub fn lookup(&self, source: &Source<'_>) -> Option<Value> {
        match self {
            ValueSource::Pointer(p) => source.json?.pointer(p).filter(|v| !v.is_null()),
            ValueSource::Header(name) => crate::model::request::find_header(source.headers, name)
                .map(|v| Value::String(v.to_owned())),
            ValueSource::Query(name) => form_urlencoded::parse(source.raw_query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| Value::String(v.into_owned())),
            ValueSource::Digest(Digested::Body) => Some(Value::String(match source.body_sha256 {
                Some(digest) => digest.to_owned(),
                None => crate::model::request::sha256_hex(source.body),
            })),
            ValueSource::Digest(Digested::Query) => Some(Value::String(
                crate::model::request::sha256_hex(source.raw_query.as_bytes()),
            )),
            ValueSource::Digest(Digested::Form) => {
                let is_form = crate::model::request::find_header(source.headers, "content-type")
                    .is_some_and(crate::model::request::is_form_type);
                if !is_form {
                    return ValueSource::Digest(Digested::Body).lookup(source);
                }
                let mut signed = sha2::Sha256::default();
                for (key, value) in
                    &crate::model::request::sorted_form_pairs(source.body, usize::MAX)
                {
                    sha2::Digest::update(&mut signed, key.as_bytes());
                    sha2::Digest::update(&mut signed, value.as_bytes());
                }
                Some(Value::String(hex::encode(sha2::Digest::finalize(signed))))
            }
            ValueSource::Literal(l) => Some(Value::String(l.clone())),
            ValueSource::FirstOf(parts) => parts.iter().find_map(|p| p.lookup(source)),
            ValueSource::Joined(parts) => parts
                .iter()
                .map(|p| p.lookup_text(source))
                .collect::<Option<Vec<_>>>()
                .map(|texts| Value::String(texts.join(":"))),
        }
    }

    /// The value as text, for keys: strings as they are, other JSON as its compact text.
    pub fn lookup_text(&self, source: &Source<'_>) -> Option<String> {
        self.lookup(source).and_then(|v| match v {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }
}

impl fmt::Debug for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for ValueSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for ValueSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(ValueSource::parse(&text))
    }
}

/// What values are looked up in.
pub struct Source<'a> {
    pub headers: &'a [(String, String)],
    pub raw_query: &'a str,
    /// The exact bytes, for digests.
    pub body: &'a [u8],
    /// The body's hex SHA-256 when the caller has it already (the consumer stores it anyway).
    pub body_sha256: Option<&'a str>,
    pub json: Option<Document<'a>>,
}

/// A record version, normalised so that comparisons mean "newer": numbers and RFC 3339 times
/// (as epoch milliseconds, sub-millisecond digits kept as decimals) compare numerically and
/// exactly; anything else compares as text.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordVersion {
    /// Decimal text, as DynamoDB's N type stores it exactly.
    Number(String),
    Text(String),
}

impl RecordVersion {
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => Some(RecordVersion::Number(n.to_string())),
            Value::String(s) => Some(Self::from_text(s)),
            _ => None,
        }
    }

    pub fn from_text(text: &str) -> Self {
        let trimmed = text.trim();
        let numeric = !trimmed.is_empty()
            && trimmed.parse::<f64>().is_ok_and(f64::is_finite)
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        if numeric {
            return RecordVersion::Number(trimmed.to_owned());
        }
        match time::OffsetDateTime::parse(trimmed, &time::format_description::well_known::Rfc3339) {
            Ok(t) => RecordVersion::Number(epoch_ms_text(t.unix_timestamp_nanos())),
            Err(_) => RecordVersion::Text(text.to_owned()),
        }
    }

    /// How `self` orders against `stored`; `None` when the kinds differ (a number and a text).
    /// Numbers compare as exact decimals: no rounding through floating point, at any size.
    pub fn compare(&self, stored: &RecordVersion) -> Option<std::cmp::Ordering> {
        match (self, stored) {
            (RecordVersion::Number(a), RecordVersion::Number(b)) => {
                Some(Decimal::parse(a)?.cmp(&Decimal::parse(b)?))
            }
            (RecordVersion::Text(a), RecordVersion::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// `Some(true)` when `self` is at least as new as `stored`; `None` when the kinds differ.
    pub fn not_older_than(&self, stored: &RecordVersion) -> Option<bool> {
        self.compare(stored).map(std::cmp::Ordering::is_ge)
    }
}

/// Epoch milliseconds as exact decimal text: `1718080200000`, or `1718080200000.0001` when the
/// time has sub-millisecond digits.
fn epoch_ms_text(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let (ms, rest) = (
        nanos.unsigned_abs() / 1_000_000,
        nanos.unsigned_abs() % 1_000_000,
    );
    if rest == 0 {
        format!("{sign}{ms}")
    } else {
        let fraction = format!("{rest:06}");
        format!("{sign}{ms}.{}", fraction.trim_end_matches('0'))
    }
}

/// A decimal number (`-12.50`, `1e20`) reduced to sign, significant digits and exponent, so that two
/// spellings of one value are equal and any two values order exactly.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    /// Significant digits without leading or trailing zeros; empty for zero.
    digits: Vec<u8>,
    /// The value is `0.{digits} × 10^exponent`.
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && fraction.is_empty()
            || !int
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut exponent = int.len() as i64 + i64::from(exponent);
        let all = int.bytes().chain(fraction.bytes()).map(|b| b - b'0');
        let mut digits: Vec<u8> = all
            .skip_while(|d| {
                let leading = *d == 0;
                exponent -= i64::from(leading);
                leading
            })
            .collect();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let zero = digits.is_empty();
        Some(Decimal {
            negative: negative && !zero,
            digits,
            exponent: if zero { 0 } else { exponent },
        })
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let magnitude = |d: &Decimal| (!d.digits.is_empty(), d.exponent);
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (negative, _) => {
                let by_magnitude = magnitude(self)
                    .cmp(&magnitude(other))
                    .then_with(|| self.digits.cmp(&other.digits));
                if negative {
                    by_magnitude.reverse()
                } else {
                    by_magnitude
                }
            }
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cmp::Ordering;

    #[test]
    fn a_form_digest_is_what_twilio_signs_not_the_bytes() {
        let form = vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let digest = |headers: &[(String, String)], body: &[u8]| {
            ValueSource::parse("sha256:form").lookup_text(&Source {
                headers,
                raw_query: "",
                body,
                body_sha256: None,
                json: None,
            })
        };
        let sent = digest(&form, b"CallSid=CA123&CallStatus=completed&From=%2B1555");
        assert!(sent.is_some());
        for same in [
            &b"From=%2B1555&CallStatus=completed&CallSid=CA123"[..],
            b"CallSid=CA%31%323&CallStatus=completed&From=%2B1555",
            b"&CallSid=CA123&&CallStatus=completed&From=%2B1555&",
        ] {
            assert_eq!(
                digest(&form, same),
                sent,
                "{}",
                String::from_utf8_lossy(same)
            );
        }
        assert_ne!(
            digest(&form, b"CallSid=CA123&CallStatus=failed&From=%2B1555"),
            sent
        );
        // Any other body: its bytes, as `sha256:body`.
        let json = vec![("content-type".to_owned(), "application/json".to_owned())];
        assert_eq!(
            digest(&json, b"{}"),
            Some(crate::model::request::sha256_hex(b"{}"))
        );
    }

    #[test]
    fn sources_parse_and_look_up() {
        let headers = vec![("x-delivery".to_owned(), "d-1".to_owned())];
        let body = json!({"order": {"id": 42, "updated": "2024-06-11T10:00:00+05:30"}});
        let source = Source {
            headers: &headers,
            raw_query: "a=1&b=x%20y",
            body: b"{}",
            body_sha256: None,
            json: Some(Document::Value(&body)),
        };
        assert_eq!(
            ValueSource::parse("header:X-Delivery")
                .lookup_text(&source)
                .as_deref(),
            Some("d-1")
        );
        assert_eq!(
            ValueSource::parse("query:b")
                .lookup_text(&source)
                .as_deref(),
            Some("x y")
        );
        assert_eq!(
            ValueSource::parse("/order/id")
                .lookup_text(&source)
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            ValueSource::parse("order").lookup_text(&source).as_deref(),
            Some("order")
        );
        assert_eq!(ValueSource::parse("/missing").lookup_text(&source), None);
        let first = ValueSource::parse("/missing | /order/id + header:x-delivery");
        assert_eq!(first.lookup_text(&source).as_deref(), Some("42:d-1"));
        assert_eq!(
            ValueSource::parse("/order/id + /missing").lookup_text(&source),
            None,
            "a composite key needs every part"
        );
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            "\"/missing | /order/id + header:x-delivery\""
        );
        let digest = ValueSource::parse("sha256:query + sha256:body");
        let expected = format!(
            "{}:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            crate::model::request::sha256_hex(b"a=1&b=x%20y")
        );
        assert_eq!(digest.lookup_text(&source), Some(expected));
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            "\"sha256:query + sha256:body\""
        );
        let round: ValueSource = serde_json::from_str("\"header:x-a\"").unwrap();
        assert_eq!(serde_json::to_string(&round).unwrap(), "\"header:x-a\"");
    }

    #[test]
    fn versions_compare_by_meaning() {
        let later = RecordVersion::from_text("2024-06-11T10:00:00+05:30");
        let earlier = RecordVersion::from_text("2024-06-11T05:00:00Z");
        // 10:00+05:30 is 04:30Z, so it is the *earlier* instant although its text sorts later.
        assert_eq!(later.not_older_than(&earlier), Some(false));
        assert_eq!(earlier.not_older_than(&later), Some(true));
        let nine = RecordVersion::from_json(&json!(9)).unwrap();
        let ten = RecordVersion::from_text("10");
        assert_eq!(nine.not_older_than(&ten), Some(false));
        assert_eq!(ten.not_older_than(&ten), Some(true));
        let text = RecordVersion::from_text("v2-beta");
        assert_eq!(text, RecordVersion::Text("v2-beta".into()));
        assert_eq!(text.not_older_than(&ten), None);
    }

    #[test]
    fn numbers_compare_exactly_at_any_size_and_precision() {
        let n = |t: &str| RecordVersion::Number(t.into());
        // Equal as f64 (2^53 + 1 rounds to 2^53), different as decimals, as DynamoDB compares them.
        assert_eq!(
            n("9007199254740993").compare(&n("9007199254740992")),
            Some(Ordering::Greater)
        );
        assert_eq!(n("12.50").compare(&n("12.5")), Some(Ordering::Equal));
        assert_eq!(n("1e3").compare(&n("999.999")), Some(Ordering::Greater));
        assert_eq!(n("-2").compare(&n("-10")), Some(Ordering::Greater));
        assert_eq!(n("-0").compare(&n("0.000")), Some(Ordering::Equal));
        assert_eq!(n("0.001").compare(&n("0")), Some(Ordering::Greater));
        assert_eq!(n("-0.001").compare(&n("0")), Some(Ordering::Less));
        assert_eq!(
            n("100").compare(&n("99.9999999999999999999")),
            Some(Ordering::Greater)
        );
        assert_eq!(n("0012").compare(&n("12")), Some(Ordering::Equal));
        // Sub-millisecond digits of RFC 3339 times are kept, not truncated.
        let earlier = RecordVersion::from_text("2024-06-11T10:00:00.0001001Z");
        let later = RecordVersion::from_text("2024-06-11T10:00:00.0001002Z");
        assert_eq!(later, n("1718100000000.1002"));
        assert_eq!(later.compare(&earlier), Some(Ordering::Greater));
        assert_eq!(
            RecordVersion::from_text("2024-06-11T10:00:00.123Z"),
            n("1718100000123")
        );
        assert_eq!(
            RecordVersion::from_text("1969-12-31T23:59:59.9999995Z"),
            n("-0.0005")
        );
    }
}

//! A body read by JSON pointer without building it in memory. A `serde_json::Value` of a hostile
//! 6 MB body (`[0,0,0,…]`) takes over 100 MB; a pointer walk over the bytes allocates only what it
//! returns. Lookups (keys, types, versions) are materialised up to [`MAX_LOOKUP_BYTES`], record data
//! up to a caller's cap.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::request::{form_object, form_pairs};

/// Largest value a lookup returns (a dedup key, a type, a version); a larger one counts as absent.
pub const MAX_LOOKUP_BYTES: usize = 64 * 1024;

/// What JSON pointers read: a JSON body, a form body (an object of its fields, its JSON `payload`
/// field as JSON), or a value already in memory (a hydrator's API answer).
#[derive(Clone, Copy)]
pub enum Document<'a> {
    Json(&'a RawValue),
    Form(&'a [u8]),
    Value(&'a Value),
}

/// A value found in a document, not yet built.
pub enum Found<'a> {
    Raw(Cow<'a, str>),
    Value(&'a Value),
}

impl Found<'_> {
    /// Its JSON text's length, known before anything is built.
    pub fn len(&self) -> usize {
        match self {
            Found::Raw(text) => text.len(),
            Found::Value(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_value(self) -> Option<Value> {
        match self {
            Found::Raw(text) => serde_json::from_str(&text).ok(),
            Found::Value(value) => Some(value.clone()),
        }
    }
}

/// A JSON array read up to `N` elements: a longer one is an error before the rest is built.
#[derive(Debug)]
pub struct AtMost<T, const N: usize>(pub Vec<T>);

impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for AtMost<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Elements<T, const N: usize>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>, const N: usize> Visitor<'de> for Elements<T, N> {
            type Value = AtMost<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {N} elements")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut elements = Vec::new();
                while let Some(element) = seq.next_element()? {
                    if elements.len() == N {
                        return Err(serde::de::Error::invalid_length(N + 1, &self));
                    }
                    elements.push(element);
                }
                Ok(AtMost(elements))
            }
        }
        deserializer.deserialize_seq(Elements(std::marker::PhantomData))
    }
}

impl<T, const N: usize> Default for AtMost<T, N> {
    fn default() -> Self {
        AtMost(Vec::new())
    }
}

/// Too large to build: the JSON text's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl<'a> Document<'a> {
    /// JSON bodies (by content type, or a first byte of `{` or `[`) and form bodies; `None` for
    /// anything else, or JSON that does not parse. Checks the syntax once, building nothing.
    pub fn of(content_type: Option<&str>, body: &'a [u8]) -> Option<Self> {
        let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
        if content_type.starts_with("application/x-www-form-urlencoded") {
            return Some(Document::Form(body));
        }
        let looks_json = content_type.contains("json")
            || matches!(
                body.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            );
        if !looks_json {
            return None;
        }
        serde_json::from_slice::<&RawValue>(body)
            .ok()
            .map(Document::Json)
    }

    /// The value at `pointer` (RFC 6901), if it exists and is at most [`MAX_LOOKUP_BYTES`] long.
    pub fn pointer(&self, pointer: &str) -> Option<Value> {
        self.find(pointer)
            .filter(|found| found.len() <= MAX_LOOKUP_BYTES)
            .and_then(Found::into_value)
    }

    /// The value at `pointer` (the whole document for `None`), built when its text is at most
    /// `max_bytes` long.
    pub fn data(&self, pointer: Option<&str>, max_bytes: usize) -> Result<Option<Value>, TooLarge> {
        if let (Document::Form(body), None) = (self, pointer) {
            return if body.len() <= max_bytes {
                Ok(Some(form_object(body)))
            } else {
                Err(TooLarge(body.len()))
            };
        }
        let found = match pointer {
            Some(pointer) => self.find(pointer),
            None => self.whole(),
        };
        match found {
            Some(found) if found.len() > max_bytes => Err(TooLarge(found.len())),
            Some(found) => Ok(found.into_value()),
            None => Ok(None),
        }
    }

    fn whole(&self) -> Option<Found<'a>> {
        match self {
            Document::Json(raw) => Some(Found::Raw(Cow::Borrowed(raw.get()))),
            Document::Value(value) => Some(Found::Value(value)),
            Document::Form(_) => None, // built by `data`, field by field
        }
    }

    /// Where `pointer` leads, walking the text without building what it passes.
    pub fn find(&self, pointer: &str) -> Option<Found<'a>> {
        match self {
            Document::Value(value) => value.pointer(pointer).map(Found::Value),
            Document::Json(raw) => walk(raw.get(), pointer).map(|t| Found::Raw(Cow::Borrowed(t))),
            Document::Form(body) => {
                let rest = pointer.strip_prefix('/')?;
                let (name, rest) = match rest.split_once('/') {
                    Some((name, rest)) => (name, Some(rest)),
                    None => (rest, None),
                };
                let name = unescape(name);
                let (_, field) = form_pairs(body).find(|(k, _)| *k == *name)?;
                let payload = || {
                    let payload = serde_json::from_str::<&RawValue>(&field).ok()?;
                    payload
                        .get()
                        .starts_with('{')
                        .then(|| payload.get().to_owned())
                };
                match rest {
                    None if name == "payload"
                        && let Some(object) = payload() =>
                    {
                        Some(Found::Raw(Cow::Owned(object)))
                    }
                    None => Some(Found::Raw(Cow::Owned(serde_json::to_string(&*field).ok()?))),
                    // Only the JSON `payload` field (GitHub's form mode, Slack's interactivity) has
                    // fields of its own, as an object.
                    Some(rest) if name == "payload" => {
                        let object = payload()?;
                        let inner = walk(&object, &format!("/{rest}"))?;
                        Some(Found::Raw(Cow::Owned(inner.to_owned())))
                    }
                    Some(_) => None,
                }
            }
        }
    }
}

impl fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Document::Json(raw) => write!(f, "Json({} bytes)", raw.get().len()),
            Document::Form(body) => write!(f, "Form({} bytes)", body.len()),
            Document::Value(_) => f.write_str("Value"),
        }
    }
}

fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// The JSON text at `pointer` inside valid JSON `text`, one level at a time.
fn walk<'a>(text: &'a str, pointer: &str) -> Option<&'a str> {
    if pointer.is_empty() {
        return Some(text);
    }
    let mut current = text;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = unescape(token);
        let mut deserializer = serde_json::Deserializer::from_str(current);
        current = deserializer
            .deserialize_any(Child { token: &token })
            .ok()??
            .get();
    }
    Some(current)
}

/// Finds one member (or element) of an object (or array), skipping the others unbuilt. Like
/// `Value::pointer`: of repeated names the last wins, and indices are plain decimal.
struct Child<'t> {
    token: &'t str,
}

impl<'de> Visitor<'de> for Child<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.token {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let plain =
            !self.token.starts_with('+') && (self.token == "0" || !self.token.starts_with('0'));
        let index = plain.then(|| self.token.parse::<usize>().ok()).flatten();
        let mut found = None;
        let mut at = 0usize;
        loop {
            if Some(at) == index {
                match seq.next_element::<&'de RawValue>()? {
                    Some(element) => found = Some(element),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every pointer into a sample answers as `Value::pointer` does on the parsed document.
    #[test]
    fn pointers_agree_with_value_pointer() {
        let text = r#"{"a":{"b":[10,{"c":"x\"y"},null],"b~/":1,"":2},"a":{"b":[11,{"c":"last"}]},"n":1.5e3,"s":"é\u0041","arr":[[1],[2,[3]]]}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let document = Document::of(Some("application/json"), text.as_bytes()).unwrap();
        for pointer in [
            "",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/9",
            "/a/b/01",
            "/a/b/+1",
            "/a/b/-",
            "/a/b~0~1",
            "/a/",
            "/n",
            "/s",
            "/arr/1/1/0",
            "/arr/x",
            "/missing",
            "/n/x",
            "/s/0",
        ] {
            assert_eq!(
                document.pointer(pointer),
                value.pointer(pointer).cloned(),
                "{pointer}"
            );
        }
        assert!(Document::of(Some("application/json"), b"{\"a\":").is_none());
        assert!(Document::of(Some("text/plain"), b"hello").is_none());
    }

    #[test]
    fn form_fields_and_their_json_payload_read_by_pointer() {
        let body = b"a=1&a=2&payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D&empty=";
        let document = Document::of(Some("application/x-www-form-urlencoded"), body).unwrap();
        assert_eq!(
            document.pointer("/a"),
            Some(json!("1")),
            "the first of a name"
        );
        assert_eq!(
            document.pointer("/payload/type"),
            Some(json!("block_actions"))
        );
        assert_eq!(document.pointer("/payload/user/id"), Some(json!("U1")));
        assert_eq!(document.pointer("/a/0"), None);
        assert_eq!(document.pointer("/empty"), Some(json!("")));
        let whole = document.data(None, 1024).unwrap().unwrap();
        assert_eq!(whole["payload"]["user"]["id"], "U1");
        assert_eq!(whole["a"], "1");
        assert_eq!(document.pointer("/payload"), Some(whole["payload"].clone()));
    }

    #[test]
    fn arrays_read_up_to_their_bound() {
        let three: AtMost<u8, 3> = serde_json::from_str("[1,2,3]").unwrap();
        assert_eq!(three.0, [1, 2, 3]);
        let error = serde_json::from_str::<AtMost<u8, 3>>("[1,2,3,4]").unwrap_err();
        assert!(error.to_string().contains("at most 3"), "{error}");
    }

    #[test]
    fn large_values_are_not_built() {
        let big = format!(r#"{{"id":"k","items":[{}0]}}"#, "0,".repeat(100_000));
        let document = Document::of(None, big.as_bytes()).unwrap();
        assert_eq!(document.pointer("/id"), Some(json!("k")));
        assert_eq!(document.pointer("/items"), None, "over the lookup cap");
        assert_eq!(document.pointer("/items/99999"), Some(json!(0)));
        assert_eq!(document.data(Some("/items"), 1000), Err(TooLarge(200_003)));
        assert_eq!(document.data(None, 1000), Err(TooLarge(big.len())));
        assert_eq!(document.data(Some("/id"), 1000), Ok(Some(json!("k"))));
        assert_eq!(document.data(Some("/none"), 1000), Ok(None));
    }
}

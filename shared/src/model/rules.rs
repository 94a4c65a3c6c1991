//! The per-event rules a route's envelopes carry to the consumer: where the dedup key, event type
//! and records come from. They are part of the queue's wire format (`envelope::SCHEMA_VERSION`):
//! a change here is a change to every queued message. `config` reuses them for what users write.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::document::Document;
use crate::model::value::ValueSource;

/// Where a record's type, id and version come from, so a full-record provider needs config, not code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRule {
    /// When the rule applies: event types (`channel_*` matches a prefix) or `/pointer=value` tests;
    /// any one matching is enough. Empty: always. A route's first matching rule is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
    /// A literal type name, or a source such as `/object` or `header:x-topic`.
    #[serde(rename = "type")]
    pub record_type: ValueSource,
    pub id: ValueSource,
    /// Newer-wins ordering; without it, the later received event wins.
    #[serde(default)]
    pub version: Option<ValueSource>,
    /// JSON pointer to the record's data inside the body; default: the whole body.
    #[serde(default)]
    pub data: Option<String>,
    /// The event removes the record: a tombstone (deleted flag, no data) is written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl RecordRule {
    /// Whether this rule applies to an event of `event_type` with body `json`.
    pub fn applies(&self, event_type: Option<&str>, json: Option<Document<'_>>) -> bool {
        self.when.is_empty() || any_condition_holds(&self.when, event_type, json)
    }
}

/// Whether any of `conditions` holds: an event type (`prefix*` matches a prefix) or a
/// `/pointer=value` test on `json`. No conditions: false.
pub fn any_condition_holds(
    conditions: &[String],
    event_type: Option<&str>,
    json: Option<Document<'_>>,
) -> bool {
    conditions
        .iter()
        .any(|condition| match condition.split_once('=') {
            Some((pointer, expected)) if pointer.starts_with('/') => json
                .and_then(|j| j.pointer(pointer))
                .is_some_and(|v| v.as_str() == Some(expected)),
            _ => event_type.is_some_and(|t| match condition.strip_suffix('*') {
                Some(prefix) => t.starts_with(prefix),
                None => t == condition,
            }),
        })
}

/// The per-event processing rules the consumer applies. They travel inside the envelope, so the
/// consumer needs no copy of every route's configuration and a config change applies per event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<ValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<ValueSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordRule>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.dedup.is_none() && self.event_type.is_none() && self.records.is_empty()
    }
}

/// A route's rules as its envelopes carry them: one copy shared by every envelope, with its JSON
/// written once. Slack's record rules alone are longer than a small event, and cloning and
/// serializing them per request was a third of that route's ingest time.
#[derive(Clone, Default)]
pub struct SharedRules(Arc<RenderedRules>);

#[derive(Default)]
struct RenderedRules {
    rules: Rules,
    /// Filled when first written: at once by the ingest side, never by a consumer that only reads.
    json: OnceLock<Box<RawValue>>,
}

impl SharedRules {
    /// Rules that will be written many times: their JSON is rendered now, off the request path.
    pub fn rendered(rules: Rules) -> Self {
        let shared = SharedRules::from(rules);
        shared.json();
        shared
    }

    /// The length of the rules' JSON, for sizing a message before writing it.
    pub fn json_len(&self) -> usize {
        self.json().get().len()
    }

    fn json(&self) -> &RawValue {
        self.0.json.get_or_init(|| {
            serde_json::value::to_raw_value(&self.0.rules).expect("rules always serialize")
        })
    }
}

impl From<Rules> for SharedRules {
    fn from(rules: Rules) -> Self {
        SharedRules(Arc::new(RenderedRules {
            rules,
            json: OnceLock::new(),
        }))
    }
}

impl std::ops::Deref for SharedRules {
    type Target = Rules;
    fn deref(&self) -> &Rules {
        &self.0.rules
    }
}

impl PartialEq for SharedRules {
    fn eq(&self, other: &Self) -> bool {
        self.0.rules == other.0.rules
    }
}

impl std::fmt::Debug for SharedRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.rules.fmt(f)
    }
}

impl Serialize for SharedRules {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedRules {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Rules::deserialize(deserializer).map(SharedRules::from)
    }
}

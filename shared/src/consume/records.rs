//! The record a rule makes of an event: its type, id and version from the rule's pointers, its data
//! from the event's document, bounded by what DynamoDB can hold.

use serde_json::Value;

use crate::config::RecordRule;
use crate::model::envelope::Envelope;
use crate::model::value::{RecordVersion, Source};
use crate::ports::RecordItem;

/// Largest record data written (its JSON text): DynamoDB refuses items over 400 KB, and a record
/// carries its keys beside the data. A larger record is skipped with a warning; its event is kept.
pub const MAX_RECORD_DATA_BYTES: usize = 350 * 1024;

/// The record a rule makes of an event, or why it makes none.
pub(super) fn record_from_rule(
    rule: &RecordRule,
    envelope: &Envelope,
    source: &Source<'_>,
) -> Result<RecordItem, &'static str> {
    let record_type = rule
        .record_type
        .lookup_text(source)
        .ok_or("the record rule found no type")?;
    let record_id = rule
        .id
        .lookup_text(source)
        .ok_or("the record rule found no id")?;
    // A rule that names a version never falls back to the receive time: epoch milliseconds would
    // outrank every later version in seconds or a counter, and freeze the record.
    let version = match &rule.version {
        None => RecordVersion::Number(envelope.received_at_ms.to_string()),
        Some(pointer) => pointer
            .lookup(source)
            .and_then(|v| RecordVersion::from_json(&v))
            .ok_or("the record rule's version is missing or not a number or text")?,
    };
    let data = match source.json {
        _ if rule.deleted => None,
        None => None,
        Some(document) => document
            .data(rule.data.as_deref(), MAX_RECORD_DATA_BYTES)
            .map_err(
                |_| "the record's data is over 350 KB (DynamoDB's item limit); see the event",
            )?,
    }
    .unwrap_or(Value::Null);
    Ok(RecordItem {
        route: envelope.route.clone(),
        record_type,
        record_id,
        version,
        data,
        deleted: rule.deleted,
        event_id: envelope.id.clone(),
        updated_at_ms: envelope.received_at_ms,
    })
}

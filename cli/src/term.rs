//! Floor 0: text for a terminal: stored strings made inert, JSON escaped the same way, times.

use serde_json::Value;

/// A character a terminal may act on rather than print: C0 and C1 controls, DEL, and the bidi
/// overrides that reorder what is shown.
pub fn is_terminal_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Stored text for a table cell: controls shown as `\u{1b}`, so stored bytes cannot move the
/// cursor, retitle the window or write the clipboard.
pub fn terminal_safe(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if is_terminal_control(c) {
            safe.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            safe.push(c);
        }
    }
    safe
}

/// JSON for a terminal or a pipe: serde_json escapes C0 controls; DEL, C1 and bidi controls are
/// escaped here too (`\u009b`), which only ever occur inside strings, so the JSON means the same.
pub fn json_text(value: &Value, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    if !text.chars().any(is_terminal_control) {
        return text;
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // Pretty output's newlines are outside strings (serde_json escapes those inside): keep them.
        if is_terminal_control(c) && c != '\n' {
            safe.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            safe.push(c);
        }
    }
    safe
}

/// A time in milliseconds as RFC 3339 (UTC), or the number when it is out of range.
pub fn time_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Parses a time flag (`what` names it in errors): an RFC 3339 time, or a duration back from now
/// such as `90s`, `15m`, `2h`, `7d`.
pub fn parse_time(what: &str, text: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().map_err(|_| {
        format!("{what} `{text}`: use an RFC 3339 time or a duration like 15m, 2h, 7d")
    })?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{what} `{text}`: the unit must be s, m, h or d")),
    };
    Ok(now_ms - amount * unit_ms)
}

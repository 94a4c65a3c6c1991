//! Request templates of configured hydrators: `/v1/things/{id}?expand={/kind}`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::value::{Source, ValueSource};

/// Encoded in a path segment: everything but RFC 3986's unreserved characters and the
/// sub-delimiters, `:` and `@` that a segment may hold (Graph's `Users('x')`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');
/// The same, keeping `/`: for a value that is itself a path.
const PATH: &AsciiSet = &SEGMENT.remove(b'/');

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    RecordId,
    EventType,
    /// A source looked up in the item; `keep_slashes` for `{/pointer*}`.
    Value {
        source: ValueSource,
        keep_slashes: bool,
    },
}

/// A parsed template. Parsing fails on an unclosed brace or an unknown placeholder, at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Part>);

/// What placeholders are filled from.
pub struct Fill<'a> {
    pub record_id: &'a str,
    pub event_type: Option<&'a str>,
    pub item: Source<'a>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
            let name = after[..close].trim();
            parts.push(match name {
                "id" => Part::RecordId,
                "type" => Part::EventType,
                _ if name.starts_with('/') => match name.strip_suffix('*') {
                    Some(pointer) => Part::Value {
                        source: ValueSource::parse(pointer),
                        keep_slashes: true,
                    },
                    None => Part::Value {
                        source: ValueSource::parse(name),
                        keep_slashes: false,
                    },
                },
                _ if name.starts_with("header:") || name.starts_with("query:") => Part::Value {
                    source: ValueSource::parse(name),
                    keep_slashes: false,
                },
                _ => {
                    return Err(format!(
                        "unknown placeholder `{{{name}}}` in `{text}`: use {{id}}, {{type}}, {{/pointer}}, {{/pointer*}}, {{header:name}} or {{query:name}}"
                    ));
                }
            });
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unopened `}}` in `{text}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    /// The text with every placeholder filled and percent-encoded for a path (`encode`) or raw
    /// (a query value, which the URL serializer encodes). `Err` names a placeholder without a value,
    /// or a value that would climb out of the path (`..`).
    pub fn render(&self, fill: &Fill<'_>, encode: bool) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            let (value, keep_slashes) = match part {
                Part::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Part::RecordId => (Some(fill.record_id.to_owned()), false),
                Part::EventType => (fill.event_type.map(str::to_owned), false),
                Part::Value {
                    source,
                    keep_slashes,
                } => (source.lookup_text(&fill.item), *keep_slashes),
            };
            let value = value.ok_or_else(|| format!("no value for a placeholder ({part:?})"))?;
            // `.` and `..` stay as they are when encoded, and a URL parser resolves them: a value
            // must never climb out of its place. (`%2e` is safe: `%` itself is encoded.)
            if encode && !keep_slashes && (value == "." || value == "..") {
                return Err(format!("`{value}` is not a plain path segment"));
            }
            if !encode {
                out.push_str(&value);
            } else if keep_slashes {
                if value
                    .split('/')
                    .any(|segment| segment == ".." || segment == ".")
                {
                    return Err(format!("`{value}` is not a plain resource path"));
                }
                out.extend(utf8_percent_encode(value.trim_start_matches('/'), PATH));
            } else {
                out.extend(utf8_percent_encode(&value, SEGMENT));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill<'a>(item: &'a serde_json::Value, headers: &'a [(String, String)]) -> Fill<'a> {
        Fill {
            record_id: "evt 1/2",
            event_type: Some("v2.core.account.updated"),
            item: Source {
                headers,
                raw_query: "shop=a%20b",
                body: b"",
                body_sha256: None,
                json: Some(crate::model::document::Document::Value(item)),
            },
        }
    }

    #[test]
    fn placeholders_fill_and_encode_per_segment() {
        let item = json!({"resource": "Users/ab-1/Messages/AAMk=", "kind": "a/b"});
        let headers = vec![("x-shop".to_owned(), "s1".to_owned())];
        let fill = fill(&item, &headers);
        let t =
            Template::parse("/v2/{id}/{/kind}/{/resource*}/{header:x-shop}/{query:shop}/{type}")
                .unwrap();
        assert_eq!(
            t.render(&fill, true).unwrap(),
            "/v2/evt%201%2F2/a%2Fb/Users/ab-1/Messages/AAMk=/s1/a%20b/v2.core.account.updated"
        );
        assert_eq!(
            Template::parse("{/kind}")
                .unwrap()
                .render(&fill, false)
                .unwrap(),
            "a/b"
        );
    }

    #[test]
    fn a_path_value_cannot_climb_out_and_missing_values_are_named() {
        let item = json!({"resource": "Users/../admin"});
        let fill = fill(&item, &[]);
        let error = Template::parse("/{/resource*}")
            .unwrap()
            .render(&fill, true);
        assert!(error.unwrap_err().contains("not a plain resource path"));
        let missing = Template::parse("/{/nothing}").unwrap().render(&fill, true);
        assert!(missing.unwrap_err().contains("/nothing"));
    }

    #[test]
    fn bad_templates_are_refused_at_parse() {
        assert!(Template::parse("/x/{id").is_err());
        assert!(Template::parse("/x/id}").is_err());
        assert!(
            Template::parse("/x/{module}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert_eq!(
            Template::parse("/plain").unwrap(),
            Template(vec![Part::Text("/plain".into())])
        );
    }
}

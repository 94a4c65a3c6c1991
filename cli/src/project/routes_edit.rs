//! `hookcatch routes add|edit|rm`: a route's settings page from the command line. They edit
//! `hookcatch.toml` in place (comments and layout kept, by `toml_edit`) and refuse a change after
//! which the file would not load.

use std::path::{Path, PathBuf};

use hookcatch::RouteSettings;
use hookcatch::secrets::SecretRef;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

use crate::project::config::{ConfigFile, ConfigFileError};
use crate::project::files::{FileError, toml_problem, write_replacing};

#[derive(Debug, thiserror::Error)]
pub enum RouteEditError {
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn usage(message: impl Into<String>) -> RouteEditError {
    RouteEditError::Usage(message.into())
}

/// One route key from the command line: `--event-type /event` is `event_type = "/event"`.
#[derive(Debug, Clone)]
pub struct RouteKey {
    pub name: String,
    pub value: Value,
}

/// What follows a route's name once a route key begins (clap leaves it as written): route keys, and
/// any of the command's own flags given after them.
#[derive(Debug, Default)]
pub struct Trailing {
    pub keys: Vec<RouteKey>,
    pub config: Option<PathBuf>,
    pub secret: Option<String>,
    pub provider: Option<String>,
    pub unset: Vec<String>,
}

/// Reads `--key value` (or `--key=value`) pairs. A value is TOML when it parses as TOML (`true`,
/// `5`, `["a", "b"]`, `{ kind = "basic" }`), else a string, so `/order/id` needs no quotes.
pub fn parse_trailing(args: &[String]) -> Result<Trailing, RouteEditError> {
    let mut trailing = Trailing::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let Some(name) = flag.strip_prefix("--").filter(|n| !n.is_empty()) else {
            return Err(usage(format!(
                "expected a route key such as `--dedup /id`, found `{flag}`"
            )));
        };
        let (name, text) = match name.split_once('=') {
            Some((name, text)) => (name, text.to_owned()),
            None => (
                name,
                args.next()
                    .cloned()
                    .ok_or_else(|| usage(format!("`--{name}` needs a value")))?,
            ),
        };
        let name = name.replace('-', "_");
        match name.as_str() {
            "config" => trailing.config = Some(PathBuf::from(text)),
            "secret" => trailing.secret = Some(text),
            "provider" => trailing.provider = Some(text),
            "unset" => trailing.unset.push(text),
            "name" => {
                return Err(usage(
                    "a route's name is the argument after `add`/`edit`, not a key",
                ));
            }
            _ => trailing.keys.push(RouteKey {
                name,
                value: text
                    .parse::<Value>()
                    .unwrap_or_else(|_| Value::from(text.as_str())),
            }),
        }
    }
    Ok(trailing)
}

/// `routes add`: appends a `[[routes]]` table.
pub fn add(
    path: &Path,
    name: &str,
    provider: &str,
    secret: Option<&str>,
    keys: &[RouteKey],
) -> Result<ConfigFile, RouteEditError> {
    edit_file(path, name, |routes| {
        if position(routes, name).is_some() {
            return Err(usage(format!(
                "route `{name}` exists; change it with `hookcatch routes edit {name} …`"
            )));
        }
        let mut table = Table::new();
        table.insert("name", toml_edit::value(name));
        table.insert("provider", toml_edit::value(provider));
        if let Some(secret) = secret {
            table.insert("secrets", toml_edit::value(Array::from_iter([secret])));
        }
        for key in keys {
            table.insert(&key.name, Item::Value(key.value.clone()));
        }
        routes.push(table);
        Ok(())
    })
}

/// `routes edit`: sets (or with `unset`, removes) keys of an existing route; `secret` replaces
/// its `secrets`.
pub fn edit(
    path: &Path,
    name: &str,
    secret: Option<&str>,
    keys: &[RouteKey],
    unset: &[String],
) -> Result<ConfigFile, RouteEditError> {
    if secret.is_none() && keys.is_empty() && unset.is_empty() {
        return Err(usage(
            "nothing to change: give route keys (`--dedup /id`), --secret or --unset KEY",
        ));
    }
    edit_file(path, name, |routes| {
        let at = position(routes, name).ok_or_else(|| no_route(name, path))?;
        let table = routes.get_mut(at).expect("position is in range");
        for key in unset {
            let key = key.replace('-', "_");
            if matches!(key.as_str(), "name" | "provider") {
                return Err(usage(format!("`{key}` cannot be unset")));
            }
            if table.remove(&key).is_none() {
                return Err(usage(format!("route `{name}` has no `{key}` to unset")));
            }
        }
        if let Some(secret) = secret {
            set_keeping_decor(table, "secrets", Value::from(Array::from_iter([secret])));
        }
        for key in keys {
            if key.name == "name" {
                return Err(usage(
                    "a route's name cannot change (add a new route instead)",
                ));
            }
            set_keeping_decor(table, &key.name, key.value.clone());
        }
        Ok(())
    })
}

/// `routes rm`: removes the route's table (and the comment lines just above it).
pub fn remove(path: &Path, name: &str) -> Result<ConfigFile, RouteEditError> {
    edit_file(path, name, |routes| {
        let at = position(routes, name).ok_or_else(|| no_route(name, path))?;
        // A file without routes does not load.
        if routes.len() == 1 {
            return Err(usage(format!(
                "`{name}` is the only route; serve needs at least one"
            )));
        }
        routes.remove(at);
        Ok(())
    })
}

/// Sets a key, keeping the comment after an existing value.
fn set_keeping_decor(table: &mut Table, key: &str, mut value: Value) {
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *value.decor_mut() = old.decor().clone();
    }
    table.insert(key, Item::Value(value));
}

fn no_route(name: &str, path: &Path) -> RouteEditError {
    usage(format!(
        "no route `{name}` in {} (`hookcatch routes list` shows them)",
        path.display()
    ))
}

fn position(routes: &ArrayOfTables, name: &str) -> Option<usize> {
    routes
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

/// Applies `change` to the file's `[[routes]]`, validates the whole result as `serve` would load
/// it, and only then replaces the file (write beside it, then rename: never half a file).
fn edit_file(
    path: &Path,
    route: &str,
    change: impl FnOnce(&mut ArrayOfTables) -> Result<(), RouteEditError>,
) -> Result<ConfigFile, RouteEditError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| {
        ConfigFileError::from(FileError::Read {
            path: shown.clone(),
            source,
        })
    })?;
    let mut document: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        ConfigFileError::from(FileError::Parse {
            path: shown.clone(),
            message: toml_problem(&text, e.message(), e.span()),
        })
    })?;
    let routes = document
        .entry("routes")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| {
            usage(format!(
                "{shown}: `routes` is not a list of [[routes]] tables"
            ))
        })?;
    change(routes)?;
    let edited = document.to_string();
    let config = ConfigFile::parse(&edited, &shown)?;
    if let Some(settings) = config.route(route) {
        check_literal_secrets(settings).map_err(|message| ConfigFileError::Invalid {
            path: shown.clone(),
            message,
        })?;
    }
    write_replacing(path, &edited, false).map_err(|source| RouteEditError::Write {
        path: shown,
        source,
    })?;
    Ok(config)
}

/// A route whose secrets are all written out can be checked fully now (a Standard Webhooks
/// secret must be base64, no secret may be blank); references are checked when `serve` resolves
/// them.
fn check_literal_secrets(route: &hookcatch::config::RouteConfig) -> Result<(), String> {
    let refs = route.secret_refs();
    if refs.iter().any(|r| !matches!(r, SecretRef::Literal(_))) {
        return Ok(());
    }
    let values = refs
        .into_iter()
        .map(|r| match r {
            SecretRef::Literal(value) => hookcatch::secrets::Secret::new(value),
            _ => unreachable!("only literals reach here"),
        })
        .collect();
    hookcatch::providers::check_secrets(&RouteSettings::new(route.clone(), values))
        .map_err(|e| e.to_string())
}
#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# my hooks
[serve]
addr = "127.0.0.1:3000" # where serve listens

# Anything, exactly as sent.
[[routes]]
name = "catch-raw"
provider = "catch-raw"
open = true # anyone may post

# GitHub, signed.
[[routes]]
name = "github"
provider = "github"
secrets = ["dev-only-github-secret"]
"#;

    fn file() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hookcatch-routes-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookcatch.toml");
        std::fs::write(&path, FILE).unwrap();
        path
    }

    fn trailing(args: &[&str]) -> Result<Trailing, RouteEditError> {
        parse_trailing(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    fn keys(args: &[&str]) -> Vec<RouteKey> {
        trailing(args).unwrap().keys
    }

    #[test]
    fn keys_read_toml_values_and_bare_strings() {
        let keys = keys(&[
            "--dedup",
            "/id",
            "--open=true",
            "--max-body-bytes",
            "1000",
            "--records",
            r#"[{ type = "order", id = "/order/id" }]"#,
        ]);
        assert_eq!(keys[0].name, "dedup");
        assert_eq!(keys[0].value.as_str(), Some("/id"));
        assert_eq!(keys[1].value.as_bool(), Some(true));
        assert_eq!(keys[2].name, "max_body_bytes");
        assert_eq!(keys[2].value.as_integer(), Some(1000));
        assert!(keys[3].value.is_array());
        let missing = trailing(&["--dedup"]).unwrap_err();
        assert!(missing.to_string().contains("needs a value"), "{missing}");
        let stray = trailing(&["dedup"]).unwrap_err();
        assert!(stray.to_string().contains("--dedup /id"), "{stray}");
        // The command's own flags may follow the keys.
        let mixed = trailing(&[
            "--open",
            "true",
            "--config",
            "x.toml",
            "--secret",
            "env:S",
            "--unset",
            "dedup",
            "--provider",
            "github",
        ])
        .unwrap();
        assert_eq!(mixed.keys.len(), 1);
        assert_eq!(mixed.config, Some(PathBuf::from("x.toml")));
        assert_eq!(mixed.secret.as_deref(), Some("env:S"));
        assert_eq!(mixed.unset, ["dedup"]);
        assert_eq!(mixed.provider.as_deref(), Some("github"));
    }

    #[test]
    fn add_edit_and_remove_keep_comments_and_layout() {
        let path = file();
        let config = add(
            &path,
            "orders",
            "catch-raw",
            Some("dev-only-orders-key"),
            &keys(&[
                "--auth",
                r#"{ kind = "api_key", header = "x-api-key" }"#,
                "--dedup",
                "/id",
            ]),
        )
        .unwrap();
        assert!(config.route("orders").unwrap().dedup.is_some());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(FILE),
            "the existing text is untouched:\n{text}"
        );
        assert!(text.contains("name = \"orders\""), "{text}");

        edit(&path, "catch-raw", None, &keys(&["--open", "true"]), &[]).unwrap();
        edit(&path, "github", Some("env:GITHUB_SECRET"), &[], &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("open = true # anyone may post"), "{text}");
        assert!(
            text.contains(r#"secrets = ["env:GITHUB_SECRET"]"#),
            "{text}"
        );
        assert!(text.contains("# GitHub, signed."), "{text}");

        let config = remove(&path, "orders").unwrap();
        assert!(config.route("orders").is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# my hooks") && text.contains("# where serve listens"));
    }

    #[test]
    fn a_change_that_would_not_load_is_refused_and_nothing_is_written() {
        let path = file();
        let refuse = |result: Result<ConfigFile, RouteEditError>, says: &str| {
            let error = result.unwrap_err().to_string();
            assert!(error.contains(says), "`{error}` should say `{says}`");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE);
        };
        refuse(add(&path, "gh2", "github", None, &[]), "signing secret");
        refuse(add(&path, "github", "github", Some("s"), &[]), "exists");
        refuse(
            add(
                &path,
                "Bad Name",
                "catch-raw",
                None,
                &keys(&["--open", "true"]),
            ),
            "name",
        );
        refuse(add(&path, "x", "nope", None, &[]), "nope");
        refuse(
            add(&path, "x", "catch-raw", None, &keys(&["--opne", "true"])),
            "opne",
        );
        refuse(
            add(&path, "sw", "standard-webhooks", Some("not base64!"), &[]),
            "base64",
        );
        refuse(
            edit(&path, "missing", None, &keys(&["--open", "true"]), &[]),
            "no route",
        );
        refuse(
            edit(&path, "catch-raw", None, &[], &["open".into()]),
            "open = true",
        );
        refuse(edit(&path, "github", None, &[], &[]), "nothing to change");
        refuse(remove(&path, "nope"), "no route");
        remove(&path, "github").unwrap();
        let only = remove(&path, "catch-raw").unwrap_err().to_string();
        assert!(only.contains("only route"), "{only}");
    }
}

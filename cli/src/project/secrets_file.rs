//! The local secrets file (`hookcatch.secrets.toml` beside `hookcatch.toml`, mode 0600): what a
//! route's `local:NAME` references read. `hookcatch secrets set` writes it, so that a rotation is
//! "add the new secret, update the provider, replace the old".
//!
//! ```toml
//! [routes.github]
//! signing = ["newest", "older"]   # newest first: `send` and `routes test` sign with it
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Table};

use crate::project::files::{FileError, toml_problem, write_replacing};
use crate::project::rotation::{SetMode, next_values};

/// The file's name, beside the configuration file.
pub const FILE_NAME: &str = "hookcatch.secrets.toml";

const HEADER: &str = "# hookcatch secrets, written by `hookcatch secrets set`: referenced from hookcatch.toml as\n\
# `local:NAME`. Keep this file private (it is created readable by you only) and out of version control.\n";

#[derive(Debug, thiserror::Error)]
pub enum SecretsFileError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// Every route's named secrets, each newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSecrets {
    #[serde(default)]
    routes: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl LocalSecrets {
    /// The secrets file beside `config`.
    pub fn path_beside(config: &Path) -> PathBuf {
        config
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(FILE_NAME)
    }

    /// Reads the file; a missing file holds no secrets.
    pub fn load(path: &Path) -> Result<LocalSecrets, SecretsFileError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(FileError::Read {
                    path: shown,
                    source,
                }
                .into());
            }
        };
        toml::from_str(&text).map_err(|e| {
            SecretsFileError::from(FileError::Parse {
                path: shown,
                message: toml_problem(&text, e.message(), e.span()),
            })
        })
    }

    /// The values of `route`'s secret `name`, newest first.
    pub fn values(&self, route: &str, name: &str) -> Option<&[String]> {
        self.routes
            .get(route)
            .and_then(|r| r.get(name))
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }
}

/// Writes `route`'s secret `name` (comments and other entries kept) and returns how many values
/// it now has. The file is created readable by its owner only.
pub fn set(
    path: &Path,
    route: &str,
    name: &str,
    value: &str,
    mode: SetMode,
) -> Result<usize, SecretsFileError> {
    let shown = path.display().to_string();
    let (text, new_file) = match std::fs::read_to_string(path) {
        Ok(text) => (text, false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
        Err(source) => {
            return Err(FileError::Read {
                path: shown,
                source,
            }
            .into());
        }
    };
    let mut document: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| FileError::Parse {
                path: shown.clone(),
                message: toml_problem(&text, e.message(), e.span()),
            })?;
    let routes = implicit_table(document.as_table_mut(), "routes", &shown)?;
    let secrets = implicit_table(routes, route, &shown)?;
    let values: Vec<String> = secrets
        .get(name)
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let values = next_values(values, value, mode, route, name)
        .map_err(|refused| SecretsFileError::Refused(refused.0))?;
    let count = values.len();
    secrets.insert(name, toml_edit::value(Array::from_iter(values)));
    // A new file starts with what it is; an existing one keeps its comments where they are.
    let text = if new_file {
        format!("{HEADER}\n{document}")
    } else {
        document.to_string()
    };
    write_private(path, &text).map_err(|source| SecretsFileError::Write {
        path: shown,
        source,
    })?;
    Ok(count)
}

fn implicit_table<'a>(
    parent: &'a mut Table,
    key: &str,
    shown: &str,
) -> Result<&'a mut Table, SecretsFileError> {
    let item = parent.entry(key).or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    item.as_table_mut().ok_or_else(|| {
        SecretsFileError::from(FileError::Parse {
            path: shown.to_owned(),
            message: format!("`{key}` is not a table"),
        })
    })
}

/// Replaces the file atomically, readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    write_replacing(path, text, true)?;
    // An existing file written before it was private is narrowed too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hookcatch-secrets-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(FILE_NAME)
    }

    #[test]
    fn a_rotation_adds_then_replaces_and_the_file_stays_private() {
        let path = path();
        assert_eq!(LocalSecrets::load(&path).unwrap(), LocalSecrets::default());
        assert_eq!(
            set(&path, "github", "signing", "old", SetMode::New).unwrap(),
            1
        );
        let again = set(&path, "github", "signing", "new", SetMode::New).unwrap_err();
        assert!(again.to_string().contains("--add"), "{again}");
        assert_eq!(
            set(&path, "github", "signing", "new", SetMode::Add).unwrap(),
            2
        );
        set(&path, "stripe", "signing", "whsec_x", SetMode::New).unwrap();
        let loaded = LocalSecrets::load(&path).unwrap();
        assert_eq!(loaded.values("github", "signing").unwrap(), ["new", "old"]);
        assert_eq!(loaded.values("stripe", "signing").unwrap(), ["whsec_x"]);
        assert!(loaded.values("github", "other").is_none());
        assert_eq!(
            set(&path, "github", "signing", "new", SetMode::Replace).unwrap(),
            1
        );
        let loaded = LocalSecrets::load(&path).unwrap();
        assert_eq!(loaded.values("github", "signing").unwrap(), ["new"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let blank = set(&path, "github", "signing", "  ", SetMode::Replace).unwrap_err();
        assert!(blank.to_string().contains("blank"));
    }
}

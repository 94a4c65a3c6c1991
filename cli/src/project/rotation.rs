//! How a secret's values change when one is set, the same rule for the local secrets file and for
//! SSM: newest first, `--add` keeps the old beside the new.

/// How `secrets set` treats a secret that already has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    /// Only a secret that has no value yet.
    New,
    /// Put the new value first and keep the others (both accepted during a rotation).
    Add,
    /// The new value alone.
    Replace,
}

/// A value `secrets set` will not write, and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A secret's values after a `secrets set` (here or in SSM), newest first: `--add` keeps the old
/// beside the new (a rotation), `--replace` drops them, neither refuses to overwrite.
pub fn next_values(
    mut values: Vec<String>,
    value: &str,
    mode: SetMode,
    route: &str,
    name: &str,
) -> Result<Vec<String>, Refused> {
    if value.trim().is_empty() || value.contains(['\n', '\r']) {
        return Err(Refused(
            "the secret is empty, blank or more than one line".into(),
        ));
    }
    match mode {
        SetMode::New if !values.is_empty() => {
            return Err(Refused(format!(
                "route `{route}` already has a `{name}` secret: --add keeps it beside the new one \
                 (a rotation), --replace drops it"
            )));
        }
        SetMode::Add => {
            values.retain(|v| v != value);
            values.insert(0, value.to_owned());
        }
        SetMode::New | SetMode::Replace => values = vec![value.to_owned()],
    }
    Ok(values)
}

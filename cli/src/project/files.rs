//! Writing the user's files: atomically, keeping their permissions.

use std::path::Path;

/// Why one of the user's files could not be read: unreadable, or not what it must hold.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Parse { path: String, message: String },
}

/// A TOML error as anyone may read it (a log line, a console page): where it is and what is wrong,
/// never the offending line nor a quoted value, either of which can be a secret.
pub fn toml_problem(text: &str, message: &str, span: Option<std::ops::Range<usize>>) -> String {
    let mut said = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.trim().chars() {
        match (c, quoted) {
            ('"', false) => {
                said.push_str("\"…");
                quoted = true;
            }
            ('"', true) => {
                said.push('"');
                quoted = false;
            }
            (_, true) => {}
            (c, false) => said.push(c),
        }
    }
    match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
            format!("line {line}, column {column}: {said}")
        }
        None => said,
    }
}

/// Replaces `path` by `text` atomically (write beside it, then rename), keeping the file's
/// permissions; a `private` file is written readable by its owner only from its first byte.
pub fn write_replacing(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        match std::fs::metadata(path) {
            Ok(metadata) if !private => file.set_permissions(metadata.permissions()),
            _ => Ok(()),
        }
    });
    written
        .and_then(|()| std::fs::rename(&temporary, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
}

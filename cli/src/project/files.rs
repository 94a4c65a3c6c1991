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

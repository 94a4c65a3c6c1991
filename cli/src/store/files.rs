//! The data directory on disk: readable by its owner only (it holds bodies, tokens and credentials
//! a route chose to keep), and owned by one `serve` at a time.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Creates `dir` (and missing parents) as 0700; an existing directory is left as the user made it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)
}

/// Creates the database file as 0600 before SQLite does (SQLite gives its `-wal` and `-shm` files
/// the database's mode), and narrows files an older hookcatch created under the default umask.
pub(super) fn make_private(db: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    options.mode(0o600);
    drop(options.open(db)?);
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

/// The token kept in `file`: read when it holds one of at least `min_chars` printable characters,
/// else `make`'s, written 0600 from its first byte (the data directory's lock keeps two `serve`s
/// from racing here).
pub fn kept_token(
    file: &Path,
    make: impl FnOnce() -> String,
    min_chars: usize,
) -> Result<String, String> {
    let failed =
        |e: std::io::Error| format!("cannot keep the console's token in {}: {e}", file.display());
    match std::fs::read_to_string(file) {
        Ok(kept) => {
            let kept = kept.trim();
            if kept.len() >= min_chars && kept.bytes().all(|b| b.is_ascii_alphanumeric()) {
                #[cfg(unix)]
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                    .map_err(failed)?;
                return Ok(kept.to_owned());
            }
            std::fs::remove_file(file).map_err(failed)?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(failed(error)),
    }
    if let Some(dir) = file.parent() {
        create_private_dir(dir).map_err(failed)?;
    }
    let token = make();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut out = options.open(file).map_err(failed)?;
    writeln!(out, "{token}").map_err(failed)?;
    Ok(token)
}

/// Held by `serve` for as long as it runs: one process recovers the leases and drains the queue of
/// a data directory. Released when dropped, or when the process dies (an advisory `flock`).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes `dir/lock`, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, String> {
        create_private_dir(dir)
            .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
        let path = dir.join("lock");
        let failed = |e: std::io::Error| format!("cannot lock {}: {e}", path.display());
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&path).map_err(failed)?;
        // A command asking whether a `serve` runs holds a shared lock for an instant
        // (`RunningServe::find`): a moment later the directory is free again.
        let mut taken = file.try_lock();
        for _ in 0..3 {
            if !matches!(taken, Err(std::fs::TryLockError::WouldBlock)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            taken = file.try_lock();
        }
        match taken {
            Ok(()) => {
                file.set_len(0).map_err(failed)?;
                file.rewind().map_err(failed)?;
                write!(file, "{}", std::process::id()).map_err(failed)?;
                Ok(DataDirLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                };
                Err(format!(
                    "the data directory {} is in use by another `hookcatch serve`{by}: stop it, or \
                     give this one its own `--data` directory",
                    dir.display()
                ))
            }
            Err(std::fs::TryLockError::Error(error)) => Err(failed(error)),
        }
    }
}

/// Where a running `serve` listens, kept beside its lock (`running.json`), so that `routes test`,
/// `routes list` and `send` reach the addresses it was started with (`--addr`), not the
/// configuration's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunningServe {
    pub hooks: std::net::SocketAddr,
    #[serde(default)]
    pub console: Option<std::net::SocketAddr>,
}

impl RunningServe {
    const FILE: &'static str = "running.json";

    /// Written by `serve`, which holds the directory's lock.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(dir.join(Self::FILE))?;
        file.write_all(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The addresses of the `serve` that holds `dir`'s lock now; none when no `serve` does.
    pub fn find(dir: &Path) -> Option<RunningServe> {
        let lock = File::open(dir.join("lock")).ok()?;
        match lock.try_lock_shared() {
            // Nobody holds it: whatever `running.json` says is a past run's.
            Ok(()) => None,
            Err(std::fs::TryLockError::WouldBlock) => {
                serde_json::from_slice(&std::fs::read(dir.join(Self::FILE)).ok()?).ok()
            }
            Err(std::fs::TryLockError::Error(_)) => None,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("the file exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = std::env::temp_dir().join(format!("hookcatch-lock-{}", uuid::Uuid::now_v7()));
        let first = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("lock")), 0o600);
        let refused = DataDirLock::acquire(&dir).unwrap_err();
        assert!(
            refused.contains("in use by another `hookcatch serve`")
                && refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        DataDirLock::acquire(&dir).expect("free again once the holder is gone");
    }
}

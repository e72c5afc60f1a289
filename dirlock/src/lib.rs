//! One writer per output directory.
//!
//! A run that writes into a directory (a benchmark's `--out`, the workflow engine's results)
//! takes [`DirLock::acquire`] first; a second run on the same directory is refused with an
//! error that names the holder (pid, host, since when). The lock is `flock(2)` on
//! `DIR/.lock`, held by an open descriptor: the kernel drops it when the holder dies, however
//! it dies (SIGKILL included), so a lock left by a dead process is simply taken over — there is
//! no stale lock to detect and no `--unlock` to run. The file itself stays (it only records
//! who holds or last held the lock).
//!
//! Why by hand: the crates that wrap `flock` (`fs2`, `fd-lock`) give the lock but not the
//! holder's identity in the refusal, which is what a user needs to decide what to do; the
//! system call itself is one line.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the locked directory.
pub const LOCK_FILE: &str = ".lock";

/// Why a directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds it; `holder` is what it recorded (pid, host, start).
    Held {
        /// The locked directory.
        dir: PathBuf,
        /// What the holder recorded (pid, host, since when).
        holder: String,
    },
    /// The lock file could not be created, read or written.
    Io {
        /// The lock file (`DIR/.lock`).
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { dir, holder } => write!(
                f,
                "{} is in use by another run ({holder}); wait for it to finish or choose \
                 another directory",
                dir.display()
            ),
            LockError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// An exclusive lock on a directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
}

impl DirLock {
    /// Locks `dir` (created if missing) for this process, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock(2) on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(e));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "holder unknown".to_string(),
                h => h.to_string(),
            };
            return Err(LockError::Held {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        // Ours now (whoever held it before is gone): say who we are.
        let me = format!(
            "pid {} on {}, since {} s after the epoch",
            std::process::id(),
            hostname(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(DirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

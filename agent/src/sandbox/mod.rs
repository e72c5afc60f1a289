//! Running untrusted stage binaries.
//!
//! A compiled stage runs as a child process with, on Linux:
//! * a scrubbed environment (only `PATH`, `HOME`/`TMPDIR` = its output dir, `LANG`,
//!   `RAYON_NUM_THREADS=1`, `MALLOC_ARENA_MAX=2`): no API keys;
//! * its own PID, network and mount namespaces when the kernel allows (root, or unprivileged
//!   user namespaces): no network interface but a down loopback, a `/proc` that shows only its
//!   own processes, and every process it starts dies with it;
//! * in that mount namespace, every mount read-only except its output directory (which also
//!   covers what Landlock does not: chmod, chown, utimes);
//! * Landlock (kernel ≥ 5.13): read-only access to the system directories and its run
//!   directory, write access only beneath its output directory; TCP bind/connect denied
//!   when there is no network namespace (ABI ≥ 4); no signals or abstract sockets to
//!   processes outside (ABI ≥ 6); no ptrace or `/proc/PID/environ` of processes outside;
//! * seccomp (x86_64, aarch64): no sockets of any family — named Unix sockets (a desktop
//!   bus, docker.sock, ssh-agent) are beyond namespaces and Landlock — and no new namespaces,
//!   mounts, ptrace, BPF, io_uring, keyrings or modules; `NO_NEW_PRIVS` always;
//! * rlimits: address space, processes (run as uid `nobody` when started by root, since root
//!   ignores `RLIMIT_NPROC`), file size, open files, CPU time, no core dumps;
//! * a wall-clock timeout and a cap on the output directory's total size, after which the
//!   whole process group (and namespace) is killed; and every process of the run dies if the
//!   agent does.
//!
//! Fallbacks, reported in [`Isolation`] (set `HEP_SANDBOX_NO_NAMESPACES` to force the first,
//! as `agent/tests/sandbox_fallback.rs` does): without namespaces, sockets are still refused
//! by seccomp and TCP by Landlock, files are guarded by Landlock alone (not chmod/utimes),
//! the host's processes are visible in `/proc` (but not their memory or environment), and
//! stray processes are stopped by the process-group kill and PDEATHSIG only; without
//! Landlock, only file permissions protect the host's files (`cargo xtask agent` then
//! refuses to run model code unless told otherwise). Elsewhere than Linux the sandbox refuses
//! to run anything.
//!
//! [`classify`] names what went wrong from the exit status and the process's stderr: the
//! blocking is done by the kernel; the class is how the outcome is reported.

#[cfg(target_os = "linux")]
mod landlock;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod seccomp;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Resource limits of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock seconds before the run is killed.
    pub wall_s: f64,
    /// Address-space limit (bytes).
    pub memory_bytes: u64,
    /// Processes and threads the sandbox's user may have.
    pub max_processes: u64,
    /// Largest file the process may write (bytes), stdout/stderr included.
    pub max_file_bytes: u64,
    /// Largest total size of the output directory (bytes); checked about every 50 ms, so a
    /// fast writer overshoots by what it writes in that time.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_s: 60.0,
            memory_bytes: 2 << 30,
            max_processes: 64,
            max_file_bytes: 256 << 20,
            max_output_bytes: 1 << 30,
        }
    }
}

/// What isolation this machine gives (probed once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// PID + network + mount namespaces (with a private `/proc`).
    pub namespaces: bool,
    /// Landlock ABI version, if the kernel has Landlock.
    pub landlock_abi: Option<u32>,
    /// A seccomp filter (no sockets, namespaces, mounts, tracing, BPF, io_uring).
    pub seccomp: bool,
    /// The uid the stage runs as when the agent runs as root (`nobody`).
    pub run_as_uid: Option<u32>,
}

impl Isolation {
    /// Probes this machine (cached).
    pub fn probe() -> &'static Isolation {
        static PROBE: std::sync::OnceLock<Isolation> = std::sync::OnceLock::new();
        PROBE.get_or_init(|| {
            #[cfg(target_os = "linux")]
            {
                linux::probe()
            }
            #[cfg(not(target_os = "linux"))]
            {
                Isolation {
                    namespaces: false,
                    landlock_abi: None,
                    run_as_uid: None,
                }
            }
        })
    }

    /// What blocks the network: sockets refused (seccomp) and/or an empty network namespace,
    /// or Landlock for TCP only, or nothing.
    pub fn network(&self) -> &'static str {
        if self.seccomp && self.namespaces {
            "seccomp (no sockets) + network namespace"
        } else if self.seccomp {
            "seccomp (no sockets)"
        } else if self.namespaces {
            "network namespace"
        } else if self.landlock_abi.is_some_and(|v| v >= 4) {
            "landlock (TCP only)"
        } else {
            "none"
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunClass {
    /// Exit 0 and an output document.
    Ok,
    /// The stage returned an error (the runner exits 2 with the message).
    StageError,
    /// The stage panicked.
    Panic,
    /// Killed at the wall-clock or CPU limit.
    Timeout,
    /// Allocation failed at the address-space limit.
    MemoryLimit,
    /// Starting a process or thread failed at the process limit.
    ProcessLimit,
    /// A network operation was refused.
    NetworkBlocked,
    /// A file operation outside what the stage may touch was refused.
    FilesystemBlocked,
    /// A file grew past the file-size limit.
    OutputLimit,
    /// Killed by another signal.
    Crash,
    /// Exit 0 without an output document.
    NoOutput,
    /// Any other non-zero exit.
    ExitCode,
    /// The sandbox could not start the process.
    SetupFailed,
}

/// Exit status: a code, or the signal that ended the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// The result of one sandboxed run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub class: RunClass,
    pub exit: Option<Exit>,
    /// The last 8 KiB of stderr.
    pub stderr_tail: String,
    /// Wall-clock seconds (not part of any trajectory: it differs between runs).
    #[serde(skip)]
    pub wall_s: f64,
}

/// A run directory: `bin/stage` (a copy of the binary), `in/` (read-only inputs), `out/` (the
/// only place the stage may write), `stdout.txt`, `stderr.txt`. Removed when dropped.
pub struct RunDir {
    tmp: tempfile::TempDir,
}

impl RunDir {
    /// Lays out a run of `binary` with `inputs` (name, contents) in `in/`.
    pub fn new(binary: &Path, inputs: &[(&str, &[u8])]) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::Builder::new()
            .prefix("hep-stage-run-")
            .tempdir()?;
        let root = tmp.path();
        let mode =
            |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(root, 0o755)?;
        for d in ["bin", "in", "out"] {
            std::fs::create_dir(root.join(d))?;
            mode(&root.join(d), 0o755)?;
        }
        std::fs::copy(binary, root.join("bin/stage"))?;
        mode(&root.join("bin/stage"), 0o555)?;
        for (name, bytes) in inputs {
            let p = root.join("in").join(name);
            std::fs::write(&p, bytes)?;
            mode(&p, 0o444)?;
        }
        mode(&root.join("in"), 0o555)?;
        #[cfg(target_os = "linux")]
        if let Some(uid) = Isolation::probe().run_as_uid {
            linux::chown(&root.join("out"), uid)?;
        }
        Ok(Self { tmp })
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
    pub fn input(&self, name: &str) -> PathBuf {
        self.root().join("in").join(name)
    }
    pub fn out(&self) -> PathBuf {
        self.root().join("out")
    }
    pub fn binary(&self) -> PathBuf {
        self.root().join("bin/stage")
    }
}

/// Reads a file the stage wrote, without following a symbolic link it may have planted there
/// and at most `max` bytes: the agent may run as root, the stage must not make it read
/// anything else.
pub fn read_output(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if m.len() > max {
        return Err(std::io::Error::other(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    let mut s = String::new();
    f.take(max).read_to_string(&mut s)?;
    Ok(s)
}

/// Runs `bin/stage ARGS...` of `dir` in the sandbox, with `out/` as the working directory.
pub fn run(dir: &RunDir, args: &[PathBuf], limits: &Limits) -> RunReport {
    #[cfg(target_os = "linux")]
    {
        linux::run(dir, args, limits)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dir, args, limits);
        RunReport {
            class: RunClass::SetupFailed,
            exit: None,
            stderr_tail: "the sandbox needs Linux (namespaces, Landlock, rlimits)".into(),
            wall_s: 0.0,
        }
    }
}

/// Names the outcome of a run. `output` tells whether the expected output document exists.
pub fn classify(exit: Exit, timed_out: bool, stderr: &str, output: bool) -> RunClass {
    const SIGXCPU: i32 = 24;
    const SIGXFSZ: i32 = 25;
    if timed_out || exit.signal == Some(SIGXCPU) {
        return RunClass::Timeout;
    }
    if exit.signal == Some(SIGXFSZ) || stderr.contains("File too large") {
        return RunClass::OutputLimit;
    }
    if exit.code == Some(0) {
        return if output {
            RunClass::Ok
        } else {
            RunClass::NoOutput
        };
    }
    let has = |pats: &[&str]| pats.iter().any(|p| stderr.contains(p));
    if has(&[
        "memory allocation of",
        "Cannot allocate memory",
        "os error 12",
    ]) {
        RunClass::MemoryLimit
    } else if has(&["Resource temporarily unavailable", "os error 11"]) {
        RunClass::ProcessLimit
    } else if has(&[
        "Network is unreachable",
        "os error 101",
        "Address family not supported",
        "os error 97",
        "Cannot assign requested address",
        "failed to lookup address",
    ]) {
        RunClass::NetworkBlocked
    } else if has(&[
        "Permission denied",
        "os error 13",
        "Read-only file system",
        "os error 30",
    ]) {
        // Landlock answers EACCES for both denied files and denied TCP; which one it was is
        // in the message (a socket error reads differently from a file error).
        if has(&["connect", "bind", "Tcp", "socket"]) {
            RunClass::NetworkBlocked
        } else {
            RunClass::FilesystemBlocked
        }
    } else if exit.signal.is_some() {
        RunClass::Crash
    } else if exit.code == Some(101) || stderr.contains("panicked at") {
        RunClass::Panic
    } else if exit.code == Some(2) {
        RunClass::StageError
    } else {
        RunClass::ExitCode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: i32) -> Exit {
        Exit {
            code: Some(c),
            signal: None,
        }
    }

    #[test]
    fn classification_table() {
        assert_eq!(classify(code(0), false, "", true), RunClass::Ok);
        assert_eq!(classify(code(0), false, "", false), RunClass::NoOutput);
        assert_eq!(classify(code(0), true, "", true), RunClass::Timeout);
        assert_eq!(
            classify(code(2), false, "stage error: bad", false),
            RunClass::StageError
        );
        assert_eq!(
            classify(code(101), false, "panicked at src/stage.rs", false),
            RunClass::Panic
        );
        let abort = Exit {
            code: None,
            signal: Some(6),
        };
        let oom = "memory allocation of 1048576 bytes failed\n";
        assert_eq!(classify(abort, false, oom, false), RunClass::MemoryLimit);
        assert_eq!(classify(abort, false, "", false), RunClass::Crash);
        let eagain = "panicked at src/stage.rs:3:9: Resource temporarily unavailable (os error 11)";
        assert_eq!(
            classify(code(101), false, eagain, false),
            RunClass::ProcessLimit
        );
        let net = "panicked at ...: Network is unreachable (os error 101)";
        assert_eq!(
            classify(code(101), false, net, false),
            RunClass::NetworkBlocked
        );
        let fs = "panicked at ...: Permission denied (os error 13)";
        assert_eq!(
            classify(code(101), false, fs, false),
            RunClass::FilesystemBlocked
        );
        let xfsz = Exit {
            code: None,
            signal: Some(25),
        };
        assert_eq!(classify(xfsz, false, "", false), RunClass::OutputLimit);
    }
}

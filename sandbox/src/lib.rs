//! Confining untrusted code: whatever a caller builds with it ([`confine`]: the agent's build
//! of a model-written stage) and the run of a binary ([`run`]) go through the same sandbox.
//! It knows nothing of the agent or the analysis: std, libc and tempfile only. On Linux:
//! * a scrubbed environment (only what the program needs; no API keys);
//! * its own PID, network and mount namespaces when the kernel allows (root, or unprivileged
//!   user namespaces): no network interface but a down loopback, every process it starts dies
//!   with it, and for a run a fresh `/proc` that shows only its own processes (not the
//!   agent's argv or environment);
//! * in that mount namespace, every mount read-only except its one writable directory, and
//!   read-only bind mounts of what its uid cannot reach on the host (the toolchain);
//! * Landlock (kernel ≥ 5.13): reads only of the paths it is given, writes only beneath its
//!   writable directory; TCP bind/connect denied when there is no network namespace
//!   (ABI ≥ 4); no signals or abstract sockets to processes outside (ABI ≥ 6);
//! * seccomp (x86_64, aarch64): a socket of any family kills the process with SIGSYS (so the
//!   parent sees the attempt), and no new namespaces, mounts, ptrace, BPF, io_uring,
//!   keyrings or modules; `NO_NEW_PRIVS` always;
//! * every descriptor but 0–2 closed at exec (inherited ones would bypass all of the above);
//! * control groups per run (v1 `memory` + `pids` hierarchies, or v2): one memory and one
//!   process limit for everything the run starts, and the kernel's count of OOM kills and
//!   refused forks, which is how those outcomes are classified;
//! * a uid of its own per run when the agent is root (never root, never the shared
//!   `nobody`);
//! * rlimits: address space (above the group's memory limit, so the OOM killer decides),
//!   processes, file size, open files, CPU time, no core dumps;
//! * for a run, its output directory is a size-limited tmpfs when the agent is root, so what
//!   it writes counts even after it unlinks it; otherwise the directory is measured every
//!   ~50 ms;
//! * a wall-clock timeout after which everything it started is killed; and every process
//!   dies if the agent does.
//!
//! Fallbacks, reported in [`Isolation`] (`HEP_SANDBOX_NO_NAMESPACES` forces the first, as
//! `agent/tests/sandbox_fallback.rs` does): without namespaces, sockets are still refused by
//! seccomp and TCP by Landlock, files are guarded by Landlock alone (not chmod/utimes), `/proc`
//! is not readable at all, stray processes are stopped by the control groups (or, without
//! them, the process-group kill and PDEATHSIG only: a process that leaves the group survives),
//! and the build needs the toolchain and `target/` reachable by the run's uid (else a harness
//! error names the directory it cannot enter); without control groups memory
//! and processes are limited per process only (and exhaustion is known only from the
//! program's own words); without Landlock or seccomp, only file permissions protect the
//! host's files and nothing the network, so [`confine`] and [`run`] refuse to start anything
//! there unless the caller's [`Limits::weak`] says [`Weak::Allow`] (whoever calls them: the
//! rule lives here, not in a command line). Elsewhere than Linux the sandbox refuses to run
//! anything.
//!
//! What the kernel reports of a run (exit code or signal, the timeout, the groups' OOM and
//! fork counts, a full output directory) comes back in [`Ran`]; naming the outcome is the
//! caller's (the agent's `outcome::classify`), since what an exit code means is the program's
//! protocol, not the sandbox's.

#[cfg(target_os = "linux")]
mod cgroup;
#[cfg(target_os = "linux")]
mod landlock;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod seccomp;

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Resource limits of one confined run or build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock seconds before everything is killed.
    pub wall_s: f64,
    /// Memory of the whole run (control group; per process without one), bytes.
    pub memory_bytes: u64,
    /// Processes and threads of the whole run.
    pub max_processes: u64,
    /// Largest file the process may write (bytes), stdout/stderr included.
    pub max_file_bytes: u64,
    /// Largest total size of the writable directory (bytes).
    pub max_output_bytes: u64,
    /// CPU time per wall-clock second of the whole run (cores): a control group's quota (v1
    /// `cpu.cfs_quota_us`, v2 `cpu.max`), so a spinning run cannot take the cores of the runs
    /// and builds beside it. Where no CPU controller can be used, nothing limits it.
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    /// Whether to run where this machine's isolation is weak (no Landlock or no seccomp):
    /// refused unless [`Weak::Allow`]. Never written to records (a per-machine decision).
    #[serde(skip)]
    pub weak: Weak,
}

/// What to do where the isolation is weak ([`Isolation::strong`] is false).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weak {
    /// Refuse to start anything ([`WeakIsolation`]).
    #[default]
    Refuse,
    /// Run all the same: only file permissions keep the code from the user's files.
    Allow,
}

/// This machine cannot keep confined code from the user's files or the network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "this machine cannot keep model-written code from your files and the network \
     (Landlock: {landlock}, seccomp: {seccomp}); rerun with --allow-weak-sandbox to run it anyway"
)]
pub struct WeakIsolation {
    /// Whether the sandbox can use Landlock here.
    pub landlock: bool,
    /// Whether the sandbox can use its seccomp filter here.
    pub seccomp: bool,
}

/// Why the sandbox did not run a program.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The isolation is weak here and the caller did not allow that.
    #[error(transparent)]
    Weak(#[from] WeakIsolation),
    /// Setting it up failed (the message names the step: Landlock, the control groups, the
    /// files, the start of the program).
    #[error("{0}")]
    Setup(String),
}

/// This machine's isolation, or [`WeakIsolation`] where it is weak and `weak` refuses that.
pub fn require(weak: Weak) -> Result<&'static Isolation, WeakIsolation> {
    let iso = Isolation::current();
    if weak == Weak::Refuse && !iso.strong() {
        return Err(WeakIsolation {
            landlock: iso.landlock_abi.is_some(),
            seccomp: iso.seccomp,
        });
    }
    Ok(iso)
}

fn default_cpus() -> f64 {
    1.0
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_s: 60.0,
            memory_bytes: 2 << 30,
            max_processes: 64,
            max_file_bytes: 256 << 20,
            max_output_bytes: 256 << 20,
            cpus: default_cpus(),
            weak: Weak::Refuse,
        }
    }
}

impl Limits {
    /// CPU seconds (soft limit): the wall-clock limit, rounded up, plus one.
    pub fn cpu_s(&self) -> u64 {
        self.wall_s.ceil() as u64 + 1
    }
}

/// What isolation this machine gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// PID + network + mount namespaces (with a private `/proc`).
    pub namespaces: bool,
    /// Landlock ABI version, if the kernel has Landlock.
    pub landlock_abi: Option<u32>,
    /// A seccomp filter (no sockets, namespaces, mounts, tracing, BPF, io_uring).
    pub seccomp: bool,
    /// Per-run control groups (`"v1"` or `"v2"`), if the agent can make them.
    pub cgroups: Option<String>,
    /// A per-run CPU quota (a `cpu` controller the agent can use).
    #[serde(default)]
    pub cpu_quota: bool,
    /// The first uid of the per-run range, when the agent runs as root.
    pub run_as_uid: Option<u32>,
    /// Output directories are private size-limited tmpfs mounts (root).
    pub private_out: bool,
}

impl Isolation {
    /// Probes this machine (cached), ignoring `HEP_SANDBOX_NO_NAMESPACES`.
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
                    seccomp: false,
                    cgroups: None,
                    cpu_quota: false,
                    run_as_uid: None,
                    private_out: false,
                }
            }
        })
    }

    /// What the sandbox uses now: the probe, without namespaces while
    /// `HEP_SANDBOX_NO_NAMESPACES` is set, and without Landlock while `HEP_SANDBOX_NO_LANDLOCK`
    /// is (to test the fallbacks on machines that have them).
    pub fn current() -> &'static Isolation {
        static FORCED: [std::sync::OnceLock<Isolation>; 3] =
            [const { std::sync::OnceLock::new() }; 3];
        let no_ns = std::env::var_os("HEP_SANDBOX_NO_NAMESPACES").is_some();
        let no_landlock = std::env::var_os("HEP_SANDBOX_NO_LANDLOCK").is_some();
        let slot = match (no_ns, no_landlock) {
            (false, false) => return Isolation::probe(),
            (true, false) => 0,
            (false, true) => 1,
            (true, true) => 2,
        };
        FORCED[slot].get_or_init(|| {
            let probe = Isolation::probe();
            Isolation {
                namespaces: probe.namespaces && !no_ns,
                landlock_abi: probe.landlock_abi.filter(|_| !no_landlock),
                ..probe.clone()
            }
        })
    }

    /// Landlock keeps the code from the user's files and seccomp from sockets; namespaces add
    /// a private `/proc` and the kill-everything init, and are reported but not required.
    pub fn strong(&self) -> bool {
        self.landlock_abi.is_some() && self.seccomp
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

/// Exit status: a code, or the signal that ended the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, when the process exited.
    pub code: Option<i32>,
    /// The signal that ended the process, when one did.
    pub signal: Option<i32>,
}

/// What the kernel reported about a run, besides its exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelReport {
    /// It reached the wall-clock limit and was killed.
    pub timed_out: bool,
    /// OOM kills in the run's memory group.
    pub oom_kills: u64,
    /// Forks refused at the run's process limit.
    pub fork_refusals: u64,
    /// The output directory reached its size limit.
    pub disk_full: bool,
    /// stdout or stderr reached the file-size limit.
    pub flooded: bool,
}

/// A run directory: `bin/stage` (a copy of the binary), `in/` (read-only inputs), `out/` (the
/// only place the stage may write: a size-limited tmpfs when the agent is root),
/// `stdout.txt`, `stderr.txt`. Removed (and `out/` unmounted) when dropped.
pub struct RunDir {
    tmp: tempfile::TempDir,
    /// The run's own uid (root only).
    uid: Option<u32>,
    tmpfs: bool,
}

impl RunDir {
    /// Lays out a run of `binary` with `inputs` (name, contents) in `in/`, with an output
    /// directory of at most `limits.max_output_bytes`.
    pub fn new(binary: &Path, inputs: &[(&str, &[u8])], limits: &Limits) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::Builder::new()
            .prefix("hep-stage-run-")
            .tempdir_in(scratch()?)?;
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
        let mut dir = Self {
            tmp,
            uid: None,
            tmpfs: false,
        };
        #[cfg(target_os = "linux")]
        if Isolation::current().run_as_uid.is_some() {
            let uid = linux::run_uid();
            dir.uid = Some(uid);
            if Isolation::current().private_out {
                linux::mount_tmpfs(&dir.out(), limits.max_output_bytes, uid)?;
                dir.tmpfs = true;
            } else {
                linux::chown(&dir.out(), uid)?;
            }
        }
        let _ = limits;
        Ok(dir)
    }

    /// The run directory itself.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
    /// The path of the input `name` in `in/`.
    pub fn input(&self, name: &str) -> PathBuf {
        self.root().join("in").join(name)
    }
    /// The output directory, `out/`.
    pub fn out(&self) -> PathBuf {
        self.root().join("out")
    }
    /// The copy of the binary the run starts, `bin/stage`.
    pub fn binary(&self) -> PathBuf {
        self.root().join("bin/stage")
    }
    /// The uid the run takes (when the agent is root).
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.tmpfs {
            linux::unmount(&self.out());
        }
    }
}

/// Where builds and runs get their own directories: the system's temporary directory, never a
/// place inside the checkout. With a uid of its own per run (the agent is root), the confined
/// program must be able to walk down to its directory, which a checkout, a `target/` or an
/// output folder under a 0700 parent (`mktemp -d`, root's or a user's home) does not allow;
/// what it needs from such places (the toolchain, the prebuilt contract) is bind-mounted in.
/// An error names a directory of the way that other uids cannot enter.
pub fn scratch() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir();
    if Isolation::current().run_as_uid.is_some() {
        if let Some((closed, mode)) = closed_to_others(&dir) {
            return Err(std::io::Error::other(format!(
                "the sandbox's own uids cannot enter {} (mode {mode:o}), which holds the \
                 temporary directory {}: set TMPDIR to a directory every user may enter, \
                 such as /tmp",
                closed.display(),
                dir.display()
            )));
        }
    }
    Ok(dir)
}

/// The first directory on the way to `path` (itself included) that a uid owning none of them
/// and in none of their groups cannot enter, with its mode: the directories as written, then
/// those a link among them leads through (the kernel walks both).
pub fn closed_to_others(path: &Path) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let closed = |p: &Path| {
        let mut ancestors: Vec<&Path> = p.ancestors().collect();
        ancestors.reverse();
        ancestors.into_iter().find_map(|d| {
            let mode = std::fs::metadata(d).ok()?.permissions().mode();
            (mode & 0o001 == 0).then(|| (d.to_path_buf(), mode & 0o7777))
        })
    };
    closed(path).or_else(|| closed(&std::fs::canonicalize(path).ok()?))
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

/// What a build or a run may read of the system: the C compiler, the linker, the dynamic
/// loader and the libraries (`/etc` only for the loader's cache: nothing else there is its
/// business).
pub const SYSTEM_READ: [&str; 6] = [
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/etc/ld.so.cache",
];

/// How a run ended, as the kernel reported it.
#[derive(Clone, Debug)]
pub struct Ran {
    /// `None`: the process could not be waited for.
    pub exit: Option<Exit>,
    /// What the kernel reported besides the exit.
    pub kernel: KernelReport,
    /// The last 8 KiB of stderr.
    pub stderr_tail: String,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
}

/// Runs `bin/stage ARGS...` of `dir` in the sandbox, with `out/` as the working directory;
/// `Err`: the sandbox could not start it (weak isolation refused included).
pub fn run(dir: &RunDir, args: &[PathBuf], limits: &Limits) -> Result<Ran, SandboxError> {
    #[cfg(target_os = "linux")]
    {
        let root = dir.root();
        let (stdout, stderr, mut stderr_reader) =
            output_files(&root.join("stdout.txt"), &root.join("stderr.txt"))
                .map_err(|e| SandboxError::Setup(format!("stdout/stderr files: {e}")))?;
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        read.push(root.to_path_buf());
        let out = dir.out();
        let args: Vec<OsString> = args.iter().map(|a| a.clone().into_os_string()).collect();
        let env: Vec<(&str, OsString)> = vec![
            ("PATH", "/usr/bin:/bin".into()),
            ("HOME", out.clone().into_os_string()),
            ("TMPDIR", out.clone().into_os_string()),
            ("LANG", "C.UTF-8".into()),
            ("RAYON_NUM_THREADS", "1".into()),
            ("MALLOC_ARENA_MAX", "2".into()),
        ];
        let c = confine(Confinement {
            program: &dir.binary(),
            args: &args,
            env: &env,
            writable: &out,
            read: &read,
            binds: &[],
            proc: Isolation::current().namespaces,
            limits,
            uid: dir.uid,
            tmpfs: dir.tmpfs,
            no_remove: true,
            stdout,
            stderr,
        })?;
        let stderr_tail = read_tail(&mut stderr_reader, 8 << 10);
        // A flooded stdout/stderr may hold no message at all: its size says what happened.
        let flooded = ["stdout.txt", "stderr.txt"].iter().any(|f| {
            std::fs::metadata(root.join(f)).is_ok_and(|m| m.len() >= limits.max_file_bytes)
        });
        Ok(Ran {
            exit: c.exit,
            kernel: KernelReport {
                flooded,
                ..c.kernel
            },
            stderr_tail,
            wall_s: c.wall_s,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dir, args, limits);
        Err(SandboxError::Setup(
            "the sandbox needs Linux (namespaces, Landlock, seccomp, rlimits)".into(),
        ))
    }
}

#[cfg(target_os = "linux")]
fn read_tail(f: &mut std::fs::File, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// What one confined process tree is, does and may touch (the build of model code, or the
/// run of its binary).
#[cfg(target_os = "linux")]
pub struct Confinement<'a> {
    /// The program to run.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [OsString],
    /// The whole environment (nothing of the agent's is inherited).
    pub env: &'a [(&'a str, OsString)],
    /// The one writable directory, and the working directory.
    pub writable: &'a Path,
    /// Files and directories it may read (Landlock), besides `writable`.
    pub read: &'a [PathBuf],
    /// Read-only bind mounts `(host path, mount point)` made in its mount namespace, for what
    /// its uid cannot reach on the host (the toolchain in a 0700 home). Without namespaces the
    /// caller must pass host paths instead.
    pub binds: &'a [(PathBuf, PathBuf)],
    /// Mount a fresh `/proc` of its PID namespace and let it read it.
    pub proc: bool,
    /// Its resource limits.
    pub limits: &'a Limits,
    /// The uid it runs as (the agent is root); `None`: the agent's own.
    pub uid: Option<u32>,
    /// Whether `writable` is a private tmpfs (its fullness then says the disk ran out).
    pub tmpfs: bool,
    /// Files in `writable` cannot be removed (nor made unlinked, `O_TMPFILE` being refused
    /// everywhere): none can grow out of sight and vanish before it is measured. For runs;
    /// the compiler needs to remove its temporary files.
    pub no_remove: bool,
    /// Where its stdout goes.
    pub stdout: std::fs::File,
    /// Where its stderr goes.
    pub stderr: std::fs::File,
}

/// How a confined program ended.
#[derive(Clone, Debug)]
pub struct Ended {
    /// Its exit; `None` when it could not be waited for.
    pub exit: Option<Exit>,
    /// What the kernel reported besides the exit.
    pub kernel: KernelReport,
    /// Wall-clock seconds from its start to its end.
    pub wall_s: f64,
}

#[cfg(target_os = "linux")]
pub use linux::confine;

/// Creates `out` and `err` (truncated) for a confined program's stdout and stderr; the
/// third file reads stderr back.
pub fn output_files(
    out: &Path,
    err: &Path,
) -> std::io::Result<(std::fs::File, std::fs::File, std::fs::File)> {
    let stdout = std::fs::File::create(out)?;
    let stderr = std::fs::File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(err)?;
    let reader = stderr.try_clone()?;
    Ok((stdout, stderr, reader))
}

/// A fresh uid for one confined program when the agent is root (`None` otherwise).
pub fn fresh_uid() -> Option<u32> {
    #[cfg(target_os = "linux")]
    if Isolation::current().run_as_uid.is_some() {
        return Some(linux::run_uid());
    }
    None
}

/// Gives `path` to `uid` (the confined program's writable directory).
pub fn give(path: &Path, uid: Option<u32>) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(uid) = uid {
        return linux::chown(path, uid);
    }
    let _ = (path, uid);
    Ok(())
}

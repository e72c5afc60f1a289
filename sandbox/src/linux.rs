//! The Linux sandbox, shared by the build of model code and the run of its binary
//! ([`confine`]). Between fork and exec the child (P1) joins the run's control groups, starts a
//! new session, unshares PID, network and mount namespaces, and forks: its child (P2) is PID 1
//! — the init — of the new PID namespace, so when it exits every process in the namespace dies
//! too. P2 makes its mounts private, bind-mounts what the confined program needs from places
//! its uid cannot reach (the toolchain under a 0700 home), remounts the whole tree read-only
//! but for the one writable directory, mounts a fresh `/proc` (only the namespace's processes)
//! when asked, and forks P3, an ordinary process (signals such as SIGXFSZ act on it as usual,
//! which they would not on an init). P3 takes the run's own uid when started by root, sets
//! rlimits and `NO_NEW_PRIVS`, marks every inherited descriptor but 0–2 close-on-exec, enters
//! Landlock and the seccomp filter, and execs. P1 and P2 close their copies of the parent's
//! descriptors (so `spawn` returns) and wait; P2, the init, hands the stage's raw wait status
//! to the parent through a pipe (so that no exit code can pass for a signal) and P1 ends as P2
//! did. Each of P1, P2, P3 dies with its parent (`PR_SET_PDEATHSIG`; for P1 that is the thread
//! that called `spawn`, which [`confine`] keeps alive until the run ends). Everything after
//! fork is plain system calls on data prepared before it: no allocation.

use super::cgroup::RunGroups;
use super::{landlock, seccomp, Confinement, Ended, Exit, Isolation, KernelReport};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// First uid of the range runs take when the agent is root: one uid per run, used by nothing
/// else on the machine, so that `RLIMIT_NPROC`, signals and `/proc` access are per run (the
/// shared `nobody` would let one run's leftovers count against, or reach, another's).
pub(crate) const UID_BASE: u32 = 0x5E00_0000;
/// How many uids the range holds (2^24: two agents or two runs meet on one only by chance,
/// and a run's processes are gone when it ends).
pub(crate) const UID_SPAN: u32 = 1 << 24;

/// A uid for one run (root only): from this process, a counter and the clock, mixed.
pub(super) fn run_uid() -> u32 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = (std::process::id() as u64) << 32 ^ N.fetch_add(1, Ordering::Relaxed) ^ nanos;
    // splitmix64's finaliser: every input bit moves every output bit.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    UID_BASE + (x as u32 % UID_SPAN)
}

pub(super) fn probe() -> Isolation {
    // SAFETY: geteuid takes nothing and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let flags = ns_flags(root);
    // The whole namespace sequence, on a scratch directory, in a throwaway child.
    let scratch = tempfile::tempdir().ok();
    let dir = scratch
        .as_ref()
        .and_then(|d| CString::new(d.path().as_os_str().as_bytes()).ok());
    let namespaces = dir.as_ref().is_some_and(|dir| {
        let addr = dir.as_ptr() as usize;
        let mut cmd = Command::new("/");
        // SAFETY: only system calls after fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(flags) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                match libc::fork() {
                    -1 => Err(std::io::Error::last_os_error()),
                    0 => libc::_exit(if private_mounts(addr as *const libc::c_char, &[], true) {
                        0
                    } else {
                        1
                    }),
                    p2 => wait_and_mirror(p2, Role::Outer, -1),
                }
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let cgroups = match super::cgroup::locate() {
        Ok((_, _, true)) => Some("v2".to_string()),
        Ok((_, _, false)) => Some("v1".to_string()),
        Err(_) => None,
    };
    Isolation {
        namespaces,
        landlock_abi: landlock::abi(),
        seccomp: seccomp::filter(0).is_some(),
        run_as_uid: root.then_some(UID_BASE),
        cpu_quota: cgroups.is_some() && super::cgroup::locate_cpu().is_some(),
        cgroups,
        private_out: root,
    }
}

fn ns_flags(root: bool) -> libc::c_int {
    let user = if root { 0 } else { libc::CLONE_NEWUSER };
    user | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWNS
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Most read-only bind mounts one confinement makes.
const MAX_BINDS: usize = 2;

/// In a new mount namespace: stop propagation to the host, bind-mount each `(source, target)`
/// of `binds`, make every mount read-only except a bind mount of `writable`, and (`proc`)
/// mount a `/proc` of the current PID namespace over the host's. Only system calls, on
/// strings prepared before fork.
unsafe fn private_mounts(
    writable: *const libc::c_char,
    binds: &[(usize, usize)],
    proc: bool,
) -> bool {
    const SYS_MOUNT_SETATTR: libc::c_long = 442; // the same on x86_64 and asm-generic
    const MOUNT_ATTR_RDONLY: u64 = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let null = std::ptr::null::<libc::c_char>();
    let setattr = |path: *const libc::c_char, flags: libc::c_uint, set: u64, clr: u64| {
        let attr = MountAttr {
            attr_set: set,
            attr_clr: clr,
            propagation: 0,
            userns_fd: 0,
        };
        libc::syscall(
            SYS_MOUNT_SETATTR,
            libc::AT_FDCWD,
            path,
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) == 0
    };
    let bind = |from: *const libc::c_char, to: *const libc::c_char| {
        libc::mount(
            from,
            to,
            null,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) == 0
    };
    if libc::mount(
        null,
        c"/".as_ptr(),
        null,
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) != 0
        || !bind(writable, writable)
    {
        return false;
    }
    for &(from, to) in binds {
        if !bind(from as *const libc::c_char, to as *const libc::c_char) {
            return false;
        }
    }
    setattr(c"/".as_ptr(), AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0)
        && setattr(writable, 0, 0, MOUNT_ATTR_RDONLY)
        && (!proc
            // hidepid=2: processes of other uids (the init, root's) are not even listed, so
            // the init's copy of the agent's argv is not readable.
            || libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"hidepid=2".as_ptr() as *const libc::c_void,
            ) == 0)
}

pub(super) fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
}

/// A size-limited tmpfs on `dir` (root only), owned by `uid`: what the run writes counts
/// against it whether or not the file is still linked, and a full disk is `ENOSPC`.
pub(super) fn mount_tmpfs(dir: &Path, bytes: u64, uid: u32) -> std::io::Result<()> {
    let target = CString::new(dir.as_os_str().as_bytes())?;
    let opts = CString::new(format!(
        "size={bytes},nr_inodes=4096,mode=0700,uid={uid},gid={uid}"
    ))?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            opts.as_ptr() as *const libc::c_void,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Detaches the tmpfs on `dir` (its contents go with the last reference).
pub(super) fn unmount(dir: &Path) {
    if let Ok(c) = CString::new(dir.as_os_str().as_bytes()) {
        // SAFETY: umount2(2) with a NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Free bytes of the file system holding `dir`.
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(2) into a zeroed struct.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut s) == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
    }
}

/// Runs `spec` confined and waits for it (and everything it started) to end: how it ended,
/// as the kernel tells it, or why it could not be started.
/// Runs a [`Confinement`] to its end; `Err` when the sandbox cannot start it, or will not:
/// where the isolation is weak and [`super::Limits::weak`] does not allow that.
pub fn confine(spec: Confinement) -> Result<Ended, super::SandboxError> {
    let start = Instant::now();
    let failed = |msg: String| Err(super::SandboxError::Setup(msg));
    let limits = spec.limits;
    let iso = super::require(limits.weak)?;

    let ruleset = match iso.landlock_abi {
        Some(abi) => {
            let read: Vec<&Path> = spec.read.iter().map(PathBuf::as_path).collect();
            // With a network namespace the kernel answers "network unreachable"; Landlock's
            // TCP rules are the fallback without one (seccomp refuses sockets anyway).
            match landlock::ruleset(abi, &read, spec.writable, !iso.namespaces, spec.no_remove) {
                Ok(fd) => Some(fd),
                Err(e) => return failed(format!("landlock: {e}")),
            }
        }
        None => None,
    };
    let groups = if iso.cgroups.is_some() {
        match RunGroups::create(limits.memory_bytes, limits.max_processes, limits.cpus) {
            Ok(g) => Some(g),
            Err(e) => return failed(format!("control groups: {e}")),
        }
    } else {
        None
    };

    // Everything the child needs, prepared before fork (and kept alive until spawn returns).
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes());
    let Ok(writable_c) = cstr(spec.writable) else {
        return failed(format!("{} has a NUL byte", spec.writable.display()));
    };
    let mut bind_c = Vec::new();
    for (from, to) in spec.binds.iter().take(MAX_BINDS) {
        match (cstr(from), cstr(to)) {
            (Ok(f), Ok(t)) => bind_c.push((f, t)),
            _ => return failed("a bind mount path has a NUL byte".into()),
        }
    }
    let mut binds = [(0usize, 0usize); MAX_BINDS];
    for (slot, (f, t)) in binds.iter_mut().zip(&bind_c) {
        *slot = (f.as_ptr() as usize, t.as_ptr() as usize);
    }
    let mut procs = [-1; 3];
    for (slot, f) in procs
        .iter_mut()
        .zip(groups.iter().flat_map(|g| g.procs.iter()))
    {
        *slot = f.as_raw_fd();
    }
    let filter = seccomp::filter(std::process::id());
    // The stage's wait status, from the namespace's init (see `wait_and_mirror`).
    let mut pipe = [-1; 2];
    // SAFETY: pipe2(2) into a two-element array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return failed(format!("status pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned these descriptors; each is owned once.
    let (status_rd, status_wr) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(pipe[0]),
            std::os::fd::OwnedFd::from_raw_fd(pipe[1]),
        )
    };
    // With a memory group, the address-space limit sits well above it, so that the kernel's
    // OOM killer (which the parent sees) decides, not a failed allocation (which it does not).
    let address_space = if groups.is_some() {
        limits.memory_bytes.saturating_mul(4)
    } else {
        limits.memory_bytes
    };
    let nproc = nproc_limit(iso, spec.uid, limits.max_processes);
    let plan = ChildPlan {
        agent: std::process::id() as libc::pid_t,
        namespaces: iso.namespaces.then(|| ns_flags(iso.run_as_uid.is_some())),
        writable: writable_c.as_ptr() as usize,
        binds,
        n_binds: bind_c.len(),
        proc: spec.proc,
        procs,
        status_fd: status_wr.as_raw_fd(),
        uid: spec.uid,
        landlock_fd: ruleset.as_ref().map(|f| f.as_raw_fd()),
        seccomp: filter.as_ref().map(|f| f.prog_addr()),
        rlimits: [
            (libc::RLIMIT_AS, address_space, address_space),
            (libc::RLIMIT_NPROC, nproc, nproc),
            (
                libc::RLIMIT_FSIZE,
                limits.max_file_bytes,
                limits.max_file_bytes,
            ),
            (libc::RLIMIT_NOFILE, 256, 256),
            (libc::RLIMIT_CORE, 0, 0),
            // Soft below hard: SIGXCPU first (reported as a timeout), SIGKILL a second later.
            (libc::RLIMIT_CPU, limits.cpu_s(), limits.cpu_s() + 1),
        ],
    };
    let mut cmd = Command::new(spec.program);
    cmd.args(spec.args)
        .current_dir(spec.writable)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(spec.stdout)
        .stderr(spec.stderr);
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    // SAFETY: the closure only makes system calls (see ChildPlan::enter).
    unsafe {
        cmd.pre_exec(move || plan.enter());
    }
    // ETXTBSY: another thread of the agent forked while the binary was still open for
    // writing (its copy into the run directory) and that child has not exec'd yet: retry.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                // The failed attempt's init reported its child's exit (1) before `spawn`
                // returned (std waits for P1, P1 for P2): drop it, or it would pass for the
                // stage's.
                use std::io::Read;
                let mut stale = [0u8; 64];
                while (&status_rd).read(&mut stale).is_ok_and(|n| n > 0) {}
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return failed(format!("starting {}: {e}", spec.program.display())),
        }
    };
    drop((ruleset, filter, writable_c, bind_c, status_wr));

    // Wait without reaping (WNOWAIT), so that the process group is killed while its id
    // cannot have been reused; watch the wall clock and the writable directory's size.
    let pid = child.id() as libc::pid_t;
    let deadline = start + Duration::from_secs_f64(limits.wall_s);
    let mut timed_out = false;
    let mut disk_full = false;
    let mut polls = 0u32;
    loop {
        // SAFETY: waitid on our own child, into a zeroed siginfo.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            );
            r != 0 || info.si_pid() != 0
        };
        if exited {
            break;
        }
        polls += 1;
        // A tmpfs limits itself (full: the kernel refused a write); a plain directory is
        // measured (files only while linked).
        if spec.tmpfs && free_bytes(spec.writable).is_some_and(|f| f < 64 << 10) {
            disk_full = true;
        }
        if !spec.tmpfs
            && polls.is_multiple_of(10)
            && dir_bytes(spec.writable, 10_000) > limits.max_output_bytes
        {
            disk_full = true;
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Whatever is left goes: the session (with namespaces, P1's death takes the rest), then
    // anything in the run's groups that left the session (without namespaces).
    // SAFETY: plain kill(2) of the child's own session, not yet reaped.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    if let Some(g) = &groups {
        g.kill_all();
    }
    let status = child.wait().ok();
    let mut raw = [0u8; 4];
    let reported = {
        use std::io::Read;
        (&status_rd).read_exact(&mut raw).is_ok()
    };
    if spec.tmpfs {
        // Full, or within a page of it: the kernel refused a write (ENOSPC).
        disk_full |= free_bytes(spec.writable).is_some_and(|f| f < 64 << 10);
    }
    let events = groups.as_ref().map(RunGroups::events).unwrap_or_default();
    let exit = if reported {
        let st = i32::from_ne_bytes(raw);
        Some(if libc::WIFSIGNALED(st) {
            Exit {
                code: None,
                signal: Some(libc::WTERMSIG(st)),
            }
        } else {
            Exit {
                code: Some(libc::WEXITSTATUS(st)),
                signal: None,
            }
        })
    } else {
        status.map(|s| Exit {
            code: s.code(),
            signal: s.signal(),
        })
    };
    Ok(Ended {
        exit,
        kernel: KernelReport {
            timed_out,
            oom_kills: events.oom_kills,
            fork_refusals: events.fork_refusals,
            disk_full,
            flooded: false,
        },
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// `RLIMIT_NPROC` counts every process of the user. As the run's own uid or in a fresh user
/// namespace that is the run; otherwise (no namespaces, not root) the user's existing processes are
/// added so that the limit means "this many more".
fn nproc_limit(iso: &Isolation, uid: Option<u32>, max: u64) -> u64 {
    if iso.cgroups.is_some() {
        // The group's limit decides (and is counted); this one only backs it up.
        return max + 8;
    }
    if uid.is_some() || iso.namespaces {
        return max;
    }
    // SAFETY: getuid takes nothing and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mine = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|s| {
            s.lines().any(|l| {
                l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&uid.to_string())
            })
        })
        .map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum::<u64>();
    mine + max
}

/// Bytes under `dir` (not following links); `u64::MAX` past `max_entries` entries.
fn dir_bytes(dir: &Path, max_entries: usize) -> u64 {
    let (mut total, mut seen, mut stack) = (0u64, 0usize, vec![dir.to_path_buf()]);
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            seen += 1;
            if seen > max_entries {
                return u64::MAX;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// `setrlimit`'s resource type: glibc's own, an int elsewhere (musl).
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// What the children do between fork and exec. Addresses are of data the parent keeps alive.
#[derive(Clone, Copy)]
struct ChildPlan {
    /// The agent's pid: P1 checks its parent is still there after arming PDEATHSIG.
    agent: libc::pid_t,
    namespaces: Option<libc::c_int>,
    /// The writable directory (a NUL-terminated string).
    writable: usize,
    /// Read-only bind mounts (source, target), NUL-terminated strings; the first `n_binds`.
    binds: [(usize, usize); MAX_BINDS],
    n_binds: usize,
    proc: bool,
    /// `cgroup.procs` descriptors to join (-1: none).
    procs: [i32; 3],
    /// Where the init writes the stage's raw wait status.
    status_fd: i32,
    uid: Option<u32>,
    landlock_fd: Option<i32>,
    seccomp: Option<usize>,
    rlimits: [(Resource, u64, u64); 6],
}

impl ChildPlan {
    /// # Safety
    /// Only between fork and exec of a single-threaded child.
    unsafe fn enter(&self) -> std::io::Result<()> {
        let err = std::io::Error::last_os_error;
        // P1 dies with the agent: nothing outlives a crashed agent.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != self.agent {
            libc::_exit(137);
        }
        // Into the run's control groups before anything else starts: everything after
        // inherits them.
        for fd in self.procs {
            if fd >= 0 && libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) != 1 {
                return Err(err());
            }
        }
        if libc::setsid() < 0 {
            return Err(err());
        }
        if let Some(flags) = self.namespaces {
            if libc::unshare(flags) != 0 {
                return Err(err());
            }
            match libc::fork() {
                -1 => return Err(err()),
                // P2 (P1 outlives its child unless killed, so no window where it is gone).
                0 => libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL),
                p2 => wait_and_mirror(p2, Role::Outer, -1),
            };
            // The working directory still points into the mount underneath the new writable
            // bind mount (std changed to it before this ran): enter it again.
            if !private_mounts(
                self.writable as *const libc::c_char,
                &self.binds[..self.n_binds],
                self.proc,
            ) || libc::chdir(self.writable as *const libc::c_char) != 0
            {
                return Err(err());
            }
            if let (Some(fd), true) = (self.landlock_fd, self.proc) {
                if !landlock::add_read_in_child(fd, c"/proc") {
                    return Err(err());
                }
            }
            match libc::fork() {
                -1 => return Err(err()),
                0 => {} // P3: the confined program
                p3 => wait_and_mirror(p3, Role::Init, self.status_fd),
            };
        }
        if let Some(uid) = self.uid {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(err());
            }
        }
        // After setuid, which clears it.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        for (resource, cur, max) in self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: cur,
                rlim_max: max,
            };
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(err());
            }
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(err());
        }
        if let Some(fd) = self.landlock_fd {
            landlock::restrict_self(fd)?;
        }
        // Descriptors the agent inherited without close-on-exec (a socket, an open file
        // from its own parent) would reach past every rule: none but 0-2 survive the exec.
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
            for fd in 3..65536 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        if let Some(prog) = self.seccomp {
            seccomp::install(prog)?;
        }
        Ok(())
    }
}

/// Which process waits: the outer one (P1) or the namespace's init (P2).
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Outer,
    Init,
}

/// Closes the parent's descriptors but `keep` (among them std's exec-error pipe, so that
/// `spawn` returns), waits for `child` (an init reaps every orphan while it waits) and ends:
/// the init (P2) writes the stage's raw wait status to `keep` — out of band, so no exit code
/// of the stage can pass for a signal — and exits 0; the outer process (P1) ends as the init
/// did (re-raising its signal), which the parent reads only when no status came through.
unsafe fn wait_and_mirror(child: libc::pid_t, role: Role, keep: i32) -> ! {
    let close = |from: u32, to: u32| {
        if from <= to && libc::syscall(libc::SYS_close_range, from, to, 0u32) != 0 {
            // Kernels before 5.9: close what the parent can have open.
            for fd in from..to.min(65535) + 1 {
                libc::close(fd as i32);
            }
        }
    };
    if role == Role::Init && keep >= 3 {
        close(3, keep as u32 - 1);
        close(keep as u32 + 1, u32::MAX);
    } else {
        close(3, u32::MAX);
    }
    if role == Role::Init {
        // The init is a fork of the agent (its memory, its environment): nothing of it may be
        // read through /proc, even by the same uid (unprivileged user namespaces).
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let target = if role == Role::Init { -1 } else { child };
    let mut status = 0;
    loop {
        let r = libc::waitpid(target, &mut status, 0);
        if r == child {
            break;
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if role == Role::Init {
        let bytes = status.to_ne_bytes();
        libc::write(keep, bytes.as_ptr() as *const libc::c_void, bytes.len());
        libc::_exit(0);
    }
    if !libc::WIFSIGNALED(status) {
        libc::_exit(libc::WEXITSTATUS(status));
    }
    let sig = libc::WTERMSIG(status);
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    libc::setrlimit(libc::RLIMIT_CORE, &none);
    libc::signal(sig, libc::SIG_DFL);
    libc::kill(libc::getpid(), sig);
    libc::_exit(128 + sig)
}

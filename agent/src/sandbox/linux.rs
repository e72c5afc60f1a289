//! The Linux sandbox. Between fork and exec the child (P1) starts a new session, unshares PID,
//! network and mount namespaces, and forks: its child (P2) is PID 1 — the init — of the new
//! PID namespace, so when it exits every process in the namespace dies too. P2 makes its
//! mounts private, remounts the whole tree read-only but for the stage's output directory,
//! mounts a fresh `/proc` (the stage sees only its own processes) and forks the stage (P3), an
//! ordinary process (signals such as SIGXFSZ act on it as usual, which they would not on an
//! init). P3 drops to `nobody` when started by root, sets rlimits and `NO_NEW_PRIVS`, enters
//! Landlock and the seccomp filter, and execs the stage. P1 and P2 close their copies of the
//! parent's descriptors (so `spawn` returns), wait, and end as their child did (P2 reports a
//! signal as exit 128 + n, which P1 turns back into the signal). Each of P1, P2, P3 dies with
//! its parent (`PR_SET_PDEATHSIG`; for P1 that is the thread that called `spawn`, which
//! `run` keeps alive until the run ends). Everything after fork is plain system calls on data
//! prepared before it: no allocation.

use super::{classify, landlock, seccomp, Exit, Isolation, Limits, RunClass, RunDir, RunReport};
use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

pub(super) fn probe() -> Isolation {
    let root = unsafe { libc::geteuid() } == 0;
    let flags = ns_flags(root);
    // The whole namespace sequence, on a scratch directory, in a throwaway child.
    let scratch = tempfile::tempdir().ok();
    let dir = scratch
        .as_ref()
        .and_then(|d| CString::new(d.path().as_os_str().as_bytes()).ok());
    // The fallback can be forced, to test it on machines that have namespaces.
    let forced_off = std::env::var_os("HEP_SANDBOX_NO_NAMESPACES").is_some();
    let namespaces = !forced_off
        && dir.as_ref().is_some_and(|dir| {
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
                        0 => libc::_exit(if private_mounts(addr as *const libc::c_char) {
                            0
                        } else {
                            1
                        }),
                        p2 => wait_and_mirror(p2, Role::Outer),
                    }
                });
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    Isolation {
        namespaces,
        landlock_abi: landlock::abi(),
        seccomp: seccomp::filter().is_some(),
        run_as_uid: root.then_some(NOBODY),
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

/// In a new mount namespace: stop propagation to the host, make every mount read-only except
/// a bind mount of `writable`, and mount a `/proc` of the current PID namespace over the
/// host's. Only system calls, on strings prepared before fork.
unsafe fn private_mounts(writable: *const libc::c_char) -> bool {
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
    libc::mount(
        null,
        c"/".as_ptr(),
        null,
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) == 0
        && libc::mount(
            writable,
            writable,
            null,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) == 0
        && setattr(c"/".as_ptr(), AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0)
        && setattr(writable, 0, 0, MOUNT_ATTR_RDONLY)
        && libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) == 0
}

pub(super) fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
}

/// Directories a stage may read: the system's, for the dynamic loader and libc.
const SYSTEM_DIRS: [&str; 8] = [
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc", "/proc", "/sys",
];

pub(super) fn run(dir: &RunDir, args: &[PathBuf], limits: &Limits) -> RunReport {
    let start = Instant::now();
    let setup_failed = |msg: String| RunReport {
        class: RunClass::SetupFailed,
        exit: None,
        stderr_tail: msg,
        wall_s: start.elapsed().as_secs_f64(),
    };
    let iso = Isolation::probe();
    let root = dir.root().to_path_buf();
    let out = dir.out();

    let ruleset = match iso.landlock_abi {
        Some(abi) => {
            let mut read: Vec<&Path> = SYSTEM_DIRS.iter().map(Path::new).collect();
            read.push(&root);
            // With a network namespace the kernel answers "network unreachable", which says
            // what happened; Landlock's TCP rules (EACCES) are the fallback without one.
            match landlock::ruleset(abi, &read, &out, !iso.namespaces) {
                Ok(fd) => Some(fd),
                Err(e) => return setup_failed(format!("landlock: {e}")),
            }
        }
        None => None,
    };
    let (stdout, stderr) = match (
        std::fs::File::create(root.join("stdout.txt")),
        std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(root.join("stderr.txt")),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => return setup_failed(format!("stdout/stderr files: {e}")),
    };
    let mut stderr_reader = match stderr.try_clone() {
        Ok(f) => f,
        Err(e) => return setup_failed(format!("stderr: {e}")),
    };

    // Everything the child needs, prepared before fork (and kept alive until spawn returns).
    let Ok(out_c) = CString::new(out.as_os_str().as_bytes()) else {
        return setup_failed(format!("output directory {} has a NUL byte", out.display()));
    };
    let filter = seccomp::filter();
    let plan = ChildPlan {
        agent: std::process::id() as libc::pid_t,
        namespaces: iso.namespaces.then(|| ns_flags(iso.run_as_uid.is_some())),
        writable: out_c.as_ptr() as usize,
        uid: iso.run_as_uid,
        landlock_fd: ruleset.as_ref().map(|f| f.as_raw_fd()),
        seccomp: filter.as_ref().map(|f| f.prog_addr()),
        rlimits: [
            (libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
            (
                libc::RLIMIT_NPROC,
                nproc_limit(iso, limits.max_processes),
                nproc_limit(iso, limits.max_processes),
            ),
            (
                libc::RLIMIT_FSIZE,
                limits.max_file_bytes,
                limits.max_file_bytes,
            ),
            (libc::RLIMIT_NOFILE, 256, 256),
            (libc::RLIMIT_CORE, 0, 0),
            // Soft below hard: SIGXCPU first (reported as a timeout), SIGKILL a second later.
            (
                libc::RLIMIT_CPU,
                limits.wall_s.ceil() as u64 + 1,
                limits.wall_s.ceil() as u64 + 2,
            ),
        ],
    };
    let mut cmd = Command::new(dir.binary());
    cmd.args(args)
        .current_dir(&out)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &out)
        .env("TMPDIR", &out)
        .env("LANG", "C.UTF-8")
        .env("RAYON_NUM_THREADS", "1")
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: the closure only makes system calls (see ChildPlan::enter).
    unsafe {
        cmd.pre_exec(move || plan.enter());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return setup_failed(format!("starting the stage: {e}")),
    };
    drop((ruleset, filter, out_c));

    // Wait without reaping (WNOWAIT), so that the process group is killed while its id
    // cannot have been reused; watch the wall clock and the output directory's size.
    let pid = child.id() as libc::pid_t;
    let deadline = start + Duration::from_secs_f64(limits.wall_s);
    let mut timed_out = false;
    let mut over_output = false;
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
        if polls.is_multiple_of(10) && dir_bytes(&out, 10_000) > limits.max_output_bytes {
            over_output = true;
        }
        if over_output || Instant::now() >= deadline {
            timed_out = !over_output;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Whatever is left of the group goes (with namespaces, P1's death takes the rest).
    // SAFETY: plain kill(2) of the child's own session, not yet reaped.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let status = child.wait().ok();

    let exit = status.map(|s| Exit {
        code: s.code(),
        signal: s.signal(),
    });
    let tail = read_tail(&mut stderr_reader, 8 << 10);
    let output = args
        .last()
        .is_some_and(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
    // A flooded stdout/stderr may hold no message at all: its size says what happened.
    let flooded = ["stdout.txt", "stderr.txt"]
        .iter()
        .any(|f| std::fs::metadata(root.join(f)).is_ok_and(|m| m.len() >= limits.max_file_bytes));
    let class = match exit {
        Some(_) if (flooded || over_output) && !timed_out => RunClass::OutputLimit,
        Some(e) => classify(e, timed_out, &tail, output),
        None => RunClass::SetupFailed,
    };
    RunReport {
        class,
        exit,
        stderr_tail: tail,
        wall_s: start.elapsed().as_secs_f64(),
    }
}

/// `RLIMIT_NPROC` counts every process of the user. As `nobody` or in a fresh user namespace
/// that is the sandbox; otherwise (no namespaces, not root) the user's existing processes are
/// added so that the limit means "this many more".
fn nproc_limit(iso: &Isolation, max: u64) -> u64 {
    if iso.run_as_uid.is_some() || iso.namespaces {
        return max;
    }
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

fn read_tail(f: &mut std::fs::File, max: u64) -> String {
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// What the children do between fork and exec. Addresses are of data the parent keeps alive.
#[derive(Clone, Copy)]
struct ChildPlan {
    /// The agent's pid: P1 checks its parent is still there after arming PDEATHSIG.
    agent: libc::pid_t,
    namespaces: Option<libc::c_int>,
    /// The output directory (a NUL-terminated string).
    writable: usize,
    uid: Option<u32>,
    landlock_fd: Option<i32>,
    seccomp: Option<usize>,
    rlimits: [(libc::__rlimit_resource_t, u64, u64); 6],
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
                p2 => wait_and_mirror(p2, Role::Outer),
            };
            // The working directory still points into the mount underneath the new writable
            // bind mount (std changed to it before this ran): enter it again.
            if !private_mounts(self.writable as *const libc::c_char)
                || libc::chdir(self.writable as *const libc::c_char) != 0
            {
                return Err(err());
            }
            if let Some(fd) = self.landlock_fd {
                if !landlock::add_read_in_child(fd, c"/proc") {
                    return Err(err());
                }
            }
            match libc::fork() {
                -1 => return Err(err()),
                0 => {} // P3: the stage
                p3 => wait_and_mirror(p3, Role::Init),
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

/// Closes the parent's descriptors (among them std's exec-error pipe, so that `spawn`
/// returns), waits for `child` (an init reaps every orphan while it waits) and ends the same
/// way: the outer process re-raises a signal; the init, which cannot signal itself, exits with
/// 128 + n, which the outer process turns back into signal n.
unsafe fn wait_and_mirror(child: libc::pid_t, role: Role) -> ! {
    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
        // Kernels before 5.9: close what the parent can have open.
        for fd in 3..65536 {
            libc::close(fd);
        }
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
    let sig = if libc::WIFSIGNALED(status) {
        libc::WTERMSIG(status)
    } else {
        let code = libc::WEXITSTATUS(status);
        // Only signals whose default action ends a process (not STOP, CONT, CHLD, ...).
        let terminates = |n: i32| (1..32).contains(&n) && !matches!(n, 17..=23 | 28);
        if role == Role::Outer && code > 128 && terminates(code - 128) {
            code - 128
        } else {
            libc::_exit(code)
        }
    };
    if role == Role::Init {
        libc::_exit(128 + sig);
    }
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    libc::setrlimit(libc::RLIMIT_CORE, &none);
    libc::signal(sig, libc::SIG_DFL);
    libc::kill(libc::getpid(), sig);
    libc::_exit(128 + sig)
}

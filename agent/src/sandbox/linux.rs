//! The Linux sandbox. Between fork and exec the child (P1) starts a new session, unshares PID,
//! network and mount namespaces, and forks: its child (P2) is PID 1 — the init — of the new
//! PID namespace, so when it exits every process in the namespace dies too. P2 makes its
//! mounts private, mounts a fresh `/proc` (the stage sees only its own processes) and forks
//! the stage (P3), an ordinary process (signals such as SIGXFSZ act on it as usual, which they
//! would not on an init). P3 drops to `nobody` when started by root, sets rlimits, enters
//! Landlock and execs the stage. P1 and P2 close their copies of the parent's descriptors (so
//! `spawn` returns), wait, and end as their child did (P2 reports a signal as exit 128 + n,
//! which P1 turns back into the signal). Each dies with its parent (`PR_SET_PDEATHSIG`).
//! Everything after fork is plain system calls: no allocation.

use super::{classify, landlock, Exit, Isolation, Limits, RunClass, RunDir, RunReport};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

pub(super) fn probe() -> Isolation {
    let root = unsafe { libc::geteuid() } == 0;
    let flags = ns_flags(root);
    let mut cmd = Command::new("/");
    // SAFETY: only system calls after fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => libc::_exit(if private_proc() { 0 } else { 1 }),
                p2 => wait_and_mirror(p2, Role::Outer),
            }
        });
    }
    let namespaces = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Isolation {
        namespaces,
        landlock_abi: landlock::abi(),
        run_as_uid: root.then_some(NOBODY),
    }
}

fn ns_flags(root: bool) -> libc::c_int {
    let user = if root { 0 } else { libc::CLONE_NEWUSER };
    user | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWNS
}

/// In a new mount namespace: stop mount propagation to the host, then mount a `/proc` of the
/// current PID namespace over the host's. Only system calls, on static strings.
unsafe fn private_proc() -> bool {
    let null = std::ptr::null::<libc::c_char>();
    libc::mount(
        null,
        c"/".as_ptr(),
        null,
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) == 0
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

    // Everything the child needs, computed before fork.
    let plan = ChildPlan {
        namespaces: iso.namespaces.then(|| ns_flags(iso.run_as_uid.is_some())),
        uid: iso.run_as_uid,
        landlock_fd: ruleset.as_ref().map(|f| f.as_raw_fd()),
        rlimits: [
            (libc::RLIMIT_AS, limits.memory_bytes),
            (libc::RLIMIT_NPROC, nproc_limit(iso, limits.max_processes)),
            (libc::RLIMIT_FSIZE, limits.max_file_bytes),
            (libc::RLIMIT_NOFILE, 256),
            (libc::RLIMIT_CORE, 0),
            (libc::RLIMIT_CPU, limits.wall_s.ceil() as u64 + 1),
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
    drop(ruleset);

    let deadline = start + Duration::from_secs_f64(limits.wall_s);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let pid = child.id() as i32;
                // SAFETY: plain kill(2); the group is the child's own session.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    // Whatever is left of the group (no namespaces) goes too.
    // SAFETY: as above.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };

    let exit = status.map(|s| Exit {
        code: s.code(),
        signal: s.signal(),
    });
    let tail = read_tail(&mut stderr_reader, 8 << 10);
    let output = args.last().is_some_and(|p| p.is_file());
    // A flooded stdout/stderr may hold no message at all: its size says what happened.
    let flooded = ["stdout.txt", "stderr.txt"]
        .iter()
        .any(|f| std::fs::metadata(root.join(f)).is_ok_and(|m| m.len() >= limits.max_file_bytes));
    let class = match exit {
        Some(_) if flooded && !timed_out => RunClass::OutputLimit,
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

fn read_tail(f: &mut std::fs::File, max: u64) -> String {
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// What the child does between fork and exec.
#[derive(Clone, Copy)]
struct ChildPlan {
    namespaces: Option<libc::c_int>,
    uid: Option<u32>,
    landlock_fd: Option<i32>,
    rlimits: [(libc::__rlimit_resource_t, u64); 6],
}

impl ChildPlan {
    /// # Safety
    /// Only between fork and exec of a single-threaded child.
    unsafe fn enter(&self) -> std::io::Result<()> {
        let err = std::io::Error::last_os_error;
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
            if !private_proc() {
                return Err(err());
            }
            if let Some(fd) = self.landlock_fd {
                if !landlock::add_read_in_child(fd, c"/proc") {
                    return Err(err());
                }
            }
            match libc::fork() {
                -1 => return Err(err()),
                0 => libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL), // P3: the stage
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
        for (resource, value) in self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(err());
            }
        }
        if let Some(fd) = self.landlock_fd {
            landlock::restrict_self(fd)?;
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
    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
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
        if role == Role::Outer && (129..160).contains(&code) {
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

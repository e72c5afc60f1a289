//! A seccomp filter for confined programs: no `socket(2)` of any family (named Unix sockets
//! are beyond the network namespace and Landlock) and no address for an unnamed one; no new
//! namespaces, mounts, tracing, BPF, io_uring, keyrings, kernel modules or IPC objects (they
//! outlive the run); no inotify or fanotify watches (a side channel Landlock does not cover);
//! no handles, clocks, swap, reboot or host names; no `O_TMPFILE`; no signal to the agent, to
//! a process group or to everyone; limits, priority and affinity of itself only. Built in the parent; the child only calls `prctl`.
//!
//! Beyond those, an allow-list ([`allowed`]): a call that is on no list fails with EPERM.
//!
//! A socket call kills the process with SIGSYS (`SECCOMP_RET_KILL_PROCESS`): the parent sees
//! the attempt in the exit status, whatever the process would have printed (the agent's
//! `outcome::classify` reads SIGSYS as a blocked network access). Everything else denied fails
//! with EPERM.
//!
//! Why BPF by hand and not `seccompiler` (Firecracker's): the filter is one program in which
//! the first match decides, with four different answers (allow; EPERM; ENOSYS for `clone3` and
//! `openat2`, so the C library falls back to calls whose flags are visible; kill for sockets).
//! A `seccompiler` filter has one match action and one mismatch action, so this would be four
//! stacked filters, and between stacked filters the kernel resolves two `ERRNO` answers by
//! installation order — which of EPERM and ENOSYS `clone3` gets would depend on that order,
//! where here it is written next to the call. The program is ~150 instructions built from two
//! helpers ([`stmt`], [`jump`]), checked by `agent/tests/sandbox.rs` and `containment.rs`.

/// Architectures with a filter (the audit arch value the kernel reports).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Namespace flags a `clone` may not carry.
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u32;

/// The filter program; keep it alive while the child may use it.
pub struct Filter {
    /// `prog` points into these: they live as long as the filter.
    #[allow(dead_code)]
    insns: Vec<libc::sock_filter>,
    prog: Box<libc::sock_fprog>,
}

impl Filter {
    /// Address of the `sock_fprog` to hand to the child.
    pub fn prog_addr(&self) -> usize {
        &*self.prog as *const libc::sock_fprog as usize
    }
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The filter for this architecture, or `None` where there is none. `agent` is the agent's
/// pid: no signal may reach it (Landlock's scoping does that only from ABI 6 on).
pub fn filter(agent: u32) -> Option<Filter> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        use libc::*;
        const LD: u32 = BPF_LD | BPF_W | BPF_ABS;
        const JEQ: u32 = BPF_JMP | BPF_JEQ | BPF_K;
        const JGE: u32 = BPF_JMP | BPF_JGE | BPF_K;
        const JSET: u32 = BPF_JMP | BPF_JSET | BPF_K;
        const AND: u32 = BPF_ALU | BPF_AND | BPF_K;
        const RET: u32 = BPF_RET | BPF_K;
        // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (low word first).
        const ARG0: u32 = 16;
        const ARG1: u32 = 24;
        const ARG2: u32 = 32;
        let errno = |e: i32| SECCOMP_RET_ERRNO | (e as u32 & SECCOMP_RET_DATA);
        let eperm = errno(EPERM);
        let kill = SECCOMP_RET_KILL_PROCESS;
        let mut denied: Vec<(c_long, u32)> = vec![];
        for nr in [
            SYS_unshare,
            SYS_setns,
            SYS_mount,
            SYS_umount2,
            SYS_pivot_root,
            SYS_ptrace,
            SYS_bpf,
            SYS_userfaultfd,
            SYS_perf_event_open,
            SYS_io_uring_setup,
            SYS_io_uring_enter,
            SYS_io_uring_register,
            SYS_keyctl,
            SYS_add_key,
            SYS_request_key,
            SYS_process_vm_readv,
            SYS_process_vm_writev,
            SYS_kexec_load,
            SYS_init_module,
            SYS_finit_module,
            SYS_delete_module,
            SYS_open_tree,
            SYS_move_mount,
            SYS_fsopen,
            SYS_fsmount,
            SYS_fsconfig,
            SYS_mount_setattr,
            // System V and POSIX IPC objects outlive the run (and would let runs talk).
            SYS_shmget,
            SYS_shmat,
            SYS_shmctl,
            SYS_msgget,
            SYS_msgsnd,
            SYS_msgrcv,
            SYS_msgctl,
            SYS_semget,
            SYS_semop,
            SYS_semtimedop,
            SYS_semctl,
            SYS_mq_open,
            SYS_mq_unlink,
            SYS_mq_timedsend,
            SYS_mq_timedreceive,
            SYS_mq_notify,
            SYS_mq_getsetattr,
            // Signals by thread id or through a pidfd: not needed, and not checked below.
            SYS_tkill,
            SYS_pidfd_send_signal,
            SYS_pidfd_getfd,
            // Watching files: Landlock does not cover it, and a watch on a directory the run
            // cannot read still tells it the names and events of what happens there (other
            // cells' runs, the repository, results): a channel between concurrent runs.
            SYS_inotify_init1,
            SYS_inotify_add_watch,
            SYS_inotify_rm_watch,
            SYS_fanotify_init,
            SYS_fanotify_mark,
            // Files by handle, bypassing path checks; the host's clock, log, accounting,
            // quotas, swap, names and power: no stage or compiler needs any of them.
            SYS_name_to_handle_at,
            SYS_open_by_handle_at,
            SYS_syslog,
            SYS_acct,
            SYS_quotactl,
            SYS_swapon,
            SYS_swapoff,
            SYS_reboot,
            SYS_sethostname,
            SYS_setdomainname,
            SYS_settimeofday,
            SYS_clock_settime,
            SYS_clock_adjtime,
            SYS_adjtimex,
            SYS_vhangup,
        ] {
            denied.push((nr, eperm));
        }
        // The first inotify call exists on x86_64 only (aarch64 has `inotify_init1` alone).
        #[cfg(target_arch = "x86_64")]
        denied.push((SYS_inotify_init, eperm));
        // socket(2) of any family, and the calls that would give an unnamed socket an
        // address: killed, so the parent sees the attempt (SIGSYS).
        for nr in [
            SYS_socket,
            SYS_connect,
            SYS_bind,
            SYS_listen,
            SYS_accept,
            SYS_accept4,
        ] {
            denied.push((nr, kill));
        }
        // clone3 and openat2 pass their flags in memory, out of the filter's sight: ENOSYS
        // makes the C library fall back to clone and openat, whose flags are checked below.
        denied.push((SYS_clone3, errno(ENOSYS)));
        denied.push((SYS_openat2, errno(ENOSYS)));

        let mut f = vec![
            stmt(LD, 4), // seccomp_data.arch
            jump(JEQ, AUDIT_ARCH, 1, 0),
            stmt(RET, kill),
            stmt(LD, 0), // seccomp_data.nr
        ];
        #[cfg(target_arch = "x86_64")]
        {
            // x32 system calls (nr | 0x40000000) would bypass the numbers below.
            f.push(jump(JGE, 0x4000_0000, 0, 1));
            f.push(stmt(RET, kill));
        }
        for (nr, ret) in denied {
            f.push(jump(JEQ, nr as u32, 0, 1));
            f.push(stmt(RET, ret));
        }
        // Each block below: if nr matches, decide and return; otherwise skip the block
        // (`len` instructions after the test) with the accumulator still holding nr.
        let block = |f: &mut Vec<libc::sock_filter>, nr: c_long, body: Vec<libc::sock_filter>| {
            f.push(jump(JEQ, nr as u32, 0, body.len() as u8));
            f.extend(body);
        };
        // clone(flags, ...): no namespace flags.
        block(
            &mut f,
            SYS_clone,
            vec![
                stmt(LD, ARG0),
                jump(JSET, CLONE_NS_FLAGS, 0, 1),
                stmt(RET, eperm),
                stmt(RET, SECCOMP_RET_ALLOW),
            ],
        );
        // No O_TMPFILE: a file that is never linked grows out of sight of the output
        // directory and vanishes with the process (the C library falls back to a named
        // temporary file).
        const O_TMPFILE_BIT: u32 = 0o2000_0000; // __O_TMPFILE
        block(
            &mut f,
            SYS_openat,
            vec![
                stmt(LD, ARG2),
                jump(JSET, O_TMPFILE_BIT, 0, 1),
                stmt(RET, eperm),
                stmt(RET, SECCOMP_RET_ALLOW),
            ],
        );
        #[cfg(target_arch = "x86_64")]
        block(
            &mut f,
            SYS_open,
            vec![
                stmt(LD, ARG1),
                jump(JSET, O_TMPFILE_BIT, 0, 1),
                stmt(RET, eperm),
                stmt(RET, SECCOMP_RET_ALLOW),
            ],
        );
        // socketpair: a connected AF_UNIX stream or seqpacket pair only (Rust's std uses one
        // to spawn processes); a datagram socket could send to any named socket on the host.
        block(
            &mut f,
            SYS_socketpair,
            vec![
                stmt(LD, ARG0),
                jump(JEQ, AF_UNIX as u32, 1, 0),
                stmt(RET, kill),
                stmt(LD, ARG1),
                stmt(AND, 0xf),
                jump(JEQ, SOCK_STREAM as u32, 2, 0),
                jump(JEQ, SOCK_SEQPACKET as u32, 1, 0),
                stmt(RET, kill),
                stmt(RET, SECCOMP_RET_ALLOW),
            ],
        );
        // kill(pid, sig) and tgkill(tgid, ...): never the agent, never a process group or -1.
        for nr in [SYS_kill, SYS_tgkill] {
            block(
                &mut f,
                nr,
                vec![
                    stmt(LD, ARG0),
                    jump(JGE, 0x8000_0000, 1, 0),
                    jump(JEQ, agent, 0, 1),
                    stmt(RET, eperm),
                    stmt(RET, SECCOMP_RET_ALLOW),
                ],
            );
        }
        // Priority of itself only: which = PRIO_PROCESS (0) and who = 0 (PRIO_USER with 0
        // would be every process of its uid: the agent's too where they share one).
        block(
            &mut f,
            SYS_setpriority,
            vec![
                stmt(LD, ARG0),
                jump(JEQ, 0, 1, 0),
                stmt(RET, eperm),
                stmt(LD, ARG1),
                jump(JEQ, 0, 1, 0),
                stmt(RET, eperm),
                stmt(RET, SECCOMP_RET_ALLOW),
            ],
        );
        // Limits and CPU affinity of itself only (pid 0).
        for (nr, arg) in [(SYS_prlimit64, ARG0), (SYS_sched_setaffinity, ARG0)] {
            block(
                &mut f,
                nr,
                vec![
                    stmt(LD, arg),
                    jump(JEQ, 0, 1, 0),
                    stmt(RET, eperm),
                    stmt(RET, SECCOMP_RET_ALLOW),
                ],
            );
        }
        // Everything else: only what is on the list of what a stage, rustc, the C compiler
        // and the linker need (traced from every build and run of the test suite, in
        // `allowed`), the rest refused with EPERM.
        for nr in allowed() {
            f.push(jump(JEQ, nr as u32, 0, 1));
            f.push(stmt(RET, SECCOMP_RET_ALLOW));
        }
        f.push(stmt(RET, eperm));
        let prog = Box::new(sock_fprog {
            len: f.len() as u16,
            filter: f.as_ptr() as *mut sock_filter,
        });
        Some(Filter { insns: f, prog })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = agent;
        None
    }
}

/// The system calls a confined program may make besides those the filter checks argument by
/// argument (`clone`, `openat`/`open`, `socketpair`, `kill`/`tgkill`, `prlimit64`,
/// `setpriority`, `sched_setaffinity`). What the files, processes and memory they reach are is
/// decided elsewhere (Landlock, the namespaces, the control groups, rlimits): this list only
/// keeps the kernel's surface to what a stage (std, threads, rayon, oxyroot, forust-ml),
/// `rustc`, `cc` and `ld` use. It was taken from `strace -f` of every confined build and run of
/// the test suite (70 distinct calls, the attacks among them), plus the close relatives a Rust
/// program may reach for the same work (`pwrite64` beside `pread64`, `*at` forms, `nanosleep`
/// beside `clock_nanosleep`). Not on it, and so refused: watching files, IPC objects, timers,
/// event and signal descriptors, `memfd_create` (a file with no name in `out/`), `epoll`,
/// extended attributes, ownership changes, `chroot`, `personality`, memory policy, Landlock,
/// the `seccomp(2)` call (`prctl` may still add a filter, which can only tighten), and
/// anything new the kernel adds. Still allowed, and so not closed: advisory locks (`flock`,
/// `fcntl`) on files two runs can both read, and `sysinfo`'s host load — narrow channels
/// between concurrent runs that `rustc` and std need.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn allowed() -> Vec<libc::c_long> {
    use libc::*;
    let mut list = vec![
        // Memory.
        SYS_brk,
        SYS_mmap,
        SYS_munmap,
        SYS_mremap,
        SYS_mprotect,
        SYS_madvise,
        // Threads, their synchronisation and scheduling hints.
        SYS_futex,
        SYS_set_robust_list,
        SYS_get_robust_list,
        SYS_set_tid_address,
        SYS_rseq,
        SYS_sched_yield,
        SYS_sched_getaffinity,
        SYS_getpriority,
        SYS_gettid,
        SYS_getpid,
        SYS_getppid,
        SYS_exit,
        SYS_exit_group,
        // Thread names, and the restricting options (no-new-privileges, death signal).
        SYS_prctl,
        // Signals (to itself; `kill` and `tgkill` are checked above).
        SYS_rt_sigaction,
        SYS_rt_sigprocmask,
        SYS_rt_sigreturn,
        SYS_rt_sigtimedwait,
        SYS_rt_sigsuspend,
        SYS_sigaltstack,
        SYS_restart_syscall,
        // Time.
        SYS_clock_gettime,
        SYS_clock_getres,
        SYS_clock_nanosleep,
        SYS_nanosleep,
        SYS_gettimeofday,
        SYS_times,
        SYS_getrusage,
        // Descriptors and file contents.
        SYS_read,
        SYS_write,
        SYS_pread64,
        SYS_pwrite64,
        SYS_readv,
        SYS_writev,
        SYS_preadv,
        SYS_pwritev,
        SYS_lseek,
        SYS_close,
        SYS_close_range,
        SYS_dup,
        SYS_dup3,
        SYS_fcntl,
        SYS_ioctl,
        SYS_flock,
        SYS_fsync,
        SYS_fdatasync,
        SYS_ftruncate,
        SYS_fallocate,
        SYS_fadvise64,
        SYS_copy_file_range,
        SYS_sendfile,
        SYS_pipe2,
        SYS_ppoll,
        SYS_pselect6,
        // Names and metadata (Landlock and the read-only mounts decide where).
        SYS_newfstatat,
        SYS_fstat,
        SYS_statx,
        SYS_statfs,
        SYS_fstatfs,
        SYS_faccessat,
        SYS_faccessat2,
        SYS_readlinkat,
        SYS_getdents64,
        SYS_getcwd,
        SYS_chdir,
        SYS_fchdir,
        SYS_mkdirat,
        SYS_unlinkat,
        SYS_renameat,
        SYS_renameat2,
        SYS_linkat,
        SYS_symlinkat,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_umask,
        SYS_utimensat,
        // Processes (the process limit, the namespace and the group hold them).
        SYS_execve,
        SYS_wait4,
        SYS_waitid,
        SYS_setsid,
        SYS_setpgid,
        SYS_getpgid,
        SYS_getsid,
        SYS_getuid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getegid,
        SYS_getresuid,
        SYS_getresgid,
        SYS_getgroups,
        SYS_uname,
        SYS_sysinfo,
        SYS_getrandom,
        // Talking over the one kind of socket it can have (a stream pair, checked above).
        SYS_recvfrom,
        SYS_recvmsg,
        SYS_sendto,
        SYS_sendmsg,
        SYS_shutdown,
    ];
    // The older forms x86_64 still has (aarch64 has only the `*at` and newer ones).
    #[cfg(target_arch = "x86_64")]
    list.extend([
        SYS_arch_prctl,
        SYS_stat,
        SYS_lstat,
        SYS_access,
        SYS_readlink,
        SYS_mkdir,
        SYS_rmdir,
        SYS_unlink,
        SYS_rename,
        SYS_link,
        SYS_symlink,
        SYS_chmod,
        SYS_pipe,
        SYS_poll,
        SYS_select,
        SYS_dup2,
        SYS_vfork,
        SYS_fork,
        SYS_getpgrp,
        SYS_getrlimit,
        SYS_time,
    ]);
    list
}

/// Installs the filter (`prog` from [`Filter::prog_addr`]). Needs `PR_SET_NO_NEW_PRIVS`.
///
/// # Safety
/// Only in the child between fork and exec, with the parent's `Filter` still alive.
pub unsafe fn install(prog: usize) -> std::io::Result<()> {
    if libc::prctl(
        libc::PR_SET_SECCOMP,
        libc::SECCOMP_MODE_FILTER,
        prog as *const libc::sock_fprog,
    ) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

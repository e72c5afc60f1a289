//! A seccomp filter for confined programs: no `socket(2)` of any family (named Unix sockets
//! are beyond the network namespace and Landlock), no new namespaces, mounts, tracing, BPF, io_uring,
//! keyrings or kernel modules. Built in the parent; the child only calls `prctl`.
//!
//! A socket call kills the process with SIGSYS (`SECCOMP_RET_KILL_PROCESS`): the parent sees
//! the attempt in the exit status, whatever the process would have printed ([`super::classify`]
//! reads SIGSYS as a blocked network access). Everything else denied fails with EPERM.

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

/// The filter for this architecture, or `None` where there is none.
pub fn filter() -> Option<Filter> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        use libc::*;
        const LD: u32 = BPF_LD | BPF_W | BPF_ABS;
        const JEQ: u32 = BPF_JMP | BPF_JEQ | BPF_K;
        const JGE: u32 = BPF_JMP | BPF_JGE | BPF_K;
        const JSET: u32 = BPF_JMP | BPF_JSET | BPF_K;
        const RET: u32 = BPF_RET | BPF_K;
        let errno = |e: i32| SECCOMP_RET_ERRNO | (e as u32 & SECCOMP_RET_DATA);
        let denied: Vec<(c_long, i32)> = {
            let mut v: Vec<(c_long, i32)> = vec![];
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
            ] {
                v.push((nr, EPERM));
            }
            // clone3 passes its flags in memory, out of the filter's sight: ENOSYS makes
            // the C library fall back to clone, whose flags are checked below.
            v.push((SYS_clone3, ENOSYS));
            v
        };
        let mut f = vec![
            stmt(LD, 4), // seccomp_data.arch
            jump(JEQ, AUDIT_ARCH, 1, 0),
            stmt(RET, SECCOMP_RET_KILL_PROCESS),
            stmt(LD, 0), // seccomp_data.nr
        ];
        #[cfg(target_arch = "x86_64")]
        {
            // x32 system calls (nr | 0x40000000) would bypass the numbers below.
            f.push(jump(JGE, 0x4000_0000, 0, 1));
            f.push(stmt(RET, SECCOMP_RET_KILL_PROCESS));
        }
        // socket(2) of any family. (socketpair(2) stays: an unnamed connected pair reaches
        // nothing outside, and Rust's std uses one to spawn processes — rustc does.)
        f.push(jump(JEQ, SYS_socket as u32, 0, 1));
        f.push(stmt(RET, SECCOMP_RET_KILL_PROCESS));
        for (nr, e) in denied {
            f.push(jump(JEQ, nr as u32, 0, 1));
            f.push(stmt(RET, errno(e)));
        }
        // clone(flags, ...): no namespace flags (args[0], low word at offset 16).
        f.push(jump(JEQ, SYS_clone as u32, 0, 3));
        f.push(stmt(LD, 16));
        f.push(jump(JSET, CLONE_NS_FLAGS, 0, 1));
        f.push(stmt(RET, errno(EPERM)));
        f.push(stmt(RET, SECCOMP_RET_ALLOW));
        let prog = Box::new(sock_fprog {
            len: f.len() as u16,
            filter: f.as_ptr() as *mut sock_filter,
        });
        Some(Filter { insns: f, prog })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
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

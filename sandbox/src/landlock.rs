//! The three Landlock system calls, raw: the ruleset is built in the parent (it may allocate);
//! between fork and exec the child adds the rule for the `/proc` it mounted (open, add-rule,
//! close) and calls `landlock_restrict_self`: system calls only.
//!
//! Why not the `landlock` crate: its rules are added through `PathFd::new` (a `CString`) and
//! its errors are allocated values, and the child of a multi-threaded parent may make only
//! async-signal-safe calls between fork and exec — no allocation — while the `/proc` rule can
//! only be added there, after the child has mounted its own `/proc`. Three system calls and
//! their structs are what this needs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const SYS_CREATE_RULESET: libc::c_long = 444;
const SYS_ADD_RULE: libc::c_long = 445;
const SYS_RESTRICT_SELF: libc::c_long = 446;
const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

/// File-system rights (uapi `LANDLOCK_ACCESS_FS_*`).
pub const EXECUTE: u64 = 1 << 0;
pub const WRITE_FILE: u64 = 1 << 1;
pub const READ_FILE: u64 = 1 << 2;
pub const READ_DIR: u64 = 1 << 3;
pub const READ: u64 = EXECUTE | READ_FILE | READ_DIR;
pub const REMOVE_DIR: u64 = 1 << 4;
pub const REMOVE_FILE: u64 = 1 << 5;
pub const MAKE_CHAR: u64 = 1 << 6;
pub const MAKE_SOCK: u64 = 1 << 9;
pub const MAKE_FIFO: u64 = 1 << 10;
pub const MAKE_BLOCK: u64 = 1 << 11;
pub const MAKE_SYM: u64 = 1 << 12;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The kernel's Landlock ABI version, `None` when Landlock is off or absent.
pub fn abi() -> Option<u32> {
    // SAFETY: the version query takes no pointer.
    let v = unsafe {
        libc::syscall(
            SYS_CREATE_RULESET,
            std::ptr::null::<u8>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

/// Every file-system right the ABI knows.
fn fs_rights(abi: u32) -> u64 {
    let mut all = (1 << 13) - 1; // ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2 {
        all |= 1 << 13; // REFER
    }
    if abi >= 3 {
        all |= 1 << 14; // TRUNCATE
    }
    if abi >= 5 {
        all |= 1 << 15; // IOCTL_DEV
    }
    all
}

/// A ruleset: everything denied but `read` beneath each of `read_dirs` (those that exist),
/// everything beneath `write_dir` but special files (and, when `no_remove`, removals and
/// links), and read/write of `/dev/null`; TCP bind/connect denied when `deny_tcp` (ABI ≥ 4);
/// signals and abstract sockets scoped (ABI ≥ 6).
pub fn ruleset(
    abi: u32,
    read_dirs: &[&Path],
    write_dir: &Path,
    deny_tcp: bool,
    no_remove: bool,
) -> std::io::Result<OwnedFd> {
    let fs = fs_rights(abi);
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: if deny_tcp && abi >= 4 { 0b11 } else { 0 },
        scoped: if abi >= 6 { 0b11 } else { 0 },
    };
    let size = match abi {
        1..=3 => 8usize,
        4 | 5 => 16,
        _ => 24,
    };
    // SAFETY: attr outlives the call and `size` never exceeds its size.
    let fd = unsafe { libc::syscall(SYS_CREATE_RULESET, &attr as *const RulesetAttr, size, 0u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for path in read_dirs {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => add(&ruleset, path, READ)?,
            // A rule on a file may carry only file rights.
            Ok(_) => add(&ruleset, path, EXECUTE | READ_FILE)?,
            Err(_) => {}
        }
    }
    // No sockets, FIFOs or device nodes anywhere. Without removal, a file cannot be unlinked
    // while still open and growing, out of sight of the output directory's size; for a run
    // (`no_remove`) no links either: the agent reads its outputs.
    let mut write = fs & !(MAKE_CHAR | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK);
    if no_remove {
        write &= !(REMOVE_DIR | REMOVE_FILE | MAKE_SYM);
    }
    add(&ruleset, write_dir, write)?;
    add(&ruleset, Path::new("/dev/null"), READ_FILE | WRITE_FILE)?;
    Ok(ruleset)
}

fn add(ruleset: &OwnedFd, path: &Path, access: u64) -> std::io::Result<()> {
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: file.as_raw_fd(),
    };
    // SAFETY: attr outlives the call.
    let r = unsafe {
        libc::syscall(
            SYS_ADD_RULE,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("landlock rule for {}: {e}", path.display()),
        ));
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// Adds a read rule for `path` from the child (for the `/proc` it mounted after the ruleset
/// was built). Only system calls.
///
/// # Safety
/// `ruleset` must be a Landlock ruleset descriptor.
pub unsafe fn add_read_in_child(ruleset: i32, path: &std::ffi::CStr) -> bool {
    let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let attr = PathBeneathAttr {
        allowed_access: READ,
        parent_fd: fd,
    };
    let r = libc::syscall(
        SYS_ADD_RULE,
        ruleset,
        RULE_PATH_BENEATH,
        &attr as *const PathBeneathAttr,
        0u32,
    );
    libc::close(fd);
    r == 0
}

/// Enforces the ruleset on the calling process (async-signal-safe: one system call).
///
/// # Safety
/// Meant for the child between fork and exec; `fd` must be a Landlock ruleset.
pub unsafe fn restrict_self(fd: i32) -> std::io::Result<()> {
    // (The caller has set PR_SET_NO_NEW_PRIVS, which this needs.)
    if libc::syscall(SYS_RESTRICT_SELF, fd, 0u32) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

//! Per-run control groups: one memory limit, one process limit and (where a `cpu` controller
//! exists) one CPU quota for everything a run starts (per-process rlimits add up: eight
//! processes under a 2 GiB address-space limit are 16 GiB; a spinning run would otherwise take
//! every core from its neighbours), and what the kernel says happened (OOM kills, refused
//! forks).
//!
//! Two layouts are supported:
//! * cgroup v2 (`memory.max`, `pids.max`, `memory.events` `oom_kill`, `pids.events` `max`),
//!   where the unified hierarchy has the `memory` and `pids` controllers;
//! * cgroup v1, where they are separate hierarchies (`memory.limit_in_bytes`,
//!   `memory.oom_control` `oom_kill`, `pids.max`, `pids.events` `max`) — the hybrid layout of
//!   this project's machines, where the v2 mount has neither controller.
//!
//! Groups are created beneath the agent's own group of each hierarchy (read from
//! `/proc/self/cgroup`), so a run can never escape a limit the agent itself is under. The
//! first process of the run joins them by writing `0` to the `cgroup.procs` descriptors opened
//! here, before it starts anything; its descendants inherit them. A group is removed when the
//! run is dropped (after its processes are dead).
//!
//! Why not `cgroups-rs`: it adds a task by writing its pid, either from outside once the
//! process exists (a confined program could fork before it is moved) or from inside the child
//! through calls that allocate, which the child of a multi-threaded parent may not do between
//! fork and exec. Here the child joins before it runs anything, with one `write(2)` to a
//! descriptor the parent opened.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The groups of one run.
pub struct RunGroups {
    memory: PathBuf,
    /// The same as `memory` on v2.
    pids: PathBuf,
    /// v1's `cpu` group of the run, when there is a CPU controller (on v2 the quota is set on
    /// `memory`, the one group).
    cpu: Option<PathBuf>,
    v2: bool,
    /// `cgroup.procs` of each group, for the child to join (`0` = itself).
    pub procs: Vec<File>,
}

/// What the kernel counted in a run's groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Processes killed by the OOM killer at the group's memory limit.
    pub oom_kills: u64,
    /// Forks refused at the group's process limit.
    pub fork_refusals: u64,
}

/// Where groups can be made on this machine: (memory dir, pids dir, v2?), or why not.
pub fn locate() -> Result<(PathBuf, PathBuf, bool), String> {
    static WHERE: std::sync::OnceLock<Result<(PathBuf, PathBuf, bool), String>> =
        std::sync::OnceLock::new();
    WHERE
        .get_or_init(|| {
            let own = std::fs::read_to_string("/proc/self/cgroup")
                .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
            let mut v1_memory = None;
            let mut v1_pids = None;
            let mut v2 = None;
            for line in own.lines() {
                let mut parts = line.splitn(3, ':');
                let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let path = path.trim_start_matches('/');
                for c in ctrls.split(',') {
                    match c {
                        "memory" => v1_memory = Some(Path::new("/sys/fs/cgroup/memory").join(path)),
                        "pids" => v1_pids = Some(Path::new("/sys/fs/cgroup/pids").join(path)),
                        "" => {
                            let base = if Path::new("/sys/fs/cgroup/unified").is_dir() {
                                "/sys/fs/cgroup/unified"
                            } else {
                                "/sys/fs/cgroup"
                            };
                            v2 = Some(Path::new(base).join(path));
                        }
                        _ => {}
                    }
                }
            }
            let writable = |d: &Path| {
                let c =
                    std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).unwrap_or_default();
                // SAFETY: access(2) on a NUL-terminated path.
                unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
            };
            if let (Some(m), Some(p)) = (&v1_memory, &v1_pids) {
                if writable(m) && writable(p) && m.join("memory.limit_in_bytes").exists() {
                    return Ok((m.clone(), p.clone(), false));
                }
            }
            if let Some(u) = v2 {
                let ctrls =
                    std::fs::read_to_string(u.join("cgroup.controllers")).unwrap_or_default();
                let has = |c: &str| ctrls.split_whitespace().any(|x| x == c);
                if has("memory") && has("pids") && writable(&u) && enable_v2(&u).is_ok() {
                    return Ok((u.clone(), u, true));
                }
            }
            Err("no writable cgroup hierarchy with the memory and pids controllers".into())
        })
        .clone()
}

/// Where a run's CPU quota can be set: v1's `cpu` hierarchy (the agent's group in it), or the
/// v2 group of [`locate`] when its controllers include `cpu`. `None`: no quota on this machine.
pub fn locate_cpu() -> Option<(PathBuf, bool)> {
    static WHERE: std::sync::OnceLock<Option<(PathBuf, bool)>> = std::sync::OnceLock::new();
    WHERE
        .get_or_init(|| {
            let (base, _, v2) = locate().ok()?;
            if v2 {
                let ctrls = std::fs::read_to_string(base.join("cgroup.subtree_control"))
                    .unwrap_or_default();
                let has = ctrls.split_whitespace().any(|c| c == "cpu")
                    || std::fs::write(base.join("cgroup.subtree_control"), "+cpu").is_ok();
                return has.then_some((base, true));
            }
            let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
            own.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                if !ctrls.split(',').any(|c| c == "cpu") {
                    return None;
                }
                // Mounted as `cpu` or `cpu,cpuacct` (with a `cpu` link to it).
                let dir = Path::new("/sys/fs/cgroup/cpu").join(path.trim_start_matches('/'));
                // Usable only if a group can be made here and given a quota (a read-only
                // hierarchy, or a parent's quota below one core, would refuse it).
                let probe = dir.join(format!("hep-cpu-probe-{}", std::process::id()));
                let ok = std::fs::create_dir(&probe).is_ok() && {
                    let set = std::fs::write(probe.join("cpu.cfs_quota_us"), "10000").is_ok();
                    let _ = std::fs::remove_dir(&probe);
                    set
                };
                ok.then_some((dir, false))
            })
        })
        .clone()
}

/// The CPU quota of v1 group `dir`'s nearest limited ancestor, in cores (`None`: unlimited).
/// A child's quota may not exceed it.
fn v1_parent_cores(dir: &Path) -> Option<f64> {
    dir.ancestors().skip(1).find_map(|d| {
        let read = |f: &str| -> Option<f64> {
            std::fs::read_to_string(d.join(f)).ok()?.trim().parse().ok()
        };
        let (quota, period) = (read("cpu.cfs_quota_us")?, read("cpu.cfs_period_us")?);
        (quota > 0.0 && period > 0.0).then(|| quota / period)
    })
}

/// Enables the memory and pids controllers for the children of the agent's v2 group `own`.
/// A non-root v2 group with processes cannot do that ("no internal processes"): the agent
/// first moves itself into a leaf group of its own, `own/hep-agent-PID` (it stays there; the
/// runs' groups are its siblings). Not verified on this project's machines, whose v2 mount has
/// neither controller.
fn enable_v2(own: &Path) -> std::io::Result<()> {
    let control = own.join("cgroup.subtree_control");
    let want = "+memory +pids";
    if std::fs::write(&control, want).is_ok() {
        return Ok(());
    }
    let leaf = own.join(format!("hep-agent-{}", std::process::id()));
    if !leaf.is_dir() {
        std::fs::create_dir(&leaf)?;
    }
    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())?;
    std::fs::write(&control, want)
}

impl RunGroups {
    /// Creates the groups of one run with these limits (`cpus`: the CPU quota in cores,
    /// where a CPU controller exists).
    pub fn create(memory_bytes: u64, max_processes: u64, cpus: f64) -> Result<Self, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let (mem_base, pids_base, v2) = locate()?;
        let name = format!(
            "hep-run-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let err = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
        let memory = mem_base.join(&name);
        let pids = if v2 {
            memory.clone()
        } else {
            pids_base.join(&name)
        };
        std::fs::create_dir(&memory).map_err(|e| err("creating", &memory, e))?;
        let cpu = match locate_cpu() {
            Some((base, false)) => Some(base.join(&name)),
            _ => None,
        };
        let mut g = RunGroups {
            memory,
            pids,
            cpu,
            v2,
            procs: vec![],
        };
        if !v2 {
            std::fs::create_dir(&g.pids).map_err(|e| err("creating", &g.pids, e))?;
        }
        // The CPU group is best-effort: where it cannot be made, the run has no quota (as
        // `Isolation::cpu_quota` says of machines without a controller), never no run.
        if let Some(c) = &g.cpu {
            if std::fs::create_dir(c).is_err() {
                g.cpu = None;
            }
        }
        let write =
            |p: PathBuf, v: String| std::fs::write(&p, v).map_err(|e| err("writing", &p, e));
        if v2 {
            write(g.memory.join("memory.max"), memory_bytes.to_string())?;
            write(g.memory.join("memory.swap.max"), "0".into()).ok();
            write(g.pids.join("pids.max"), max_processes.to_string())?;
        } else {
            write(
                g.memory.join("memory.limit_in_bytes"),
                memory_bytes.to_string(),
            )?;
            // No swap either, where the kernel accounts it (memsw ≥ the memory limit).
            write(
                g.memory.join("memory.memsw.limit_in_bytes"),
                memory_bytes.to_string(),
            )
            .ok();
            write(g.pids.join("pids.max"), max_processes.to_string())?;
        }
        // The quota per 100 ms period: `cpus` cores' worth, at most a limited ancestor's.
        let period = 100_000u64;
        let cores = match g.cpu.as_deref().and_then(v1_parent_cores) {
            Some(parent) => cpus.min(parent),
            None => cpus,
        };
        let quota = ((cores.max(0.01) * period as f64) as u64).max(1000);
        if let Some(c) = g.cpu.clone() {
            let set = std::fs::write(c.join("cpu.cfs_period_us"), period.to_string())
                .and_then(|_| std::fs::write(c.join("cpu.cfs_quota_us"), quota.to_string()));
            if set.is_err() {
                let _ = std::fs::remove_dir(&c);
                g.cpu = None;
            }
        } else if v2 && locate_cpu().is_some() {
            // The kernel applies the smaller of this and every ancestor's `cpu.max`.
            let _ = std::fs::write(g.memory.join("cpu.max"), format!("{quota} {period}"));
        }
        for dir in g.dirs() {
            let p = dir.join("cgroup.procs");
            let f = File::options()
                .write(true)
                .open(&p)
                .map_err(|e| err("opening", &p, e))?;
            g.procs.push(f);
        }
        Ok(g)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = if self.v2 {
            vec![self.memory.clone()]
        } else {
            vec![self.memory.clone(), self.pids.clone()]
        };
        dirs.extend(self.cpu.clone());
        dirs
    }

    /// What the kernel counted so far.
    pub fn events(&self) -> Events {
        let count = |file: &Path, key: &str| -> u64 {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse().ok()).flatten()
                })
                .unwrap_or(0)
        };
        let oom = if self.v2 {
            count(&self.memory.join("memory.events"), "oom_kill")
        } else {
            count(&self.memory.join("memory.oom_control"), "oom_kill")
        };
        Events {
            oom_kills: oom,
            fork_refusals: count(&self.pids.join("pids.events"), "max"),
        }
    }

    /// Kills every process left in the groups (v2: `cgroup.kill`; v1: SIGKILL each member,
    /// again until none is left, since members may still be forking).
    pub fn kill_all(&self) {
        if self.v2 && std::fs::write(self.memory.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for _ in 0..100 {
            let mut any = false;
            for dir in self.dirs() {
                for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
                {
                    any = true;
                    kill_member(pid, &dir);
                }
            }
            if !any {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// SIGKILL to `pid` if it is (still) a member of the group `dir`: through a pidfd, so that a
/// pid that exited and was reused between the read of `cgroup.procs` and the signal is never
/// hit; plain kill(2) where pidfds do not exist (kernels before 5.3).
fn kill_member(pid: libc::pid_t, dir: &Path) {
    // SAFETY: pidfd_open(2) and pidfd_send_signal(2) on a descriptor we own and close.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if fd < 0 {
            if *libc::__errno_location() == libc::ENOSYS {
                libc::kill(pid, libc::SIGKILL);
            }
            return;
        }
        // The pidfd pins the process: if it is in the group now, it is the run's.
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let member = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/{name}"))));
        if member {
            libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, 0usize, 0u32);
        }
        libc::close(fd);
    }
}

impl Drop for RunGroups {
    fn drop(&mut self) {
        self.procs.clear();
        for dir in self.dirs() {
            // Processes just killed may take a moment to leave the group.
            for _ in 0..200 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                self.kill_all();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

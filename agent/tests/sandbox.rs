//! Generated code that misbehaves is stopped or blocked by the sandbox, and classified from
//! what the kernel reports. Each stage here is compiled through the real (confined) stage
//! build; the static screen is not involved: these are what would get past it.

mod support;

use agent::outcome::{RunClass, RunReport};
use sandbox::{Isolation, Limits, RunDir};

fn run(body: &str, limits: &Limits) -> (RunReport, RunDir) {
    support::run_stage(body, limits)
}

/// The run ended at a whole-run limit: seen by the kernel's control groups where there are
/// some; without them (not root), limits are per process and only the stage's own words say
/// which it hit.
fn limited(r: &RunReport, class: RunClass) {
    if Isolation::current().cgroups.is_some() {
        assert_eq!(r.class, class, "{r:?}");
    } else {
        assert_eq!(r.claim, Some(class), "{r:?}");
    }
}

fn quick() -> Limits {
    Limits {
        wall_s: 10.0,
        ..Limits::default()
    }
}

#[test]
fn this_machine_isolates() {
    // The guarantees below need Landlock (files) and seccomp (sockets); namespaces add the
    // private /proc and the kill-everything init. Say plainly what the machine lacks.
    let iso = Isolation::probe();
    eprintln!("{iso:?}");
    assert!(iso.landlock_abi.is_some(), "no Landlock here: {iso:?}");
    assert!(
        iso.seccomp,
        "no seccomp filter for this architecture: {iso:?}"
    );
}

#[test]
fn a_well_behaved_stage_runs() {
    let (r, dir) = run(
        "let mut h = Histogram::new(*b); h.entries = 2; Ok(h)",
        &quick(),
    );
    assert_eq!(r.class, RunClass::Ok, "{r:?}");
    let out = std::fs::read_to_string(dir.out().join("output.json")).unwrap();
    assert!(out.contains("\"entries\": 2"), "{out}");
}

#[test]
fn an_endless_loop_is_killed_at_the_wall_clock_limit() {
    let limits = Limits {
        wall_s: 1.5,
        ..Limits::default()
    };
    let (r, _d) = run(
        "let mut x = 0u64; loop { x = x.wrapping_add(1); std::hint::black_box(x); }",
        &limits,
    );
    assert_eq!(r.class, RunClass::Timeout, "{r:?}");
    assert!(r.wall_s < 5.0, "took {} s", r.wall_s);
}

#[test]
fn unbounded_allocation_stops_at_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 512 << 20,
        ..quick()
    };
    let (r, _d) = run(
        "let mut v: Vec<Vec<u8>> = Vec::new(); loop { v.push(vec![1u8; 16 << 20]); std::hint::black_box(&v); }",
        &limits,
    );
    limited(&r, RunClass::MemoryLimit);
}

#[test]
fn a_panic_is_classified() {
    let (r, _d) = run(
        "let v: Vec<u8> = Vec::new(); let _ = v[3]; Ok(Histogram::new(*b))",
        &quick(),
    );
    assert_eq!(r.class, RunClass::Panic, "{r:?}");
    assert!(
        r.stderr_tail.contains("index out of bounds"),
        "{}",
        r.stderr_tail
    );
}

#[test]
fn a_returned_error_is_a_stage_error() {
    let (r, _d) = run("Err(\"no photons today\".into())", &quick());
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    assert!(r.stderr_tail.contains("no photons today"));
}

#[test]
fn a_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind() {
    let limits = Limits {
        max_processes: 16,
        ..quick()
    };
    let (r, dir) = run(support::FORK_BOMB, &limits);
    limited(&r, RunClass::ProcessLimit);
    match dir.uid() {
        Some(uid) => assert_eq!(
            support::processes_left(uid..uid + 1),
            Vec::<String>::new(),
            "stage processes survived the run"
        ),
        // Without a uid of its own: by executable (other tests' stages may count too).
        None => assert_eq!(support::stage_processes_left(), 0),
    }
}

#[test]
fn network_sockets_are_blocked() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = format!(
        "let s = std::net::TcpStream::connect(\"127.0.0.1:{port}\"); s.unwrap(); Ok(Histogram::new(*b))"
    );
    let (r, _d) = run(&body, &quick());
    assert_eq!(r.class, RunClass::NetworkBlocked, "{r:?}");
    assert!(
        listener.accept().is_err(),
        "the stage reached the host's listener"
    );
    let udp = "let s = std::net::UdpSocket::bind(\"0.0.0.0:0\").unwrap(); s.send_to(b\"x\", \"1.1.1.1:53\").unwrap(); Ok(Histogram::new(*b))";
    let (r, _d) = run(udp, &quick());
    assert_eq!(r.class, RunClass::NetworkBlocked, "{r:?}");
}

#[test]
fn writes_outside_the_output_directory_are_blocked() {
    let target = std::env::temp_dir().join(format!("hep-escape-{}", std::process::id()));
    let body = format!(
        "std::fs::write(\"out-ok.txt\", \"fine\").unwrap();\n\
         std::fs::write({:?}, \"escaped\").unwrap(); Ok(Histogram::new(*b))",
        target
    );
    let (r, dir) = run(&body, &quick());
    // The kernel refused the write (Landlock, EACCES); the stage's own panic says so.
    assert_eq!(r.class, RunClass::Panic, "{r:?}");
    assert_eq!(r.claim, Some(RunClass::FilesystemBlocked), "{r:?}");
    assert!(!target.exists(), "the stage wrote {}", target.display());
    assert!(
        dir.out().join("out-ok.txt").is_file(),
        "its own directory must stay writable"
    );
    // Its inputs are read-only too.
    let body = "std::fs::write(\"../in/input.json\", \"{}\").unwrap(); Ok(Histogram::new(*b))";
    let (r, dir) = run(body, &quick());
    assert_eq!(r.claim, Some(RunClass::FilesystemBlocked), "{r:?}");
    assert!(std::fs::read_to_string(dir.input("input.json"))
        .unwrap()
        .contains("m_yy"));
}

#[test]
fn reading_the_home_directory_is_blocked() {
    // Files outside the system directories and the run directory are not readable at all.
    let secret = std::env::current_dir().unwrap().join("Cargo.toml");
    let body = format!("let s = std::fs::read_to_string({secret:?}).unwrap(); Err(s.into())");
    let (r, _d) = run(&body, &quick());
    assert_eq!(r.class, RunClass::Panic, "{r:?}");
    assert_eq!(r.claim, Some(RunClass::FilesystemBlocked), "{r:?}");
    assert!(!r.stderr_tail.contains("[workspace]"), "{}", r.stderr_tail);
}

#[test]
fn the_stage_sees_only_its_own_processes() {
    let agent = std::process::id();
    let body = format!(
        "let pids: Vec<String> = std::fs::read_dir(\"/proc\").unwrap().flatten()\n\
         .map(|e| e.file_name().to_string_lossy().into_owned())\n\
         .filter(|n| n.chars().all(|c| c.is_ascii_digit())).collect();\n\
         let environ = std::fs::read(\"/proc/{agent}/environ\").map(|_| ()).map_err(|e| e.to_string());\n\
         Err(format!(\"pids={{pids:?}} environ={{environ:?}}\").into())"
    );
    let (r, _d) = run(&body, &quick());
    if Isolation::current().namespaces {
        // The stage (2), nothing of the host; the namespace's init (1, a fork of the agent)
        // is hidden too (hidepid, and it is not dumpable: root's, even in a user namespace).
        assert_eq!(r.class, RunClass::StageError, "{r:?}");
        assert!(r.stderr_tail.contains("pids=[\"2\"]"), "{}", r.stderr_tail);
        let cmdline = "let c = std::fs::read(\"/proc/1/cmdline\").map(|b| b.len()).map_err(|e| e.to_string());\n\
                       Err(format!(\"cmdline={c:?}\").into())";
        let (r, _d) = run(cmdline, &quick());
        assert!(r.stderr_tail.contains("cmdline=Err("), "{}", r.stderr_tail);
    } else {
        // Without namespaces /proc is not readable at all.
        assert_eq!(r.class, RunClass::Panic, "{r:?}");
    }
}

#[test]
fn flooding_stderr_stops_at_the_file_size_limit() {
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..quick()
    };
    let (r, dir) = run("loop { eprintln!(\"{}\", \"x\".repeat(4096)); }", &limits);
    assert_eq!(r.class, RunClass::OutputLimit, "{r:?}");
    assert!(
        std::fs::metadata(dir.root().join("stderr.txt"))
            .unwrap()
            .len()
            <= 1 << 20
    );
}

#[test]
fn unbounded_threads_hit_the_process_limit() {
    let limits = Limits {
        max_processes: 16,
        ..quick()
    };
    let body = "let mut v = Vec::new(); loop { v.push(std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(60)))); }";
    let (r, _d) = run(body, &limits);
    limited(&r, RunClass::ProcessLimit);
}

#[test]
fn a_stack_overflow_is_a_crash() {
    let body = "fn down(n: u64) -> u64 { std::hint::black_box(n) + down(n + 1) }\n\
                let _ = down(0); Ok(Histogram::new(*b))";
    let (r, _d) = run(body, &quick());
    assert_eq!(r.class, RunClass::Crash, "{r:?}");
    assert!(
        r.stderr_tail.contains("overflowed its stack"),
        "{}",
        r.stderr_tail
    );
}

#[test]
fn unix_sockets_on_the_host_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let body = format!(
        "std::os::unix::net::UnixStream::connect({path:?}).unwrap(); Ok(Histogram::new(*b))"
    );
    let (r, _d) = run(&body, &quick());
    assert_eq!(r.class, RunClass::NetworkBlocked, "{r:?}");
    assert!(
        listener.accept().is_err(),
        "the stage reached a host socket"
    );
}

#[test]
fn an_exit_code_above_128_stays_an_exit_code() {
    // 147 = 128 + SIGSTOP: must not be turned into a stopped process.
    let (r, _d) = run("std::process::exit(147)", &quick());
    assert_eq!(r.class, RunClass::ExitCode, "{r:?}");
    assert_eq!(r.exit.unwrap().code, Some(147));
    assert!(r.wall_s < 5.0);
}

#[test]
fn filling_the_output_directory_is_stopped() {
    let limits = Limits {
        max_output_bytes: 8 << 20,
        max_file_bytes: 4 << 20,
        ..quick()
    };
    let body = "let chunk = vec![7u8; 1 << 20];\n\
                for i in 0.. { std::fs::write(format!(\"f{i}\"), &chunk).unwrap(); }\n\
                Ok(Histogram::new(*b))";
    let (r, dir) = run(body, &limits);
    assert_eq!(r.class, RunClass::OutputLimit, "{r:?}");
    // Stopped by the size check (every ~50 ms), long before the 10 s wall-clock limit; what
    // it wrote in between depends on the disk's speed.
    assert!(r.wall_s < 5.0, "stopped only after {} s", r.wall_s);
    let n = std::fs::read_dir(dir.out()).unwrap().count();
    assert!(n < 2000, "{n} MiB written before the stop");
}

#[test]
fn a_descriptor_inherited_from_the_agent_is_closed() {
    // A file this process holds open without close-on-exec, as a careless parent leaves one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inherited.txt");
    std::fs::write(&path, "inherited-canary-91ab").unwrap();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: open(2) without O_CLOEXEC; closed below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let body = format!(
        "use std::io::Read; use std::os::fd::FromRawFd;\n\
         let mut f = unsafe {{ std::fs::File::from_raw_fd({fd}) }};\n\
         let mut s = String::new();\n\
         let r = f.read_to_string(&mut s);\n\
         std::mem::forget(f);\n\
         Err(format!(\"read={{r:?}} got={{s}}\").into())"
    );
    let (r, _d) = run(&body, &quick());
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    assert!(
        r.stderr_tail.contains("Bad file descriptor"),
        "{}",
        r.stderr_tail
    );
    assert!(
        !r.stderr_tail.contains("inherited-canary"),
        "{}",
        r.stderr_tail
    );
}

#[test]
fn processes_that_together_exceed_the_memory_limit_are_stopped() {
    if Isolation::current().cgroups.is_none() {
        support::lacks("cgroups", "one memory limit for all of a run's processes");
        return;
    }
    // Four processes of 200 MiB each: each under the per-process address-space limit, 800
    // MiB together against a 512 MiB run.
    let limits = Limits {
        memory_bytes: 512 << 20,
        ..quick()
    };
    let body = "if std::env::var_os(\"HEP_CHILD\").is_some() {\n\
            let v = vec![1u8; 200 << 20]; std::hint::black_box(&v);\n\
            std::thread::sleep(std::time::Duration::from_secs(5)); return Ok(Histogram::new(*b));\n\
        }\n\
        let me = std::env::current_exe().unwrap();\n\
        let args: Vec<String> = std::env::args().skip(1).collect();\n\
        let kids: Vec<_> = (0..4).map(|_| std::process::Command::new(&me).args(&args).env(\"HEP_CHILD\", \"1\").spawn().unwrap()).collect();\n\
        for mut k in kids { if !k.wait().unwrap().success() { return Err(\"a child died\".into()); } }\n\
        Ok(Histogram::new(*b))";
    let (r, dir) = run(body, &limits);
    assert_eq!(r.class, RunClass::MemoryLimit, "{r:?}");
    assert!(r.wall_s < limits.wall_s, "{} s", r.wall_s);
    if let Some(uid) = dir.uid() {
        assert_eq!(support::processes_left(uid..uid + 1), Vec::<String>::new());
    }
}

#[test]
fn unlinked_files_that_fill_the_disk_are_an_output_limit() {
    if !Isolation::current().private_out {
        support::lacks(
            "root",
            "a private size-limited tmpfs as the output directory",
        );
        return;
    }
    // It would be invisible to a walk of out/ if it could unlink the file before it grows;
    // it cannot (no removal in out/), so the full tmpfs tells.
    let limits = Limits {
        max_output_bytes: 8 << 20,
        max_file_bytes: 64 << 20,
        ..quick()
    };
    let body = "use std::io::Write;\n\
        let mut f = std::fs::File::create(\"hidden\").unwrap();\n\
        let _ = std::fs::remove_file(\"hidden\");\n\
        let chunk = vec![7u8; 1 << 20];\n\
        loop { f.write_all(&chunk).unwrap(); }";
    let (r, dir) = run(body, &limits);
    assert_eq!(r.class, RunClass::OutputLimit, "{r:?}");
    assert!(dir.out().join("hidden").exists(), "the file was unlinked");
}

#[test]
fn an_exit_code_cannot_pass_for_a_signal() {
    // 159 = 128 + SIGSYS: must stay an exit code, not a blocked socket; 152 = 128 + SIGXCPU.
    for code in [159, 152, 153] {
        let (r, _d) = run(&format!("std::process::exit({code})"), &quick());
        assert_eq!(r.class, RunClass::ExitCode, "{r:?}");
        assert_eq!(r.exit.unwrap().code, Some(code));
    }
}

#[test]
fn ipc_objects_and_datagram_pairs_are_refused_and_the_agent_cannot_be_signalled() {
    let agent = std::process::id();
    // System V shared memory would outlive the run.
    let shm = "extern \"C\" { fn shmget(key: i32, size: usize, flags: i32) -> i32; }\n\
               let id = unsafe { shmget(0, 1 << 20, 0o1600) };\n\
               Err(format!(\"shmget={id}\").into())";
    let (r, _d) = run(shm, &quick());
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    assert!(r.stderr_tail.contains("shmget=-1"), "{}", r.stderr_tail);
    // A datagram pair could send to any named socket on the host: killed, seen as network.
    let dgram = "extern \"C\" { fn socketpair(d: i32, t: i32, p: i32, sv: *mut i32) -> i32; }\n\
                 let mut sv = [0i32; 2];\n\
                 let r = unsafe { socketpair(1, 2, 0, sv.as_mut_ptr()) };\n\
                 Err(format!(\"socketpair={r}\").into())";
    let (r, _d) = run(dgram, &quick());
    assert_eq!(r.class, RunClass::NetworkBlocked, "{r:?}");
    // No signal to the agent, to a group or to everyone.
    let sig = format!(
        "extern \"C\" {{ fn kill(pid: i32, sig: i32) -> i32; }}\n\
         let a = unsafe {{ kill({agent}, 0) }}; let b = unsafe {{ kill(-1, 0) }};\n\
         Err(format!(\"kill={{a}},{{b}}\").into())"
    );
    let (r, _d) = run(&sig, &quick());
    assert!(r.stderr_tail.contains("kill=-1,-1"), "{}", r.stderr_tail);
}

#[test]
fn files_cannot_be_watched() {
    // inotify on a directory the run cannot read (this test's own), and fanotify on the
    // whole file system: names and events of other runs, without reading a byte.
    let watched = tempfile::tempdir().unwrap();
    let body = format!(
        "extern \"C\" {{\n\
             fn inotify_init1(flags: i32) -> i32;\n\
             fn inotify_add_watch(fd: i32, path: *const u8, mask: u32) -> i32;\n\
             fn fanotify_init(flags: u32, event_flags: u32) -> i32;\n\
         }}\n\
         let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);\n\
         let i = unsafe {{ inotify_init1(0) }}; let ie = errno();\n\
         let w = unsafe {{ inotify_add_watch(3, {path:?}.as_ptr(), 0xfff) }}; let we = errno();\n\
         let f = unsafe {{ fanotify_init(0x200, 0) }}; let fe = errno();\n\
         Err(format!(\"inotify={{i}}/{{ie}} watch={{w}}/{{we}} fanotify={{f}}/{{fe}}\").into())",
        path = format!("{}\0", watched.path().display())
    );
    let (r, _d) = run(&body, &quick());
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    // -1 with EPERM (1) each: refused by the filter, not by a missing file or permission.
    assert!(
        r.stderr_tail
            .contains("inotify=-1/1 watch=-1/1 fanotify=-1/1"),
        "{}",
        r.stderr_tail
    );
}

#[test]
fn a_file_that_is_never_linked_cannot_be_made() {
    // O_TMPFILE (0o20200000): it would grow out of sight and vanish with the process.
    let body = "use std::os::unix::fs::OpenOptionsExt;\n\
        let r = std::fs::OpenOptions::new().write(true).custom_flags(0o20200000).mode(0o600).open(\".\");\n\
        Err(format!(\"tmpfile={:?}\", r.map(|_| ()).map_err(|e| e.raw_os_error())).into())";
    let (r, _d) = run(body, &quick());
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    assert!(
        r.stderr_tail.contains("tmpfile=Err(Some(1))"),
        "{}",
        r.stderr_tail
    );
}

/// A run gets `Limits::cpus` cores' worth of CPU time, however many threads spin: four
/// threads spinning for 1.5 s of wall clock use about 1.5 s of CPU under a one-core quota
/// (about 3 s on this 2-core machine without it, 6 s on four cores).
#[test]
fn a_spinning_run_gets_its_cpu_quota_and_no_more() {
    // The process's CPU time from CLOCK_PROCESS_CPUTIME_ID (2): no /proc needed.
    let body = "extern \"C\" { fn clock_gettime(clock: i32, ts: *mut [i64; 2]) -> i32; }\n\
        let t0 = std::time::Instant::now();\n\
        let spin = move || while t0.elapsed().as_secs_f64() < 1.5 { std::hint::black_box(0u8); };\n\
        let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(spin)).collect();\n\
        for t in threads { t.join().unwrap(); }\n\
        let mut ts = [0i64; 2];\n\
        unsafe { clock_gettime(2, &mut ts) };\n\
        let cpu = ts[0] as f64 + ts[1] as f64 * 1e-9;\n\
        Err(format!(\"cpu={:.3} wall={:.3}\", cpu, t0.elapsed().as_secs_f64()).into())";
    let limits = Limits {
        wall_s: 10.0,
        cpus: 1.0,
        ..Limits::default()
    };
    let (r, _d) = run(body, &limits);
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    let num = |key: &str| -> f64 {
        let t = &r.stderr_tail;
        let at = t.find(key).unwrap_or_else(|| panic!("{t}")) + key.len();
        t[at..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (cpu, wall) = (num("cpu="), num("wall="));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !Isolation::current().cpu_quota {
        support::lacks(
            "cpu_quota",
            &format!("a run's CPU quota (cpu {cpu} s in {wall} s)"),
        );
        return;
    }
    if cores < 2 {
        support::lacks("two_cores", "a CPU quota below what the machine has");
        return;
    }
    // One core's worth, with room for the period's rounding.
    assert!(
        cpu <= 1.15 * wall,
        "cpu {cpu} s in {wall} s of wall clock on {cores} cores: the quota did not hold"
    );
}

/// Calls on no list of the filter are refused (EPERM), each of them one that would succeed,
/// or fail otherwise, if it were allowed: a file with no name (`memfd_create`), event, timer
/// and poll descriptors, the process's personality, Landlock and seccomp themselves,
/// asynchronous I/O contexts.
#[test]
fn calls_on_no_list_are_refused() {
    let calls: Vec<(&str, String)> = vec![
        (
            "memfd_create",
            format!("{}, b\"x\\0\".as_ptr(), 0", libc::SYS_memfd_create),
        ),
        ("eventfd2", format!("{}, 0, 0", libc::SYS_eventfd2)),
        (
            "timerfd_create",
            format!("{}, 1, 0", libc::SYS_timerfd_create),
        ),
        ("epoll_create1", format!("{}, 0", libc::SYS_epoll_create1)),
        (
            "personality",
            format!("{}, 0xffffffffu64", libc::SYS_personality),
        ),
        // LANDLOCK_CREATE_RULESET_VERSION: the ABI version where Landlock exists.
        (
            "landlock",
            format!("{}, 0u64, 0u64, 1u64", libc::SYS_landlock_create_ruleset),
        ),
        // SECCOMP_GET_ACTION_AVAIL of SECCOMP_RET_ALLOW: 0 where seccomp exists.
        (
            "seccomp",
            format!("{}, 2u64, 0u64, ALLOW.as_ptr()", libc::SYS_seccomp),
        ),
        (
            "io_setup",
            format!("{}, 1u64, CTX.as_mut_ptr()", libc::SYS_io_setup),
        ),
    ];
    let mut body = String::from(
        "extern \"C\" { fn syscall(n: i64, ...) -> i64; }\n\
         static ALLOW: [u32; 1] = [0x7fff0000];\n\
         let mut CTX = [0u64; 1];\n\
         let mut out = String::new();\n",
    );
    for (name, args) in &calls {
        body.push_str(&format!(
            "let r = unsafe {{ syscall({args}) }};\n\
             let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);\n\
             out.push_str(&format!(\"{name}={{r}}/{{e}} \"));\n"
        ));
    }
    body.push_str("let _ = &mut CTX; Err(out.into())");
    let (r, _d) = run(&body, &quick());
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    for (name, _) in &calls {
        assert!(
            r.stderr_tail.contains(&format!("{name}=-1/1 ")),
            "{name} was not refused: {}",
            r.stderr_tail
        );
    }
}

//! The sandbox's fallback without namespaces (forced with `HEP_SANDBOX_NO_NAMESPACES`, as on
//! a machine without them): Landlock, seccomp, the control groups, rlimits and the
//! process-group kill must still stop the same misbehaviour, and nothing the run started may
//! outlive it, even a process that left its session. One test in its own binary: the stages
//! are compiled first (with namespaces), then the variable is set for the runs.

mod support;

use agent::outcome::{RunClass, RunReport};
use agent::stage_crate::StageCrate;
use sandbox::{self, Isolation, Limits, RunDir};
use stage_api::StageKind;
use std::path::PathBuf;
use support::{build, histogram_input, histogram_stage};

fn run(stage: &(StageCrate, PathBuf), limits: &Limits) -> RunReport {
    let dir = RunDir::new(
        &stage.1,
        &[("input.json", histogram_input().as_bytes())],
        limits,
    )
    .unwrap();
    let out = dir.out().join("output.json");
    agent::outcome::run(&dir, &[dir.input("input.json"), out], limits)
}

#[test]
fn without_namespaces_the_same_misbehaviour_is_stopped() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = std::env::temp_dir().join(format!("hep-fallback-escape-{}", std::process::id()));
    let stage = |body: &str| build(StageKind::Histogram, &histogram_stage(body));
    let ok = stage("let mut h = Histogram::new(*b); h.entries = 2; Ok(h)");
    let tcp = stage(&format!(
        "std::net::TcpStream::connect(\"127.0.0.1:{port}\").unwrap(); Ok(Histogram::new(*b))"
    ));
    let write = stage(&format!(
        "std::fs::write({target:?}, \"x\").unwrap(); Ok(Histogram::new(*b))"
    ));
    let environ = stage(&format!(
        "std::fs::read(\"/proc/{}/environ\").unwrap(); Ok(Histogram::new(*b))",
        std::process::id()
    ));
    let bomb = stage(support::FORK_BOMB);
    // A child that leaves the run's session and process group, and would live on.
    let escape = stage(
        "std::process::Command::new(\"/usr/bin/setsid\").args([\"-f\", \"/bin/sleep\", \"30\"])\n\
         .status().unwrap(); Err(\"left a sleeper\".into())",
    );
    let spin = stage("loop { std::hint::black_box(0u8); }");
    // The agent is a visible process here: no signal, no limit of it may be touched.
    let agent = std::process::id();
    let signal = stage(&format!(
        "extern \"C\" {{ fn kill(pid: i32, sig: i32) -> i32; }}\n\
         let a = unsafe {{ kill({agent}, 19) }}; let b = unsafe {{ kill(-1, 19) }};\n\
         Err(format!(\"kill={{a}},{{b}}\").into())"
    ));

    // SAFETY: the only test of this binary; the builds' threads have ended.
    unsafe { std::env::set_var("HEP_SANDBOX_NO_NAMESPACES", "1") };
    assert!(!Isolation::current().namespaces);
    let limits = Limits {
        wall_s: 10.0,
        max_processes: 16,
        ..Limits::default()
    };

    let r = run(&ok, &limits);
    assert_eq!(r.class, RunClass::Ok, "{r:?}");

    // Without a mount namespace a build reads the host's paths: where its own uid (root's
    // agent) cannot enter one, the harness says which directory and what to do.
    let p = support::toolchain().prepare().unwrap();
    let closed = sandbox::closed_to_others(&p.sysroot).or(sandbox::closed_to_others(&p.deps));
    let krate = support::toolchain()
        .new_crate(StageKind::Histogram)
        .unwrap();
    krate
        .write_code(&histogram_stage("Ok(Histogram::new(*b))"))
        .unwrap();
    let b = krate.build();
    match (krate.uid(), closed) {
        (Some(_), Some((dir, _))) => {
            let e = b.setup_error.expect("a harness error, not a compiler one");
            assert!(
                e.contains(&format!("cannot enter {} (mode", dir.display()))
                    && e.contains("every user may enter"),
                "{e}"
            );
        }
        _ => assert!(b.ok, "{:?}", b.setup_error),
    }

    assert_eq!(run(&tcp, &limits).class, RunClass::NetworkBlocked);
    assert!(
        listener.accept().is_err(),
        "the stage reached the host's listener"
    );

    let r = run(&write, &limits);
    assert_eq!(r.claim, Some(RunClass::FilesystemBlocked), "{r:?}");
    assert!(!target.exists());

    // No /proc at all without a private one.
    let r = run(&environ, &limits);
    assert_eq!(r.class, RunClass::Panic, "{r:?}");
    assert!(!r.stderr_tail.contains("PATH="), "{}", r.stderr_tail);

    let r = run(&bomb, &limits);
    if Isolation::current().cgroups.is_some() {
        assert_eq!(r.class, RunClass::ProcessLimit, "{r:?}");
    } else {
        assert_eq!(r.claim, Some(RunClass::ProcessLimit), "{r:?}");
    }
    assert_eq!(support::run_uid_processes_left(), Vec::<String>::new());

    let r = run(&escape, &limits);
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    if Isolation::current().cgroups.is_some() {
        // The control group holds it wherever its session went.
        assert_eq!(
            support::run_uid_processes_left(),
            Vec::<String>::new(),
            "a process that left the session survived the run"
        );
    }

    // SIGSTOP to the agent and to everyone: refused (the test would hang otherwise).
    let r = run(&signal, &limits);
    assert!(r.stderr_tail.contains("kill=-1,-1"), "{}", r.stderr_tail);

    let spin_limits = Limits {
        wall_s: 1.5,
        ..limits
    };
    assert_eq!(run(&spin, &spin_limits).class, RunClass::Timeout);
}

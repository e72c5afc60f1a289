//! The sandbox's fallback without namespaces (forced with `HEP_SANDBOX_NO_NAMESPACES`, as on
//! a machine without them): Landlock, seccomp, rlimits and the process-group kill must still
//! stop the same misbehaviour. One test in its own binary: it sets a variable of this process
//! before the sandbox is first probed.

mod support;

use agent::sandbox::{self, Isolation, Limits, RunClass, RunDir, RunReport};
use agent::stage_crate::StageKind;
use support::{build, histogram_input, histogram_stage};

fn run(body: &str, limits: &Limits) -> RunReport {
    let (_krate, bin) = build(StageKind::Histogram, &histogram_stage(body));
    let dir = RunDir::new(&bin, &[("input.json", histogram_input().as_bytes())]).unwrap();
    let out = dir.out().join("output.json");
    sandbox::run(&dir, &[dir.input("input.json"), out], limits)
}

#[test]
fn without_namespaces_the_same_misbehaviour_is_stopped() {
    // SAFETY: the only test of this binary, before it starts any thread.
    unsafe { std::env::set_var("HEP_SANDBOX_NO_NAMESPACES", "1") };
    assert!(!Isolation::probe().namespaces);
    let limits = Limits {
        wall_s: 10.0,
        max_processes: 16,
        ..Limits::default()
    };

    let ok = run(
        "let mut h = Histogram::new(*b); h.entries = 2; Ok(h)",
        &limits,
    );
    assert_eq!(ok.class, RunClass::Ok, "{ok:?}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = format!(
        "std::net::TcpStream::connect(\"127.0.0.1:{port}\").unwrap(); Ok(Histogram::new(*b))"
    );
    assert_eq!(run(&tcp, &limits).class, RunClass::NetworkBlocked);
    assert!(
        listener.accept().is_err(),
        "the stage reached the host's listener"
    );

    let target = std::env::temp_dir().join(format!("hep-fallback-escape-{}", std::process::id()));
    let write = format!("std::fs::write({target:?}, \"x\").unwrap(); Ok(Histogram::new(*b))");
    assert_eq!(run(&write, &limits).class, RunClass::FilesystemBlocked);
    assert!(!target.exists());

    let environ = format!(
        "std::fs::read(\"/proc/{}/environ\").unwrap(); Ok(Histogram::new(*b))",
        std::process::id()
    );
    assert_eq!(run(&environ, &limits).class, RunClass::FilesystemBlocked);

    assert_eq!(
        run(support::FORK_BOMB, &limits).class,
        RunClass::ProcessLimit
    );
    assert_eq!(
        support::stage_processes_left(),
        0,
        "stage processes survived the run"
    );

    let spin = Limits {
        wall_s: 1.5,
        ..limits
    };
    assert_eq!(
        run("loop { std::hint::black_box(0u8); }", &spin).class,
        RunClass::Timeout
    );
}

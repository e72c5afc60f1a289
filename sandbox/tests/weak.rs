//! Where the isolation is weak (here: Landlock switched off with `HEP_SANDBOX_NO_LANDLOCK`, as
//! on a kernel without it), the sandbox itself refuses to start anything — a run or any
//! confined program — unless the caller's limits say `Weak::Allow`: the rule holds whoever
//! calls it, not only the commands that check first. One test (the variable is process-wide).

use sandbox::{Confinement, Isolation, Limits, RunDir, Weak};
use std::ffi::OsString;
use std::path::PathBuf;

#[test]
fn weak_isolation_is_refused_unless_allowed() {
    if !Isolation::probe().strong() {
        eprintln!("this machine's isolation is weak already: checking the refusal only");
    }
    std::env::set_var("HEP_SANDBOX_NO_LANDLOCK", "1");
    assert_eq!(Isolation::current().landlock_abi, None);
    assert!(!Isolation::current().strong());

    let err = sandbox::require(Weak::Refuse).unwrap_err();
    assert!(err.to_string().contains("--allow-weak-sandbox"), "{err}");
    assert!(sandbox::require(Weak::Allow).is_ok());

    // A run: refused before the program starts.
    let refuse = Limits::default();
    let bin = PathBuf::from("/bin/true");
    let dir = RunDir::new(&bin, &[], &refuse).unwrap();
    let e = sandbox::run(&dir, &[], &refuse).unwrap_err();
    assert!(matches!(e, sandbox::SandboxError::Weak(_)), "{e}");
    assert!(
        e.to_string().contains("cannot keep model-written code"),
        "{e}"
    );

    // Any confined program (the agent's builds go through this): refused too.
    let out = tempfile::tempdir().unwrap();
    let (stdout, stderr, _) =
        sandbox::output_files(&out.path().join("o"), &out.path().join("e")).unwrap();
    let read: Vec<PathBuf> = sandbox::SYSTEM_READ.iter().map(PathBuf::from).collect();
    let args: Vec<OsString> = vec![];
    let env: Vec<(&str, OsString)> = vec![("PATH", "/usr/bin:/bin".into())];
    let e = sandbox::confine(Confinement {
        program: &bin,
        args: &args,
        env: &env,
        writable: out.path(),
        read: &read,
        binds: &[],
        proc: false,
        limits: &refuse,
        uid: None,
        tmpfs: false,
        no_remove: false,
        stdout,
        stderr,
    })
    .unwrap_err();
    assert!(matches!(e, sandbox::SandboxError::Weak(_)), "{e}");

    // Told to allow it, the same run goes ahead (and only file permissions guard the files).
    if Isolation::probe().seccomp {
        let allow = Limits {
            weak: Weak::Allow,
            ..Limits::default()
        };
        let dir = RunDir::new(&bin, &[], &allow).unwrap();
        let ran = sandbox::run(&dir, &[], &allow).unwrap();
        assert_eq!(ran.exit.and_then(|e| e.code), Some(0), "{ran:?}");
    }
}

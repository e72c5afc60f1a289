//! The lock as a user meets it: a second run on the same directory is refused and told who
//! holds it; a holder killed with SIGKILL leaves nothing that blocks the next run.

use dirlock::{DirLock, LockError};
use std::io::Read;
use std::process::{Command, Stdio};

/// The holder process of the other test, not a test of its own (so it is ignored, and says
/// so, in a normal run): run with `--ignored --exact holder` and `DIRLOCK_HOLD=DIR`, it takes
/// the lock, says so on stdout and waits to be killed.
#[test]
#[ignore = "the lock holder started by a_second_run_is_refused_and_a_killed_holder_is_taken_over"]
fn holder() {
    let dir = std::env::var_os("DIRLOCK_HOLD").expect("DIRLOCK_HOLD names the directory");
    let _lock = DirLock::acquire(std::path::Path::new(&dir)).unwrap();
    println!("LOCKED");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn a_second_run_is_refused_and_a_killed_holder_is_taken_over() {
    let dir = tempfile_dir();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "holder",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DIRLOCK_HOLD", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the holder to have the lock.
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("LOCKED") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the holder ended before locking: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }

    let err = DirLock::acquire(&dir).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LockError::Held { .. }), "{msg}");
    assert!(msg.contains(&format!("pid {}", child.id())), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");

    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = DirLock::acquire(&dir).expect("a dead holder's lock is taken over");
    assert!(std::fs::read_to_string(dir.join(dirlock::LOCK_FILE))
        .unwrap()
        .contains(&format!("pid {}", std::process::id())));
    // Within one process too, a second lock on the same directory is refused.
    assert!(matches!(
        DirLock::acquire(&dir),
        Err(LockError::Held { .. })
    ));
    drop(lock);
    DirLock::acquire(&dir).expect("released on drop");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dirlock-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

//! How a stage's sandboxed run ended: [`classify`] names it from what the kernel reported
//! ([`sandbox::Ran`]: exit code or signal, the timeout, the groups' OOM and fork counts, a full
//! output directory) and the runner's exit codes (`stage_api::exit`); what the stage wrote to
//! stderr is only its [`claim`], shown but never trusted.

use sandbox::{Exit, KernelReport, Limits, RunDir};
use serde::{Deserialize, Serialize};
use stage_api::exit;
use std::path::PathBuf;

/// Runs the stage binary of `dir` with `args` (the last one: its output document) in the
/// sandbox, and names how it ended.
pub fn run(dir: &RunDir, args: &[PathBuf], limits: &Limits) -> RunReport {
    let ran = match sandbox::run(dir, args, limits) {
        Ok(ran) => ran,
        Err(e) => {
            return RunReport {
                class: RunClass::SetupFailed,
                exit: None,
                claim: None,
                stderr_tail: e.to_string(),
                wall_s: 0.0,
            }
        }
    };
    let output = args
        .last()
        .is_some_and(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));
    RunReport {
        class: match ran.exit {
            Some(e) => classify(e, &ran.kernel, output),
            None => RunClass::SetupFailed,
        },
        exit: ran.exit,
        claim: claim(&ran.stderr_tail),
        stderr_tail: ran.stderr_tail,
        wall_s: ran.wall_s,
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunClass {
    /// Exit 0 and an output document.
    Ok,
    /// The stage returned an error (the runner exits 2 with the message).
    StageError,
    /// The stage panicked (exit 101).
    Panic,
    /// Killed at the wall-clock or CPU limit.
    Timeout,
    /// The OOM killer ended a process at the run's memory limit.
    MemoryLimit,
    /// A fork or thread was refused at the run's process limit.
    ProcessLimit,
    /// It tried to open a socket (seccomp killed it with SIGSYS).
    NetworkBlocked,
    /// A file operation outside what the stage may touch was refused. The kernel (Landlock)
    /// does not tell the parent, so this is only ever a [`claim`].
    FilesystemBlocked,
    /// Its output directory or a file reached its size limit.
    OutputLimit,
    /// Killed by another signal.
    Crash,
    /// Exit 0 without an output document.
    NoOutput,
    /// Any other non-zero exit.
    ExitCode,
    /// The sandbox could not start the process.
    SetupFailed,
}

/// The result of one sandboxed run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// How the run ended, named from what the kernel reported.
    pub class: RunClass,
    /// Exit code or signal; `None` when the process never started or could not be waited for.
    pub exit: Option<Exit>,
    /// What the stage's stderr says happened (its own words: shown, never trusted).
    pub claim: Option<RunClass>,
    /// The last 8 KiB of stderr.
    pub stderr_tail: String,
    /// Wall-clock seconds (not part of any trajectory: it differs between runs).
    #[serde(skip)]
    pub wall_s: f64,
}

/// Names the outcome of a run from what the kernel reported. `output` tells whether the
/// expected output document exists.
pub fn classify(status: Exit, k: &KernelReport, output: bool) -> RunClass {
    const SIGSYS: i32 = 31;
    const SIGXCPU: i32 = 24;
    const SIGXFSZ: i32 = 25;
    if k.timed_out || status.signal == Some(SIGXCPU) {
        return RunClass::Timeout;
    }
    if status.code == Some(exit::OK.into()) && !k.disk_full && !k.flooded {
        return if output {
            RunClass::Ok
        } else {
            RunClass::NoOutput
        };
    }
    if k.oom_kills > 0 {
        RunClass::MemoryLimit
    } else if status.signal == Some(SIGSYS) {
        RunClass::NetworkBlocked
    } else if k.disk_full || k.flooded || status.signal == Some(SIGXFSZ) {
        RunClass::OutputLimit
    } else if k.fork_refusals > 0 {
        RunClass::ProcessLimit
    } else if status.signal.is_some() {
        RunClass::Crash
    } else if status.code == Some(exit::PANIC.into()) {
        RunClass::Panic
    } else if status.code == Some(exit::STAGE_ERROR.into()) {
        RunClass::StageError
    } else {
        RunClass::ExitCode
    }
}

/// What the stage's own stderr says went wrong, if it names something the sandbox blocks.
/// Shown to the user and the supervisor as the stage's words; never used to classify.
pub fn claim(stderr: &str) -> Option<RunClass> {
    let has = |pats: &[&str]| pats.iter().any(|p| stderr.contains(p));
    if has(&[
        "memory allocation of",
        "Cannot allocate memory",
        "os error 12",
    ]) {
        Some(RunClass::MemoryLimit)
    } else if has(&["Resource temporarily unavailable", "os error 11"]) {
        Some(RunClass::ProcessLimit)
    } else if has(&[
        "Network is unreachable",
        "os error 101",
        "Address family not supported",
        "os error 97",
    ]) {
        Some(RunClass::NetworkBlocked)
    } else if has(&["No space left on device", "os error 28", "File too large"]) {
        Some(RunClass::OutputLimit)
    } else if has(&[
        "Permission denied",
        "os error 13",
        "Read-only file system",
        "os error 30",
    ]) {
        Some(RunClass::FilesystemBlocked)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: i32) -> Exit {
        Exit {
            code: Some(c),
            signal: None,
        }
    }
    fn signal(s: i32) -> Exit {
        Exit {
            code: None,
            signal: Some(s),
        }
    }

    #[test]
    fn classes_come_from_the_kernel_not_from_stderr() {
        let none = KernelReport::default();
        assert_eq!(classify(code(0), &none, true), RunClass::Ok);
        assert_eq!(classify(code(0), &none, false), RunClass::NoOutput);
        let late = KernelReport {
            timed_out: true,
            ..none
        };
        assert_eq!(classify(code(0), &late, true), RunClass::Timeout);
        assert_eq!(classify(code(2), &none, false), RunClass::StageError);
        assert_eq!(classify(code(101), &none, false), RunClass::Panic);
        let oom = KernelReport {
            oom_kills: 1,
            ..none
        };
        assert_eq!(classify(signal(9), &oom, false), RunClass::MemoryLimit);
        // An abort is a crash, whatever the stage printed before it.
        assert_eq!(classify(signal(6), &none, false), RunClass::Crash);
        assert_eq!(classify(signal(31), &none, false), RunClass::NetworkBlocked);
        let forks = KernelReport {
            fork_refusals: 3,
            ..none
        };
        assert_eq!(classify(code(101), &forks, false), RunClass::ProcessLimit);
        let full = KernelReport {
            disk_full: true,
            ..none
        };
        assert_eq!(classify(code(101), &full, false), RunClass::OutputLimit);
        assert_eq!(classify(code(0), &full, true), RunClass::OutputLimit);
        assert_eq!(classify(signal(25), &none, false), RunClass::OutputLimit);
        // What it printed is its claim only.
        let lie = "panicked at src/stage.rs: Network is unreachable (os error 101)";
        assert_eq!(classify(code(101), &none, false), RunClass::Panic);
        assert_eq!(claim(lie), Some(RunClass::NetworkBlocked));
        assert_eq!(
            claim("memory allocation of 1048576 bytes failed"),
            Some(RunClass::MemoryLimit)
        );
        assert_eq!(
            claim("Permission denied (os error 13)"),
            Some(RunClass::FilesystemBlocked)
        );
        assert_eq!(claim("stage error: bad input"), None);
    }
}

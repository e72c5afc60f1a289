//! A model-written stage put to work beyond its task: `cargo xtask analyze --stage
//! select=PATH` runs it on every batch of every input file. It is built exactly as the agent
//! builds it (the confined `rustc` against the prebuilt `stage-api`, [`crate::stage_crate`])
//! and every batch runs in the sandbox (the `sandbox` crate) — the code is as hostile here as
//! in the loop. Memory stays bounded: one batch's documents at a time per worker.

use crate::outcome::RunClass;
use crate::stage_crate::{condense, StageCrate, Toolchain};
use analysis::stage::{Cuts, PhotonEvents, Select, SelectInput, SelectOutput, StageError};
use sandbox::{self, Limits, RunDir};
use stage_api::StageKind;
use std::path::{Path, PathBuf};

/// Why a model-written stage will not run here.
#[derive(Debug, thiserror::Error)]
pub enum StageRunError {
    /// Not a stage that may run: an agent run that was not accepted, no readable source,
    /// code the screen refuses.
    #[error("{0}")]
    Refused(String),
    /// Written against another version of the contract.
    #[error(
        "{}: written against stage-api version {found}; this analysis has version {current} \
         (rerun the agent, or port the stage)",
        path.display()
    )]
    Version {
        /// The path given: an agent run's output folder or a `.rs` file.
        path: PathBuf,
        /// The contract version the stage was written against.
        found: u32,
        /// This analysis's contract version.
        current: u32,
    },
    /// The toolchain, the stage crate or the sandbox failed (not the stage's doing).
    #[error("{0}")]
    Harness(String),
    /// It does not compile against the contract.
    #[error("{0}")]
    Build(String),
}

/// A built stage, run in the sandbox per call.
pub struct SandboxedStage {
    /// Keeps the crate (and so the binary) alive.
    _krate: StageCrate,
    binary: PathBuf,
    limits: Limits,
    /// Hash of the source, the toolchain and the contract version: what the workflow's rules
    /// record as the implementation (not the binary: crates get random names).
    pub identity: String,
    /// Where the source came from, for messages.
    pub source: PathBuf,
}

/// The layout version of the `outcome.json` that `cargo xtask agent` writes and this module
/// reads back (files without one are version 1).
pub const OUTCOME_FORMAT: u32 = 2;

/// Where a stage's source is, and only if it may run: an agent run's output folder whose
/// `outcome.json` says the answer was accepted (its `stage.rs`, and the contract version it
/// records), or a `.rs` file that passes the same code screen the agent applies (a rejected
/// attempt under `attempts/` does not, whatever its verdict file says).
fn locate(path: &Path) -> Result<(PathBuf, Option<u32>), String> {
    let source = if path.is_dir() {
        let outcome = std::fs::read_to_string(path.join("outcome.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let Some(outcome) = outcome else {
            return Err(format!(
                "{}: no readable outcome.json (give the --out folder of `cargo xtask agent`, or \
                 a stage.rs)",
                path.display()
            ));
        };
        let format = outcome["format_version"].as_u64().unwrap_or(1);
        if format > u64::from(OUTCOME_FORMAT) {
            return Err(format!(
                "{}: outcome.json has format {format}, newer than this build reads \
                 ({OUTCOME_FORMAT})",
                path.display()
            ));
        }
        let status = outcome["status"].as_str().unwrap_or("unknown");
        if status != "accepted" {
            return Err(format!(
                "{}: this agent run was not accepted (its outcome is '{status}'), so it has no \
                 stage to run; its attempts are under attempts/ (a .rs file given directly \
                 runs only after the code screen)",
                path.display()
            ));
        }
        let source = path.join("stage.rs");
        if !source.is_file() {
            return Err(format!("{}: accepted, but no stage.rs", path.display()));
        }
        let version = outcome["stage_api_version"].as_u64().map(|v| v as u32);
        return screened(source, version);
    } else {
        path.to_path_buf()
    };
    screened(source, None)
}

/// `source` with `version`, if its code passes the agent's screen (a select stage may use no
/// standard-library module the screen refuses).
fn screened(source: PathBuf, version: Option<u32>) -> Result<(PathBuf, Option<u32>), String> {
    let code =
        std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    let violations = crate::policy::check(&code);
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
        return Err(format!(
            "{}: refused by the code screen the agent applies to model code:\n{}",
            source.display(),
            list.join("\n")
        ));
    }
    Ok((source, version))
}

impl SandboxedStage {
    /// Builds the stage at `path` (confined) for `kind`.
    pub fn build(
        toolchain: &Toolchain,
        kind: StageKind,
        path: &Path,
        limits: Limits,
    ) -> Result<Self, StageRunError> {
        let (source, written_for) = locate(path).map_err(StageRunError::Refused)?;
        let current = analysis::stage::STAGE_API_VERSION;
        if let Some(found) = written_for.filter(|v| *v != current) {
            return Err(StageRunError::Version {
                path: path.to_path_buf(),
                found,
                current,
            });
        }
        let code = std::fs::read_to_string(&source)
            .map_err(|e| StageRunError::Refused(format!("{}: {e}", source.display())))?;
        let harness = |e: String| StageRunError::Harness(e);
        let prepared = toolchain.prepare().map_err(|e| harness(e.to_string()))?;
        let krate = toolchain
            .new_crate(kind)
            .map_err(|e| harness(format!("stage crate: {e}")))?;
        krate
            .write_code(&code)
            .map_err(|e| harness(format!("stage crate: {e}")))?;
        let build = krate.build();
        if let Some(e) = &build.setup_error {
            return Err(harness(format!("building {}: {e}", source.display())));
        }
        let binary = match (&build.binary, build.ok) {
            (Some(b), true) => b.clone(),
            _ => {
                return Err(StageRunError::Build(format!(
                    "{} does not build against stage-api version {current}:\n{}",
                    source.display(),
                    condense(&build, krate.path(), 4000)
                )))
            }
        };
        let rustc = std::process::Command::new(prepared.sysroot.join("bin/rustc"))
            .arg("-vV")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let h = blake3::hash(format!("{code}\u{0}{rustc}\u{0}{current}").as_bytes());
        Ok(Self {
            _krate: krate,
            binary,
            limits,
            identity: format!("stage-{}", &h.to_hex()[..16]),
            source,
        })
    }

    /// Runs the stage on one input document; its output document.
    fn run(&self, input: &str) -> Result<String, StageError> {
        let dir = RunDir::new(
            &self.binary,
            &[("input.json", input.as_bytes())],
            &self.limits,
        )
        .map_err(|e| StageError::from(format!("sandbox run directory: {e}")))?;
        let output = dir.out().join("output.json");
        let report = crate::outcome::run(
            &dir,
            &[dir.input("input.json"), output.clone()],
            &self.limits,
        );
        if report.class != RunClass::Ok {
            return Err(StageError::from(format!(
                "the stage ({}) ended with {:?} in the sandbox: {}",
                self.source.display(),
                report.class,
                crate::untrusted::inert(report.stderr_tail.trim(), 2000)
            )));
        }
        sandbox::read_output(&output, self.limits.max_file_bytes)
            .map_err(|e| StageError::from(format!("reading the stage's output: {e}")))
    }
}

impl Select for SandboxedStage {
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError> {
        let input = SelectInput {
            events: events.clone(),
            cuts: cuts.clone(),
        };
        let text = self.run(&serde_json::to_string(&input).expect("plain data"))?;
        serde_json::from_str(&text).map_err(|e| {
            StageError::from(format!(
                "the stage ({}) wrote an output that is not a select document: {e}",
                self.source.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::locate;

    const OK: &str = "use stage_api::{Cuts, PhotonEvents, Select, SelectOutput, StageError};\n\
        pub struct Stage;\n\
        impl Select for Stage {\n\
            fn select(&self, _e: &PhotonEvents, _c: &Cuts) -> Result<SelectOutput, StageError> {\n\
                Err(\"no\".into())\n\
            }\n\
        }\n";

    fn run_folder(status: &str, code: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("stage.rs"), code).unwrap();
        let outcome = serde_json::json!({"status": status, "stage_api_version": 1});
        std::fs::write(d.path().join("outcome.json"), outcome.to_string()).unwrap();
        d
    }

    #[test]
    fn only_accepted_runs_and_screened_files_are_located() {
        let accepted = run_folder("accepted", OK);
        let (source, version) = locate(accepted.path()).unwrap();
        assert_eq!(
            (source, version),
            (accepted.path().join("stage.rs"), Some(1))
        );
        // A run that was not accepted has nothing to run, whatever lies in its folder.
        let capped = run_folder("iteration_cap", OK);
        let e = locate(capped.path()).unwrap_err();
        assert!(
            e.contains("not accepted") && e.contains("iteration_cap"),
            "{e}"
        );
        let bare = tempfile::tempdir().unwrap();
        assert!(locate(bare.path()).unwrap_err().contains("outcome.json"));
        // A file runs only after the agent's screen: code it refused never builds here.
        let file = bare.path().join("attempt.rs");
        let hostile = OK.replace(
            "Err(\"no\".into())",
            "let _ = std::process::Command::new(\"sh\").status(); Err(\"no\".into())",
        );
        std::fs::write(&file, &hostile).unwrap();
        let e = locate(&file).unwrap_err();
        assert!(
            e.contains("code screen") && e.contains("std::process"),
            "{e}"
        );
        std::fs::write(&file, OK).unwrap();
        assert_eq!(locate(&file).unwrap().0, file);
        // Even an accepted folder's stage.rs is screened (it may have been edited since).
        let edited = run_folder("accepted", &hostile);
        assert!(locate(edited.path()).unwrap_err().contains("code screen"));
    }
}

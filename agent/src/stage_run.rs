//! A model-written stage put to work beyond its task: `cargo xtask analyze --stage
//! select=PATH` runs it on every batch of every input file. It is built exactly as the agent
//! builds it (the confined `rustc` against the prebuilt `stage-api`, [`crate::stage_crate`])
//! and every batch runs in the sandbox ([`crate::sandbox`]) — the code is as hostile here as
//! in the loop. Memory stays bounded: one batch's documents at a time per worker.

use crate::sandbox::{self, Limits, RunClass, RunDir};
use crate::stage_crate::{condense, StageCrate, StageKind, Toolchain};
use analysis::stage::{Cuts, PhotonEvents, Select, SelectInput, SelectOutput, StageError};
use std::path::{Path, PathBuf};

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

/// Where a stage's source is: a `stage.rs`, or an agent run's output folder (its `stage.rs`,
/// and the contract version its `outcome.json` records).
fn locate(path: &Path) -> Result<(PathBuf, Option<u32>), String> {
    if path.is_dir() {
        let source = path.join("stage.rs");
        if !source.is_file() {
            return Err(format!(
                "{}: no stage.rs in this folder (give a stage.rs, or the --out folder of \
                 `cargo xtask agent`)",
                path.display()
            ));
        }
        let version = std::fs::read_to_string(path.join("outcome.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["stage_api_version"].as_u64())
            .map(|v| v as u32);
        Ok((source, version))
    } else {
        Ok((path.to_path_buf(), None))
    }
}

impl SandboxedStage {
    /// Builds the stage at `path` (confined) for `kind`.
    pub fn build(
        toolchain: &Toolchain,
        kind: StageKind,
        path: &Path,
        limits: Limits,
    ) -> Result<Self, String> {
        let (source, written_for) = locate(path)?;
        let current = analysis::stage::STAGE_API_VERSION;
        if let Some(v) = written_for.filter(|v| *v != current) {
            return Err(format!(
                "{}: written against stage-api version {v}; this analysis has version {current} \
                 (rerun the agent, or port the stage)",
                path.display()
            ));
        }
        let code =
            std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let prepared = toolchain.prepare()?;
        let krate = toolchain
            .new_crate(kind)
            .map_err(|e| format!("stage crate: {e}"))?;
        krate
            .write_code(&code)
            .map_err(|e| format!("stage crate: {e}"))?;
        let build = krate.build();
        if let Some(e) = &build.setup_error {
            return Err(format!("building {}: {e}", source.display()));
        }
        let binary = match (&build.binary, build.ok) {
            (Some(b), true) => b.clone(),
            _ => {
                return Err(format!(
                    "{} does not build against stage-api version {current}:\n{}",
                    source.display(),
                    condense(&build, krate.path(), 4000)
                ))
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
        let report = sandbox::run(
            &dir,
            &[dir.input("input.json"), output.clone()],
            &self.limits,
        );
        if report.class != RunClass::Ok {
            return Err(StageError::from(format!(
                "the stage ({}) ended with {:?} in the sandbox: {}",
                self.source.display(),
                report.class,
                report.stderr_tail.trim()
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

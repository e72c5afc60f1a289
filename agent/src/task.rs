//! Tasks as data: `templates/tasks/NAME.toml` holds the instruction (in the style of the
//! paper's prompts: what to compute, inputs, outputs, cuts), the stage it asks for, the input
//! file and the validation tolerances. [`Task::prepare`]
//! turns it into the stage's input document and, with the reference stages, the expected
//! output — which stays on this side: it is never put in a prompt.
//!
//! Against memorisation (the reference, a known-good answer and this repository are public),
//! a task may declare parameters drawn per trial (`[vary]`, e.g. `"cuts.pt_min" = [25.0,
//! 30.0]`): [`Task::draw`] picks one value per key from a seed and the trial, and the
//! instruction ([`Task::instruction_for`]), the input document and the reference output all
//! follow the draw.

use crate::stages::Params;
use crate::validate::Tolerances;
use serde::{Deserialize, Serialize};
use stage_api::StageKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One trial's drawn parameters: `"doc.field"` → value (`doc` is `cuts`, `binning` or
/// `model`, the stage documents' parameter parts). Empty: the defaults.
pub type Variant = BTreeMap<String, serde_json::Value>;

/// The built-in tasks, by name.
pub const BUILT_IN: [(&str, &str); 8] = [
    (
        "inspect",
        include_str!("../../templates/tasks/inspect.toml"),
    ),
    (
        "convert",
        include_str!("../../templates/tasks/convert.toml"),
    ),
    (
        "preprocess",
        include_str!("../../templates/tasks/preprocess.toml"),
    ),
    ("select", include_str!("../../templates/tasks/select.toml")),
    (
        "histogram",
        include_str!("../../templates/tasks/histogram.toml"),
    ),
    ("fit", include_str!("../../templates/tasks/fit.toml")),
    (
        "separate",
        include_str!("../../templates/tasks/separate.toml"),
    ),
    (
        "categorize",
        include_str!("../../templates/tasks/categorize.toml"),
    ),
];

/// A task file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// The task's name (in trajectories and messages; the draws and held-out seed hash it).
    pub name: String,
    /// The kind of stage the coder must write.
    pub stage: StageKind,
    /// What the user asks for; the supervisor turns it into the coder's task.
    pub instruction: String,
    /// Where the stage's input comes from.
    pub input: InputSpec,
    /// How far the output may be from the reference's.
    pub tolerances: Tolerances,
    /// Crates the stage may use beyond `stage_api` and `std` (from
    /// [`crate::stage_crate::EXTRA_CRATES`]): the build passes them, the contract names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crates: Vec<String>,
    /// Standard-library modules the code screen lets this stage use (only `fs`, for the
    /// stages that read their input file or write files; the sandbox still limits reads to
    /// the run's input and writes to its output directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_std: Vec<String>,
    /// Parameters drawn per trial: `"doc.field"` → the values to draw from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vary: BTreeMap<String, Vec<serde_json::Value>>,
}

/// Where the stage's input comes from: a ROOT file of the repository (relative paths are from
/// the workspace root), read by the reference reader and, for later stages, run through the
/// reference stages before this one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The ROOT file the input is read from.
    pub file: PathBuf,
    /// Signal MC, for the steps that need it (categorize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mc: Option<PathBuf>,
    /// Which file of the held-out dataset stands for `file`: its data (default) or its
    /// signal MC (the selection tasks, whose visible input is MC).
    #[serde(default, skip_serializing_if = "HeldOutFile::is_data")]
    pub held_out: HeldOutFile,
}

/// See [`InputSpec::held_out`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeldOutFile {
    /// The held-out data file (the default).
    #[default]
    Data,
    /// The held-out signal-MC file.
    Mc,
}

impl HeldOutFile {
    fn is_data(&self) -> bool {
        *self == HeldOutFile::Data
    }
}

/// A task made concrete: the visible case (the one the model's instruction describes and
/// its hints speak of) and, when validated, the held-out cases.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The visible case's input document (JSON).
    pub input: String,
    /// Files the stage reads beside `input.json` in the run's `in/` (name, host path): the
    /// ROOT file of inspect and convert, named in the input document as `../in/NAME` (a
    /// stage runs in its output directory).
    pub files: Vec<(String, PathBuf)>,
    /// `None` when no reference covers what was asked (a user's own instruction).
    pub reference: Option<serde_json::Value>,
    /// The same task on inputs the model never sees ([`Task::prepare`]): an answer is accepted
    /// only when it passes these too, and of them the model learns only which check failed.
    pub held_out: Vec<Case>,
    /// Keeps the held-out dataset's files while the task runs.
    _scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// One input document, the files it names and the reference output for it.
#[derive(Clone, Debug)]
pub struct Case {
    /// The input document (JSON).
    pub input: String,
    /// Files the stage reads beside `input.json` in the run's `in/` (name, host path).
    pub files: Vec<(String, PathBuf)>,
    /// The expected output: the reference stages' output for this input.
    pub reference: Option<serde_json::Value>,
}

/// The held-out dataset: generated per trial by the project's SYNTHETIC generator (the
/// fixtures' size: 20,000 data and 5,000 signal-MC events) from a seed that mixes in this
/// machine's secret key ([`Task::held_out_seed`]), so it exists nowhere before the trial starts
/// and cannot be computed ahead from this repository.
const HELD_OUT_DATA_EVENTS: usize = 20_000;
const HELD_OUT_MC_EVENTS: usize = 5_000;

/// Why a task could not be loaded or its inputs prepared.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Neither a built-in task nor a readable file.
    #[error("task '{name}': not one of {known} and not a readable file: {source}")]
    Unknown {
        /// The task as given: a name or a path.
        name: String,
        /// The built-in tasks' names, comma-separated.
        known: String,
        /// Why the file could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file does not describe a valid task (its TOML, or a `[vary]` value).
    #[error("task '{name}': {message}")]
    Invalid {
        /// The task as given: a name or a path.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// Its input file, the reference stages or the held-out dataset failed.
    #[error("{0}")]
    Prepare(String),
}

impl Task {
    /// A built-in task by name, or a task file by path.
    pub fn load(name_or_path: &str) -> Result<Task, TaskError> {
        let name = name_or_path.to_string();
        let text = match BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, t)) => t.to_string(),
            None => std::fs::read_to_string(name_or_path).map_err(|source| {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                TaskError::Unknown {
                    name: name.clone(),
                    known: names.join(", "),
                    source,
                }
            })?,
        };
        let invalid = |message: String| TaskError::Invalid {
            name: name.clone(),
            message,
        };
        let task: Task = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        // Every value a draw can give must apply, so a bad `[vary]` fails here, not in a cell.
        for (key, values) in &task.vary {
            if values.is_empty() {
                return Err(invalid(format!("vary.{key} has no values")));
            }
            for v in values {
                let one = Variant::from([(key.clone(), v.clone())]);
                Params::new(&one).map_err(invalid)?;
            }
        }
        Ok(task)
    }

    /// BLAKE3 of the task as data (its TOML re-serialised): what the benchmark records so a
    /// changed task is not mixed with old cells.
    pub fn hash(&self) -> String {
        let doc = serde_json::to_string(self).expect("a task serialises");
        blake3::hash(doc.as_bytes()).to_hex()[..16].to_string()
    }

    /// The parameters of trial `trial`: for each `[vary]` key, one value chosen by a hash of
    /// `seed`, the task's name, the trial and the key (so adding a key or a trial leaves the
    /// other draws as they were).
    pub fn draw(&self, seed: u64, trial: u32) -> Variant {
        self.vary
            .iter()
            .map(|(key, values)| {
                let h = blake3::hash(format!("{seed}/{}/{trial}/{key}", self.name).as_bytes());
                let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
                (
                    key.clone(),
                    values[(n % values.len() as u64) as usize].clone(),
                )
            })
            .collect()
    }

    /// The instruction for `variant`: the task's, plus the drawn values when there are any.
    pub fn instruction_for(&self, variant: &Variant) -> String {
        let mut text = self.instruction.trim().to_string();
        if !variant.is_empty() {
            let values: Vec<String> = variant.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            text.push_str(&format!(
                "\n\nThis run's parameters: {}. Where the input document carries a parameter, \
                 read it from there: the stage is also run on other inputs.",
                values.join(", ")
            ));
        }
        text
    }

    /// The contract the coder sees: the stage's excerpt, then what this task allows beyond
    /// it (crates with their usage notes, standard-library modules and what the stage may
    /// touch).
    pub fn contract(&self) -> String {
        let mut text = crate::prompts::contract(self.stage);
        for c in &self.crates {
            text.push_str("\n\n");
            text.push_str(&crate::prompts::render(&format!("crates/{c}"), &[]));
        }
        if self.allow_std.iter().any(|m| m == "fs") {
            text.push_str("\n\n");
            text.push_str(&crate::prompts::render("access_fs", &[]));
        }
        text
    }

    /// The held-out dataset's seed for trial `trial` with `variant`: BLAKE3 of `key` (the
    /// machine's secret, [`crate::stage_crate::Toolchain::held_out_key`], which no sandbox can
    /// read), the task, the trial and the variant. The same on this machine for a replay;
    /// unknowable to anyone who has only this repository.
    pub fn held_out_seed(&self, key: &[u8], trial: u32, variant: &Variant) -> u64 {
        let mut h = blake3::Hasher::new_keyed(&blake3::hash(key).into());
        h.update(self.name.as_bytes());
        h.update(&trial.to_le_bytes());
        h.update(
            serde_json::to_string(variant)
                .expect("plain data")
                .as_bytes(),
        );
        u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// Reads the input file and runs the reference stages with `variant`'s parameters: the
    /// stage's input document and (when `with_reference`) the expected output. With a
    /// reference, also the held-out case: a dataset generated from `held_out_seed`
    /// ([`Task::held_out_seed`]) goes through the same preparation.
    pub fn prepare(
        &self,
        repo: &Path,
        with_reference: bool,
        variant: &Variant,
        held_out_seed: u64,
    ) -> Result<Prepared, TaskError> {
        self.prepare_all(repo, with_reference, variant, held_out_seed)
            .map_err(TaskError::Prepare)
    }

    fn prepare_all(
        &self,
        repo: &Path,
        with_reference: bool,
        variant: &Variant,
        held_out_seed: u64,
    ) -> Result<Prepared, String> {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                repo.join(p)
            }
        };
        let mc = self.input.mc.as_deref().map(resolve);
        let visible =
            self.prepare_case(&resolve(&self.input.file), mc.as_deref(), variant, false)?;
        let (mut held_out, mut scratch) = (vec![], None);
        if with_reference {
            let dir = tempfile::Builder::new()
                .prefix("hep-held-out-")
                .tempdir()
                .map_err(|e| format!("held-out dataset: {e}"))?;
            let (data, sim) = (
                dir.path().join(dataset::DATA_FILE),
                dir.path().join(dataset::MC_FILE),
            );
            let cfg = dataset::synth::Config {
                seed: held_out_seed,
                data_events: HELD_OUT_DATA_EVENTS,
                mc_events: HELD_OUT_MC_EVENTS,
                // Another signal strength too: the fitted yield moves with it.
                signal_strength: [0.7, 1.0, 1.3][(held_out_seed >> 40) as usize % 3],
                continuum_events: 0,
                ..Default::default()
            };
            dataset::synth::write_dataset(
                &cfg,
                &data,
                &sim,
                &data.with_extension("continuum.root"),
            )
            .map_err(|e| format!("held-out dataset: {e}"))?;
            let file = match self.input.held_out {
                HeldOutFile::Data => &data,
                HeldOutFile::Mc => &sim,
            };
            held_out.push(self.prepare_case(file, Some(&sim), variant, true)?);
            scratch = Some(std::sync::Arc::new(dir));
        }
        Ok(Prepared {
            input: visible.input,
            files: visible.files,
            reference: with_reference.then_some(visible.reference).flatten(),
            held_out,
            _scratch: scratch,
        })
    }

    /// One case: `path` (and signal MC `mc`, for the steps that need it) through the reference
    /// stages with `variant`'s parameters; the reference is checked against itself.
    /// `held_out`: the held-out case (categorize's table is then mirrored, below).
    fn prepare_case(
        &self,
        path: &Path,
        mc: Option<&Path>,
        variant: &Variant,
        held_out: bool,
    ) -> Result<Case, String> {
        let params = crate::stages::Params::new(variant)?;
        let mut ctx = crate::stages::Ctx {
            stage: self.stage.name(),
            path,
            mc,
            params,
            held_out,
            files: vec![],
            scratch: None,
        };
        let (input, reference) = crate::stages::prepare(self.stage, &mut ctx)?;
        // The reference must pass its own validation (JSON has no NaN: a reference with a
        // non-finite value would not read back), or no answer could.
        let own = crate::stages::validate(
            self.stage,
            &reference.to_string(),
            ctx.scratch.as_ref().map(|d| d.path()),
            Some(&reference),
            &self.tolerances,
        );
        if !own.passed {
            return Err(format!(
                "the reference output for these parameters does not validate against itself: {}",
                own.details()
            ));
        }
        Ok(Case {
            input,
            files: ctx.files,
            reference: Some(reference),
        })
    }
}

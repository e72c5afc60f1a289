//! Tasks as data: `templates/tasks/NAME.toml` holds the instruction (in the style of the
//! paper's prompts: what to compute, inputs, outputs, cuts), the stage it asks for, the input
//! file and the validation tolerances. [`Task::prepare`]
//! turns it into the stage's input document and, with the reference stages, the expected
//! output — which stays on this side: it is never put in a prompt.

use crate::stage_crate::StageKind;
use analysis::stage::{
    Binning, Cuts, FitModel, HistogramInput, MakeHistogram, Reference, Select, SelectInput,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The built-in tasks, by name.
pub const BUILT_IN: [(&str, &str); 3] = [
    ("select", include_str!("../../templates/tasks/select.toml")),
    (
        "histogram",
        include_str!("../../templates/tasks/histogram.toml"),
    ),
    ("fit", include_str!("../../templates/tasks/fit.toml")),
];

/// A task file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    pub stage: StageKind,
    /// What the user asks for; the supervisor turns it into the coder's task.
    pub instruction: String,
    pub input: InputSpec,
    pub tolerances: Tolerances,
}

/// Where the stage's input comes from: a ROOT file of the repository (relative paths are from
/// the workspace root), read by the reference reader and, for later stages, run through the
/// reference stages before this one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub file: PathBuf,
}

/// How close the stage's output must be to the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// Relative tolerance on floating-point outputs (m_γγ, weights, bin contents).
    #[serde(default = "default_rel")]
    pub rel: f64,
    /// Fit: largest |value − reference| in units of the reference's error.
    #[serde(default = "default_sigma")]
    pub value_sigma: f64,
    /// Fit: largest relative difference of the errors.
    #[serde(default = "default_error_rel")]
    pub error_rel: f64,
}

fn default_rel() -> f64 {
    1e-6
}
fn default_sigma() -> f64 {
    0.01
}
fn default_error_rel() -> f64 {
    0.02
}

/// A task made concrete: the input document and the reference output.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub input: String,
    /// `None` when no reference covers what was asked (a user's own instruction).
    pub reference: Option<serde_json::Value>,
}

impl Task {
    /// A built-in task by name, or a task file by path.
    pub fn load(name_or_path: &str) -> Result<Task, String> {
        let text = match BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, t)) => t.to_string(),
            None => std::fs::read_to_string(name_or_path).map_err(|e| {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                format!(
                    "task '{name_or_path}': not one of {} and not a readable file: {e}",
                    names.join(", ")
                )
            })?,
        };
        toml::from_str(&text).map_err(|e| format!("task '{name_or_path}': {e}"))
    }

    /// Reads the input file and runs the reference stages: the stage's input document and
    /// (when `with_reference`) the expected output.
    pub fn prepare(&self, repo: &Path, with_reference: bool) -> Result<Prepared, String> {
        let path = if self.input.file.is_absolute() {
            self.input.file.clone()
        } else {
            repo.join(&self.input.file)
        };
        let file = analysis::events::EventFile::open(&path).map_err(|e| e.to_string())?;
        let events = file.read(0..file.entries()).map_err(|e| e.to_string())?;
        let cuts = Cuts::default();
        let selected = Reference.select(&events, &cuts).map_err(|e| e.message)?;
        let binning = Binning::default();
        let (input, reference) = match self.stage {
            StageKind::Select => {
                let i = SelectInput { events, cuts };
                (
                    to_json(&i),
                    serde_json::to_value(&selected).expect("plain data"),
                )
            }
            StageKind::Histogram => {
                let h = Reference
                    .histogram(&selected.diphotons, &binning)
                    .map_err(|e| e.message)?;
                let i = HistogramInput {
                    diphotons: selected.diphotons,
                    binning,
                };
                (to_json(&i), serde_json::to_value(&h).expect("plain data"))
            }
            StageKind::Fit => {
                use analysis::stage::Fit;
                let h = Reference
                    .histogram(&selected.diphotons, &binning)
                    .map_err(|e| e.message)?;
                let model = FitModel::default();
                let f = Reference.fit(&model, &h).map_err(|e| e.message)?;
                let i = analysis::stage::FitInput {
                    model,
                    histogram: h,
                };
                (to_json(&i), serde_json::to_value(&f).expect("plain data"))
            }
        };
        Ok(Prepared {
            input,
            reference: with_reference.then_some(reference),
        })
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stage documents are plain data")
}

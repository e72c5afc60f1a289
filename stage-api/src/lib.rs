#![deny(missing_docs)]
//! # The stage contract
//!
//! The analysis is eight steps. Each is one trait with one required method, typed input and
//! output that serialise to JSON (serde), so every stage can run as its own process and be
//! validated on its own against the reference (`analysis::stage::Reference`, which implements
//! all of them in the `analysis` crate).
//!
//! | step | trait | input | output |
//! |------|-------|-------|--------|
//! | 1 inspect | [`Inspect`] | a ROOT file path | [`FileSummary`] |
//! | 2 convert | [`Convert`] | [`ConvertInput`] | [`NpyManifest`] (`.npy` files) |
//! | 3 select | [`Select`] | [`PhotonEvents`] + [`Cuts`] | [`SelectOutput`] (diphotons + cut flow) |
//! | 4 histogram | [`MakeHistogram`] | [`Diphotons`] + [`Binning`] | [`Histogram`] |
//! | 5 fit | [`Fit`] | [`FitModel`] + [`Histogram`] | [`FitResult`] |
//! | 6 measure | [`Measure`] | [`MeasureInput`] | [`Measurement`] |
//! | 7 separate | [`Separate`] | [`SeparateInput`] (labelled and unlabelled feature rows) | [`Scores`] |
//! | 8 categorize | [`Categorize`] | [`CategorizeInput`] (s, b per score bin) | [`Boundaries`] |
//!
//! Conventions every stage can rely on and must keep:
//! * energies and momenta in GeV, η and φ dimensionless, m_γγ in GeV;
//! * photons in file order (leading first); events in file order;
//! * a stage never panics on bad input: it returns a [`StageError`] saying what was wrong;
//! * a stage is deterministic: the same input gives the same output, bit for bit.
//!
//! Stages do not read files except `Inspect` and `Convert`; the workflow engine reads events in
//! batches and calls [`Select`] once per batch, so a `Select` must not assume it sees the whole
//! file. Stage code written against this crate checks [`STAGE_API_VERSION`].
//!
//! **Invariant: this crate holds no analysis.** It is what agent-written stages are compiled
//! against, and nothing else of the workspace is: no selection, no histogram filling, no
//! densities, no minimiser may live here, or a model could call the answer instead of writing
//! it. Its public signatures are checked against the prompts' contract excerpts by
//! `agent/tests/contract.rs`.
//!
//! ```
//! use stage_api::{json, Binning, Diphotons, Histogram, MakeHistogram, StageError};
//!
//! // A (useless) histogram stage, run from a JSON document as a stage process does.
//! struct Empty;
//! impl MakeHistogram for Empty {
//!     fn histogram(&self, _: &Diphotons, binning: &Binning) -> Result<Histogram, StageError> {
//!         binning.validate()?;
//!         Ok(Histogram::new(*binning))
//!     }
//! }
//!
//! let input = r#"{"diphotons": {"m_yy": [125.0], "weight": [1.0]},
//!                 "binning": {"bins": 2, "lo": 100.0, "hi": 150.0}}"#;
//! let out: Histogram = serde_json::from_str(&json::histogram(&Empty, input).unwrap()).unwrap();
//! assert_eq!(out.sumw, vec![0.0, 0.0]);
//! let bad = r#"{"diphotons": {"m_yy": [], "weight": []},
//!               "binning": {"bins": 0, "lo": 1.0, "hi": 2.0}}"#;
//! assert!(json::histogram(&Empty, bad).is_err());
//! ```

pub mod categorize;
pub mod events;
pub mod files;
pub mod finite;
pub mod fit;
pub mod histogram;
pub mod measure;
pub mod select;
pub mod separate;

pub use categorize::{Boundaries, CategorizeInput};
pub use events::{McInfo, PhotonEvents, Photons, Release};
pub use files::{BranchSummary, ConvertInput, FileSummary, NpyColumn, NpyManifest, TreeSummary};
pub use fit::{Background, DscbTails, FitModel, FitParam, FitResult, FitStatus, ParamSpec, Signal};
pub use histogram::{Binning, Histogram};
pub use measure::{MeasureInput, Measurement, SignalMc};
pub use select::{CutCount, CutFlow, Cuts, Diphotons, Kinematics, CUT_NAMES};
pub use separate::{Scores, SeparateInput, TrainingSet};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of this contract. Bumped on any change to a trait or to a type it uses
/// (`agent/tests/contract.rs` fails when a public signature changes and this does not).
pub const STAGE_API_VERSION: u32 = 8;

/// The eight steps' stage kinds, as the agent asks for them: which trait a stage implements
/// and which [`json`] function runs it (`json::<name>`; the inspect and convert steps read and
/// write files, select runs per batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// [`Inspect`].
    Inspect,
    /// [`Convert`].
    Convert,
    /// [`Select`].
    Select,
    /// [`MakeHistogram`].
    Histogram,
    /// [`Fit`].
    Fit,
    /// [`Separate`].
    Separate,
    /// [`Categorize`].
    Categorize,
}

impl StageKind {
    /// Lower-case name: the task's `stage`, the [`json`] function, the prompts' files.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Inspect => "inspect",
            StageKind::Convert => "convert",
            StageKind::Select => "select",
            StageKind::Histogram => "histogram",
            StageKind::Fit => "fit",
            StageKind::Separate => "separate",
            StageKind::Categorize => "categorize",
        }
    }
    /// The trait the model implements.
    pub fn trait_name(self) -> &'static str {
        match self {
            StageKind::Inspect => "Inspect",
            StageKind::Convert => "Convert",
            StageKind::Select => "Select",
            StageKind::Histogram => "MakeHistogram",
            StageKind::Fit => "Fit",
            StageKind::Separate => "Separate",
            StageKind::Categorize => "Categorize",
        }
    }
}

/// The exit codes of a stage process (the runner the agent writes around a stage,
/// `templates/stage/main.rs`), which the agent reads back to name how a run ended.
pub mod exit {
    /// The output document was written.
    pub const OK: u8 = 0;
    /// The stage returned a [`StageError`](crate::StageError) (printed to stderr).
    pub const STAGE_ERROR: u8 = 2;
    /// Not `stage INPUT.json OUTPUT.json`.
    pub const USAGE: u8 = 64;
    /// The input document could not be read.
    pub const NO_INPUT: u8 = 66;
    /// The output document could not be written.
    pub const CANT_WRITE: u8 = 73;
    /// The stage panicked (Rust's exit status for a panic that unwinds out of `main`).
    pub const PANIC: u8 = 101;
}

/// Why a stage failed: a message for the user (and, for agent-written stages, for the model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageError {
    /// What was wrong, in words.
    pub message: String,
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StageError {}

impl From<String> for StageError {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for StageError {
    fn from(message: &str) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

/// Step 1: what is in a ROOT file (trees, entries, branches, types, sizes).
pub trait Inspect {
    /// Summarises the ROOT file at `file`: its trees, their entries and branches.
    fn inspect(&self, file: &Path) -> Result<FileSummary, StageError>;
}

/// Step 2: an ntuple's branches as `.npy` files plus a manifest.
pub trait Convert {
    /// Writes the branches `input` asks for as `.npy` files into `input.out_dir` and returns the
    /// manifest of what was written.
    fn convert(&self, input: &ConvertInput) -> Result<NpyManifest, StageError>;
}

/// Output of [`Select`]: the selected diphotons and the cut flow of this batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectOutput {
    /// The selected events of this batch, in file order.
    pub diphotons: Diphotons,
    /// The cut flow of this batch alone.
    pub cut_flow: CutFlow,
}

/// Step 3: photon selection, diphoton mass and event weights, on one batch of events.
pub trait Select {
    /// Selects the diphotons of one batch, `events`, with `cuts`; returns them and the
    /// batch's cut flow.
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError>;
}

/// Step 4: the m_γγ histogram (Σw, Σw², under/overflow).
pub trait MakeHistogram {
    /// The weighted m_γγ histogram of `diphotons` with `binning`.
    fn histogram(&self, diphotons: &Diphotons, binning: &Binning) -> Result<Histogram, StageError>;
}

/// Step 5: the signal + background fit.
pub trait Fit {
    /// Fits `model` to `histogram`.
    fn fit(&self, model: &FitModel, histogram: &Histogram) -> Result<FitResult, StageError>;
}

/// Step 6: ε×A, σ×B and μ from the fit and the signal MC.
pub trait Measure {
    /// The measurement from the fit, the signal MC and the luminosity in `input`.
    fn measure(&self, input: &MeasureInput) -> Result<Measurement, StageError>;
}

/// Step 7 (the paper's step 4): signal–background separation — train on labelled events,
/// score the others.
pub trait Separate {
    /// Trains on `input.train` and returns one score per event of `input.test`.
    fn separate(&self, input: &SeparateInput) -> Result<Scores, StageError>;
}

/// Step 8 (the paper's step 5): boundaries on the classifier score that maximise the combined
/// expected significance.
pub trait Categorize {
    /// The score boundaries for the per-bin expected signal and background of `input`.
    fn categorize(&self, input: &CategorizeInput) -> Result<Boundaries, StageError>;
}

/// Input of [`Select`] as one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectInput {
    /// The batch of events.
    pub events: PhotonEvents,
    /// The selection's parameters.
    pub cuts: Cuts,
}

/// Input of [`MakeHistogram`] as one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramInput {
    /// The selected events to histogram (their m_γγ and weights).
    pub diphotons: Diphotons,
    /// The histogram's binning.
    pub binning: Binning,
}

/// Input of [`Fit`] as one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitInput {
    /// The signal + background model to fit.
    pub model: FitModel,
    /// The m_γγ histogram to fit it to.
    pub histogram: Histogram,
}

/// The stages by name, as `run_json` and the command line know them.
pub const STAGES: [&str; 8] = [
    "inspect",
    "convert",
    "select",
    "histogram",
    "fit",
    "measure",
    "separate",
    "categorize",
];

/// Runs one stage on a JSON input document and returns its JSON output: what a stage process
/// does (`cargo xtask stage NAME`). Inputs: `inspect` takes `{"file": PATH}`; `convert` a
/// [`ConvertInput`]; `select` a [`SelectInput`]; `histogram` a [`HistogramInput`]; `fit` a
/// [`FitInput`]; `measure` a [`MeasureInput`]; `separate` a [`SeparateInput`]; `categorize` a
/// [`CategorizeInput`]. Unknown fields are errors.
pub fn run_json<S>(stages: &S, stage: &str, input: &str) -> Result<String, StageError>
where
    S: Inspect + Convert + Select + MakeHistogram + Fit + Measure + Separate + Categorize,
{
    match stage {
        "inspect" => json::inspect(stages, input),
        "convert" => json::convert(stages, input),
        "select" => json::select(stages, input),
        "histogram" => json::histogram(stages, input),
        "fit" => json::fit(stages, input),
        "measure" => json::measure(stages, input),
        "separate" => json::separate(stages, input),
        "categorize" => json::categorize(stages, input),
        _ => Err(format!("unknown stage '{stage}': one of {}", STAGES.join(", ")).into()),
    }
}

/// One stage from one JSON document, for a type that implements only that stage: what the
/// runner of an agent-written stage calls (`templates/stage/main.rs`). Each function parses
/// its input document (unknown fields are errors), runs the stage and returns the output
/// document. They take trait objects, so the JSON code is compiled once, here, and not again
/// in every stage crate (which keeps a stage build under a second).
pub mod json {
    use super::*;

    fn parse<'a, T: Deserialize<'a>>(stage: &str, input: &'a str) -> Result<T, StageError> {
        serde_json::from_str(input).map_err(|e| format!("{stage} input: {e}").into())
    }

    fn out<T: Serialize>(v: T) -> Result<String, StageError> {
        serde_json::to_string_pretty(&v).map_err(|e| format!("stage output: {e}").into())
    }

    /// `{"file": PATH}` → [`FileSummary`].
    pub fn inspect(s: &dyn Inspect, input: &str) -> Result<String, StageError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct InspectInput {
            file: PathBuf,
        }
        out(s.inspect(&parse::<InspectInput>("inspect", input)?.file)?)
    }

    /// [`ConvertInput`] → [`NpyManifest`].
    pub fn convert(s: &dyn Convert, input: &str) -> Result<String, StageError> {
        out(s.convert(&parse("convert", input)?)?)
    }

    /// [`SelectInput`] → [`SelectOutput`].
    pub fn select(s: &dyn Select, input: &str) -> Result<String, StageError> {
        let i: SelectInput = parse("select", input)?;
        out(s.select(&i.events, &i.cuts)?)
    }

    /// [`HistogramInput`] → [`Histogram`].
    pub fn histogram(s: &dyn MakeHistogram, input: &str) -> Result<String, StageError> {
        let i: HistogramInput = parse("histogram", input)?;
        out(s.histogram(&i.diphotons, &i.binning)?)
    }

    /// [`FitInput`] → [`FitResult`].
    pub fn fit(s: &dyn Fit, input: &str) -> Result<String, StageError> {
        let i: FitInput = parse("fit", input)?;
        out(s.fit(&i.model, &i.histogram)?)
    }

    /// [`MeasureInput`] → [`Measurement`].
    pub fn measure(s: &dyn Measure, input: &str) -> Result<String, StageError> {
        out(s.measure(&parse("measure", input)?)?)
    }

    /// [`SeparateInput`] → [`Scores`].
    pub fn separate(s: &dyn Separate, input: &str) -> Result<String, StageError> {
        out(s.separate(&parse("separate", input)?)?)
    }

    /// [`CategorizeInput`] → [`Boundaries`].
    pub fn categorize(s: &dyn Categorize, input: &str) -> Result<String, StageError> {
        out(s.categorize(&parse("categorize", input)?)?)
    }
}

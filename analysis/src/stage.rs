//! # The stage contract
//!
//! The analysis is six steps. Each is one trait with one required method, typed input and
//! output that serialise to JSON (serde), so every stage can run as its own process and be
//! validated on its own against [`Reference`], which implements all six.
//!
//! | step | trait | input | output |
//! |------|-------|-------|--------|
//! | 1 inspect | [`Inspect`] | a ROOT file path | [`FileSummary`] |
//! | 2 convert | [`Convert`] | [`ConvertInput`] | [`NpyManifest`] (`.npy` files) |
//! | 3 select | [`Select`] | [`PhotonEvents`] + [`Cuts`] | [`SelectOutput`] (diphotons + cut flow) |
//! | 4 histogram | [`MakeHistogram`] | [`Diphotons`] + [`Binning`] | [`Histogram`] |
//! | 5 fit | [`Fit`] | [`FitModel`] + [`Histogram`] | [`FitResult`] |
//! | 6 measure | [`Measure`] | [`MeasureInput`] | [`Measurement`] |
//!
//! Conventions every stage can rely on and must keep:
//! * energies and momenta in GeV, η and φ dimensionless, m_γγ in GeV;
//! * photons in file order (leading first); events in file order;
//! * a stage never panics on bad input: it returns a [`StageError`] saying what was wrong;
//! * a stage is deterministic: the same input gives the same output, bit for bit.
//!
//! Stages do not read files except `Inspect` and `Convert`; the workflow engine reads events in
//! batches and calls [`Select`] once per batch, so a `Select` must not assume it sees the whole
//! file. Stage code written against this file checks [`STAGE_API_VERSION`].
//!
//! ```
//! use analysis::stage::{MakeHistogram, Reference, StageError};
//! use analysis::histogram::{Binning, Histogram};
//! use analysis::select::Diphotons;
//!
//! // A histogram stage that fills m_γγ with the event weights.
//! struct Mine;
//! impl MakeHistogram for Mine {
//!     fn histogram(&self, d: &Diphotons, binning: &Binning) -> Result<Histogram, StageError> {
//!         binning.validate()?;
//!         let mut h = Histogram::new(*binning);
//!         for (&m, &w) in d.m_yy.iter().zip(&d.weight) {
//!             h.fill(m, w);
//!         }
//!         Ok(h)
//!     }
//! }
//!
//! let d = Diphotons { m_yy: vec![125.3, 110.0, 170.0], weight: vec![1.0, 2.0, 1.0] };
//! let mine = Mine.histogram(&d, &Binning::default()).unwrap();
//! assert_eq!(mine, Reference.histogram(&d, &Binning::default()).unwrap());
//! assert_eq!(mine.overflow, 1.0);
//! ```

use std::path::{Path, PathBuf};

pub use crate::convert::NpyManifest;
pub use crate::events::PhotonEvents;
pub use crate::fit::{FitModel, FitResult};
pub use crate::histogram::{Binning, Histogram};
pub use crate::measure::{MeasureInput, Measurement};
pub use crate::rootio::FileSummary;
pub use crate::select::{CutFlow, Cuts, Diphotons};
use serde::{Deserialize, Serialize};

/// Version of this contract. Bumped on any change to a trait or to a type it uses.
pub const STAGE_API_VERSION: u32 = 1;

/// Why a stage failed: a message for the user (and, for agent-written stages, for the model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    pub message: String,
}

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
    fn inspect(&self, file: &Path) -> Result<FileSummary, StageError>;
}

/// Input of [`Convert`]: which file, which branches (all when `None`), where to write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertInput {
    pub file: PathBuf,
    pub branches: Option<Vec<String>>,
    pub out_dir: PathBuf,
}

/// Step 2: an ntuple's branches as `.npy` files plus a manifest.
pub trait Convert {
    fn convert(&self, input: &ConvertInput) -> Result<NpyManifest, StageError>;
}

/// Output of [`Select`]: the selected diphotons and the cut flow of this batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectOutput {
    pub diphotons: Diphotons,
    pub cut_flow: CutFlow,
}

/// Step 3: photon selection, diphoton mass and event weights, on one batch of events.
pub trait Select {
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError>;
}

/// Step 4: the m_γγ histogram (Σw, Σw², under/overflow).
pub trait MakeHistogram {
    fn histogram(&self, diphotons: &Diphotons, binning: &Binning) -> Result<Histogram, StageError>;
}

/// Step 5: the signal + background fit.
pub trait Fit {
    fn fit(&self, model: &FitModel, histogram: &Histogram) -> Result<FitResult, StageError>;
}

/// Step 6: ε×A, σ×B and μ from the fit and the signal MC.
pub trait Measure {
    fn measure(&self, input: &MeasureInput) -> Result<Measurement, StageError>;
}

/// Input of [`Select`] as one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectInput {
    pub events: PhotonEvents,
    pub cuts: Cuts,
}

/// Input of [`MakeHistogram`] as one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramInput {
    pub diphotons: Diphotons,
    pub binning: Binning,
}

/// Input of [`Fit`] as one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitInput {
    pub model: FitModel,
    pub histogram: Histogram,
}

/// The stages by name, as `run_json` and the command line know them.
pub const STAGES: [&str; 6] = [
    "inspect",
    "convert",
    "select",
    "histogram",
    "fit",
    "measure",
];

/// Runs one stage on a JSON input document and returns its JSON output: what a stage process
/// does (`cargo xtask stage NAME`). Inputs: `inspect` takes `{"file": PATH}`; `convert` a
/// [`ConvertInput`]; `select` a [`SelectInput`]; `histogram` a [`HistogramInput`]; `fit` a
/// [`FitInput`]; `measure` a [`MeasureInput`]. Unknown fields are errors.
pub fn run_json<S>(stages: &S, stage: &str, input: &str) -> Result<String, StageError>
where
    S: Inspect + Convert + Select + MakeHistogram + Fit + Measure,
{
    match stage {
        "inspect" => json::inspect(stages, input),
        "convert" => json::convert(stages, input),
        "select" => json::select(stages, input),
        "histogram" => json::histogram(stages, input),
        "fit" => json::fit(stages, input),
        "measure" => json::measure(stages, input),
        _ => Err(format!("unknown stage '{stage}': one of {}", STAGES.join(", ")).into()),
    }
}

/// One stage from one JSON document, for a type that implements only that stage: what the
/// runner of an agent-written stage calls (`templates/stage/src/main.rs`). Each function
/// parses its input document (unknown fields are errors), runs the stage and returns the
/// output document.
pub mod json {
    use super::*;

    fn parse<'a, T: Deserialize<'a>>(stage: &str, input: &'a str) -> Result<T, StageError> {
        serde_json::from_str(input).map_err(|e| format!("{stage} input: {e}").into())
    }

    fn out<T: Serialize>(v: T) -> Result<String, StageError> {
        Ok(serde_json::to_string_pretty(&v).expect("stage outputs are plain data"))
    }

    /// `{"file": PATH}` → [`FileSummary`].
    pub fn inspect(s: &impl Inspect, input: &str) -> Result<String, StageError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct InspectInput {
            file: PathBuf,
        }
        out(s.inspect(&parse::<InspectInput>("inspect", input)?.file)?)
    }

    /// [`ConvertInput`] → [`NpyManifest`].
    pub fn convert(s: &impl Convert, input: &str) -> Result<String, StageError> {
        out(s.convert(&parse("convert", input)?)?)
    }

    /// [`SelectInput`] → [`SelectOutput`].
    pub fn select(s: &impl Select, input: &str) -> Result<String, StageError> {
        let i: SelectInput = parse("select", input)?;
        out(s.select(&i.events, &i.cuts)?)
    }

    /// [`HistogramInput`] → [`Histogram`].
    pub fn histogram(s: &impl MakeHistogram, input: &str) -> Result<String, StageError> {
        let i: HistogramInput = parse("histogram", input)?;
        out(s.histogram(&i.diphotons, &i.binning)?)
    }

    /// [`FitInput`] → [`FitResult`].
    pub fn fit(s: &impl Fit, input: &str) -> Result<String, StageError> {
        let i: FitInput = parse("fit", input)?;
        out(s.fit(&i.model, &i.histogram)?)
    }

    /// [`MeasureInput`] → [`Measurement`].
    pub fn measure(s: &impl Measure, input: &str) -> Result<String, StageError> {
        out(s.measure(&parse("measure", input)?)?)
    }
}

/// The reference implementation of every stage, which agent-written stages are validated
/// against, and which itself agrees with ROOT on the fixtures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl Inspect for Reference {
    fn inspect(&self, file: &Path) -> Result<FileSummary, StageError> {
        crate::rootio::inspect(file).map_err(|e| e.to_string().into())
    }
}

impl Convert for Reference {
    fn convert(&self, input: &ConvertInput) -> Result<NpyManifest, StageError> {
        let nt = crate::rootio::Ntuple::open(&input.file, &crate::events::Release::TREES)
            .map_err(|e| StageError::from(e.to_string()))?;
        crate::convert::convert(&nt, input.branches.as_deref(), &input.out_dir)
            .map_err(|e| e.to_string().into())
    }
}

impl Select for Reference {
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError> {
        events.validate()?;
        let (diphotons, cut_flow) = crate::select::select(events, cuts);
        Ok(SelectOutput {
            diphotons,
            cut_flow,
        })
    }
}

impl MakeHistogram for Reference {
    fn histogram(&self, d: &Diphotons, binning: &Binning) -> Result<Histogram, StageError> {
        binning.validate()?;
        if d.m_yy.len() != d.weight.len() {
            return Err(format!("{} masses but {} weights", d.m_yy.len(), d.weight.len()).into());
        }
        let mut h = Histogram::new(*binning);
        for (&m, &w) in d.m_yy.iter().zip(&d.weight) {
            h.fill(m, w);
        }
        Ok(h)
    }
}

impl Fit for Reference {
    fn fit(&self, model: &FitModel, histogram: &Histogram) -> Result<FitResult, StageError> {
        crate::fit::fit(model, histogram).map_err(|e| e.to_string().into())
    }
}

impl Measure for Reference {
    fn measure(&self, input: &MeasureInput) -> Result<Measurement, StageError> {
        crate::measure::measure(input).map_err(StageError::from)
    }
}

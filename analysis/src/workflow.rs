//! The analysis's steps as functions: files → batches of events → select → histogram → fit →
//! measure, with any [stage](crate::stage) implementations, in parallel and deterministically;
//! its configuration and its result (`results.json`). The steps are the building blocks of the
//! rules ([`crate::rules`], run by the `flow` engine with content-hash reruns and provenance),
//! the one way the analysis runs.
//!
//! Every input file is cut into basket-aligned entry ranges; the ranges are selected in
//! parallel (rayon) and their outputs merged in file and range order, so the result is the same
//! bit for bit for any number of threads. A failure in any file stops the run with an error
//! naming that file.

use crate::events::{empty_events, EventFile, PhotonEvents, ReadBuffers, Release};
use crate::fit::FitModel;
use crate::fit::FitResult;
use crate::histogram::{Binning, Histogram};
use crate::measure::{MeasureInput, Measurement, SignalMc};
use crate::select::{CutFlow, Cuts};
use crate::stage::{Fit, Measure, Select, SelectOutput};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Version of the `results.json` layout (2: `provenance.rules` replaces the commit; 3: `problems`,
/// and no measurement from a fit that failed or sits at a bound; 4: the categorized model with
/// nuisance parameters — `combined` quotes μ at the nominal mass with pulls and impacts, `z` at
/// that mass beside `z_local`; `model` with each category's background function and the
/// spurious-signal test; continuum files among the inputs).
pub const RESULTS_FORMAT_VERSION: u32 = 4;

/// Everything that configures a run, as data (written into the results' provenance).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The event selection (its cuts and the luminosity for MC weights).
    pub cuts: Cuts,
    /// Binning of the m_γγ histogram (GeV).
    pub binning: Binning,
    /// The inclusive fit's signal + background model.
    pub model: FitModel,
    /// Target entries per batch (batches follow the files' baskets; smaller with many threads,
    /// see [`IN_FLIGHT_EVENTS`]). 25k: a batch's columns (about 2.5 MB) are reused from batch
    /// to batch, so a one-file run touches a quarter of the fresh pages that 100k did (the
    /// loop over one 100k-event file took 0.042-0.043 s instead of 0.045-0.046 s); with
    /// many files the two sizes ran equally fast.
    pub batch_entries: u64,
    /// Steps 4–5 (classifier and categories; needs signal MC). `None`: inclusive only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorization: Option<Categorization>,
    /// The blinded signal window (m_γγ, GeV): the data in it are kept out of every fit and
    /// plot (`--blind`). The inclusive fit is then background-only on the sidebands, there is
    /// no measurement, and the categorized fit gives expected results only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blind: Option<(f64, f64)>,
}

/// How steps 4–5 run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Categorization {
    /// How the classifier is trained (step 4).
    pub classifier: crate::classify::ClassifierConfig,
    /// How the categories are chosen (step 5).
    pub categorize: crate::categorize::CategorizeConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            cuts: Cuts::default(),
            binning: Binning::default(),
            model: FitModel::default(),
            batch_entries: 25_000,
            categorization: None,
            blind: None,
        }
    }
}

/// Which files to analyse.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// Collision data files.
    pub data: Vec<PathBuf>,
    /// Signal MC (for ε×A and the measurement); may be empty.
    pub mc: Vec<PathBuf>,
    /// Background-only continuum files in the data layout, read as unweighted events: the
    /// spurious-signal test's template (may be empty: then no test, and each category's
    /// spurious signal is the configured fraction of its signal).
    #[serde(default)]
    pub continuum: Vec<PathBuf>,
}

impl Inputs {
    /// The files given in `role`.
    pub fn of(&self, role: Role) -> &[PathBuf] {
        match role {
            Role::Data => &self.data,
            Role::Mc => &self.mc,
            Role::Continuum => &self.continuum,
        }
    }
}

/// What an input file is to the analysis (`"data"`, `"mc"` or `"continuum"` in files and rule
/// names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Collision data: every event weighs 1.
    Data,
    /// Signal Monte Carlo: weighted, with a process and cross-section.
    Mc,
    /// A background-only template (the spurious-signal test's): events weigh 1, never fitted
    /// as data.
    Continuum,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Data => "data",
            Role::Mc => "mc",
            Role::Continuum => "continuum",
        })
    }
}

/// One input file as the run saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path of the file, as given.
    pub path: String,
    /// Whether the file is data or signal MC.
    pub role: Role,
    /// Open Data release of the file.
    pub release: Release,
    /// The tree's title, as the file says it.
    pub title: String,
    /// Whether the file says it is SYNTHETIC (its tree title; or its name, for files written
    /// without a title).
    pub synthetic: bool,
    /// Entries in the file's tree.
    pub entries: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// BLAKE3 hash of the file's content.
    pub blake3: String,
    /// The file's cut flow (empty for a continuum template, which is only scored).
    pub cut_flow: CutFlow,
}

/// What made one step's output: the implementation that ran and, when the step ran as a rule,
/// its provenance record (a path relative to the output folder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleRef {
    /// Implementation identity of the code that ran.
    pub implementation: String,
    /// Its provenance record, relative to the output folder (when it ran as a rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// How the result was made: only what the inputs, parameters and code determine (no clocks,
/// no host — those are in the records), so identical work gives identical bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Every input file, as the run saw it.
    pub inputs: Vec<InputFile>,
    /// The run's configuration.
    pub config: AnalysisConfig,
    /// Version of the stage API (`STAGE_API_VERSION`).
    pub stage_api_version: u32,
    /// Step (rule) name → what ran.
    pub rules: BTreeMap<String, RuleRef>,
}

/// What `cargo xtask analyze` writes to `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    /// Layout version ([`RESULTS_FORMAT_VERSION`]).
    pub format_version: u32,
    /// True when any input is SYNTHETIC (file name says so): not a physics result.
    pub synthetic_inputs: bool,
    /// Cut flow of the data, summed over files.
    pub cut_flow: CutFlow,
    /// The data's m_γγ histogram (signal-window bins emptied when blinded).
    pub histogram: Histogram,
    /// The inclusive fit of the data histogram.
    pub fit: FitResult,
    /// Cut flow of the signal MC (`None` without MC).
    pub mc_cut_flow: Option<CutFlow>,
    /// The signal MC's m_γγ histogram (`None` without MC).
    pub mc_histogram: Option<Histogram>,
    /// ε×A, σ×B and μ (with signal MC, unblinded).
    pub measurement: Option<Measurement>,
    /// Steps 4–5, when they ran: the classifier's summary and the categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierSummary>,
    /// The categories (step 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<crate::categorize::Categories>,
    /// The simultaneous fit of the categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<crate::fit::simultaneous::Combined>,
    /// The signal shape of the categorized model (fitted to the signal MC) and the systematic
    /// uncertainties it carries; the whole model, with its data, is `workspace.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSummary>,
    /// The same model on one inclusive category (the comparison for `combined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_inclusive: Option<crate::fit::simultaneous::Combined>,
    /// Why this result must not be quoted as a measurement, a sentence each (a fit that
    /// failed or has a parameter at a bound: then there is no measurement). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// How the result was made.
    pub provenance: Provenance,
}

/// What results.json says of the categorized statistical model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// The signal shape fitted to the signal MC.
    pub signal: crate::fit::simultaneous::SignalShape,
    /// How that fit ended.
    pub signal_fit: crate::fit::simultaneous::FitRecord,
    /// Each category's background function, by name.
    pub backgrounds: Vec<(String, crate::fit::Background)>,
    /// Each category's spurious signal (events): its `spurious_K` uncertainty.
    pub spurious: Vec<(String, f64)>,
    /// The systematic uncertainties' sizes.
    pub systematics: crate::fit::simultaneous::Systematics,
    /// The spurious-signal test per category, then on the inclusive one (empty without a
    /// continuum template: then each category's spurious signal is
    /// `systematics.spurious_fraction` of its signal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spurious_test: Vec<crate::fit::spurious::SpuriousTest>,
}

/// What results.json says of the classifier (the model itself is in `work/classify/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSummary {
    /// BLAKE3 of the two fold models' JSON.
    pub hash: String,
    /// Weighted ROC AUC of the held-out training scores.
    pub auc: f64,
    /// Total gain per feature, normalised to 1.
    pub importance: Vec<(String, f64)>,
    /// Signal (MC) events in the training sample.
    pub n_signal: usize,
    /// Background (data sideband) events in the training sample.
    pub n_background: usize,
    /// What scores each fold: the GBDT (and its trees) or a single feature alone.
    #[serde(default)]
    pub models: [String; 2],
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// An input file could not be read.
    #[error(transparent)]
    Read(#[from] crate::rootio::ReadError),
    /// A stage failed on one file.
    #[error("{file}: {stage} stage: {message}")]
    Stage {
        /// The file.
        file: String,
        /// The stage's name.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A step on merged results failed, or its configuration is invalid.
    #[error("{stage} stage: {message}")]
    Summary {
        /// The step's name.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
    /// No data files were given.
    #[error("no data files given")]
    NoData,
    /// An input file's tree has no entries.
    #[error("{file}: tree '{tree}' has no entries")]
    EmptyTree {
        /// The file.
        file: String,
        /// The tree's name.
        tree: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A rule of the flow engine failed (its message names the rule and the file).
    #[error(transparent)]
    Flow(#[from] flow::FlowError),
}

/// Events the event loop's threads hold at most, together (see [`select_file`]).
pub const IN_FLIGHT_EVENTS: u64 = 400_000;
/// The smallest batch target, whatever the thread count.
const MIN_BATCH: u64 = 10_000;

/// What the event loop tells whoever watches it (a progress bar, a throughput count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopEvent {
    /// A file's batches start being read and selected.
    FileStarted,
    /// `n` more events went through the selection.
    Batch(u64),
    /// A file's batches are all read, selected and merged (or one failed).
    FileFinished,
}

/// Selects every batch of `file` in parallel; the batches' outputs in range order.
pub fn select_file(
    file: &EventFile,
    cuts: &Cuts,
    batch_entries: u64,
    stage: &(dyn Select + Sync),
    progress: &(dyn Fn(LoopEvent) + Sync),
) -> Result<SelectedParts, WorkflowError> {
    progress(LoopEvent::FileStarted);
    let out = select_batches(file, cuts, batch_entries, stage, progress);
    progress(LoopEvent::FileFinished);
    out
}

fn select_batches(
    file: &EventFile,
    cuts: &Cuts,
    batch_entries: u64,
    stage: &(dyn Select + Sync),
    progress: &(dyn Fn(LoopEvent) + Sync),
) -> Result<SelectedParts, WorkflowError> {
    // Each thread holds one batch (its columns, about 100 bytes an event): with many threads
    // the batches shrink, so the events in flight, and the memory, stay bounded whatever the
    // thread count. A file is also cut into up to one batch a thread (at basket edges, and
    // none under MIN_BATCH), so that every thread decodes and selects even when there is one
    // file: with one batch, only the inflating of its baskets was parallel (efficiency 0.76
    // at 2 threads on one file, 0.93-0.94 now).
    // The result does not depend on the batches.
    let threads = rayon::current_num_threads() as u64;
    let target = batch_entries.min(
        (IN_FLIGHT_EVENTS / threads)
            .min(file.entries().div_ceil(threads))
            .max(MIN_BATCH),
    );
    let ranges = file.chunks(target)?;
    let outputs: Vec<SelectOutput> = ranges
        .par_iter()
        .map(|range| {
            // Each thread reuses one batch's memory from batch to batch and file to file.
            thread_local! {
                static BATCH: std::cell::RefCell<Option<(PhotonEvents, ReadBuffers)>> =
                    const { std::cell::RefCell::new(None) };
            }
            let (mut events, mut buffers) = BATCH
                .with(|b| b.borrow_mut().take())
                .unwrap_or_else(|| (empty_events(file.release()), ReadBuffers::default()));
            file.read_into(range.clone(), &mut events, &mut buffers)?;
            let out = stage
                .select(&events, cuts)
                .map_err(|e| WorkflowError::Stage {
                    file: file.ntuple().path().display().to_string(),
                    stage: "select",
                    message: e.message,
                })?;
            BATCH.with(|b| *b.borrow_mut() = Some((events, buffers)));
            progress(LoopEvent::Batch(range.end - range.start));
            Ok(out)
        })
        .collect::<Vec<Result<_, WorkflowError>>>()
        // The first failing batch in range order is the error, whichever finished first.
        .into_iter()
        .collect::<Result<_, WorkflowError>>()?;
    Ok(SelectedParts(outputs))
}

/// One file's selection: its batches' outputs in range order, not merged. Merging copied
/// every selected event once more into fresh memory (2% of the loop over one file); written
/// out ([`SelectedParts::write_postcard`]), the parts give exactly the bytes of their merged
/// [`SelectOutput`], so the rule writes them as they are.
#[derive(Clone, Debug, Default)]
pub struct SelectedParts(pub Vec<SelectOutput>);

impl SelectedParts {
    /// The cut flow of every batch, summed.
    pub fn cut_flow(&self) -> CutFlow {
        let mut all = CutFlow::default();
        for o in &self.0 {
            all.add(&o.cut_flow);
        }
        all
    }

    /// The batches as one output, in range order: the same floating-point values whatever
    /// the thread count or the batches.
    pub fn merged(self) -> SelectOutput {
        let cut_flow = self.cut_flow();
        let total = self.0.iter().map(|o| o.diphotons.len()).sum::<usize>();
        let mut parts = self.0.into_iter();
        let mut diphotons = parts.next().map(|o| o.diphotons).unwrap_or_default();
        let (more, kinematics) = (
            total - diphotons.len(),
            !diphotons.kinematics.pt1.is_empty(),
        );
        crate::select::reserve(&mut diphotons, more, kinematics);
        for o in parts {
            diphotons.extend(&o.diphotons);
        }
        SelectOutput {
            diphotons,
            cut_flow,
        }
    }
}

impl SelectedParts {
    /// Writes the parts in [postcard](https://docs.rs/postcard)'s encoding of their merged
    /// [`SelectOutput`] (what `flow::Ctx::read_binary` reads back): each column once, its
    /// length then every part's values. By hand because postcard, through serde, writes an
    /// f64 column value by value; here a column goes out in blocks of little-endian bytes.
    /// The encoding (unsigned LEB128 lengths and integers, little-endian floats, fields in
    /// declaration order) is checked byte for byte against postcard in
    /// `selected_parts_write_their_merged_bytes`.
    pub fn write_postcard(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        fn varint(w: &mut dyn std::io::Write, mut v: u64) -> std::io::Result<()> {
            let (mut buf, mut n) = ([0u8; 10], 0);
            loop {
                buf[n] = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    break;
                }
                buf[n] |= 0x80;
                n += 1;
            }
            w.write_all(&buf[..=n])
        }
        let mut bytes = Vec::with_capacity(8 << 10);
        let mut column =
            |w: &mut dyn std::io::Write, pick: &dyn Fn(&stage_api::select::Diphotons) -> &[f64]| {
                let total = self
                    .0
                    .iter()
                    .map(|o| pick(&o.diphotons).len())
                    .sum::<usize>();
                varint(w, total as u64)?;
                for values in self.0.iter().map(|o| pick(&o.diphotons)) {
                    for block in values.chunks(1 << 10) {
                        bytes.clear();
                        bytes.extend(block.iter().flat_map(|v| v.to_le_bytes()));
                        w.write_all(&bytes)?;
                    }
                }
                Ok::<_, std::io::Error>(())
            };
        column(w, &|d| &d.m_yy)?;
        column(w, &|d| &d.weight)?;
        for i in 0..stage_api::select::Kinematics::default().columns().len() {
            column(w, &|d| d.kinematics.columns()[i].1)?;
        }
        let flow = self.cut_flow();
        varint(w, flow.0.len() as u64)?;
        for c in &flow.0 {
            varint(w, c.cut.len() as u64)?;
            w.write_all(c.cut.as_bytes())?;
            varint(w, c.pass)?;
            varint(w, c.all)?;
        }
        Ok(())
    }
}

/// Whether a file says it is SYNTHETIC: its tree title, or (for files written by tools that
/// set no title, such as the test fixtures) its name.
pub fn is_synthetic(file: &EventFile) -> bool {
    let name = file
        .ntuple()
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    file.ntuple().title().contains("SYNTHETIC") || name.contains("SYNTHETIC")
}

/// The histograms of several files summed bin by bin, in the given (file) order.
pub fn merge_histograms(parts: &[Histogram], binning: &Binning) -> Histogram {
    let mut all = Histogram::new(*binning);
    for h in parts {
        all.add(h);
    }
    all
}

/// The data fit: the DSCB tails from the signal MC when there is one, then the fit — or,
/// blinded, the background-only fit to the sidebands outside `blind`
/// ([`crate::fit::fit_sidebands`]).
pub fn fit_data(
    model: &FitModel,
    data: &Histogram,
    signal_mc: Option<&Histogram>,
    blind: Option<(f64, f64)>,
    stage: &dyn Fit,
) -> Result<FitResult, WorkflowError> {
    if let Some(window) = blind {
        return crate::fit::fit_sidebands(model, data, window).map_err(|e| {
            WorkflowError::Summary {
                stage: "fit",
                message: format!("blinded fit to the sidebands: {e}"),
            }
        });
    }
    let mut model = *model;
    if let Some(h) = signal_mc {
        model.dscb_tails =
            crate::fit::fit_signal_tails(&model, h).map_err(|e| WorkflowError::Summary {
                stage: "fit",
                message: e.to_string(),
            })?;
    }
    stage.fit(&model, data).map_err(|e| WorkflowError::Summary {
        stage: "fit",
        message: e.message,
    })
}

/// σ×B, ε×A and μ from the fit and the signal MC's histogram.
pub fn measure(
    fit: &FitResult,
    signal_mc: &Histogram,
    xsection_pb: f64,
    lumi_pb: f64,
    stage: &dyn Measure,
) -> Result<Measurement, WorkflowError> {
    let input = MeasureInput {
        fit: fit.clone(),
        signal_mc: SignalMc {
            weighted_yield: signal_mc.integral(),
            sumw2: signal_mc.sumw2.iter().sum(),
            xsection_pb,
        },
        lumi_pb,
    };
    stage.measure(&input).map_err(|e| WorkflowError::Summary {
        stage: "measure",
        message: e.message,
    })
}

/// Total entries of the inputs (for a progress bar), opening each file once.
pub fn count_entries(inputs: &Inputs) -> Result<u64, WorkflowError> {
    let mut n = 0;
    for p in inputs.data.iter().chain(&inputs.mc) {
        n += EventFile::open(p)?.entries();
    }
    Ok(n)
}

/// Checks the configuration before any file is read.
pub fn check_config(inputs: &Inputs, cfg: &AnalysisConfig) -> Result<(), WorkflowError> {
    if inputs.data.is_empty() {
        return Err(WorkflowError::NoData);
    }
    cfg.binning
        .validate()
        .map_err(|message| WorkflowError::Summary {
            stage: "histogram",
            message,
        })?;
    cfg.model
        .validate(cfg.binning.lo, cfg.binning.hi)
        .map_err(|message| WorkflowError::Summary {
            stage: "fit",
            message,
        })?;
    // A binned fit needs more bins than parameters, or it cannot be constrained.
    let n = cfg.model.params(1.0).len();
    if cfg.binning.bins <= n {
        return Err(WorkflowError::Summary {
            stage: "fit",
            message: format!(
                "{} bins cannot constrain a fit of {n} parameters: give --bins more than {n}",
                cfg.binning.bins
            ),
        });
    }
    Ok(())
}

/// Why `fit` (the inclusive fit of the data) cannot give a measurement, in a sentence; `None`
/// when it converged with every parameter inside its bounds.
pub fn fit_problem(fit: &FitResult) -> Option<String> {
    match fit.status {
        crate::fit::FitStatus::Ok => None,
        crate::fit::FitStatus::AtBound => Some(
            "the inclusive fit has a parameter at a bound of its range, so its errors are not \
             meaningful: no measurement is made"
                .into(),
        ),
        crate::fit::FitStatus::Failed => Some(
            "the inclusive fit failed (no minimum, or its Hessian is not positive definite): \
             no measurement is made"
                .into(),
        ),
    }
}

/// Why the categorized results cannot be quoted, a sentence each: the signal MC's shape fit, and
/// per model the fits behind μ, q0 and the expected Z that failed or have a free parameter at
/// a bound (which fits, which parameters).
pub fn categorized_problems(fits: &crate::fit::simultaneous::Fits) -> Vec<String> {
    use crate::fit::FitStatus;
    let mut problems = Vec::new();
    let signal = &fits.signal_fit;
    match signal.status {
        FitStatus::Ok => {}
        FitStatus::AtBound => problems.push(format!(
            "the fit of the signal shape to the signal MC ended with {} at a bound of its range \
             (a shape the MC does not support): the categorized model's signal shape is not \
             usable",
            signal.at_bound.join(", ")
        )),
        FitStatus::Failed => problems.push(
            "the fit of the signal shape to the signal MC failed (no minimum, or its Hessian is \
             not positive definite): the categorized model's signal shape is not usable"
                .into(),
        ),
    }
    for (which, c) in [
        ("categorized", &fits.combined),
        ("one-category", &fits.inclusive),
    ] {
        let of = |status: FitStatus| -> Vec<&crate::fit::simultaneous::FitRecord> {
            c.fits.iter().filter(|f| f.status == status).collect()
        };
        let names = |fs: &[&crate::fit::simultaneous::FitRecord]| {
            if fs.len() == c.fits.len() {
                format!("(all {})", fs.len())
            } else {
                fs.iter()
                    .map(|f| format!("'{}'", f.fit))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let failed = of(FitStatus::Failed);
        if !failed.is_empty() {
            problems.push(format!(
                "the {which} model's fits {} failed (no minimum, or a Hessian that is not \
                 positive definite): the results they give are not usable",
                names(&failed)
            ));
        }
        let bound = of(FitStatus::AtBound);
        if !bound.is_empty() {
            let mut params: Vec<&str> = bound
                .iter()
                .flat_map(|f| f.at_bound.iter().map(String::as_str))
                .collect();
            params.sort_unstable();
            params.dedup();
            problems.push(format!(
                "the {which} model's fits {} ended with {} at a bound of its range: the results \
                 they give are not usable",
                names(&bound),
                params.join(", ")
            ));
        }
    }
    problems
}

/// Opens a file for the analysis: an empty tree is an error naming the file.
pub fn open_input(path: &std::path::Path) -> Result<EventFile, WorkflowError> {
    let f = EventFile::open(path)?;
    if f.entries() == 0 {
        return Err(WorkflowError::EmptyTree {
            file: f.ntuple().path().display().to_string(),
            tree: f.ntuple().tree_name().to_string(),
        });
    }
    Ok(f)
}

/// A signal MC file's process and cross-section (`channelNumber`, `XSection`).
pub fn mc_process(f: &EventFile) -> Result<(u64, f64), WorkflowError> {
    let nt = f.ntuple();
    let Some(xs_branch) = crate::events::branches(f.release())
        .xsection
        .filter(|b| nt.has_branch(b))
    else {
        return Err(WorkflowError::Stage {
            file: nt.path().display().to_string(),
            stage: "measure",
            message: "signal MC file has no XSection branch".into(),
        });
    };
    let xs = nt.read_scalar::<f32>(xs_branch, 0..1)?[0] as f64;
    let channel = if nt.has_branch("channelNumber") {
        nt.read_id("channelNumber", 0..1)?[0]
    } else {
        0
    };
    Ok((channel, xs))
}

/// The theory σ×B of the signal MC: the files' `XSection`, summed over distinct processes
/// (`channelNumber`), so ggH + VBF files give the total signal cross-section. `processes`:
/// (file, channel, σ) per file.
pub fn total_xsection(processes: &[(String, u64, f64)]) -> Result<f64, WorkflowError> {
    let mut by_channel: Vec<(u64, f64)> = Vec::new();
    for (file, channel, xs) in processes {
        match by_channel.iter().find(|(c, _)| c == channel) {
            Some((_, prev)) if (prev - xs).abs() > 1e-9 * prev.abs() => {
                return Err(WorkflowError::Stage {
                    file: file.clone(),
                    stage: "measure",
                    message: format!(
                        "channel {channel} has XSection {xs} pb here and {prev} pb in another file"
                    ),
                })
            }
            Some(_) => {}
            None => by_channel.push((*channel, *xs)),
        }
    }
    Ok(by_channel.iter().map(|(_, xs)| xs).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's output with `n` events whose every value tells where it came from.
    fn part(seed: f64, n: usize) -> SelectOutput {
        let mut o = SelectOutput::default();
        for i in 0..n {
            let v = seed * 1000.0 + i as f64 + 0.25;
            o.diphotons.m_yy.push(v);
            o.diphotons.weight.push(-v);
            let columns = crate::select::kinematics_mut(&mut o.diphotons.kinematics);
            for (j, c) in columns.into_iter().enumerate() {
                c.push(v + j as f64 / 100.0);
            }
        }
        for (k, c) in o.cut_flow.0.iter_mut().enumerate() {
            c.all = (seed as u64 + 1) * 100 - k as u64;
            c.pass = c.all - 1;
        }
        o
    }

    /// The parts written as they are give postcard's bytes of the merged output, which read
    /// back equal to it; an empty first part and no parts at all too.
    #[test]
    fn selected_parts_write_their_merged_bytes() {
        for parts in [
            vec![part(1.0, 3), part(2.0, 0), part(3.0, 5)],
            vec![part(1.0, 0), part(2.0, 1500)],
            vec![part(7.0, 2)],
            vec![],
        ] {
            let parts = SelectedParts(parts);
            let merged = parts.clone().merged();
            assert_eq!(
                merged.diphotons.len(),
                parts.0.iter().map(|o| o.diphotons.len()).sum::<usize>()
            );
            let mut bytes = Vec::new();
            parts.write_postcard(&mut bytes).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(&merged).unwrap());
            assert_eq!(
                postcard::from_bytes::<SelectOutput>(&bytes).unwrap(),
                merged
            );
        }
    }
}

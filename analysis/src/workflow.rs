//! The workflow engine: files → batches of events → select → histogram → fit → measure, with
//! any [stage](crate::stage) implementations, in parallel and deterministically.
//!
//! Every input file is cut into basket-aligned entry ranges; the ranges are selected in
//! parallel (rayon) and their outputs merged in file and range order, so the result is the same
//! bit for bit for any number of threads. A failure in any file stops the run with an error
//! naming that file.

use crate::events::{EventFile, Release};
use crate::fit::FitModel;
use crate::fit::FitResult;
use crate::histogram::{Binning, Histogram};
use crate::measure::{MeasureInput, Measurement, SignalMc};
use crate::select::{CutFlow, Cuts};
use crate::stage::{Fit, MakeHistogram, Measure, Select, SelectOutput, STAGE_API_VERSION};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::PathBuf;

/// Version of the `results.json` layout.
pub const RESULTS_FORMAT_VERSION: u32 = 1;

/// Everything that configures a run, as data (written into the results' provenance).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    pub cuts: Cuts,
    pub binning: Binning,
    pub model: FitModel,
    /// Target entries per batch (batches follow the files' baskets).
    pub batch_entries: u64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            cuts: Cuts::default(),
            binning: Binning::default(),
            model: FitModel::default(),
            batch_entries: 100_000,
        }
    }
}

/// Which files to analyse.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    pub data: Vec<PathBuf>,
    /// Signal MC (for ε×A and the measurement); may be empty.
    pub mc: Vec<PathBuf>,
}

/// One input file as the run saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub role: String,
    pub release: Release,
    pub entries: u64,
    pub bytes: u64,
    /// BLAKE3 hash of the file's content.
    pub blake3: String,
    pub cut_flow: CutFlow,
}

/// How the result was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub inputs: Vec<InputFile>,
    pub config: AnalysisConfig,
    /// The code that ran (crate version and git commit, as given by the caller).
    pub code_version: String,
    pub stage_api_version: u32,
}

/// What `cargo xtask analyze` writes to `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    pub format_version: u32,
    /// True when any input is SYNTHETIC (file name says so): not a physics result.
    pub synthetic_inputs: bool,
    pub cut_flow: CutFlow,
    pub histogram: Histogram,
    pub fit: FitResult,
    pub mc_cut_flow: Option<CutFlow>,
    pub mc_histogram: Option<Histogram>,
    pub measurement: Option<Measurement>,
    pub provenance: Provenance,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Read(#[from] crate::rootio::ReadError),
    #[error("{file}: {stage} stage: {message}")]
    Stage {
        file: String,
        stage: &'static str,
        message: String,
    },
    #[error("{stage} stage: {message}")]
    Summary {
        stage: &'static str,
        message: String,
    },
    #[error("no data files given")]
    NoData,
    #[error("{file}: tree '{tree}' has no entries")]
    EmptyTree { file: String, tree: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The four stages a run uses; [`crate::stage::Reference`] is all of them.
pub trait Stages: Select + MakeHistogram + Fit + Measure + Sync {}
impl<T: Select + MakeHistogram + Fit + Measure + Sync> Stages for T {}

struct Task {
    file: usize,
    range: Range<u64>,
}

/// Selects every batch of `files`, in parallel; outputs per file, in order.
fn select_files(
    files: &[EventFile],
    cfg: &AnalysisConfig,
    stages: &impl Stages,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<SelectOutput>, WorkflowError> {
    let mut tasks = Vec::new();
    for (i, f) in files.iter().enumerate() {
        for range in f.chunks(cfg.batch_entries)? {
            tasks.push(Task { file: i, range });
        }
    }
    let outputs: Vec<SelectOutput> = tasks
        .par_iter()
        .map(|t| {
            let f = &files[t.file];
            let events = f.read(t.range.clone())?;
            let out = stages
                .select(&events, &cfg.cuts)
                .map_err(|e| WorkflowError::Stage {
                    file: f.ntuple().path().display().to_string(),
                    stage: "select",
                    message: e.message,
                })?;
            progress(t.range.end - t.range.start);
            Ok(out)
        })
        .collect::<Result<_, WorkflowError>>()?;
    // Merge in task order: the same floating-point sums whatever the thread count.
    let mut per_file: Vec<SelectOutput> = files.iter().map(|_| SelectOutput::default()).collect();
    for (t, o) in tasks.iter().zip(outputs) {
        per_file[t.file].diphotons.extend(&o.diphotons);
        per_file[t.file].cut_flow.add(&o.cut_flow);
    }
    Ok(per_file)
}

fn hash(path: &std::path::Path) -> Result<(String, u64), WorkflowError> {
    let io = |source| WorkflowError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut h = blake3::Hasher::new();
    let mut f = std::fs::File::open(path).map_err(io)?;
    let n = std::io::copy(&mut f, &mut h).map_err(io)?;
    Ok((h.finalize().to_hex().to_string(), n))
}

/// Total entries of the inputs (for a progress bar), opening each file once.
pub fn count_entries(inputs: &Inputs) -> Result<u64, WorkflowError> {
    let mut n = 0;
    for p in inputs.data.iter().chain(&inputs.mc) {
        n += EventFile::open(p)?.entries();
    }
    Ok(n)
}

/// Runs the whole chain. `progress` is told how many entries each finished batch held.
pub fn run(
    inputs: &Inputs,
    cfg: &AnalysisConfig,
    stages: &impl Stages,
    code_version: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<AnalysisResult, WorkflowError> {
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
    let open = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(EventFile::open)
            .collect::<Result<Vec<_>, _>>()
    };
    let (data, mc) = (open(&inputs.data)?, open(&inputs.mc)?);
    if let Some(f) = data.iter().chain(&mc).find(|f| f.entries() == 0) {
        return Err(WorkflowError::EmptyTree {
            file: f.ntuple().path().display().to_string(),
            tree: f.ntuple().tree_name().to_string(),
        });
    }
    let data_out = select_files(&data, cfg, stages, progress)?;
    let mc_out = select_files(&mc, cfg, stages, progress)?;

    let merge = |outs: &[SelectOutput]| {
        let mut all = SelectOutput::default();
        for o in outs {
            all.diphotons.extend(&o.diphotons);
            all.cut_flow.add(&o.cut_flow);
        }
        all
    };
    let summary = |stage: &'static str| {
        move |e: crate::stage::StageError| WorkflowError::Summary {
            stage,
            message: e.message,
        }
    };
    let data_all = merge(&data_out);
    let histogram = stages
        .histogram(&data_all.diphotons, &cfg.binning)
        .map_err(summary("histogram"))?;
    let mc_all = (!mc.is_empty()).then(|| merge(&mc_out));
    let mc_histogram = match &mc_all {
        Some(m) => Some(
            stages
                .histogram(&m.diphotons, &cfg.binning)
                .map_err(summary("histogram"))?,
        ),
        None => None,
    };
    // A DSCB's tails are taken from the signal MC when there is one, then held in the data fit.
    let mut model = cfg.model;
    if let Some(h) = &mc_histogram {
        model.dscb_tails =
            crate::fit::fit_signal_tails(&model, h).map_err(|e| WorkflowError::Summary {
                stage: "fit",
                message: e.to_string(),
            })?;
    }
    let fit = stages.fit(&model, &histogram).map_err(summary("fit"))?;

    let measurement = match &mc_histogram {
        None => None,
        Some(h) => {
            let input = MeasureInput {
                fit: fit.clone(),
                signal_mc: SignalMc {
                    weighted_yield: h.integral(),
                    sumw2: h.sumw2.iter().sum(),
                    xsection_pb: mc_xsection(&mc)?,
                },
                lumi_pb: cfg.cuts.lumi_pb,
            };
            Some(stages.measure(&input).map_err(summary("measure"))?)
        }
    };
    let mc_cut_flow = mc_all.map(|m| m.cut_flow);

    let mut files = Vec::new();
    for (role, opened, outs) in [("data", &data, &data_out), ("mc", &mc, &mc_out)] {
        for (f, o) in opened.iter().zip(outs.iter()) {
            let (blake3, bytes) = hash(f.ntuple().path())?;
            files.push(InputFile {
                path: f.ntuple().path().display().to_string(),
                role: role.to_string(),
                release: f.release(),
                entries: f.entries(),
                bytes,
                blake3,
                cut_flow: o.cut_flow.clone(),
            });
        }
    }
    Ok(AnalysisResult {
        format_version: RESULTS_FORMAT_VERSION,
        synthetic_inputs: files.iter().any(|f| f.path.contains("SYNTHETIC")),
        cut_flow: data_all.cut_flow,
        histogram,
        fit,
        mc_cut_flow,
        mc_histogram,
        measurement,
        provenance: Provenance {
            inputs: files,
            config: cfg.clone(),
            code_version: code_version.to_string(),
            stage_api_version: STAGE_API_VERSION,
        },
    })
}

/// The theory σ×B of the signal MC: each file's `XSection`, summed over distinct processes
/// (`channelNumber`), so ggH + VBF files give the total signal cross-section.
fn mc_xsection(mc: &[EventFile]) -> Result<f64, WorkflowError> {
    let mut by_channel: Vec<(u64, f64)> = Vec::new();
    for f in mc {
        let nt = f.ntuple();
        let stage_err = |message: String| WorkflowError::Stage {
            file: nt.path().display().to_string(),
            stage: "measure",
            message,
        };
        let Some(xs_branch) = crate::events::branches(f.release())
            .xsection
            .filter(|b| nt.has_branch(b))
        else {
            return Err(stage_err("signal MC file has no XSection branch".into()));
        };
        let xs = nt.read_scalar::<f32>(xs_branch, 0..1)?[0] as f64;
        let channel = if nt.has_branch("channelNumber") {
            nt.read_id("channelNumber", 0..1)?[0]
        } else {
            0
        };
        match by_channel.iter().find(|(c, _)| *c == channel) {
            Some((_, prev)) if (prev - xs).abs() > 1e-9 * prev.abs() => {
                return Err(stage_err(format!(
                    "channel {channel} has XSection {xs} pb here and {prev} pb in another file"
                )))
            }
            Some(_) => {}
            None => by_channel.push((channel, xs)),
        }
    }
    Ok(by_channel.iter().map(|(_, xs)| xs).sum())
}

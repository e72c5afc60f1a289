//! The analysis as rules of the [`flow`] engine — how `cargo xtask analyze` runs, and the one
//! way the analysis runs ([`run`] for a caller that wants the result in one call). One module
//! per step, each holding its rules' constructor and job:
//!
//! * `inspect`: `inspect/ROLE/FILE` — what each input file is;
//! * `convert`: `convert/ROLE/FILE` — `.npy` columns (the paper's step 2, `--convert`);
//! * `select`: `select/ROLE/FILE` — the selected diphotons and cut flow (the event loop);
//! * `histogram`: `histogram/ROLE/FILE`, then `merge/ROLE` in file order;
//! * `fit`: `fit` and, with signal MC, `measure`;
//! * `categorize`: with signal MC and `categorization`, `classify/train`,
//!   `score/ROLE/FILE`, `categorize`, `categories/fit`;
//! * `results`: `results` (`results.json`) and, beside a model-written stage, `compare`;
//! * `plots`: `plots` and `plots/classifier`.
//!
//! Per input file where it can be (adding a file runs only that file; the Slurm executor maps
//! instances onto jobs). Every rule declares only the parameters its output depends on
//! (`select/data/...` the cuts without the luminosity, as data weights are 1). Its
//! implementation identity is its step's ([`Identities`], from `identity.rs`: every source file
//! whose code the step may run), or a model-written stage's identity.
//!
//! A [`Chain`] is one set of these rules writing under one folder with one select
//! implementation: the reference's, or — `--stage select=PATH` — a compiled, sandboxed,
//! model-written stage, whose chain sits beside the reference's and a `compare` rule sets the
//! two results side by side.

mod categorize;
mod convert;
mod fit;
mod histogram;
mod inspect;
mod plots;
mod results;
mod select;

pub use results::{compare, compare_rule, comparison_markdown, Comparison, Difference};

use crate::events::Release;
use crate::histogram::Histogram;
use crate::select::CutFlow;
use crate::stage::{Reference, Select};
use crate::workflow::{
    self, AnalysisConfig, AnalysisResult, Inputs, LoopEvent, Role, WorkflowError,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A rule of the analysis: a `flow` rule whose kind is its [`Step`].
pub type Rule = flow::Rule<Step>;

/// What kind of rule a rule is, carried in the engine's events (a progress display asks this,
/// never the rule's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// `inspect/ROLE/FILE`: what an input file is.
    Inspect,
    /// `convert/ROLE/FILE`: `.npy` columns.
    Convert,
    /// `select/ROLE/FILE`: the selected diphotons and cut flow.
    Select,
    /// `histogram/ROLE/FILE`: a file's m_γγ histogram and cut flow.
    Histogram,
    /// `merge/ROLE`: the files' histograms and cut flows summed.
    Merge,
    /// `fit`: the fit of the merged data histogram.
    Fit,
    /// `measure`: ε×A, σ×B and μ.
    Measure,
    /// `classify/train`: the classifier.
    Train,
    /// `score/ROLE/FILE`: a file's score × m_γγ histogram.
    Score,
    /// `categorize`: the category boundaries.
    Categorize,
    /// `categories/fit`: the simultaneous fit of the categories.
    FitCategories,
    /// `results`: `results.json`.
    Results,
    /// `compare`: a model-written stage's results against the reference's.
    Compare,
    /// `plots` and `plots/classifier`.
    Plots,
}

impl Step {
    /// One instance per input file.
    pub fn per_file(self) -> bool {
        matches!(
            self,
            Step::Inspect | Step::Convert | Step::Select | Step::Histogram | Step::Score
        )
    }
}

/// The implementation identity of each step's reference code (`STEP-HASH16`), one per module
/// of this folder; what each covers is said in `analysis/identity.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identities {
    /// Identity of the `inspect` step.
    pub inspect: &'static str,
    /// Identity of the `convert` step.
    pub convert: &'static str,
    /// Identity of the reference `select` step.
    pub select: &'static str,
    /// Identity of the `histogram` step (`histogram` and `merge` rules).
    pub histogram: &'static str,
    /// Identity of the `fit` step (`fit` and `measure` rules).
    pub fit: &'static str,
    /// Identity of the `categorize` step (classifier, scores, categories and their fit).
    pub categorize: &'static str,
    /// Identity of the `results` step (`results` and `compare` rules).
    pub results: &'static str,
    /// Identity of the `plots` step.
    pub plots: &'static str,
}

impl Identities {
    /// This build's, computed by `build.rs` from the sources it was compiled from.
    pub const BUILT: Identities = include!(concat!(env!("OUT_DIR"), "/identities.rs"));
}

/// A select implementation and its identity.
#[derive(Clone)]
pub struct SelectImpl {
    /// What runs: for the reference, its step's identity; for a model-written stage, its
    /// source, toolchain and contract version.
    pub identity: String,
    /// The implementation the `select` rules run.
    pub stage: Arc<dyn Select + Send + Sync>,
}

impl SelectImpl {
    /// The reference select implementation, with this build's identity.
    pub fn reference() -> Self {
        Self {
            identity: Identities::BUILT.select.to_string(),
            stage: Arc::new(Reference),
        }
    }
}

/// One chain of rules.
pub struct Chain {
    /// Rule-name prefix (`""` for the reference, `"stage-select/"` for a model-written
    /// stage's).
    pub prefix: String,
    /// Folder of `results.json`, the plots and `work/`.
    pub dir: PathBuf,
    /// The select implementation of the chain's `select` rules.
    pub select: SelectImpl,
    /// Also convert every input to `.npy` columns (`convert/ROLE/FILE`, the paper's step 2).
    pub convert: bool,
    /// The reference steps' identities ([`Identities::BUILT`]; a test gives others).
    pub identities: Identities,
}

impl Chain {
    /// The reference analysis writing under `dir`.
    pub fn reference(dir: &Path) -> Self {
        Self {
            prefix: String::new(),
            dir: dir.to_path_buf(),
            select: SelectImpl::reference(),
            convert: false,
            identities: Identities::BUILT,
        }
    }
}

/// What `inspect/...` writes: the file as the analysis sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path of the file, as given.
    pub path: String,
    /// Whether the file is data or signal MC.
    pub role: Role,
    /// Open Data release of the file (from its tree name).
    pub release: Release,
    /// Name of the tree read.
    pub tree: String,
    /// The tree's title, as the file says it.
    pub title: String,
    /// Whether the file says it is SYNTHETIC (its tree title, or its name).
    pub synthetic: bool,
    /// Entries in the tree.
    pub entries: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// BLAKE3 hash of the file's content.
    pub blake3: String,
    /// Signal MC: (`channelNumber`, `XSection` in pb).
    pub process: Option<(u64, f64)>,
}

/// What `histogram/...` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHistogram {
    /// The file's cut flow.
    pub cut_flow: CutFlow,
    /// The file's m_γγ histogram of the selected diphotons.
    pub histogram: Histogram,
}

/// What `merge/ROLE` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// The role's cut flows, summed.
    pub cut_flow: CutFlow,
    /// The role's m_γγ histograms, summed.
    pub histogram: Histogram,
    /// Per file, in input order.
    pub cut_flows: Vec<CutFlow>,
}

/// One input file's work files, as the chain names them.
#[derive(Clone, Debug)]
struct Input {
    role: Role,
    /// The input file.
    file: PathBuf,
    /// Its short rule name ([`file_names`]).
    name: String,
    /// `work/inspect/ROLE/NAME.json`.
    info: PathBuf,
    /// `work/select/ROLE/NAME.bin`.
    selected: PathBuf,
}

/// What the per-role rules wrote: the merged histograms.
struct Merges {
    data: PathBuf,
    mc: Option<PathBuf>,
}

/// Work files the results rule reads, when their steps ran.
struct Outputs {
    fit: PathBuf,
    measure: Option<PathBuf>,
    categories: Option<CategoryOutputs>,
}

/// The work files of steps 4–5 that `results` and the plots read.
struct CategoryOutputs {
    /// `classify/model.json`.
    model: PathBuf,
    /// `categories.json`.
    categories: PathBuf,
    /// `fit_categories.json`.
    combined: PathBuf,
    /// `workspace.json` (beside results.json): the categorized model as a pyhf workspace.
    workspace: PathBuf,
}

/// Short, unique, stable rule names for input files: the file name without `.root`; a name
/// that two inputs share gets a hash of its full path.
fn file_names(paths: &[PathBuf]) -> Vec<String> {
    let base = |p: &PathBuf| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        n.strip_suffix(".root").unwrap_or(&n).replace('/', "_")
    };
    paths
        .iter()
        .map(|p| {
            let b = base(p);
            if paths.iter().filter(|q| base(q) == b).count() > 1 {
                let h = blake3::hash(p.to_string_lossy().as_bytes()).to_hex();
                format!("{b}-{}", &h[..8])
            } else {
                b
            }
        })
        .collect()
}

/// The rules of one chain. `progress` is told what each file's event loop does.
pub fn chain(
    inputs: &Inputs,
    cfg: &AnalysisConfig,
    c: &Chain,
    progress: Arc<dyn Fn(LoopEvent) + Send + Sync>,
) -> Result<Vec<Rule>, WorkflowError> {
    workflow::check_config(inputs, cfg)?;
    let work = c.dir.join("work");
    let mut files = Vec::new();
    for role in [Role::Data, Role::Mc] {
        let paths = inputs.of(role);
        for (file, name) in paths.iter().zip(file_names(paths)) {
            files.push(Input {
                role,
                file: file.clone(),
                info: work.join(format!("inspect/{role}/{name}.json")),
                selected: work.join(format!("select/{role}/{name}.bin")),
                name,
            });
        }
    }
    // The continuum, a template for the categories' spurious-signal test: only selected (and
    // scored), never histogrammed or fitted as data.
    let mut continuum = Vec::new();
    if cfg.categorization.is_some() && !inputs.mc.is_empty() {
        let paths = inputs.of(Role::Continuum);
        for (file, name) in paths.iter().zip(file_names(paths)) {
            continuum.push(Input {
                role: Role::Continuum,
                file: file.clone(),
                info: work.join(format!("inspect/continuum/{name}.json")),
                selected: work.join(format!("select/continuum/{name}.bin")),
                name,
            });
        }
    }
    let mut rules = Vec::new();
    for f in &files {
        rules.push(inspect::rule(c, f));
        if c.convert {
            rules.push(convert::rule(c, &work, f));
        }
        rules.push(select::rule(c, cfg, f, progress.clone()));
    }
    for f in &continuum {
        rules.push(inspect::rule(c, f));
        rules.push(select::rule(c, cfg, f, progress.clone()));
    }
    let merges = histogram::rules(c, cfg, &work, &files, &mut rules);
    let fit = fit::rules(c, cfg, &work, &files, &merges, &mut rules);
    let categories = match (cfg.categorization, &merges.mc) {
        (Some(cat), Some(_)) => Some(categorize::rules(
            c,
            cfg,
            cat,
            &work,
            (&files, &continuum),
            &mut rules,
        )),
        _ => None,
    };
    let outputs = Outputs {
        fit: fit.0,
        measure: fit.1,
        categories,
    };
    let results = results::rule(c, cfg, (&files, &continuum), &merges, &outputs, &rules);
    let results_path = results.outputs[0].clone();
    rules.push(results);
    #[cfg(feature = "plot")]
    plots::rules(c, &results_path, outputs.categories.as_ref(), &mut rules);
    #[cfg(not(feature = "plot"))]
    let _ = results_path;
    Ok(rules)
}

/// Runs the reference analysis as rules into `dir` (its `results.json`, `work/` and
/// `provenance/`; a second call reruns only what changed) and returns the result.
pub fn run(
    inputs: &Inputs,
    cfg: &AnalysisConfig,
    dir: &Path,
) -> Result<AnalysisResult, WorkflowError> {
    let rules = chain(inputs, cfg, &Chain::reference(dir), Arc::new(|_| {}))?;
    let engine = flow::Flow::new(rules, dir.join("provenance"))?;
    engine.run(&flow::Options::default(), &|_| {})?;
    flow::read_json(&dir.join("results.json")).map_err(|e| WorkflowError::Io {
        path: e.path.display().to_string(),
        source: std::io::Error::other(e.source),
    })
}

//! The benchmark: models × tasks × trials. Every cell is one full [`agent::run::run_task`]
//! with its own directory (trajectory, cassette, last code), scored into one line of
//! `results.jsonl` ([`cell::Cell`]); the report ([`report`]) is computed from those lines
//! alone, so it can be recomputed at any time (`--rescore`) and every cell can be re-run
//! from its cassette (`--replay`).
//!
//! ```text
//! OUT/bench.json         what was asked: models (no secrets), tasks (as data), trials, seed,
//!                        iterations, budgets, code versions (rewritten atomically)
//! OUT/results.jsonl      one scored cell per line, appended and synced when the cell ends:
//!                        the commit point (a torn last line is a cell in flight)
//! OUT/cells/M/T/trial-N/ trajectory.jsonl, cassette.jsonl, attempts/, stage.rs (if accepted)
//! OUT/report.json|md, cells.csv, plots/*.png|svg
//! OUT/.lock              one writer at a time (dirlock)
//! ```
//!
//! Crash safety: a cell is done when its line is in `results.jsonl`; on `--resume` a cell
//! without one has its directory wiped and runs again, so a SIGKILL loses only the cells in
//! flight. A cell that ended as a harness error is re-checked by [`probe`] (a known-good
//! stage built and run through the same sandbox: no model code) and rerun by `--resume` up
//! to [`MAX_HARNESS_RUNS`] times.

pub mod cell;
pub mod metrics;
pub mod models;
pub mod plots;
pub mod report;

use agent::run::{run_task, Budget, Options};
use agent::stage_crate::Toolchain;
use agent::task::Task;
use agent::trajectory::Trajectory;
use cell::Cell;
use llm::cassette::{Recorder, Replayer};
use llm::gate::Gate;
use llm::http::HttpLlm;
use llm::{Llm, LlmConfig, LlmError, Message, Reply};
use models::ModelSpec;
use report::Report;
use sandbox::Limits;
use serde::{Deserialize, Serialize};
use stage_api::StageKind;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Times a cell may end as a harness error before `--resume` stops rerunning it.
pub const MAX_HARNESS_RUNS: usize = 3;

/// The layout version of the benchmark's files that are read back (`bench.json`, the lines of
/// `results.jsonl`) and of `report.json`; files without one are version 1. A newer version is
/// refused with a message, never misread.
pub const FORMAT_VERSION: u32 = 2;

fn version_1() -> u32 {
    1
}

/// Why a benchmark could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// One of its files could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file (or a line of one, `at`) does not parse.
    #[error("{at}: {message}")]
    Parse {
        /// The file, or the file and line, that does not parse.
        at: String,
        /// What the parser said.
        message: String,
    },
    /// A file written by a newer build.
    #[error("{at}: format {found}, newer than this build reads ({FORMAT_VERSION}): update hgg")]
    NewerFormat {
        /// The file, or the file and line, written by the newer build.
        at: String,
        /// The format version it carries.
        found: u32,
    },
    /// What was asked does not fit the benchmark in the folder, or itself (`--max-cost`
    /// without prices, a changed model under an old name, a bad models file).
    #[error("{0}")]
    Request(String),
    /// An endpoint did not answer the preflight request.
    #[error("{0}")]
    Endpoint(String),
    /// The harness itself failed (the toolchain, the probe, a plot): no model's doing.
    #[error("{0}")]
    Harness(String),
}

impl BenchError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Refuses a file written by a newer build.
fn check_format(found: u32, at: &str) -> Result<(), BenchError> {
    if found > FORMAT_VERSION {
        return Err(BenchError::NewerFormat {
            at: at.to_string(),
            found,
        });
    }
    Ok(())
}

/// What a benchmark asks (saved as `bench.json`; everything the report's configuration
/// section shows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// [`FORMAT_VERSION`].
    #[serde(default = "version_1")]
    pub format_version: u32,
    /// The models (no secrets: keys only by the name of their variable).
    pub models: Vec<ModelSpec>,
    /// The tasks as data, so re-scoring and replaying need no task files.
    pub tasks: Vec<Task>,
    /// Trials per (model, task).
    pub trials: u32,
    /// Seed of the tasks' variant draws.
    pub seed: u64,
    /// The iteration cap of each cell.
    pub max_iterations: u32,
    /// What each cell may spend (USD, tokens).
    pub budget: Budget,
    /// The code versions (git commits) that ran cells of this benchmark, in order.
    pub code_versions: Vec<String>,
}

impl Config {
    /// Every cell of the matrix, in report order (models as in the file, tasks, trials).
    pub fn cells(&self) -> Vec<(String, String, u32)> {
        let mut v = Vec::new();
        for m in &self.models {
            for t in &self.tasks {
                for trial in 0..self.trials {
                    v.push((m.name.clone(), t.name.clone(), trial));
                }
            }
        }
        v
    }

    /// `self` (a saved benchmark) extended by `new` (this invocation's request): new models,
    /// tasks and trials join; what would mix incomparable cells is an error.
    pub fn merge(mut self, new: Config) -> Result<Config, BenchError> {
        let same = |what: &str, a: String, b: String| {
            if a == b {
                Ok(())
            } else {
                Err(BenchError::Request(format!(
                    "this benchmark ran with {what} {a}; this run asks for {b} (use another --out)"
                )))
            }
        };
        same("--seed", self.seed.to_string(), new.seed.to_string())?;
        same(
            "--max-iterations",
            self.max_iterations.to_string(),
            new.max_iterations.to_string(),
        )?;
        same(
            "the cell budget",
            format!("{:?}", self.budget),
            format!("{:?}", new.budget),
        )?;
        for m in new.models {
            match self.models.iter().find(|o| o.name == m.name) {
                Some(o) if *o != m => {
                    return Err(BenchError::Request(format!(
                        "model '{}' differs from the one this benchmark ran (endpoint, id, \
                         sampling or price); give it another name",
                        m.name
                    )))
                }
                Some(_) => {}
                None => self.models.push(m),
            }
        }
        for t in new.tasks {
            match self.tasks.iter().find(|o| o.name == t.name) {
                Some(o) if o.hash() != t.hash() => {
                    return Err(BenchError::Request(format!(
                        "task '{}' changed since this benchmark ran it (hash {} → {})",
                        t.name,
                        o.hash(),
                        t.hash()
                    )))
                }
                Some(_) => {}
                None => self.tasks.push(t),
            }
        }
        self.trials = self.trials.max(new.trials);
        for v in new.code_versions {
            if !self.code_versions.contains(&v) {
                self.code_versions.push(v);
            }
        }
        Ok(self)
    }

    /// The task named `name`, if the benchmark has it.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }
    /// The model named `name`, if the benchmark has it.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// How this invocation runs (not saved: it does not change what a cell means).
pub struct RunOptions {
    /// Cells run at once (at least 1).
    pub concurrency: usize,
    /// Stop starting cells once spent + in-flight budgets would pass this (USD).
    pub max_cost: Option<f64>,
    /// Resource limits of each stage's confined build and run.
    pub limits: Limits,
    /// Answer every call from this earlier benchmark's cassettes.
    pub replay_from: Option<PathBuf>,
}

/// Progress events for the terminal.
pub enum Event<'a> {
    /// The stage toolchain is being prepared (the first time on a machine: a minute or two).
    Preparing,
    /// `todo` cells will run now (of `total` in the matrix).
    Planned {
        /// Cells to run now.
        todo: usize,
        /// Cells in the matrix.
        total: usize,
    },
    /// A cell ended and its line was written to `results.jsonl`.
    Finished {
        /// The scored cell.
        cell: &'a Cell,
        /// Cells finished so far in this run.
        done: usize,
        /// Cells this run set out to run.
        todo: usize,
        /// USD spent so far by the cells finished in this run.
        spent_usd: f64,
    },
    /// `--max-cost` stopped new cells; `skipped` did not run.
    Stopped {
        /// Cells that did not run.
        skipped: usize,
    },
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// Cells that ran to the end in this run.
    pub ran: usize,
    /// Cells not started because of `--max-cost`.
    pub skipped_by_cost: usize,
    /// Cells in the matrix.
    pub total: usize,
}

/// The benchmark's files.
pub struct Dir {
    /// The benchmark's folder (`--out`).
    pub root: PathBuf,
}

impl Dir {
    /// Path of `bench.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("bench.json")
    }
    /// Path of `results.jsonl`.
    pub fn results(&self) -> PathBuf {
        self.root.join("results.jsonl")
    }
    /// The folder of one cell: `cells/MODEL/TASK/trial-N`.
    pub fn cell(&self, model: &str, task: &str, trial: u32) -> PathBuf {
        self.root
            .join("cells")
            .join(model)
            .join(task)
            .join(format!("trial-{trial}"))
    }

    /// Reads `bench.json`; a file of a newer format is refused.
    pub fn load_config(&self) -> Result<Config, BenchError> {
        let p = self.config();
        let text = std::fs::read_to_string(&p).map_err(|e| BenchError::io(&p, e))?;
        let c: Config = serde_json::from_str(&text).map_err(|e| BenchError::Parse {
            at: p.display().to_string(),
            message: e.to_string(),
        })?;
        check_format(c.format_version, &p.display().to_string())?;
        Ok(c)
    }

    /// Writes `bench.json` atomically (temporary file, then rename).
    pub fn save_config(&self, c: &Config) -> std::io::Result<()> {
        write_atomic(
            &self.config(),
            serde_json::to_string_pretty(c)
                .expect("a config serialises")
                .as_bytes(),
        )
    }

    /// Every line of `results.jsonl` in order (a torn last line, the cell in flight at a
    /// crash, is left out). A broken complete line is an error naming it.
    pub fn load_results(&self) -> Result<Vec<Cell>, BenchError> {
        let p = self.results();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(BenchError::io(&p, e)),
        };
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let at = format!("{} line {}", p.display(), i + 1);
                let cell: Cell = serde_json::from_str(l).map_err(|e| BenchError::Parse {
                    at: at.clone(),
                    message: e.to_string(),
                })?;
                check_format(cell.format_version, &at)?;
                Ok(cell)
            })
            .collect()
    }

    /// The latest line of each cell, in matrix order: what the report scores.
    pub fn final_cells(&self, config: &Config) -> Result<Vec<Cell>, BenchError> {
        let mut latest: HashMap<(String, String, u32), Cell> = HashMap::new();
        for c in self.load_results()? {
            latest.insert((c.model.clone(), c.task.clone(), c.trial), c);
        }
        Ok(config
            .cells()
            .into_iter()
            .filter_map(|k| latest.remove(&k))
            .collect())
    }
}

/// Writes report.json, report.md, cells.csv and the plots into `out` from `dir`'s saved
/// cells: no model, no build. Returns the report.
pub fn write_report(dir: &Dir, out: &Path) -> Result<Report, BenchError> {
    let config = dir.load_config()?;
    let cells = dir.final_cells(&config)?;
    let report = Report::new(&config, &cells);
    let io = |p: &Path, e| BenchError::io(p, e);
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    for (name, text) in [
        ("report.json", report.to_json()),
        ("report.md", report::markdown(&report)),
        ("cells.csv", report::csv(&cells)),
    ] {
        let p = out.join(name);
        write_atomic(&p, text.as_bytes()).map_err(|e| io(&p, e))?;
    }
    plots::all(&report, &out.join("plots")).map_err(BenchError::Harness)?;
    Ok(report)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The append-only results file: one line per call, one write, synced.
struct Results {
    file: std::fs::File,
}

impl Results {
    fn open(path: &Path) -> std::io::Result<Self> {
        // A crash mid-line leaves a torn last line; cut it so the next line starts clean.
        if let Ok(text) = std::fs::read(path) {
            if !text.is_empty() && text.last() != Some(&b'\n') {
                let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let f = std::fs::OpenOptions::new().write(true).open(path)?;
                f.set_len(keep as u64)?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self { file })
    }

    fn append(&mut self, cell: &Cell) -> std::io::Result<()> {
        let mut line = serde_json::to_string(cell).expect("a cell serialises");
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }
}

/// The cells still to run: those with no line, and those whose every line is a harness
/// error, fewer than [`MAX_HARNESS_RUNS`] of them.
pub fn unfinished(config: &Config, results: &[Cell]) -> Vec<(String, String, u32)> {
    let mut lines: HashMap<(String, String, u32), (usize, bool)> = HashMap::new();
    for c in results {
        let e = lines
            .entry((c.model.clone(), c.task.clone(), c.trial))
            .or_default();
        e.0 += 1;
        e.1 = c.scored();
    }
    config
        .cells()
        .into_iter()
        .filter(|k| match lines.get(k) {
            None => true,
            Some(&(n, scored)) => !scored && n < MAX_HARNESS_RUNS,
        })
        .collect()
}

/// The git commit of the repository at `repo` (`-dirty` when it has changes), or "unknown".
pub fn code_version(repo: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    }
}

/// One small request per model before any cell: does the endpoint answer, and accept the
/// sampling options? The error names the model and what the endpoint said.
pub fn preflight(spec: &ModelSpec) -> Result<(), BenchError> {
    preflight_request(spec).map_err(BenchError::Endpoint)
}

fn preflight_request(spec: &ModelSpec) -> Result<(), String> {
    let mut config = spec.config();
    config.max_retries = config.max_retries.min(2);
    config.timeout_s = config.timeout_s.min(60.0);
    let mut llm =
        HttpLlm::new(config.clone()).map_err(|e| format!("model '{}': {e}", spec.name))?;
    match llm.chat(&[Message::user(PREFLIGHT)], 0) {
        Ok(_) => Ok(()),
        Err(LlmError::Status { status, body, .. }) if (400..500).contains(&status) => Err(format!(
            "model '{}' ({} at {}): the endpoint refused a one-line request with HTTP {status} \
             (does it accept temperature {:?}, top_p {:?}, seed {:?}, max_tokens {:?}, and the \
             model id?): {body}",
            spec.name,
            spec.model,
            config.public_url(),
            config.temperature,
            config.top_p,
            config.seed,
            config.max_tokens
        )),
        Err(e) => Err(format!(
            "model '{}' ({}): the endpoint does not answer: {e}",
            spec.name, spec.model
        )),
    }
}

/// The preflight request's text (the mock server in tests recognises it).
pub const PREFLIGHT: &str = "Reply with the single word OK.";

/// Whether the harness works, using no model code: a known-good stage built and run through
/// the same confinement as a cell's. `Err` says what failed.
pub fn probe(toolchain: &Toolchain, limits: &Limits) -> Result<(), BenchError> {
    probe_stage(toolchain, limits).map_err(BenchError::Harness)
}

fn probe_stage(toolchain: &Toolchain, limits: &Limits) -> Result<(), String> {
    let krate = toolchain
        .new_crate(StageKind::Histogram)
        .map_err(|e| format!("probe crate: {e}"))?;
    krate
        .write_code(PROBE_STAGE)
        .map_err(|e| format!("probe crate: {e}"))?;
    let build = krate.build();
    let Some(binary) = build.binary.filter(|_| build.ok) else {
        return Err(format!(
            "the known-good probe stage does not build: {}",
            build.setup_error.unwrap_or_else(|| "compile errors".into())
        ));
    };
    let input = r#"{"diphotons":{"m_yy":[125.0],"weight":[1.0]},"binning":{"bins":2,"lo":100.0,"hi":150.0}}"#;
    let dir = sandbox::RunDir::new(&binary, &[("input.json", input.as_bytes())], limits)
        .map_err(|e| format!("probe run directory: {e}"))?;
    let out = dir.out().join("output.json");
    let report = agent::outcome::run(&dir, &[dir.input("input.json"), out], limits);
    if report.class != agent::outcome::RunClass::Ok {
        return Err(format!(
            "the known-good probe stage ran as {:?}",
            report.class
        ));
    }
    Ok(())
}

/// A stage that is right by construction (its answer is not checked, only that it builds
/// and runs).
const PROBE_STAGE: &str =
    "use stage_api::{Binning, Diphotons, Histogram, MakeHistogram, StageError};\n\
pub struct Stage;\n\
impl MakeHistogram for Stage {\n\
    fn histogram(&self, _d: &Diphotons, b: &Binning) -> Result<Histogram, StageError> {\n\
        Ok(Histogram { binning: b.clone(), sumw: vec![0.0; b.bins], sumw2: vec![0.0; b.bins], \
                       underflow: 0.0, overflow: 0.0, entries: 0 })\n\
    }\n\
}\n";

/// Counts what a cell spends, for the benchmark's total (`--max-cost`); the cell's own budget
/// is the loop's ([`Options::budget`]).
struct Meter {
    spent_usd: f64,
    total: Arc<Mutex<Spend>>,
    slot: usize,
}

/// The benchmark's spending: done, and per cell in flight.
#[derive(Default)]
struct Spend {
    done_usd: f64,
    in_flight: HashMap<usize, f64>,
}

struct Metered<L> {
    inner: L,
    meter: Rc<RefCell<Meter>>,
}

impl<L: Llm> Llm for Metered<L> {
    fn chat(&mut self, messages: &[Message], trial: u32) -> Result<Reply, LlmError> {
        let reply = self.inner.chat(messages, trial)?;
        let mut m = self.meter.borrow_mut();
        m.spent_usd += reply.cost_usd.unwrap_or(0.0);
        let (slot, spent) = (m.slot, m.spent_usd);
        m.total
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight
            .insert(slot, spent);
        Ok(reply)
    }
    fn config(&self) -> &LlmConfig {
        self.inner.config()
    }
}

/// Runs the cells of `config` that `dir` has not finished. `dir` must be locked and hold
/// `config` already.
pub fn run(
    config: &Config,
    dir: &Dir,
    toolchain: &Toolchain,
    opts: &RunOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Summary, BenchError> {
    if opts.max_cost.is_some() {
        if config.budget.usd.is_none() {
            return Err(BenchError::Request(
                "--max-cost needs a USD cell budget".into(),
            ));
        }
        if let Some(m) = config.models.iter().find(|m| m.price.is_none()) {
            return Err(BenchError::Request(format!(
                "--max-cost needs a price for every model; '{}' has none",
                m.name
            )));
        }
    }
    let done = dir.load_results()?;
    let todo = unfinished(config, &done);
    let total = config.cells().len();
    on_event(Event::Planned {
        todo: todo.len(),
        total,
    });
    on_event(Event::Preparing);
    toolchain
        .prepare()
        .map_err(|e| BenchError::Harness(e.to_string()))?;
    let mut results =
        Results::open(&dir.results()).map_err(|e| BenchError::io(&dir.results(), e))?;

    // One gate per endpoint: the strictest limits of the models on it.
    let mut gates: BTreeMap<String, Arc<Gate>> = BTreeMap::new();
    for m in &config.models {
        let url = m.config().public_url();
        let on_it = config
            .models
            .iter()
            .filter(|o| o.config().public_url() == url);
        let rpm = on_it
            .clone()
            .filter_map(|o| o.requests_per_minute)
            .reduce(f64::min);
        let conc = on_it.filter_map(|o| o.max_concurrent).min();
        gates
            .entry(url)
            .or_insert_with(|| Arc::new(Gate::new(conc, rpm)));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let cores = Arc::new(Gate::new(Some(cores), None));

    let todo_len = todo.len();
    let queue = Mutex::new(VecDeque::from(todo));
    let spend = Arc::new(Mutex::new(Spend::default()));
    let state = Mutex::new((0usize, 0usize, None::<BenchError>)); // (finished, skipped, error)
    let results = Mutex::new(&mut results);
    let workers = opts.concurrency.max(1).min(todo_len.max(1));
    std::thread::scope(|s| {
        for slot in 0..workers {
            let (queue, spend, state, results, gates, cores) =
                (&queue, &spend, &state, &results, &gates, &cores);
            s.spawn(move || loop {
                let key = {
                    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                    if state.lock().unwrap_or_else(|p| p.into_inner()).2.is_some() {
                        return;
                    }
                    let Some(key) = q.pop_front() else { return };
                    // --max-cost: spent + what cells in flight may still spend + this cell.
                    if let (Some(max), Some(b)) = (opts.max_cost, config.budget.usd) {
                        let mut sp = spend.lock().unwrap_or_else(|p| p.into_inner());
                        // A cell in flight may spend up to its budget (more only by its
                        // last call, which is then counted as spent).
                        let committed: f64 =
                            sp.done_usd + sp.in_flight.values().map(|s| s.max(b)).sum::<f64>();
                        if committed + b > max {
                            let skipped = q.len() + 1;
                            q.clear();
                            state.lock().unwrap_or_else(|p| p.into_inner()).1 += skipped;
                            on_event(Event::Stopped { skipped });
                            return;
                        }
                        sp.in_flight.insert(slot, 0.0);
                    }
                    key
                };
                // A panic anywhere in a cell is the harness's failure, recorded as such; the
                // other cells go on.
                let cell = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_cell(
                        config, dir, toolchain, opts, &key, slot, spend, gates, cores,
                    )
                }))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let variant = config.task(&key.1).map(|t| t.draw(config.seed, key.2));
                    let mut cell = Cell::score(
                        (&key.0, &key.1, key.2),
                        variant.unwrap_or_default(),
                        &[],
                        None,
                    );
                    cell.clock.error = Some(format!("the harness panicked: {what}"));
                    Ok(cell)
                });
                let mut sp = spend.lock().unwrap_or_else(|p| p.into_inner());
                sp.in_flight.remove(&slot);
                match cell {
                    Ok(cell) => {
                        sp.done_usd += cell.cost_usd.unwrap_or(0.0);
                        let spent = sp.done_usd;
                        drop(sp);
                        let written = results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .append(&cell);
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        if let Err(e) = written {
                            st.2 = Some(BenchError::io(&dir.results(), e));
                            return;
                        }
                        st.0 += 1;
                        on_event(Event::Finished {
                            cell: &cell,
                            done: st.0,
                            todo: todo_len,
                            spent_usd: spent,
                        });
                    }
                    Err(e) => {
                        state.lock().unwrap_or_else(|p| p.into_inner()).2 =
                            Some(BenchError::Harness(e));
                        return;
                    }
                }
            });
        }
    });
    let (ran, skipped, error) = state.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = error {
        return Err(e);
    }
    Ok(Summary {
        ran,
        skipped_by_cost: skipped,
        total,
    })
}

/// One cell, start to score. `Err` only for what stops the whole benchmark (its own files).
#[allow(clippy::too_many_arguments)]
fn run_cell(
    config: &Config,
    dir: &Dir,
    toolchain: &Toolchain,
    opts: &RunOptions,
    (model, task_name, trial): &(String, String, u32),
    slot: usize,
    spend: &Arc<Mutex<Spend>>,
    gates: &BTreeMap<String, Arc<Gate>>,
    cores: &Arc<Gate>,
) -> Result<Cell, String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let spec = config.model(model).expect("a model of the config");
    let task = config.task(task_name).expect("a task of the config");
    let cell_dir = dir.cell(model, task_name, *trial);
    if cell_dir.exists() {
        // A cell in flight at a crash, or a harness error being rerun: start clean.
        std::fs::remove_dir_all(&cell_dir).map_err(|e| io(&cell_dir, e))?;
    }
    std::fs::create_dir_all(&cell_dir).map_err(|e| io(&cell_dir, e))?;
    let cassette = cell_dir.join("cassette.jsonl");
    let meter = Rc::new(RefCell::new(Meter {
        spent_usd: 0.0,
        total: spend.clone(),
        slot,
    }));
    let started = unix_now();

    // The coder's and (when separate) the supervisor's clients.
    let client = |spec: &ModelSpec| -> Result<Box<dyn Llm>, String> {
        let config = spec.config();
        let inner: Box<dyn Llm> = match &opts.replay_from {
            Some(from) => {
                let old = Dir { root: from.clone() }.cell(model, task_name, *trial);
                Box::new(
                    Replayer::open(&old.join("cassette.jsonl"), config)
                        .map_err(|e| e.to_string())?,
                )
            }
            None => {
                let gate = gates[&config.public_url()].clone();
                let http = HttpLlm::new(config)
                    .map_err(|e| e.to_string())?
                    .with_gate(gate);
                let secrets = http.secrets();
                Box::new(Recorder::new(http, &cassette, secrets).map_err(|e| e.to_string())?)
            }
        };
        Ok(Box::new(Metered {
            inner,
            meter: meter.clone(),
        }))
    };
    let mut coder = client(spec)?;
    let mut supervisor = match &spec.supervisor {
        Some(s) => Some(client(config.model(s).expect("checked when loaded"))?),
        None => None,
    };
    let secrets: Vec<String> = [
        Some(spec),
        spec.supervisor.as_deref().and_then(|s| config.model(s)),
    ]
    .into_iter()
    .flatten()
    .filter_map(|m| m.api_key_env.as_ref())
    .filter_map(|v| std::env::var(v).ok())
    .collect();
    let traj_path = cell_dir.join("trajectory.jsonl");
    let mut traj = Trajectory::create(Some(&traj_path), secrets).map_err(|e| io(&traj_path, e))?;
    let variant = task.draw(config.seed, *trial);
    let run_opts = Options {
        max_iterations: config.max_iterations,
        trial: *trial,
        limits: opts.limits.clone(),
        budget: config.budget,
        variant: variant.clone(),
        cores: Some(cores.clone()),
        ..Options::default()
    };
    let outcome = run_task(
        task,
        coder.as_mut(),
        supervisor.as_mut().map(|s| s.as_mut() as &mut dyn Llm),
        toolchain,
        &run_opts,
        &mut traj,
        &mut |_| {},
    );
    let outcome = match outcome {
        Ok(o) => o,
        // The task could not even start (its input, the toolchain): the harness's problem,
        // recorded as a cell so the report says so.
        Err(e) => agent::run::Outcome {
            status: agent::trajectory::Status::HarnessError,
            iterations: 0,
            api_calls: 0,
            usage: Default::default(),
            cost_usd: None,
            code: None,
            validation: None,
            output: None,
            timings: vec![],
            error: Some(e.to_string()),
        },
    };
    cell::save_code(&cell_dir, &traj.records, outcome.status).map_err(|e| io(&cell_dir, e))?;
    let probe = (outcome.status == agent::trajectory::Status::HarnessError)
        .then(|| probe(toolchain, &opts.limits).map_err(|e| e.to_string()));
    let mut cell = Cell::score(
        (model, task_name, *trial),
        variant,
        &traj.records,
        probe.clone(),
    );
    // The clock: latencies from the trajectory, build and run times from the outcome.
    let mut clock = cell::CellClock {
        started,
        ended: unix_now(),
        ..Default::default()
    };
    for r in &traj.records {
        if let agent::trajectory::Record::Outcome {
            llm_latency_s,
            http_requests,
            abandoned_requests,
            ..
        } = r
        {
            clock.llm_s = *llm_latency_s;
            clock.http_requests = *http_requests;
            clock.abandoned_requests = *abandoned_requests;
        }
    }
    for t in &outcome.timings {
        clock.build_s += t.build_s.unwrap_or(0.0);
        clock.run_s += t.run_s.unwrap_or(0.0);
        clock
            .check_s
            .push(t.build_s.unwrap_or(0.0) + t.run_s.unwrap_or(0.0));
    }
    clock.error = match (&outcome.error, probe) {
        (Some(e), Some(Err(p))) => Some(format!("{e} (probe: {p})")),
        (e, _) => e.clone(),
    };
    cell.clock = clock;
    Ok(cell)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            format_version: FORMAT_VERSION,
            models: models::ModelsFile::parse(
                "[[model]]\nname = \"m\"\nendpoint = \"http://127.0.0.1:9/v1\"\nmodel = \"x\"\n",
                false,
            )
            .unwrap()
            .models,
            tasks: vec![Task::load("histogram").unwrap()],
            trials: 2,
            seed: 0,
            max_iterations: 3,
            budget: Budget {
                usd: None,
                tokens: None,
            },
            code_versions: vec![],
        }
    }

    fn line(trial: u32, category: Option<cell::Kind>) -> Cell {
        let mut c = Cell::score(("m", "histogram", trial), Default::default(), &[], None);
        c.category = category.map(|kind| cell::Category {
            kind,
            detail: String::new(),
        });
        c
    }

    /// Files that are read back carry their format: an older line (none: version 1) reads,
    /// a newer one is refused with a message naming the file and line.
    #[test]
    fn a_newer_format_is_refused_not_misread() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir {
            root: d.path().to_path_buf(),
        };
        let mut old = serde_json::to_value(line(0, None)).unwrap();
        old.as_object_mut().unwrap().remove("format_version");
        let mut new = serde_json::to_value(line(1, None)).unwrap();
        new["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        std::fs::write(dir.results(), format!("{old}\n")).unwrap();
        assert_eq!(dir.load_results().unwrap()[0].format_version, 1);
        std::fs::write(dir.results(), format!("{old}\n{new}\n")).unwrap();
        let e = dir.load_results().unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("newer than this build"),
            "{e}"
        );
        let mut c = serde_json::to_value(config()).unwrap();
        c["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        std::fs::write(dir.config(), c.to_string()).unwrap();
        assert!(dir
            .load_config()
            .unwrap_err()
            .to_string()
            .contains("newer than this build"));
    }

    #[test]
    fn resume_runs_missing_cells_and_reruns_harness_errors_a_bounded_number_of_times() {
        let c = config();
        assert_eq!(unfinished(&c, &[]).len(), 2);
        let he = Some(cell::Kind::HarnessError);
        // Trial 0 done; trial 1 a harness error once: rerun.
        let results = vec![line(0, None), line(1, he)];
        assert_eq!(
            unfinished(&c, &results),
            vec![("m".into(), "histogram".into(), 1)]
        );
        // Three harness errors: no more reruns; the report counts it apart.
        let results = vec![line(0, None), line(1, he), line(1, he), line(1, he)];
        assert!(unfinished(&c, &results).is_empty());
        // A later success replaces it.
        let results = vec![line(0, None), line(1, he), line(1, None)];
        assert!(unfinished(&c, &results).is_empty());
    }

    #[test]
    fn a_torn_last_line_is_the_cell_in_flight() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir {
            root: tmp.path().into(),
        };
        let full = serde_json::to_string(&line(0, None)).unwrap();
        std::fs::write(dir.results(), format!("{full}\n{}", &full[..20])).unwrap();
        assert_eq!(dir.load_results().unwrap().len(), 1);
        // Appending after a crash starts on a clean line.
        let mut r = Results::open(&dir.results()).unwrap();
        r.append(&line(1, None)).unwrap();
        assert_eq!(dir.load_results().unwrap().len(), 2);
        // A broken complete line is an error naming it, never skipped.
        std::fs::write(dir.results(), format!("{full}\n{{oops}}\n")).unwrap();
        let e = dir.load_results().unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn merging_adds_models_tasks_and_trials_and_refuses_what_would_mix_cells() {
        let old = config();
        let mut new = config();
        new.trials = 3;
        new.tasks.push(Task::load("select").unwrap());
        let merged = old.clone().merge(new).unwrap();
        assert_eq!((merged.trials, merged.tasks.len()), (3, 2));
        let mut other = config();
        other.models[0].price = Some([1.0, 1.0]);
        assert!(old
            .clone()
            .merge(other)
            .unwrap_err()
            .to_string()
            .contains("model 'm' differs"));
        let mut other = config();
        other.seed = 1;
        assert!(old.merge(other).unwrap_err().to_string().contains("--seed"));
    }
}

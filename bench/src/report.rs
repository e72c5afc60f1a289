//! The report of a benchmark, computed from `bench.json` and the cells alone:
//! `report.json` (every number; what the clock decides in its own `clock` section, so the
//! rest is identical for identical answers), `report.md` (the paper's tables), `cells.csv`
//! (one row per cell) and the plots ([`super::plots`]).

use super::cell::{Caught, Cell, Kind};
use super::metrics::{centre, Centre, Stats};
use super::Config;
use agent::run::Budget;
use agent::task::Variant;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`crate::FORMAT_VERSION`].
    pub format_version: u32,
    /// The benchmark's configuration, as reported.
    pub config: ConfigView,
    /// How much of the matrix ran.
    pub matrix: Matrix,
    /// Category → what it means.
    pub taxonomy: BTreeMap<String, String>,
    /// One entry per (model, task), in the models file's order.
    pub results: Vec<PairStats>,
    /// Per model over its tasks, and per task over the models.
    pub models: BTreeMap<String, Stats>,
    /// Per task, over the models.
    pub tasks: BTreeMap<String, Stats>,
    /// One row per cell, in matrix order.
    pub cells: Vec<CellRow>,
    /// Everything that depends on the clock (and the network's retries).
    pub clock: Clock,
}

/// The configuration as reported (endpoints without query strings; keys only by the name
/// of their variable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigView {
    /// The models, endpoints without their query strings.
    pub models: Vec<super::models::ModelSpec>,
    /// The tasks: name, stage, hash and drawn parameters.
    pub tasks: Vec<TaskView>,
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

/// A task as reported: its name, stage, hash and the parameters it draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task's name.
    pub name: String,
    /// The name of the stage it asks for.
    pub stage: String,
    /// BLAKE3 of the task as data ([`agent::task::Task::hash`]).
    pub hash: String,
    /// The parameters drawn per trial and their choices.
    pub vary: BTreeMap<String, Vec<serde_json::Value>>,
}

/// How much of the matrix ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// Cells in the matrix (models × tasks × trials).
    pub planned: usize,
    /// Cells with a result.
    pub finished: usize,
    /// Finished and scored (harness errors excluded).
    pub scored: usize,
    /// Finished cells that ended as harness errors.
    pub harness_errors: usize,
    /// Not run (stopped by --max-cost, or interrupted).
    pub not_run: usize,
}

/// The statistics of one (model, task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// The model's name.
    pub model: String,
    /// The task's name.
    pub task: String,
    /// The pair's statistics.
    #[serde(flatten)]
    pub stats: Stats,
}

/// One cell, as the report lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellRow {
    /// The model's name.
    pub model: String,
    /// The task's name.
    pub task: String,
    /// The trial's index (from 0).
    pub trial: u32,
    /// The task's drawn parameters for this trial.
    pub variant: Variant,
    /// `success` or the category label.
    pub outcome: String,
    /// Iterations the cell ran.
    pub iterations: u32,
    /// Model calls (coder and supervisor together).
    pub api_calls: u32,
    /// What the cell cost, USD (`None` when unknown).
    pub cost_usd: Option<f64>,
}

/// What the clock decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    /// Unix seconds of the first cell's start and the last cell's end.
    pub started: Option<f64>,
    /// Unix seconds of the last cell's end (`None` without cells).
    pub ended: Option<f64>,
    /// Per model: mean seconds per cell spent waiting for the model, building, running, and
    /// in all; HTTP requests (retries included).
    pub models: BTreeMap<String, TimeSplit>,
    /// Per where a failed attempt was caught: seconds from the answer to the verdict.
    pub caught_s: BTreeMap<String, Option<Centre>>,
}

/// One model's mean seconds per cell, by phase, and its HTTP requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeSplit {
    /// Mean seconds per cell waiting for the model (retries included).
    pub llm_s: f64,
    /// Mean seconds per cell building.
    pub build_s: f64,
    /// Mean seconds per cell running the stage.
    pub run_s: f64,
    /// Mean seconds per cell from start to end.
    pub wall_s: f64,
    /// HTTP requests over the model's cells (retries included).
    pub http_requests: u64,
    /// HTTP requests given up after they were sent: possibly billed, in no token count.
    #[serde(default)]
    pub abandoned_requests: u64,
}

impl Report {
    /// The report of `cells` (the final line of each, in matrix order) under `config`.
    pub fn new(config: &Config, cells: &[Cell]) -> Report {
        let all: Vec<&Cell> = cells.iter().collect();
        let mut results = Vec::new();
        let mut models = BTreeMap::new();
        let mut tasks = BTreeMap::new();
        for m in &config.models {
            for t in &config.tasks {
                let pair: Vec<&Cell> = all
                    .iter()
                    .copied()
                    .filter(|c| c.model == m.name && c.task == t.name)
                    .collect();
                results.push(PairStats {
                    model: m.name.clone(),
                    task: t.name.clone(),
                    stats: Stats::of(&pair),
                });
            }
            let of: Vec<&Cell> = all.iter().copied().filter(|c| c.model == m.name).collect();
            models.insert(m.name.clone(), Stats::of(&of));
        }
        for t in &config.tasks {
            let of: Vec<&Cell> = all.iter().copied().filter(|c| c.task == t.name).collect();
            tasks.insert(t.name.clone(), Stats::of(&of));
        }
        let planned = config.cells().len();
        let harness_errors = cells.iter().filter(|c| !c.scored()).count();
        Report {
            format_version: crate::FORMAT_VERSION,
            config: ConfigView {
                models: config
                    .models
                    .iter()
                    .map(|m| super::models::ModelSpec {
                        endpoint: m.config().public_url(),
                        ..m.clone()
                    })
                    .collect(),
                tasks: config
                    .tasks
                    .iter()
                    .map(|t| TaskView {
                        name: t.name.clone(),
                        stage: t.stage.name().into(),
                        hash: t.hash(),
                        vary: t.vary.clone(),
                    })
                    .collect(),
                trials: config.trials,
                seed: config.seed,
                max_iterations: config.max_iterations,
                budget: config.budget,
                code_versions: config.code_versions.clone(),
            },
            matrix: Matrix {
                planned,
                finished: cells.len(),
                scored: cells.len() - harness_errors,
                harness_errors,
                not_run: planned - cells.len(),
            },
            taxonomy: Kind::ALL
                .iter()
                .map(|(k, what)| (k.name().to_string(), what.to_string()))
                .collect(),
            results,
            models,
            tasks,
            cells: cells
                .iter()
                .map(|c| CellRow {
                    model: c.model.clone(),
                    task: c.task.clone(),
                    trial: c.trial,
                    variant: c.variant.clone(),
                    outcome: c
                        .category
                        .as_ref()
                        .map_or("success".to_string(), |k| k.label()),
                    iterations: c.iterations,
                    api_calls: c.api_calls,
                    cost_usd: c.cost_usd,
                })
                .collect(),
            clock: clock(config, cells),
        }
    }

    /// `report.json`: pretty JSON, keys in a fixed order.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report serialises");
        s.push('\n');
        s
    }

    /// The report without its clock section, as JSON: what must be identical byte for byte
    /// for identical answers.
    pub fn deterministic_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("a report serialises");
        v.as_object_mut().expect("an object").remove("clock");
        serde_json::to_string_pretty(&v).expect("a value serialises")
    }
}

fn clock(config: &Config, cells: &[Cell]) -> Clock {
    let mut models = BTreeMap::new();
    for m in &config.models {
        let of: Vec<&Cell> = cells.iter().filter(|c| c.model == m.name).collect();
        let n = of.len().max(1) as f64;
        let mean = |f: fn(&Cell) -> f64| of.iter().map(|c| f(c)).sum::<f64>() / n;
        models.insert(
            m.name.clone(),
            TimeSplit {
                llm_s: mean(|c| c.clock.llm_s),
                build_s: mean(|c| c.clock.build_s),
                run_s: mean(|c| c.clock.run_s),
                wall_s: mean(|c| c.clock.ended - c.clock.started),
                http_requests: of.iter().map(|c| c.clock.http_requests as u64).sum(),
                abandoned_requests: of.iter().map(|c| c.clock.abandoned_requests as u64).sum(),
            },
        );
    }
    let mut caught: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.scored()) {
        for (a, t) in c.attempts.iter().zip(&c.clock.check_s) {
            if let Some(w) = a.caught {
                caught.entry(w.name().into()).or_default().push(*t);
            }
        }
    }
    Clock {
        started: cells.iter().map(|c| c.clock.started).reduce(f64::min),
        ended: cells.iter().map(|c| c.clock.ended).reduce(f64::max),
        models,
        caught_s: Caught::ALL
            .iter()
            .map(|w| {
                (
                    w.name().to_string(),
                    caught.get(w.name()).and_then(|v| centre(v)),
                )
            })
            .collect(),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.0} %", 100.0 * x))
}

fn usd(x: Option<f64>) -> String {
    x.map_or("unknown".into(), |x| format!("${x:.4}"))
}

/// `report.md`: the paper's tables, plus where failures were caught and the cells.
pub fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let m = &r.matrix;
    let _ = writeln!(md, "# Agent benchmark\n");
    let _ = writeln!(
        md,
        "{} of {} cells ran ({} scored, {} harness errors excluded from every rate, {} not \
         run); {} trials per (model, task), at most {} iterations per cell; variant seed {}; \
         code {}.\n",
        m.finished,
        m.planned,
        m.scored,
        m.harness_errors,
        m.not_run,
        r.config.trials,
        r.config.max_iterations,
        r.config.seed,
        r.config.code_versions.join(", ")
    );

    success(&mut md, r);
    pass_k(&mut md, r);
    errors(&mut md, r);
    caught(&mut md, r);
    cost(&mut md, r);
    time(&mut md, r);
    cells_table(&mut md, r);
    md
}

/// A table's header row and rule.
fn header(md: &mut String, first: &str, cols: &[&str]) {
    let _ = writeln!(md, "| {first} | {} |", cols.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(cols.len()));
}

impl Report {
    fn task_names(&self) -> Vec<&str> {
        self.config.tasks.iter().map(|t| t.name.as_str()).collect()
    }
    fn model_names(&self) -> Vec<&str> {
        self.config.models.iter().map(|m| m.name.as_str()).collect()
    }
    /// The statistics of one (model, task).
    fn pair(&self, model: &str, task: &str) -> Option<&Stats> {
        self.results
            .iter()
            .find(|p| p.model == model && p.task == task)
            .map(|p| &p.stats)
    }
}

/// The success rate of each (model, task), with its 95 % Wilson interval.
fn success(md: &mut String, r: &Report) {
    let tasks = r.task_names();
    let models = r.model_names();
    let _ = writeln!(md, "## Success rate (95 % Wilson interval)\n");
    let mut cols = tasks.clone();
    cols.push("all tasks");
    header(md, "model", &cols);
    let cell_text = |s: &Stats| {
        format!(
            "{}/{} = {} [{:.0}–{:.0} %]",
            s.successes,
            s.trials,
            pct(s.success_rate),
            100.0 * s.wilson95[0],
            100.0 * s.wilson95[1]
        )
    };
    for mo in &models {
        let mut row: Vec<String> = tasks
            .iter()
            .map(|t| r.pair(mo, t).map_or("–".into(), cell_text))
            .collect();
        row.push(cell_text(&r.models[*mo]));
        let _ = writeln!(md, "| {mo} | {} |", row.join(" | "));
    }
}

/// pass@k and pass^k per model, the mean over tasks.
fn pass_k(md: &mut String, r: &Report) {
    let models = r.model_names();
    let _ = writeln!(md, "\n## pass@k and pass^k (mean over tasks)\n");
    let kmax = r
        .models
        .values()
        .map(|s| s.pass_at_k.len())
        .max()
        .unwrap_or(0) as u64;
    let ks: Vec<String> = (1..=kmax)
        .flat_map(|k| [format!("pass@{k}"), format!("pass^{k}")])
        .collect();
    header(
        md,
        "model",
        &ks.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for mo in &models {
        let s = &r.models[*mo];
        let row: Vec<String> = (1..=kmax)
            .flat_map(|k| {
                [
                    s.pass_at_k
                        .get(&k)
                        .map_or("–".into(), |v| format!("{v:.2}")),
                    s.pass_all_k
                        .get(&k)
                        .map_or("–".into(), |v| format!("{v:.2}")),
                ]
            })
            .collect();
        let _ = writeln!(md, "| {mo} | {} |", row.join(" | "));
    }
}

/// The final cause of the failed cells, then every failed attempt's.
fn errors(md: &mut String, r: &Report) {
    let models = r.model_names();
    let _ = writeln!(
        md,
        "\n## Error distribution (final cause of failed cells)\n"
    );
    let kinds: Vec<&str> = Kind::ALL.iter().map(|(k, _)| k.name()).collect();
    header(md, "model", &kinds);
    for mo in &models {
        let s = &r.models[*mo];
        let row: Vec<String> = kinds
            .iter()
            .map(|k| {
                let n = if *k == "harness_error" {
                    s.harness_errors
                } else {
                    s.errors.get(*k).copied().unwrap_or(0)
                };
                n.to_string()
            })
            .collect();
        let _ = writeln!(md, "| {mo} | {} |", row.join(" | "));
    }
    let _ = writeln!(md, "\nIn detail (cells, then all failed attempts):\n");
    for mo in &models {
        let s = &r.models[*mo];
        let list = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = writeln!(
            md,
            "- **{mo}**: cells: {}; attempts: {}",
            list(&s.error_details),
            list(&s.attempt_errors)
        );
    }
}

/// Where failed attempts were caught (screen, compiler, runtime, validation).
fn caught(md: &mut String, r: &Report) {
    let models = r.model_names();
    let _ = writeln!(md, "\n## Where failed attempts were caught\n");
    let mut cols: Vec<&str> = Caught::ALL.iter().map(|c| c.name()).collect();
    cols.push("before any run");
    header(md, "model", &cols);
    for mo in &models {
        let s = &r.models[*mo];
        let mut row: Vec<String> = Caught::ALL
            .iter()
            .map(|c| s.caught.get(c.name()).copied().unwrap_or(0).to_string())
            .collect();
        row.push(pct(s.caught_before_run));
        let _ = writeln!(md, "| {mo} | {} |", row.join(" | "));
    }
    let times: Vec<String> = r
        .clock
        .caught_s
        .iter()
        .map(|(w, c)| {
            c.as_ref()
                .map_or(format!("{w}: –"), |c| format!("{w}: {:.2} s", c.median))
        })
        .collect();
    let _ = writeln!(
        md,
        "\nMedian time from the answer to the verdict (clock): {}.",
        times.join(", ")
    );
}

/// Cost and API calls per cell.
fn cost(md: &mut String, r: &Report) {
    let tasks = r.task_names();
    let models = r.model_names();
    let _ = writeln!(md, "\n## Cost and API calls per cell\n");
    let mut cols: Vec<String> = tasks.iter().map(|t| format!("{t}: cost")).collect();
    cols.extend(tasks.iter().map(|t| format!("{t}: API calls")));
    cols.push("cost per success".into());
    cols.push("tokens (prompt / completion / cached / reasoning)".into());
    header(
        md,
        "model",
        &cols.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for mo in &models {
        let s = &r.models[*mo];
        let mut row: Vec<String> = tasks
            .iter()
            .map(|t| usd(r.pair(mo, t).and_then(|p| p.cost_per_cell)))
            .collect();
        row.extend(tasks.iter().map(|t| {
            r.pair(mo, t)
                .and_then(|p| p.mean_api_calls)
                .map_or("–".into(), |v| format!("{v:.2}"))
        }));
        row.push(usd(s.cost_per_success));
        row.push(format!(
            "{} / {} / {} / {}",
            s.prompt_tokens, s.completion_tokens, s.cached_prompt_tokens, s.reasoning_tokens
        ));
        let _ = writeln!(md, "| {mo} | {} |", row.join(" | "));
    }
}

/// Time per cell (the clock part: not reproduced by a rescore).
fn time(md: &mut String, r: &Report) {
    let models = r.model_names();
    let _ = writeln!(md, "\n## Time per cell (clock, mean seconds)\n");
    header(
        md,
        "model",
        &[
            "LLM",
            "build",
            "run",
            "cell",
            "HTTP requests",
            "abandoned (may be billed)",
        ],
    );
    for (mo, t) in models
        .iter()
        .filter_map(|m| Some((m, r.clock.models.get(*m)?)))
    {
        let _ = writeln!(
            md,
            "| {mo} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            t.llm_s, t.build_s, t.run_s, t.wall_s, t.http_requests, t.abandoned_requests
        );
    }
}

/// Every cell, and what the categories mean.
fn cells_table(md: &mut String, r: &Report) {
    let _ = writeln!(md, "\n## Cells\n");
    header(
        md,
        "model",
        &[
            "task",
            "trial",
            "variant",
            "outcome",
            "iterations",
            "API calls",
            "cost",
        ],
    );
    for c in &r.cells {
        let variant: Vec<String> = c.variant.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            c.model,
            c.task,
            c.trial,
            variant.join(" "),
            c.outcome,
            c.iterations,
            c.api_calls,
            usd(c.cost_usd)
        );
    }
    let _ = writeln!(
        md,
        "\nCategories: {}.",
        r.taxonomy
            .iter()
            .map(|(k, v)| format!("`{k}` {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// `cells.csv`: one row per cell, deterministic columns first.
pub fn csv(cells: &[Cell]) -> String {
    let mut s = String::from(
        "model,task,trial,variant,outcome,iterations,api_calls,prompt_tokens,\
         completion_tokens,cached_prompt_tokens,reasoning_tokens,cost_usd,wall_s,llm_s,build_s,\
         run_s,http_requests\n",
    );
    let q = |t: &str| agent::untrusted::csv_field(t);
    for c in cells {
        let variant: Vec<String> = c.variant.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{}",
            q(&c.model),
            q(&c.task),
            c.trial,
            q(&variant.join(" ")),
            q(&c.category.as_ref().map_or("success".into(), |k| k.label())),
            c.iterations,
            c.api_calls,
            c.usage.prompt_tokens,
            c.usage.completion_tokens,
            c.usage.cached_prompt_tokens,
            c.usage.reasoning_tokens,
            c.cost_usd.map_or(String::new(), |v| v.to_string()),
            c.clock.ended - c.clock.started,
            c.clock.llm_s,
            c.clock.build_s,
            c.clock.run_s,
            c.clock.http_requests
        );
    }
    s
}

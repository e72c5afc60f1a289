//! One cell of the benchmark — (model, task, trial) — as scored: its outcome, the category of
//! every failed attempt and of the cell, and what it cost. A cell is one line of
//! `results.jsonl`, built from the cell's trajectory alone ([`Cell::score`]), so re-scoring
//! needs no model and no build. Everything that varies from run to run (clock times, HTTP
//! retries, error texts with ports) is in [`Cell::clock`]; the rest is determined by the
//! model's answers and the compiler.

use agent::task::Variant;
use agent::trajectory::{Record, Status};
use llm::Usage;
use serde::{Deserialize, Serialize};
use stage_api::finite;

/// The first-level error categories (see ARCHITECTURE.md, "The benchmark's error taxonomy").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The answer had no code block.
    NoCode,
    /// The static screen or the build sandbox refused the code (detail: which rule).
    Policy,
    /// rustc rejected it (detail: the error group).
    Compile,
    /// It built but its sandboxed run failed (detail: how).
    Runtime,
    /// It ran but the output failed a check (detail: the check's name, from the task).
    Validation,
    /// The supervisor stopped the task.
    GaveUp,
    /// The iteration cap was reached.
    IterationCap,
    /// The model could not be reached, after retries.
    LlmError,
    /// The cell's budget was spent.
    Budget,
    /// Not the model's doing (decided by probes that run no model code): excluded from rates.
    HarnessError,
}

impl Kind {
    /// The category's name as `results.jsonl` and the report write it (`no_code`, `compile`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::NoCode => "no_code",
            Kind::Policy => "policy",
            Kind::Compile => "compile",
            Kind::Runtime => "runtime",
            Kind::Validation => "validation",
            Kind::GaveUp => "gave_up",
            Kind::IterationCap => "iteration_cap",
            Kind::LlmError => "llm_error",
            Kind::Budget => "budget",
            Kind::HarnessError => "harness_error",
        }
    }

    /// One sentence per category, for the report.
    pub const ALL: [(Kind, &'static str); 10] = [
        (Kind::NoCode, "the answer had no code block"),
        (
            Kind::Policy,
            "the screen or the build sandbox refused the code (which rule)",
        ),
        (Kind::Compile, "rustc rejected the code (error group)"),
        (Kind::Runtime, "built, but the sandboxed run failed (how)"),
        (
            Kind::Validation,
            "ran, but the output failed a check (which check)",
        ),
        (
            Kind::GaveUp,
            "the supervisor stopped (detail: the last attempt's failure)",
        ),
        (
            Kind::IterationCap,
            "the iteration cap was reached (detail: the last failure)",
        ),
        (
            Kind::LlmError,
            "the model could not be reached after retries",
        ),
        (Kind::Budget, "the cell's token or USD budget was spent"),
        (
            Kind::HarnessError,
            "the harness failed, confirmed by a probe: excluded from rates",
        ),
    ];
}

/// A category with its detail (`compile` + `type_mismatch`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Category {
    /// The first-level category.
    pub kind: Kind,
    /// The second level (a rule, an error group, a check); empty when there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Category {
    fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
    /// `kind` or `kind/detail`.
    pub fn label(&self) -> String {
        if self.detail.is_empty() {
            self.kind.name().to_string()
        } else {
            format!("{}/{}", self.kind.name(), self.detail)
        }
    }
}

/// Where a failed attempt was caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Caught {
    /// Before the build (no code, the screen).
    Screen,
    /// By the compiler (or the build's sandbox).
    Compiler,
    /// Only when it ran.
    Runtime,
    /// Only by validation.
    Validation,
}

impl Caught {
    /// Every place a failure can be caught, earliest first.
    pub const ALL: [Caught; 4] = [
        Caught::Screen,
        Caught::Compiler,
        Caught::Runtime,
        Caught::Validation,
    ];
    /// The place's name as the report writes it (`screen`, `compiler`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Caught::Screen => "screen",
            Caught::Compiler => "compiler",
            Caught::Runtime => "runtime",
            Caught::Validation => "validation",
        }
    }
}

/// One attempt, scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptScore {
    /// The attempt's iteration number (from 1).
    pub iteration: u32,
    /// `None`: it passed.
    pub failure: Option<Category>,
    /// Where the failure was caught (`None`: it passed).
    pub caught: Option<Caught>,
}

/// What varies from run to run, kept apart from the deterministic part.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CellClock {
    /// Seconds since the Unix epoch when the cell started and ended.
    #[serde(with = "finite")]
    pub started: f64,
    /// Seconds since the Unix epoch when the cell ended.
    #[serde(with = "finite")]
    pub ended: f64,
    /// Time waiting for the model (retries included), building, and running.
    #[serde(with = "finite")]
    pub llm_s: f64,
    /// Seconds spent building, over all attempts.
    #[serde(with = "finite")]
    pub build_s: f64,
    /// Seconds spent running the stage, over all attempts.
    #[serde(with = "finite")]
    pub run_s: f64,
    /// Per attempt: seconds from the answer to the verdict (build, plus run when it ran).
    #[serde(with = "finite::vec")]
    pub check_s: Vec<f64>,
    /// HTTP requests (calls plus retries).
    pub http_requests: u32,
    /// Of those, given up after they were sent (possibly billed, in no usage).
    #[serde(default)]
    pub abandoned_requests: u32,
    /// The error that ended the cell, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One scored cell: one line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// [`crate::FORMAT_VERSION`] (lines without one are version 1).
    #[serde(default = "crate::version_1")]
    pub format_version: u32,
    /// The model's name in the models file.
    pub model: String,
    /// The task's name.
    pub task: String,
    /// The trial's index (from 0).
    pub trial: u32,
    /// The task's drawn parameters for this trial.
    pub variant: Variant,
    /// How the task ended (from the trajectory's outcome line).
    pub status: Status,
    /// `None` for a success.
    pub category: Option<Category>,
    /// Every attempt, scored, in order.
    pub attempts: Vec<AttemptScore>,
    /// Iterations the cell ran.
    pub iterations: u32,
    /// Model calls (coder and supervisor together).
    pub api_calls: u32,
    /// Tokens used by those calls.
    pub usage: Usage,
    /// What the calls cost, USD (`None` when unknown: a model without a price).
    #[serde(with = "finite::option")]
    pub cost_usd: Option<f64>,
    /// What varies from run to run (times, HTTP requests, the error text).
    pub clock: CellClock,
}

impl Cell {
    /// Whether the cell succeeded (it has no failure category).
    pub fn success(&self) -> bool {
        self.category.is_none()
    }
    /// Whether it counts in rates (everything but harness errors).
    pub fn scored(&self) -> bool {
        self.category
            .as_ref()
            .is_none_or(|c| c.kind != Kind::HarnessError)
    }
    /// The cell without its clock: what replays must reproduce.
    pub fn deterministic(&self) -> Cell {
        Cell {
            clock: CellClock::default(),
            ..self.clone()
        }
    }

    /// Scores a finished trajectory. `probe`: for a cell that ended as a harness error, what
    /// the harness probe found (`Err`: the harness is broken, so the cell is a
    /// `harness_error`; `Ok`: the harness works, so the failure is the model code's).
    pub fn score(
        key: (&str, &str, u32),
        variant: Variant,
        records: &[Record],
        probe: Option<Result<(), String>>,
    ) -> Cell {
        let attempts: Vec<AttemptScore> = records.iter().filter_map(attempt_score).collect();
        let outcome = records.iter().rev().find_map(|r| match r {
            Record::Outcome {
                status,
                iterations,
                api_calls,
                usage,
                cost_usd,
                ..
            } => Some((*status, *iterations, *api_calls, *usage, *cost_usd)),
            _ => None,
        });
        // A trajectory without an outcome line did not finish: the harness's problem.
        let (status, iterations, api_calls, usage, cost_usd) =
            outcome.unwrap_or((Status::HarnessError, 0, 0, Usage::default(), None));
        let last = attempts
            .iter()
            .rev()
            .find_map(|a| a.failure.clone())
            .map(|c| c.label())
            .unwrap_or_default();
        let category = match status {
            Status::Accepted | Status::NotValidated => None,
            Status::GaveUp => Some(Category::new(Kind::GaveUp, last)),
            Status::IterationCap => Some(Category::new(Kind::IterationCap, last)),
            Status::LlmError => Some(Category::new(Kind::LlmError, "")),
            Status::Budget => Some(Category::new(Kind::Budget, "")),
            // Model code that reached the build may have broken the harness on purpose: the
            // probe (no model code) decides. Before any model code, it is the harness's.
            Status::HarnessError => Some(match probe {
                Some(Ok(())) if model_code_ran(records) => {
                    Category::new(Kind::Runtime, "broke_the_harness")
                }
                _ => Category::new(Kind::HarnessError, ""),
            }),
        };
        Cell {
            format_version: crate::FORMAT_VERSION,
            model: key.0.to_string(),
            task: key.1.to_string(),
            trial: key.2,
            variant,
            status,
            category,
            attempts,
            iterations,
            api_calls,
            usage,
            cost_usd,
            clock: CellClock::default(),
        }
    }
}

/// Whether any attempt's code passed the screen (so the build, at least, started on it).
fn model_code_ran(records: &[Record]) -> bool {
    records
        .iter()
        .any(|r| matches!(r, Record::Attempt { code: Some(_), policy, .. } if policy.is_empty()))
}

/// An attempt's verdict in words: its failure's category (`validation/held_out/m_yy`, ...),
/// `passed`, or `not checked` (the harness failed before a verdict); with its iteration.
pub fn attempt_verdict(r: &Record) -> Option<(u32, String)> {
    let s = attempt_score(r)?;
    let passed = matches!(r, Record::Attempt { validation: Some(v), held_out, .. }
        if v.passed && held_out.as_ref().is_none_or(|h| h.validation.as_ref().is_some_and(|v| v.passed)));
    let verdict = match (&s.failure, passed) {
        (Some(c), _) => c.label(),
        (None, true) => "passed".to_string(),
        (None, false) => "not checked (the harness failed before a verdict)".to_string(),
    };
    Some((s.iteration, verdict))
}

/// Writes what a task run leaves in `dir`: `attempts/N.rs` (each attempt's code as the model
/// wrote it) with `attempts/N.txt` (its verdict: the benchmark's category of the failure, or
/// `passed`), and `stage.rs` only when the run was accepted — the one file
/// `cargo xtask analyze --stage` takes from a run folder.
pub fn save_code(dir: &std::path::Path, records: &[Record], status: Status) -> std::io::Result<()> {
    let attempts = dir.join("attempts");
    // Nothing of an earlier run in the same folder may pass for this one's.
    let _ = std::fs::remove_file(dir.join("stage.rs"));
    if attempts.is_dir() {
        std::fs::remove_dir_all(&attempts)?;
    }
    let mut last = None;
    for r in records {
        let Record::Attempt { code, .. } = r else {
            continue;
        };
        if let Some((n, verdict)) = attempt_verdict(r) {
            let code = code.as_deref();
            std::fs::create_dir_all(&attempts)?;
            if let Some(code) = code {
                std::fs::write(attempts.join(format!("{n}.rs")), code)?;
                last = Some(code);
            }
            std::fs::write(attempts.join(format!("{n}.txt")), format!("{verdict}\n"))?;
        }
    }
    if let (Status::Accepted, Some(code)) = (status, last) {
        std::fs::write(dir.join("stage.rs"), code)?;
    }
    Ok(())
}

fn attempt_score(r: &Record) -> Option<AttemptScore> {
    let Record::Attempt {
        iteration,
        code,
        policy,
        build,
        run,
        validation,
        held_out,
        ..
    } = r
    else {
        return None;
    };
    let (failure, caught) = if code.is_none() {
        (Some(Category::new(Kind::NoCode, "")), Some(Caught::Screen))
    } else if let Some(v) = policy.first() {
        let caught = if v.kind == "compile_time_read" {
            Caught::Compiler
        } else {
            Caught::Screen
        };
        (
            Some(Category::new(Kind::Policy, v.kind.clone())),
            Some(caught),
        )
    } else if let Some(b) = build.as_ref().filter(|b| !b.ok) {
        let group = compile_group(b.error_codes.first().map(String::as_str), b.errors);
        (
            Some(Category::new(Kind::Compile, group)),
            Some(Caught::Compiler),
        )
    } else if let Some(r) = run
        .as_ref()
        .filter(|r| r.class != agent::outcome::RunClass::Ok)
    {
        (
            Some(Category::new(Kind::Runtime, runtime_detail(r.class))),
            Some(Caught::Runtime),
        )
    } else if let Some(v) = validation.as_ref().filter(|v| !v.passed) {
        let check = v
            .checks
            .iter()
            .find(|c| !c.passed)
            .map_or("unknown".to_string(), |c| c.name.clone());
        (
            Some(Category::new(Kind::Validation, check)),
            Some(Caught::Validation),
        )
    } else if let Some(h) = held_out {
        // Passed on the visible input, not on the held-out one: `held_out/<check or class>`.
        let what = match &h.validation {
            Some(v) => v.checks.iter().find(|c| !c.passed).map(|c| c.name.clone()),
            None => Some(runtime_detail(h.class).to_string()),
        };
        match what {
            Some(w) => (
                Some(Category::new(Kind::Validation, format!("held_out/{w}"))),
                Some(Caught::Validation),
            ),
            None => (None, None),
        }
    } else {
        // It passed, or the harness failed before a verdict (the outcome says which).
        (None, None)
    };
    Some(AttemptScore {
        iteration: *iteration,
        failure,
        caught,
    })
}

/// The error group of a failed build from its first error code.
pub fn compile_group(first_code: Option<&str>, errors: usize) -> &'static str {
    match first_code {
        Some("E0308") => "type_mismatch",
        Some("E0425" | "E0433" | "E0412" | "E0432") => "unresolved_name",
        Some("E0599" | "E0609" | "E0560") => "missing_method_or_field",
        Some("E0061") => "wrong_arguments",
        Some("E0277") => "trait_bound",
        Some(c) if c.starts_with("E05") || c.starts_with("E07") => "borrow_or_lifetime",
        Some(_) => "other",
        // rustc gives parse errors no code.
        None if errors > 0 => "syntax",
        None => "other",
    }
}

fn runtime_detail(class: agent::outcome::RunClass) -> &'static str {
    use agent::outcome::RunClass as C;
    match class {
        C::Panic => "panic",
        C::Timeout => "timeout",
        C::MemoryLimit => "memory",
        C::ProcessLimit => "process_limit",
        C::OutputLimit => "output_limit",
        C::NetworkBlocked => "blocked_syscall",
        C::StageError => "stage_error",
        C::FilesystemBlocked => "filesystem_blocked",
        C::Crash => "crash",
        C::NoOutput => "no_output",
        C::ExitCode => "exit_code",
        C::SetupFailed => "setup_failed",
        C::Ok => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_read_back() {
        let mut cell = Cell::score(("m", "t", 0), Variant::new(), &[], None);
        cell.cost_usd = Some(f64::INFINITY);
        cell.clock.llm_s = f64::NAN;
        cell.clock.build_s = f64::NEG_INFINITY;
        cell.clock.check_s = vec![1.5, f64::NAN];
        let text = serde_json::to_string(&cell).unwrap();
        let back: Cell = serde_json::from_str(&text).unwrap();
        assert_eq!(back.cost_usd, Some(f64::INFINITY));
        assert!(back.clock.llm_s.is_nan() && back.clock.check_s[1].is_nan());
        assert_eq!(back.clock.build_s, f64::NEG_INFINITY);
        assert_eq!(back.clock.check_s[0], 1.5);
        // And plain serde_json indeed cannot do this (the reason for `finite`).
        assert!(serde_json::from_str::<f64>(&serde_json::to_string(&f64::NAN).unwrap()).is_err());
    }

    #[test]
    fn compile_groups() {
        assert_eq!(compile_group(Some("E0308"), 1), "type_mismatch");
        assert_eq!(compile_group(Some("E0432"), 1), "unresolved_name");
        assert_eq!(compile_group(Some("E0502"), 1), "borrow_or_lifetime");
        assert_eq!(compile_group(Some("E0716"), 1), "borrow_or_lifetime");
        assert_eq!(compile_group(None, 2), "syntax");
    }

    fn attempt_with_code() -> Record {
        Record::Attempt {
            iteration: 1,
            call: agent::trajectory::Call {
                prompt: String::new(),
                answer: String::new(),
                usage: None,
                latency_s: 0.0,
                requests: 1,
                cost_usd: None,
                abandoned: 0,
            },
            code: Some("fn main() {}".into()),
            policy: vec![],
            build: None,
            run: None,
            validation: None,
            held_out: None,
        }
    }

    fn harness_outcome() -> Record {
        Record::Outcome {
            status: Status::HarnessError,
            iterations: 1,
            api_calls: 2,
            http_requests: 2,
            abandoned_requests: 0,
            usage: Usage::default(),
            cost_usd: None,
            llm_latency_s: 0.0,
            error: Some("sandbox".into()),
        }
    }

    #[test]
    fn a_harness_error_is_the_models_when_its_code_ran_and_the_probe_passes() {
        let kind = |records: &[Record], probe: Option<Result<(), String>>| {
            Cell::score(("m", "t", 0), Variant::new(), records, probe)
                .category
                .unwrap()
                .label()
        };
        let with_code = [attempt_with_code(), harness_outcome()];
        assert_eq!(kind(&with_code, Some(Ok(()))), "runtime/broke_the_harness");
        assert_eq!(
            kind(&with_code, Some(Err("no rustc".into()))),
            "harness_error"
        );
        // No model code ran (the task's input was missing, say): the harness's, probe or not.
        assert_eq!(kind(&[harness_outcome()], Some(Ok(()))), "harness_error");
        // A trajectory without an outcome did not finish.
        assert_eq!(kind(&[], None), "harness_error");
    }
}

//! The supervisor–coder loop, in one function: [`run_task`]. What happens to one answer's
//! code (screen, build, sandbox, validation) is [`crate::check`].
//!
//! ```text
//! supervisor: instruction + contract → task for the coder          (1 call)
//! repeat up to max_iterations:
//!     coder: → src/stage.rs                                         (1 call)
//!     no code / policy violation / compile error → straight back to the coder
//!     sandboxed run fails, or validation fails → supervisor review  (1 call)
//!         → give up, or guidance back to the coder
//!     passes → accepted (only validation can accept, never a model)
//! ```
//!
//! Every model call goes through `Session::call`, which refuses it once the [`Budget`] is
//! spent: `cargo xtask agent` and every benchmark cell are capped in the same place. How the
//! loop ended is one `Exit`; the [`Outcome`] is built from it once.

use crate::check::{Attempt, Checker, Timing, Verdict};
use crate::prompts::render;
use crate::stage_crate::Toolchain;
use crate::task::Task;
use crate::trajectory::{Call, Record, Status, Trajectory};
use crate::validate::Validation;
use llm::{Llm, LlmError, Message, Reply, Usage};
use sandbox::Limits;
use serde::{Deserialize, Serialize};

/// Spending limits of one task run (coder and supervisor together): it ends as `budget` once
/// either is spent. Checked before every call, so a run spends at most one call past it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// USD (counted only for models with a price).
    pub usd: Option<f64>,
    /// Prompt + completion tokens.
    pub tokens: Option<u64>,
}

impl Default for Budget {
    /// $2 or 2 million tokens: several times what a five-attempt task takes.
    fn default() -> Self {
        Self {
            usd: Some(2.0),
            tokens: Some(2_000_000),
        }
    }
}

/// How to run a task.
#[derive(Clone, Debug)]
pub struct Options {
    /// Most coder attempts before the run ends at the iteration cap.
    pub max_iterations: u32,
    /// Which repetition of the task this is (part of the cassette key).
    pub trial: u32,
    /// Limits of each sandboxed run of the stage.
    pub limits: Limits,
    /// What the models may spend.
    pub budget: Budget,
    /// The user's own instruction instead of the task's (not validated: sanity checks only).
    pub instruction: Option<String>,
    /// Budget of the condensed diagnostics, characters.
    pub diagnostics_budget: usize,
    /// The static screen before the build (default on). Off only in tests that show the
    /// operating-system boundary holds on its own; no command turns it off.
    pub screen: bool,
    /// The task's drawn parameters for this trial (empty: the defaults).
    pub variant: crate::task::Variant,
    /// Bounds the builds and sandbox runs of tasks running at once (benchmarks: the cores).
    pub cores: Option<std::sync::Arc<llm::gate::Gate>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_iterations: 5,
            trial: 0,
            limits: Limits::default(),
            budget: Budget::default(),
            instruction: None,
            diagnostics_budget: 6000,
            screen: true,
            cores: None,
            variant: Default::default(),
        }
    }
}

/// What a task run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// How the task ended.
    pub status: Status,
    /// Attempts made (the number of the last one).
    pub iterations: u32,
    /// Model calls answered, coder's and supervisor's together.
    pub api_calls: u32,
    /// Tokens of all calls together.
    pub usage: Usage,
    /// USD spent by all calls; `None` when no call had a price.
    pub cost_usd: Option<f64>,
    /// The last code the coder wrote.
    pub code: Option<String>,
    /// The validation of the run that passed; `None` when none did.
    pub validation: Option<Validation>,
    /// The output document of the run that passed (validation or, without a reference, the
    /// sanity checks).
    pub output: Option<String>,
    /// Wall-clock seconds of each attempt's build and runs.
    pub timings: Vec<Timing>,
    /// Why the task ended in an error (a model call or the harness), when it did.
    pub error: Option<String>,
}

/// Errors that stop a run before it can be reported as an outcome.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The task's inputs could not be prepared.
    #[error("task {task}: {source}")]
    Task {
        /// The task's name.
        task: String,
        /// Why its inputs could not be prepared.
        #[source]
        source: crate::task::TaskError,
    },
    /// The toolchain's trusted half failed (not the model's doing).
    #[error("task {task}: {source}")]
    Toolchain {
        /// The task's name.
        task: String,
        /// What failed: the preparation, the held-out key or the task's extra crates.
        #[source]
        source: crate::stage_crate::ToolchainError,
    },
    /// The stage crate could not be written.
    #[error("task {task}: stage crate: {source}")]
    StageCrate {
        /// The task's name.
        task: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The trajectory could not be written.
    #[error("writing the trajectory: {0}")]
    Trajectory(#[from] std::io::Error),
}

/// How the loop ended.
enum Exit {
    /// The stage's output passed (validation, or sanity checks without a reference).
    Passed(Validation, String),
    /// The supervisor gave up.
    GaveUp,
    /// Every attempt was used.
    IterationCap,
    /// A model call failed (a spent budget included).
    Llm(LlmError),
    /// The harness failed (not the model's doing).
    Harness(String),
}

/// What comes after an attempt.
enum Next {
    Coder(String),
    Exit(Exit),
}

/// Tallies calls for the outcome line.
#[derive(Default)]
struct Tally {
    api_calls: u32,
    requests: u32,
    abandoned: u32,
    usage: Usage,
    cost: Option<f64>,
    latency: f64,
}

impl Tally {
    fn add(&mut self, r: &Reply) {
        self.api_calls += 1;
        self.requests += r.requests;
        self.abandoned += r.abandoned;
        if let Some(u) = r.usage {
            self.usage += u;
        }
        if let Some(c) = r.cost_usd {
            self.cost = Some(self.cost.unwrap_or(0.0) + c);
        }
        self.latency += r.latency_s;
    }
}

/// The two models, what they spent, and the trajectory.
struct Session<'c, 's, 't> {
    coder: &'c mut dyn Llm,
    supervisor: Option<&'s mut dyn Llm>,
    tally: Tally,
    budget: Budget,
    trial: u32,
    traj: &'t mut Trajectory,
}

impl Session<'_, '_, '_> {
    /// Every model call of the loop: refused once the budget is spent, counted when answered.
    fn call(&mut self, supervisor: bool, msgs: &[Message]) -> Result<Reply, LlmError> {
        let (usd, tokens) = (
            self.tally.cost.unwrap_or(0.0),
            self.tally.usage.prompt_tokens + self.tally.usage.completion_tokens,
        );
        if let Some(b) = self.budget.usd.filter(|b| usd >= *b) {
            return Err(LlmError::Budget(format!("USD {usd:.4} of a budget of {b}")));
        }
        if let Some(b) = self.budget.tokens.filter(|b| tokens >= *b) {
            return Err(LlmError::Budget(format!(
                "{tokens} tokens of a budget of {b}"
            )));
        }
        let llm: &mut dyn Llm = match (&mut self.supervisor, supervisor) {
            (Some(s), true) => &mut **s,
            _ => &mut *self.coder,
        };
        let r = llm.chat(msgs, self.trial)?;
        self.tally.add(&r);
        Ok(r)
    }

    /// The outcome, built once from how the loop ended; its line ends the trajectory.
    fn finish(self, exit: Exit, attempts: Attempts) -> Result<Outcome, AgentError> {
        let mut out = Outcome {
            status: Status::IterationCap,
            iterations: attempts.iterations,
            api_calls: self.tally.api_calls,
            usage: self.tally.usage,
            cost_usd: self.tally.cost,
            code: attempts.code,
            validation: None,
            output: None,
            timings: attempts.timings,
            error: None,
        };
        match exit {
            Exit::Passed(v, output) => {
                out.status = if v.validated {
                    Status::Accepted
                } else {
                    Status::NotValidated
                };
                (out.validation, out.output) = (Some(v), Some(output));
            }
            Exit::GaveUp => out.status = Status::GaveUp,
            Exit::IterationCap => {}
            Exit::Llm(e) => {
                out.status = match e {
                    LlmError::Budget(_) => Status::Budget,
                    _ => Status::LlmError,
                };
                out.error = Some(e.to_string());
            }
            Exit::Harness(e) => (out.status, out.error) = (Status::HarnessError, Some(e)),
        }
        self.traj.push(Record::Outcome {
            status: out.status,
            iterations: out.iterations,
            api_calls: self.tally.api_calls,
            http_requests: self.tally.requests,
            abandoned_requests: self.tally.abandoned,
            usage: self.tally.usage,
            cost_usd: self.tally.cost,
            llm_latency_s: self.tally.latency,
            error: out.error.clone(),
        })?;
        Ok(out)
    }
}

/// What the attempts left: how many, the last code, their timings.
#[derive(Default)]
struct Attempts {
    iterations: u32,
    code: Option<String>,
    timings: Vec<Timing>,
}

/// Runs `task` with `llm` until the stage passes, the supervisor gives up, the cap is hit or
/// the budget is spent. The supervisor is `supervisor` when given (a separate model, as in the
/// paper), else `llm`. `progress` receives one line per step, for the terminal.
pub fn run_task(
    task: &Task,
    llm: &mut dyn Llm,
    supervisor: Option<&mut dyn Llm>,
    toolchain: &Toolchain,
    opts: &Options,
    traj: &mut Trajectory,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, AgentError> {
    let task_err = |source| AgentError::Task {
        task: task.name.clone(),
        source,
    };
    let toolchain_err = |source| AgentError::Toolchain {
        task: task.name.clone(),
        source,
    };
    let key = toolchain.held_out_key().map_err(toolchain_err)?;
    let seed = task.held_out_seed(&key, opts.trial, &opts.variant);
    let validated = opts.instruction.is_none();
    let prepared = task
        .prepare(&toolchain.repo, validated, &opts.variant, seed)
        .map_err(task_err)?;
    let instruction = opts
        .instruction
        .clone()
        .unwrap_or_else(|| task.instruction_for(&opts.variant));
    traj.push(Record::Start {
        format_version: crate::trajectory::TRAJECTORY_FORMAT,
        task: task.name.clone(),
        stage: task.stage.name().into(),
        model: llm.config().model.clone(),
        endpoint: llm.config().public_url(),
        supervisor: supervisor.as_ref().map(|s| s.config().model.clone()),
        trial: opts.trial,
        max_iterations: opts.max_iterations,
        validated: prepared.reference.is_some(),
        instruction: instruction.clone(),
    })?;
    progress("preparing the stage toolchain");
    toolchain.prepare().map_err(toolchain_err)?;
    let mut krate = toolchain
        .new_crate(task.stage)
        .map_err(|source| AgentError::StageCrate {
            task: task.name.clone(),
            source,
        })?;
    krate.allow_crates(&task.crates).map_err(toolchain_err)?;
    let checker = Checker {
        task,
        krate: &krate,
        prepared: &prepared,
        limits: &opts.limits,
        diagnostics_budget: opts.diagnostics_budget,
        screen: opts.screen,
        cores: opts.cores.as_deref(),
    };
    let mut s = Session {
        coder: llm,
        supervisor,
        tally: Tally::default(),
        budget: opts.budget,
        trial: opts.trial,
        traj,
    };
    let mut attempts = Attempts::default();
    let exit = converse(
        &mut s,
        &checker,
        &instruction,
        opts,
        &mut attempts,
        progress,
    )?;
    s.finish(exit, attempts)
}

/// The conversation: the supervisor's plan, then attempts until one ends the loop.
fn converse(
    s: &mut Session<'_, '_, '_>,
    checker: &Checker,
    instruction: &str,
    opts: &Options,
    attempts: &mut Attempts,
    progress: &mut dyn FnMut(&str),
) -> Result<Exit, AgentError> {
    progress("supervisor: planning the task");
    let contract = checker.task.contract();
    let plan_prompt = render(
        "supervisor_plan",
        &[("instruction", instruction), ("contract", &contract)],
    );
    let checked_by = if checker.prepared.reference.is_some() {
        "its output is compared with a reference implementation that neither of you can see"
    } else {
        "its output is only sanity-checked (no reference covers this instruction): make sure \
         the task states what a correct output must satisfy"
    };
    let mut supervisor = vec![
        Message::system(render("supervisor_system", &[("checked_by", checked_by)])),
        Message::user(&plan_prompt),
    ];
    let plan = match s.call(true, &supervisor) {
        Ok(r) => r,
        Err(e) => return Ok(Exit::Llm(e)),
    };
    s.traj.push(Record::Plan {
        call: Call::new(&plan_prompt, &plan),
    })?;
    supervisor.push(Message::assistant(&plan.content));
    let first = render(
        "coder_task",
        &[("task", plan.content.trim()), ("contract", &contract)],
    );
    let mut coder = vec![
        Message::system(render("coder_system", &[])),
        Message::user(first),
    ];
    for iteration in 1..=opts.max_iterations {
        attempts.iterations = iteration;
        progress(&format!(
            "coder: attempt {iteration}/{}",
            opts.max_iterations
        ));
        let prompt = coder.last().expect("a prompt").content.clone();
        let reply = match s.call(false, &coder) {
            Ok(r) => r,
            Err(e) => return Ok(Exit::Llm(e)),
        };
        coder.push(Message::assistant(&reply.content));
        let mut attempt = Attempt::new(iteration, Call::new(&prompt, &reply));
        let code = extract_code(&reply.content);
        if code.is_some() {
            attempts.code = code.clone();
        }
        let next = match checker.check(code, &mut attempt, progress) {
            Verdict::Fix(prompt) => Next::Coder(prompt),
            Verdict::Passed(v, output) => Next::Exit(Exit::Passed(v, output)),
            Verdict::Harness(e) => Next::Exit(Exit::Harness(e)),
            Verdict::Failed { failure, report } => {
                progress("supervisor: reviewing");
                let code = attempts.code.as_deref().unwrap_or("");
                let failed = Failed {
                    iteration,
                    max_iterations: opts.max_iterations,
                    failure: &failure,
                    report: &report,
                    code,
                };
                review(s, &mut supervisor, &failed, &mut attempt)?
            }
        };
        if let Some(r) = attempt.take() {
            s.traj.push(r)?;
        }
        attempts.timings.push(attempt.timing);
        match next {
            Next::Coder(f) => coder.push(Message::user(f)),
            Next::Exit(exit) => return Ok(exit),
        }
    }
    Ok(Exit::IterationCap)
}

/// A run or validation failure, for the supervisor's review.
struct Failed<'a> {
    iteration: u32,
    max_iterations: u32,
    failure: &'a str,
    report: &'a str,
    code: &'a str,
}

/// The supervisor reviews a failed attempt: it gives up, or its guidance goes to the coder.
/// Its conversation keeps every review and its own advice, so it can see what an attempt
/// changed (or did not). The attempt's record is written before the review's.
fn review(
    s: &mut Session<'_, '_, '_>,
    supervisor: &mut Vec<Message>,
    f: &Failed,
    attempt: &mut Attempt,
) -> Result<Next, AgentError> {
    let prompt = render(
        "supervisor_review",
        &[
            ("iteration", &f.iteration.to_string()),
            ("max_iterations", &f.max_iterations.to_string()),
            ("failure", f.failure),
            ("report", f.report),
            ("code", f.code.trim_end()),
        ],
    );
    supervisor.push(Message::user(&prompt));
    let review = match s.call(true, supervisor) {
        Ok(r) => r,
        Err(e) => return Ok(Next::Exit(Exit::Llm(e))),
    };
    supervisor.push(Message::assistant(&review.content));
    let give_up = gives_up(&review.content);
    s.traj.push(attempt.take().expect("not yet pushed"))?;
    s.traj.push(Record::Review {
        iteration: f.iteration,
        call: Call::new(&prompt, &review),
        give_up,
    })?;
    if give_up {
        return Ok(Next::Exit(Exit::GaveUp));
    }
    let guidance: Vec<&str> = review
        .content
        .lines()
        .filter(|l| !l.trim_start().starts_with("DECISION"))
        .collect();
    Ok(Next::Coder(render(
        "coder_guidance",
        &[
            ("failure", f.failure),
            ("report", f.report),
            ("guidance", guidance.join("\n").trim()),
        ],
    )))
}

/// Whether the supervisor's answer starts with `DECISION: give_up`.
fn gives_up(answer: &str) -> bool {
    answer
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| {
            l.to_ascii_lowercase()
                .replace(' ', "")
                .contains("decision:give_up")
        })
}

/// The last ```rust block of an answer (or the last ``` block when none is marked rust).
pub fn extract_code(answer: &str) -> Option<String> {
    let mut blocks: Vec<(String, String)> = Vec::new(); // (language, body)
    let mut lines = answer.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            blocks.push((lang.trim().to_ascii_lowercase(), body));
        }
    }
    let rust = blocks.iter().rev().find(|(l, _)| l == "rust" || l == "rs");
    rust.or(blocks.last())
        .map(|(_, b)| b.clone())
        .filter(|b| !b.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::extract_code;

    #[test]
    fn takes_the_last_rust_block() {
        let a = "Here:\n```rust\nfn a() {}\n```\nbetter:\n```rust\nfn b() {}\n```\n";
        assert_eq!(extract_code(a).unwrap(), "fn b() {}\n");
        assert_eq!(extract_code("```\nfn c() {}\n```").unwrap(), "fn c() {}\n");
        assert_eq!(extract_code("no code"), None);
        assert_eq!(extract_code("```rust\n```"), None);
    }
}

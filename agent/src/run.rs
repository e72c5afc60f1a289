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

use crate::check::{Attempt, Checker, Timing, Verdict};
use crate::prompts::render;
use crate::stage_crate::Toolchain;
use crate::task::Task;
use crate::trajectory::{Call, Record, Status, Trajectory};
use crate::validate::Validation;
use llm::{Llm, LlmError, Message, Reply, Usage};
use sandbox::Limits;

/// How to run a task.
#[derive(Clone, Debug)]
pub struct Options {
    pub max_iterations: u32,
    /// Which repetition of the task this is (part of the cassette key).
    pub trial: u32,
    pub limits: Limits,
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
    pub status: Status,
    pub iterations: u32,
    pub api_calls: u32,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// The last code the coder wrote.
    pub code: Option<String>,
    pub validation: Option<Validation>,
    /// The output document of the run that passed (validation or, without a reference, the
    /// sanity checks).
    pub output: Option<String>,
    pub timings: Vec<Timing>,
    pub error: Option<String>,
}

/// Errors that stop a run before it can be reported as an outcome.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("task {task}: {message}")]
    Task { task: String, message: String },
    #[error("writing the trajectory: {0}")]
    Trajectory(#[from] std::io::Error),
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

/// Runs `task` with `llm` until the stage passes, the supervisor gives up or the cap is hit.
/// The supervisor is `supervisor` when given (a separate model, as in the paper), else `llm`.
/// `progress` receives one line per step, for the terminal.
pub fn run_task(
    task: &Task,
    llm: &mut dyn Llm,
    mut supervisor: Option<&mut dyn Llm>,
    toolchain: &Toolchain,
    opts: &Options,
    traj: &mut Trajectory,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, AgentError> {
    let kind = task.stage;
    let task_err = |message: String| AgentError::Task {
        task: task.name.clone(),
        message,
    };
    let key = toolchain.held_out_key().map_err(task_err)?;
    let prepared = task
        .prepare(
            &toolchain.repo,
            opts.instruction.is_none(),
            &opts.variant,
            task.held_out_seed(&key, opts.trial, &opts.variant),
        )
        .map_err(task_err)?;
    let contract = task.contract();
    let instruction = opts
        .instruction
        .clone()
        .unwrap_or_else(|| task.instruction_for(&opts.variant));
    traj.push(Record::Start {
        task: task.name.clone(),
        stage: kind.name().into(),
        model: llm.config().model.clone(),
        endpoint: llm.config().public_url(),
        supervisor: supervisor.as_ref().map(|s| s.config().model.clone()),
        trial: opts.trial,
        max_iterations: opts.max_iterations,
        validated: prepared.reference.is_some(),
        instruction: instruction.clone(),
    })?;
    progress("preparing the stage toolchain");
    toolchain.prepare().map_err(task_err)?;
    let mut krate = toolchain
        .new_crate(kind)
        .map_err(|e| task_err(format!("stage crate: {e}")))?;
    krate.allow_crates(&task.crates).map_err(task_err)?;

    let mut tally = Tally::default();
    let mut out = Outcome {
        status: Status::IterationCap,
        iterations: 0,
        api_calls: 0,
        usage: Usage::default(),
        cost_usd: None,
        code: None,
        validation: None,
        output: None,
        timings: vec![],
        error: None,
    };
    let finish = |out: &mut Outcome, tally: &Tally, traj: &mut Trajectory| -> std::io::Result<()> {
        out.api_calls = tally.api_calls;
        out.usage = tally.usage;
        out.cost_usd = tally.cost;
        traj.push(Record::Outcome {
            status: out.status,
            iterations: out.iterations,
            api_calls: tally.api_calls,
            http_requests: tally.requests,
            abandoned_requests: tally.abandoned,
            usage: tally.usage,
            cost_usd: tally.cost,
            llm_latency_s: tally.latency,
            error: out.error.clone(),
        })
    };
    let call =
        |llm: &mut dyn Llm, msgs: &[Message], tally: &mut Tally| -> Result<Reply, LlmError> {
            let r = llm.chat(msgs, opts.trial)?;
            tally.add(&r);
            Ok(r)
        };
    // A spent budget ends the task as `Budget`; any other call failure as `LlmError`.
    let failed = |out: &mut Outcome, e: LlmError| {
        out.status = match e {
            LlmError::Budget(_) => Status::Budget,
            _ => Status::LlmError,
        };
        out.error = Some(e.to_string());
    };

    // The supervisor plans.
    progress("supervisor: planning the task");
    let plan_prompt = render(
        "supervisor_plan",
        &[("instruction", &instruction), ("contract", &contract)],
    );
    let mut supervisor_msgs = vec![
        Message::system(render(
            "supervisor_system",
            &[(
                "checked_by",
                if prepared.reference.is_some() {
                    "its output is compared with a reference implementation that neither of \
                     you can see"
                } else {
                    "its output is only sanity-checked (no reference covers this instruction): \
                     make sure the task states what a correct output must satisfy"
                },
            )],
        )),
        Message::user(&plan_prompt),
    ];
    let plan = match call(pick(&mut supervisor, llm), &supervisor_msgs, &mut tally) {
        Ok(r) => r,
        Err(e) => {
            failed(&mut out, e);
            finish(&mut out, &tally, traj)?;
            return Ok(out);
        }
    };
    traj.push(Record::Plan {
        call: Call::new(&plan_prompt, &plan),
    })?;
    supervisor_msgs.push(Message::assistant(&plan.content));

    let first = render(
        "coder_task",
        &[("task", plan.content.trim()), ("contract", &contract)],
    );
    let mut coder = vec![
        Message::system(render("coder_system", &[])),
        Message::user(first),
    ];

    let checker = Checker {
        task,
        krate: &krate,
        prepared: &prepared,
        limits: &opts.limits,
        diagnostics_budget: opts.diagnostics_budget,
        screen: opts.screen,
        cores: opts.cores.as_deref(),
    };
    for iteration in 1..=opts.max_iterations {
        out.iterations = iteration;
        progress(&format!(
            "coder: attempt {iteration}/{}",
            opts.max_iterations
        ));
        let prompt = coder.last().expect("a prompt").content.clone();
        let reply = match call(llm, &coder, &mut tally) {
            Ok(r) => r,
            Err(e) => {
                failed(&mut out, e);
                break;
            }
        };
        coder.push(Message::assistant(&reply.content));
        let mut attempt = Attempt::new(iteration, Call::new(&prompt, &reply));
        let code = extract_code(&reply.content);
        if code.is_some() {
            out.code = code.clone();
        }

        // What goes back to the coder; `None` ends the loop.
        let feedback = match checker.check(code, &mut attempt, progress) {
            Verdict::Fix(prompt) => Some(prompt),
            Verdict::Passed(v, output) => {
                out.output = Some(output);
                out.status = if v.validated {
                    Status::Accepted
                } else {
                    Status::NotValidated
                };
                out.validation = Some(v);
                None
            }
            Verdict::Harness(e) => {
                out.status = Status::HarnessError;
                out.error = Some(e);
                None
            }
            Verdict::Failed { failure, report } => {
                // A run or validation failure: the supervisor decides.
                progress("supervisor: reviewing");
                let review_prompt = render(
                    "supervisor_review",
                    &[
                        ("iteration", &iteration.to_string()),
                        ("max_iterations", &opts.max_iterations.to_string()),
                        ("failure", &failure),
                        ("report", &report),
                        ("code", out.code.as_deref().unwrap_or("").trim_end()),
                    ],
                );
                // The supervisor's conversation keeps every review and its own advice, so it
                // can see what an attempt changed (or did not).
                supervisor_msgs.push(Message::user(&review_prompt));
                match call(pick(&mut supervisor, llm), &supervisor_msgs, &mut tally) {
                    Err(e) => {
                        failed(&mut out, e);
                        None
                    }
                    Ok(review) => {
                        supervisor_msgs.push(Message::assistant(&review.content));
                        let give_up = gives_up(&review.content);
                        traj.push(attempt.take().expect("not yet pushed"))?;
                        traj.push(Record::Review {
                            iteration,
                            call: Call::new(&review_prompt, &review),
                            give_up,
                        })?;
                        if give_up {
                            out.status = Status::GaveUp;
                            None
                        } else {
                            let guidance: Vec<&str> = review
                                .content
                                .lines()
                                .filter(|l| !l.trim_start().starts_with("DECISION"))
                                .collect();
                            Some(render(
                                "coder_guidance",
                                &[
                                    ("failure", &failure),
                                    ("report", &report),
                                    ("guidance", guidance.join("\n").trim()),
                                ],
                            ))
                        }
                    }
                }
            }
        };
        if let Some(r) = attempt.take() {
            traj.push(r)?;
        }
        out.timings.push(attempt.timing);
        match feedback {
            Some(f) => coder.push(Message::user(f)),
            None => break,
        }
    }
    finish(&mut out, &tally, traj)?;
    Ok(out)
}

/// The supervisor's model: its own when given, else the coder's.
fn pick<'a>(supervisor: &'a mut Option<&mut dyn Llm>, coder: &'a mut dyn Llm) -> &'a mut dyn Llm {
    match supervisor {
        Some(s) => &mut **s,
        None => coder,
    }
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

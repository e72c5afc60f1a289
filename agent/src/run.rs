//! The supervisor–coder loop, in one function: [`run_task`].
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

use crate::llm::{Llm, LlmError, Message, Reply, Usage};
use crate::prompts::{contract, render};
use crate::sandbox::{self, Limits, RunClass, RunDir};
use crate::stage_crate::{condense, Toolchain};
use crate::task::Task;
use crate::trajectory::{BuildRecord, Call, Record, RunRecord, Status, Trajectory};
use crate::validate::{validate, Validation};
use serde::Serialize;

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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_iterations: 5,
            trial: 0,
            limits: Limits::default(),
            instruction: None,
            diagnostics_budget: 6000,
        }
    }
}

/// Wall-clock seconds of one attempt's build and run (kept out of the trajectory).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    pub iteration: u32,
    pub build_s: Option<f64>,
    pub run_s: Option<f64>,
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
    usage: Usage,
    cost: Option<f64>,
    latency: f64,
}

impl Tally {
    fn add(&mut self, r: &Reply) {
        self.api_calls += 1;
        self.requests += r.requests;
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
/// `progress` receives one line per step, for the terminal.
pub fn run_task(
    task: &Task,
    llm: &mut dyn Llm,
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
    let prepared = task
        .prepare(&toolchain.repo, opts.instruction.is_none())
        .map_err(task_err)?;
    let contract = contract(kind);
    let instruction = opts
        .instruction
        .clone()
        .unwrap_or_else(|| task.instruction.trim().to_string());
    traj.push(Record::Start {
        task: task.name.clone(),
        stage: kind.name().into(),
        model: llm.config().model.clone(),
        endpoint: llm.config().public_url(),
        trial: opts.trial,
        max_iterations: opts.max_iterations,
        validated: prepared.reference.is_some(),
        instruction: instruction.clone(),
    })?;
    progress("preparing the stage toolchain");
    toolchain.warm_up().map_err(task_err)?;
    let krate = toolchain
        .new_crate(kind)
        .map_err(|e| task_err(format!("stage crate: {e}")))?;

    let mut tally = Tally::default();
    let mut out = Outcome {
        status: Status::IterationCap,
        iterations: 0,
        api_calls: 0,
        usage: Usage::default(),
        cost_usd: None,
        code: None,
        validation: None,
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

    // The supervisor plans.
    progress("supervisor: planning the task");
    let plan_prompt = render(
        "supervisor_plan",
        &[("instruction", &instruction), ("contract", &contract)],
    );
    let mut supervisor = vec![
        Message::system(render("supervisor_system", &[])),
        Message::user(&plan_prompt),
    ];
    let plan = match call(llm, &supervisor, &mut tally) {
        Ok(r) => r,
        Err(e) => {
            out.status = Status::LlmError;
            out.error = Some(e.to_string());
            finish(&mut out, &tally, traj)?;
            return Ok(out);
        }
    };
    traj.push(Record::Plan {
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
        out.iterations = iteration;
        let mut timing = Timing {
            iteration,
            ..Timing::default()
        };
        progress(&format!(
            "coder: attempt {iteration}/{}",
            opts.max_iterations
        ));
        let prompt = coder.last().expect("a prompt").content.clone();
        let reply = match call(llm, &coder, &mut tally) {
            Ok(r) => r,
            Err(e) => {
                out.status = Status::LlmError;
                out.error = Some(e.to_string());
                break;
            }
        };
        coder.push(Message::assistant(&reply.content));
        let mut rec = AttemptRec::new(iteration, Call::new(&prompt, &reply));
        let code = extract_code(&reply.content);
        rec.code = code.clone();

        // What goes back to the coder, if anything.
        let feedback: String = 'attempt: {
            let Some(code) = code else {
                progress("  no code block in the answer");
                break 'attempt render("coder_no_code", &[]);
            };
            out.code = Some(code.clone());
            rec.policy = crate::policy::check(&code, &task.forbidden);
            if !rec.policy.is_empty() {
                progress(&format!(
                    "  rejected by the code policy: {}",
                    rec.policy[0].rule
                ));
                let list: Vec<String> = rec.policy.iter().map(|v| format!("- {v}")).collect();
                break 'attempt render("coder_policy", &[("violations", &list.join("\n"))]);
            }
            if let Err(e) = krate.write_code(&code) {
                out.status = Status::HarnessError;
                out.error = Some(format!("writing the stage: {e}"));
                break 'attempt String::new();
            }
            let build = krate.build();
            timing.build_s = Some(build.wall_s);
            let diagnostics = condense(&build, krate.path(), opts.diagnostics_budget);
            let errors: Vec<_> = build.errors().collect();
            rec.build = Some(BuildRecord {
                ok: build.ok,
                error_codes: errors.iter().filter_map(|d| d.code.clone()).collect(),
                errors: errors.len(),
                warnings: build
                    .diagnostics
                    .iter()
                    .filter(|d| d.level == "warning")
                    .count(),
                diagnostics: if build.ok {
                    String::new()
                } else {
                    diagnostics.clone()
                },
            });
            let binary = match (&build.binary, build.ok) {
                (Some(b), true) => b.clone(),
                _ => {
                    progress(&format!(
                        "  build failed ({} errors, {:.2} s)",
                        errors.len(),
                        build.wall_s
                    ));
                    break 'attempt render("coder_compile_error", &[("diagnostics", &diagnostics)]);
                }
            };
            let linked = std::fs::read(&binary)
                .map(|b| crate::policy::linked_symbols(&b, &task.forbidden_symbols))
                .unwrap_or_default();
            if !linked.is_empty() {
                rec.policy = linked
                    .iter()
                    .map(|p| crate::policy::Violation {
                        rule: format!("the compiled stage calls `{p}`, which this task forbids (write the stage yourself)"),
                        line: 0,
                    })
                    .collect();
                progress(&format!(
                    "  rejected: the binary links {}",
                    linked.join(", ")
                ));
                let list: Vec<String> =
                    rec.policy.iter().map(|v| format!("- {}", v.rule)).collect();
                break 'attempt render("coder_policy", &[("violations", &list.join("\n"))]);
            }
            progress(&format!(
                "  built in {:.2} s; running in the sandbox",
                build.wall_s
            ));

            let dir = match RunDir::new(&binary, &[("input.json", prepared.input.as_bytes())]) {
                Ok(d) => d,
                Err(e) => {
                    out.status = Status::HarnessError;
                    out.error = Some(format!("run directory: {e}"));
                    break 'attempt String::new();
                }
            };
            let output = dir.out().join("output.json");
            let report = sandbox::run(
                &dir,
                &[dir.input("input.json"), output.clone()],
                &opts.limits,
            );
            timing.run_s = Some(report.wall_s);
            rec.run = Some(RunRecord {
                class: report.class,
                exit: report.exit,
                stderr_tail: report.stderr_tail.clone(),
            });
            let (failure, report_text) = if report.class != RunClass::Ok {
                progress(&format!(
                    "  run: {:?} ({:.2} s)",
                    report.class, report.wall_s
                ));
                (
                    format!("its run ended with {:?}", report.class),
                    format!(
                        "Exit: {:?}\nstderr (end):\n{}",
                        report.exit,
                        report.stderr_tail.trim_end()
                    ),
                )
            } else {
                let text = sandbox::read_output(&output, opts.limits.max_file_bytes)
                    .unwrap_or_else(|e| format!("(unreadable output: {e})"));
                let v = validate(kind, &text, prepared.reference.as_ref(), &task.tolerances);
                rec.validation = Some(v.clone());
                out.validation = Some(v.clone());
                if v.passed {
                    out.status = if v.validated {
                        Status::Accepted
                    } else {
                        Status::NotValidated
                    };
                    progress(&format!(
                        "  run ok ({:.2} s); {}",
                        report.wall_s,
                        if v.validated {
                            "validation passed"
                        } else {
                            "sane, but NOT VALIDATED (no reference for this instruction)"
                        }
                    ));
                    break 'attempt String::new();
                }
                progress(&format!("  validation failed: {}", v.details()));
                let what = if v.validated {
                    "failed validation"
                } else {
                    "failed the sanity checks"
                };
                (format!("its output {what}"), v.hints())
            };

            // A run or validation failure: the supervisor decides.
            progress("supervisor: reviewing");
            let review_prompt = render(
                "supervisor_review",
                &[
                    ("iteration", &iteration.to_string()),
                    ("max_iterations", &opts.max_iterations.to_string()),
                    ("failure", &failure),
                    ("report", &report_text),
                    ("code", code.trim_end()),
                ],
            );
            let mut msgs = supervisor.clone();
            msgs.push(Message::user(&review_prompt));
            let review = match call(llm, &msgs, &mut tally) {
                Ok(r) => r,
                Err(e) => {
                    out.status = Status::LlmError;
                    out.error = Some(e.to_string());
                    break 'attempt String::new();
                }
            };
            let give_up = review
                .content
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| {
                    l.to_ascii_lowercase()
                        .replace(' ', "")
                        .contains("decision:give_up")
                });
            traj.push(rec.take())?;
            traj.push(Record::Review {
                iteration,
                call: Call::new(&review_prompt, &review),
                give_up,
            })?;
            if give_up {
                out.status = Status::GaveUp;
                break 'attempt String::new();
            }
            let guidance = review
                .content
                .lines()
                .filter(|l| !l.trim_start().starts_with("DECISION"))
                .collect::<Vec<_>>()
                .join("\n");
            render(
                "coder_guidance",
                &[
                    ("failure", &failure),
                    ("report", &report_text),
                    ("guidance", guidance.trim()),
                ],
            )
        };
        if let Some(r) = rec.take_if_pending() {
            traj.push(r)?;
        }
        out.timings.push(timing);
        if feedback.is_empty() {
            break;
        }
        coder.push(Message::user(feedback));
    }
    finish(&mut out, &tally, traj)?;
    Ok(out)
}

/// An attempt record being filled in; pushed once.
struct AttemptRec {
    iteration: u32,
    call: Option<Call>,
    code: Option<String>,
    policy: Vec<crate::policy::Violation>,
    build: Option<BuildRecord>,
    run: Option<RunRecord>,
    validation: Option<Validation>,
}

impl AttemptRec {
    fn new(iteration: u32, call: Call) -> Self {
        Self {
            iteration,
            call: Some(call),
            code: None,
            policy: vec![],
            build: None,
            run: None,
            validation: None,
        }
    }
    fn take(&mut self) -> Record {
        Record::Attempt {
            iteration: self.iteration,
            call: self.call.take().expect("an attempt is pushed once"),
            code: self.code.take(),
            policy: std::mem::take(&mut self.policy),
            build: self.build.take(),
            run: self.run.take(),
            validation: self.validation.take(),
        }
    }
    fn take_if_pending(&mut self) -> Option<Record> {
        self.call.is_some().then(|| self.take())
    }
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

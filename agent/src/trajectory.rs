//! The trajectory: one JSONL record per LLM call and attempt, secrets redacted, flushed per
//! line. Everything in it is determined by the model's answers (with their recorded latency
//! and usage) and the compiler, so replaying a cassette reproduces it byte for byte; the
//! build and run wall times, which differ run to run, are kept apart (see
//! [`crate::run::Outcome::timings`]).

use crate::outcome::RunClass;
use crate::policy::Violation;
use crate::validate::Validation;
use llm::{redact, Reply, Usage};
use sandbox::Exit;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// One LLM call: the newest prompt message, the answer and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The newest prompt message.
    pub prompt: String,
    /// The model's answer.
    pub answer: String,
    /// Tokens the endpoint reported; `None` when it reported none.
    pub usage: Option<Usage>,
    /// Seconds from the first request to the answer, retries and waits included.
    pub latency_s: f64,
    /// HTTP requests made (1 + retries).
    pub requests: u32,
    /// What the call cost, USD; `None` when the model has no price or usage was not reported.
    pub cost_usd: Option<f64>,
    /// Requests given up after they were sent (possibly billed; see `Reply::abandoned`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub abandoned: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Call {
    /// The record of `reply`, the answer to `prompt`.
    pub fn new(prompt: &str, reply: &Reply) -> Self {
        Self {
            prompt: prompt.to_string(),
            answer: reply.content.clone(),
            usage: reply.usage,
            latency_s: reply.latency_s,
            requests: reply.requests,
            abandoned: reply.abandoned,
            cost_usd: reply.cost_usd,
        }
    }
}

/// The build of one attempt, as the model saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// Whether the build succeeded.
    pub ok: bool,
    /// Error codes (E0308, ...) in order.
    pub error_codes: Vec<String>,
    /// Number of compiler errors.
    pub errors: usize,
    /// Number of compiler warnings.
    pub warnings: usize,
    /// The condensed diagnostics given to the model.
    pub diagnostics: String,
}

/// The sandboxed run of one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// From what the kernel reported.
    pub class: RunClass,
    /// Exit code or signal; `None` when the process never started or could not be waited for.
    pub exit: Option<Exit>,
    /// What the stage's stderr says happened (its own words).
    pub claim: Option<RunClass>,
    /// The last 8 KiB of the stage's stderr.
    pub stderr_tail: String,
}

/// A stage's run on a held-out input ([`crate::task::Prepared::held_out`]): how it ended and,
/// when it ran, its validation. For the user; the model learns only the failed checks' names
/// or the run's class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOutRecord {
    /// How the run ended, named from what the kernel reported.
    pub class: RunClass,
    /// The validation of its output; `None` when it did not run cleanly.
    pub validation: Option<Validation>,
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Compiled, ran, and passed validation against the reference.
    Accepted,
    /// Compiled, ran and passed the sanity checks; no reference covers the instruction.
    NotValidated,
    /// The supervisor gave up.
    GaveUp,
    /// The iteration cap was reached.
    IterationCap,
    /// The model could not be reached (after retries).
    LlmError,
    /// The harness itself failed (disk, permissions): not the model's doing.
    HarnessError,
    /// The cell's budget (tokens or USD) was spent before the task was done.
    Budget,
}

/// The layout version of trajectories (2: the field itself appears, in the start record).
pub const TRAJECTORY_FORMAT: u32 = 2;

fn version_1() -> u32 {
    1
}

/// One line of the trajectory.
// A few records per attempt, each written once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first line: the task, the models and the run's settings.
    Start {
        /// [`TRAJECTORY_FORMAT`] (trajectories without one are version 1).
        #[serde(default = "version_1")]
        format_version: u32,
        /// The task's name.
        task: String,
        /// The stage kind's name.
        stage: String,
        /// The coder's model.
        model: String,
        /// The coder's endpoint URL, without any query string.
        endpoint: String,
        /// The supervisor's model when it is not the coder's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supervisor: Option<String>,
        /// Which repetition of the task this is.
        trial: u32,
        /// The cap on coder attempts.
        max_iterations: u32,
        /// Whether a reference output exists for what was asked.
        validated: bool,
        /// The instruction the supervisor planned from (the task's with its draw, or the user's).
        instruction: String,
    },
    /// The supervisor turns the instruction into the coder's task.
    Plan {
        /// The supervisor's call.
        call: Call,
    },
    /// One coder answer and what became of it.
    Attempt {
        /// The attempt's number, from 1.
        iteration: u32,
        /// The coder's call.
        call: Call,
        /// The code taken from the answer; `None` when it had no code block.
        code: Option<String>,
        /// The code screen's violations, or the compile-time reads the build refused.
        policy: Vec<Violation>,
        /// The build; `None` when the code never reached it.
        build: Option<BuildRecord>,
        /// The run on the visible input; `None` when there was none.
        run: Option<RunRecord>,
        /// The validation of the visible run's output; `None` when it did not run cleanly.
        validation: Option<Validation>,
        /// The run on the held-out input, after the visible input passed (absent in
        /// trajectories written before held-out inputs existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held_out: Option<HeldOutRecord>,
    },
    /// The supervisor reads a failed run or validation.
    Review {
        /// The number of the attempt reviewed.
        iteration: u32,
        /// The supervisor's call.
        call: Call,
        /// Whether the supervisor gave up.
        give_up: bool,
    },
    /// The last line: how the task ended and what its model calls spent.
    Outcome {
        /// How the task ended.
        status: Status,
        /// Attempts made.
        iterations: u32,
        /// Model calls answered, coder's and supervisor's together.
        api_calls: u32,
        /// HTTP requests made for those calls, retries included.
        http_requests: u32,
        /// HTTP requests given up after they were sent: the provider may have billed them,
        /// and their tokens are in no usage.
        #[serde(default, skip_serializing_if = "is_zero")]
        abandoned_requests: u32,
        /// Tokens of all calls together.
        usage: Usage,
        /// USD spent by all calls; `None` when no call had a price.
        cost_usd: Option<f64>,
        /// Seconds spent waiting for the models, all calls together.
        llm_latency_s: f64,
        /// Why the task ended in an error (a model call or the harness), when it did.
        error: Option<String>,
    },
}

/// A trajectory file being written.
pub struct Trajectory {
    file: Option<std::fs::File>,
    secrets: Vec<String>,
    /// Every record pushed so far (not redacted: only the file is).
    pub records: Vec<Record>,
}

impl Trajectory {
    /// Writes to `path` (truncated), or only keeps the records in memory when `None`.
    pub fn create(path: Option<&Path>, secrets: Vec<String>) -> std::io::Result<Self> {
        let file = path.map(std::fs::File::create).transpose()?;
        Ok(Self {
            file,
            secrets,
            records: Vec::new(),
        })
    }

    /// Appends `r` to `records` and, with a file, writes it as one line (secrets redacted).
    pub fn push(&mut self, r: Record) -> std::io::Result<()> {
        if let Some(f) = &mut self.file {
            let line = redact(
                &serde_json::to_string(&r).expect("records serialise"),
                &self.secrets,
            );
            writeln!(f, "{line}")?;
            f.flush()?;
        }
        self.records.push(r);
        Ok(())
    }
}

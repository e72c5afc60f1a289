//! `cargo xtask agent --task select --model NAME [--endpoint URL]`: one task end to end — the
//! supervisor plans, the coder writes `src/stage.rs`, cargo compiles it, the sandbox runs it,
//! the reference validates it — streaming each step, then printing the outcome. Writes
//! `trajectory.jsonl`, `attempts/N.rs` and `attempts/N.txt` (each attempt's code and its
//! verdict), `stage.rs` (only when accepted), `timings.json` and `outcome.json` into `--out`.

use agent::run::{run_task, Budget, Options};
use agent::stage_crate::Toolchain;
use agent::task::Task;
use agent::trajectory::{Status, Trajectory};
use anyhow::bail;
use llm::cassette::{Recorder, Replayer};
use llm::http::HttpLlm;
use llm::{Llm, LlmConfig};
use sandbox::{Isolation, Limits, Weak};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Task: inspect, convert, preprocess, select, histogram, fit, separate, categorize (templates/tasks/NAME.toml), or a path to a task file.
    #[arg(long)]
    task: String,
    /// Model name as the endpoint knows it.
    #[arg(long)]
    model: String,
    /// OpenAI-compatible base URL, including /v1 (OpenAI, Gemini/Anthropic compatibility
    /// endpoints, vLLM, Ollama http://localhost:11434/v1, llama.cpp server).
    #[arg(long, default_value = "https://api.openai.com/v1")]
    endpoint: String,
    /// Environment variable holding the API key. When it is unset and the endpoint is on
    /// this machine (localhost/127.0.0.1), no key is sent.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Your own instruction instead of the task's: compiled, run on the task's input and
    /// sanity-checked, but reported as NOT VALIDATED (no reference covers it).
    #[arg(long)]
    instruction: Option<String>,
    #[arg(long, default_value_t = 5)]
    max_iterations: u32,
    /// Stop once the models (coder and supervisor) have spent this many USD (models with a
    /// --price)...
    #[arg(long, default_value_t = 2.0)]
    budget_usd: f64,
    /// ...or this many tokens (prompt + completion).
    #[arg(long, default_value_t = 2_000_000)]
    budget_tokens: u64,
    /// Repetition number of this task (part of the cassette key).
    #[arg(long, default_value_t = 0)]
    trial: u32,
    /// Sampling temperature (0, as in the paper: outputs still vary between runs).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling (endpoint default when not given).
    #[arg(long)]
    top_p: Option<f32>,
    /// Sampling seed, for endpoints that honour it (vLLM, Ollama, llama.cpp).
    #[arg(long)]
    seed: Option<i64>,
    /// Largest answer, tokens (sent as max_completion_tokens).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Idle timeout, seconds: the longest the server may stay silent (answers are streamed,
    /// so a long answer is not cut; a server that does not stream must answer within it). A
    /// request given up after it was sent is retried and reported: it may have been billed.
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
    /// Retries on 429/5xx/timeouts/connection errors.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// USD per million prompt and completion tokens, for the cost column: `--price 2.5,10`.
    #[arg(long, value_parser = parse_price)]
    price: Option<(f64, f64)>,
    /// Record every call to this cassette (JSONL, appended).
    #[arg(long, conflicts_with = "replay")]
    record: Option<PathBuf>,
    /// Answer every call from this cassette: no network. Give the same --model, --endpoint,
    /// sampling options and --trial as when it was recorded (they are part of each call's key).
    #[arg(long)]
    replay: Option<PathBuf>,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Output directory (default: agent-runs/TASK-MODEL-TRIAL).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_price(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or("expected PROMPT,COMPLETION (USD per million tokens)")?;
    let p = |x: &str| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}"));
    Ok((p(a)?, p(b)?))
}

/// The sandbox options of the commands that run model-written code.
#[derive(clap::Args)]
pub struct SandboxArgs {
    /// Sandbox wall-clock limit per run, seconds.
    #[arg(long, default_value_t = 60.0)]
    wall: f64,
    /// Sandbox memory limit per run, MiB.
    #[arg(long, default_value_t = 2048)]
    memory_mb: u64,
    /// Run model-written code even where this machine lacks Landlock or seccomp (the sandbox
    /// then cannot keep the code from your files or the network).
    #[arg(long)]
    allow_weak_sandbox: bool,
}

impl SandboxArgs {
    /// The limits of each sandboxed run.
    pub fn limits(&self) -> Limits {
        Limits {
            wall_s: self.wall,
            memory_bytes: self.memory_mb << 20,
            weak: self.weak(),
            ..Limits::default()
        }
    }
    /// Whether the sandbox may run where its isolation is weak.
    fn weak(&self) -> Weak {
        if self.allow_weak_sandbox {
            Weak::Allow
        } else {
            Weak::Refuse
        }
    }
    /// The stage toolchain, its builds allowed a weak sandbox as the runs are.
    pub fn toolchain(&self) -> Toolchain {
        let mut t = Toolchain::default();
        t.weak = self.weak();
        t
    }
    /// This machine's sandbox, or the sandbox's refusal where it is weak (said before any
    /// request is made; the sandbox itself refuses whoever calls it).
    pub fn require(&self) -> anyhow::Result<&'static Isolation> {
        Ok(sandbox::require(self.weak())?)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = Task::load(&args.task).map_err(anyhow::Error::msg)?;
    let mut config = LlmConfig::new(&args.endpoint, &args.model);
    config.api_key_env = Some(args.api_key_env.clone());
    if std::env::var_os(&args.api_key_env).is_none()
        && (bench::models::is_local(&args.endpoint) || args.replay.is_some())
    {
        config.api_key_env = None;
    }
    config.temperature = Some(args.temperature);
    config.top_p = args.top_p;
    config.seed = args.seed;
    config.max_tokens = args.max_tokens;
    config.timeout_s = args.timeout;
    config.max_retries = args.retries;
    config.price_per_mtok = args.price;

    let mut llm: Box<dyn Llm> = match (&args.replay, &args.record) {
        (Some(cassette), _) => Box::new(Replayer::open(cassette, config)?),
        (None, Some(cassette)) => {
            let http = HttpLlm::new(config)?;
            let secrets = http.secrets();
            Box::new(Recorder::new(http, cassette, secrets)?)
        }
        (None, None) => Box::new(HttpLlm::new(config)?),
    };
    let safe_model: String = args
        .model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "agent-runs/{}-{safe_model}-{}",
            task.name, args.trial
        ))
    });
    // One run per output directory: two would write one trajectory.
    let _lock = dirlock::DirLock::acquire(&out)?;
    // An earlier run's verdict and code must not outlive this one (a run that stops with an
    // error writes neither): `analyze --stage` trusts outcome.json.
    for f in ["outcome.json", "stage.rs", "output.json"] {
        let _ = std::fs::remove_file(out.join(f));
    }
    if out.join("attempts").is_dir() {
        std::fs::remove_dir_all(out.join("attempts"))?;
    }
    let secrets: Vec<String> = std::env::var(&args.api_key_env).ok().into_iter().collect();
    let mut traj = Trajectory::create(Some(&out.join("trajectory.jsonl")), secrets)?;

    let iso = args.sandbox.require()?;
    eprintln!(
        "sandbox (build and run): namespaces {}, landlock {}, network blocked by {}, control \
         groups {} (CPU quota {}){}",
        if iso.namespaces { "yes" } else { "NO" },
        iso.landlock_abi
            .map_or("NO".to_string(), |v| format!("ABI {v}")),
        iso.network(),
        iso.cgroups.as_deref().unwrap_or("NO"),
        if iso.cpu_quota { "yes" } else { "NO" },
        iso.run_as_uid
            .map_or(String::new(), |_| ", a uid of its own per run".to_string()),
    );
    eprintln!(
        "task {} ({} stage) with {} at {}{}",
        task.name,
        task.stage.name(),
        args.model,
        args.endpoint,
        if args.replay.is_some() {
            " (replay)"
        } else {
            ""
        }
    );
    let opts = Options {
        max_iterations: args.max_iterations,
        trial: args.trial,
        limits: args.sandbox.limits(),
        budget: Budget {
            usd: Some(args.budget_usd),
            tokens: Some(args.budget_tokens),
        },
        instruction: args.instruction.clone(),
        ..Options::default()
    };
    let toolchain = args.sandbox.toolchain();
    // A spinner while the stage toolchain is prepared (tens of seconds the first time).
    let mut spinner: Option<indicatif::ProgressBar> = None;
    let mut progress = |line: &str| {
        if let Some(s) = spinner.take() {
            s.finish_and_clear();
        }
        if line.starts_with("preparing") {
            let s = indicatif::ProgressBar::new_spinner().with_message(format!(
                "{line} (the first time on a machine this compiles the analysis crate: minutes)"
            ));
            s.enable_steady_tick(std::time::Duration::from_millis(120));
            spinner = Some(s);
        } else {
            eprintln!("{line}");
        }
    };
    let outcome = run_task(
        &task,
        llm.as_mut(),
        None,
        &toolchain,
        &opts,
        &mut traj,
        &mut progress,
    )?;

    bench::cell::save_code(&out, &traj.records, outcome.status)?;
    // The stage's own output (e.g. the selected masses), when a run passed.
    if let Some(doc) = &outcome.output {
        std::fs::write(out.join("output.json"), doc)?;
    }
    std::fs::write(
        out.join("timings.json"),
        serde_json::to_string_pretty(&outcome.timings)?,
    )?;
    let summary = serde_json::json!({
        "task": task.name,
        "model": args.model,
        "status": outcome.status,
        "iterations": outcome.iterations,
        "api_calls": outcome.api_calls,
        "prompt_tokens": outcome.usage.prompt_tokens,
        "completion_tokens": outcome.usage.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "error": outcome.error,
        "stage_api_version": analysis::stage::STAGE_API_VERSION,
        "format_version": agent::stage_run::OUTCOME_FORMAT,
    });
    std::fs::write(
        out.join("outcome.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;

    let verdict = match outcome.status {
        Status::Accepted => "ACCEPTED: compiled, ran in the sandbox, matches the reference",
        Status::NotValidated => {
            "RAN, NOT VALIDATED: compiled, ran and sane; no reference covers this instruction"
        }
        Status::GaveUp => "GAVE UP: the supervisor stopped",
        Status::IterationCap => "FAILED: iteration cap reached",
        Status::LlmError => "FAILED: the model could not be reached",
        Status::HarnessError => "FAILED: the harness failed (see the error)",
        Status::Budget => "FAILED: the budget was spent",
    };
    println!("{verdict}");
    println!(
        "iterations {}, API calls {}, tokens {} prompt + {} completion, cost {}",
        outcome.iterations,
        outcome.api_calls,
        outcome.usage.prompt_tokens,
        outcome.usage.completion_tokens,
        outcome
            .cost_usd
            .map_or("unknown (no --price)".to_string(), |c| format!("${c:.4}")),
    );
    if let Some(e) = &outcome.error {
        println!("error: {e}");
    }
    println!("trajectory: {}", out.join("trajectory.jsonl").display());
    match outcome.status {
        Status::Accepted | Status::NotValidated => Ok(()),
        _ => bail!("task {} not solved ({:?})", task.name, outcome.status),
    }
}

//! `cargo xtask bench-agents --models FILE`: the benchmark — every model of the file on every
//! task, several trials each — scored, resumable, re-scorable and replayable. The work is
//! `bench`; this file is the command line, the checks before any cell starts, and the
//! progress display.

use agent::run::Budget;
use agent::stage_crate::Toolchain;
use agent::task::{Task, BUILT_IN};
use anyhow::{anyhow, bail, Context};
use bench::models::ModelsFile;
use bench::{self, report, Config, Dir, Event, RunOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The models file (TOML, `[[model]]` entries; see templates/bench/models.example.toml).
    #[arg(long, required_unless_present_any = ["rescore", "replay"])]
    models: Option<PathBuf>,
    /// Tasks, comma-separated: built-in names (inspect, convert, preprocess, select, histogram, fit, separate, categorize) or task files.
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Trials per (model, task).
    #[arg(long, default_value_t = 3)]
    trials: u32,
    /// Output directory (default bench-runs/UTC-TIMESTAMP).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cells run at once (builds and sandbox runs are bounded by the cores anyway).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Stop starting cells once the spent cost plus the budgets of the cells in flight
    /// would pass this many USD (needs a price for every model).
    #[arg(long)]
    max_cost: Option<f64>,
    /// Coder attempts per cell.
    #[arg(long, default_value_t = 5)]
    max_iterations: u32,
    /// A cell ends as `budget` once it has spent this many USD (models with a price)...
    #[arg(long, default_value_t = 2.0)]
    cell_budget_usd: f64,
    /// ...or this many tokens (prompt + completion).
    #[arg(long, default_value_t = 2_000_000)]
    cell_budget_tokens: u64,
    /// Seed of the tasks' parameter draws (variants against memorisation).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue the benchmark in --out: run only the cells without a result (and add any new
    /// models, tasks or trials).
    #[arg(long)]
    resume: bool,
    /// Recompute report.json, report.md, cells.csv and the plots of the benchmark in DIR from
    /// its saved cells (no model call, no build); into --out if given, else DIR.
    #[arg(long, conflicts_with_all = ["replay", "resume", "models"])]
    rescore: Option<PathBuf>,
    /// Re-run the benchmark in DIR from its cassettes (no network) into --out, and check that
    /// every cell comes out the same. Every live cell records its cassette, so any benchmark
    /// can be replayed.
    #[arg(long, conflicts_with = "models")]
    replay: Option<PathBuf>,
    #[command(flatten)]
    sandbox: crate::agent::SandboxArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(from) = &args.rescore {
        return rescore(from, args.out.as_deref());
    }
    // Everything checked before anything is written.
    let config = match &args.replay {
        Some(from) => Dir { root: from.clone() }
            .load_config()
            .map_err(|e| anyhow!("--replay: {e}"))?,
        None => new_config(&args)?,
    };
    if let Some(m) = args.max_cost {
        if !(m.is_finite() && m > 0.0) {
            bail!("--max-cost must be a positive number of USD");
        }
    }
    args.sandbox.require()?;
    if args.replay.is_none() {
        for m in &config.models {
            eprintln!("checking {} ({} at {})", m.name, m.model, m.endpoint);
            bench::preflight(m).map_err(anyhow::Error::msg)?;
        }
    }

    let out = args.out.clone().unwrap_or_else(default_out);
    if let Some(from) = &args.replay {
        if same_dir(from, &out) {
            bail!("--replay needs an --out other than the benchmark it replays");
        }
    }
    let dir = Dir { root: out.clone() };
    let exists = dir.config().exists();
    if exists && !args.resume {
        bail!(
            "{} already holds a benchmark: add --resume to continue it (or to add models, \
             tasks or trials), or choose another --out",
            out.display()
        );
    }
    let _lock = dirlock::DirLock::acquire(&out)?;
    let config = if exists {
        dir.load_config()
            .map_err(anyhow::Error::msg)?
            .merge(config)
            .map_err(anyhow::Error::msg)?
    } else {
        config
    };
    dir.save_config(&config)
        .with_context(|| dir.config().display().to_string())?;

    let opts = RunOptions {
        concurrency: args.concurrency,
        max_cost: args.max_cost,
        limits: args.sandbox.limits(),
        replay_from: args.replay.clone(),
    };
    let bar = indicatif::ProgressBar::hidden();
    let on_event = |e: Event| match e {
        Event::Preparing => eprintln!(
            "preparing the stage toolchain (the first time on a machine this compiles the \
             contract crate: a minute or two)"
        ),
        Event::Planned { todo, total } => {
            eprintln!(
                "{} models × {} tasks × {} trials = {total} cells; {todo} to run, {} at once, \
                 into {}",
                config.models.len(),
                config.tasks.len(),
                config.trials,
                args.concurrency,
                out.display()
            );
            bar.set_length(todo as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{elapsed_precise}] {bar:30} {pos}/{len} cells, ETA {eta} {msg}",
                )
                .expect("a valid template"),
            );
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_message("$0.0000");
        }
        Event::Finished {
            cell, spent_usd, ..
        } => {
            let outcome = cell
                .category
                .as_ref()
                .map_or("success".to_string(), |c| c.label());
            bar.println(format!(
                "{} {} trial {}: {outcome} ({} attempts, {} API calls, {})",
                cell.model,
                cell.task,
                cell.trial,
                cell.iterations,
                cell.api_calls,
                cell.cost_usd
                    .map_or("cost unknown".to_string(), |c| format!("${c:.4}"))
            ));
            bar.set_message(format!("${spent_usd:.4} spent"));
            bar.inc(1);
        }
        Event::Stopped { skipped } => bar.println(format!(
            "--max-cost reached: {skipped} cells not started (the report says how much ran)"
        )),
    };
    let toolchain = args.sandbox.toolchain();
    let summary = bench::run(&config, &dir, &toolchain, &opts, &on_event);
    bar.finish_and_clear();
    let summary = summary.map_err(anyhow::Error::msg)?;
    let report = bench::write_report(&dir, &out).map_err(anyhow::Error::msg)?;
    print_summary(&report);
    println!(
        "{} cells ran now; {} of {} in the matrix have a result{}.\nreport: {}",
        summary.ran,
        report.matrix.finished,
        summary.total,
        if summary.skipped_by_cost > 0 {
            format!(" ({} not started: --max-cost)", summary.skipped_by_cost)
        } else {
            String::new()
        },
        out.join("report.md").display()
    );

    if let Some(from) = &args.replay {
        let old = Dir { root: from.clone() };
        let before = old.final_cells(&config).map_err(anyhow::Error::msg)?;
        let after = dir.final_cells(&config).map_err(anyhow::Error::msg)?;
        let differ: Vec<String> = before
            .iter()
            .filter(|b| {
                !after.iter().any(|a| {
                    (&a.model, &a.task, a.trial) == (&b.model, &b.task, b.trial)
                        && a.deterministic() == b.deterministic()
                })
            })
            .map(|b| format!("{} {} trial {}", b.model, b.task, b.trial))
            .collect();
        println!(
            "replay: {} of {} cells reproduced",
            before.len() - differ.len(),
            before.len()
        );
        if !differ.is_empty() {
            bail!("replay differs in: {}", differ.join(", "));
        }
    }
    Ok(())
}

fn new_config(args: &Args) -> anyhow::Result<Config> {
    let path = args.models.as_ref().expect("clap requires --models here");
    let models = ModelsFile::load(path, true).map_err(anyhow::Error::msg)?;
    let names: Vec<String> = if args.tasks.is_empty() {
        BUILT_IN.iter().map(|(n, _)| n.to_string()).collect()
    } else {
        args.tasks.clone()
    };
    let mut tasks: Vec<Task> = Vec::new();
    for n in &names {
        let t = Task::load(n).map_err(anyhow::Error::msg)?;
        if tasks.iter().any(|o| o.name == t.name) {
            bail!("task '{}' is given twice", t.name);
        }
        tasks.push(t);
    }
    if args.trials == 0 {
        bail!("--trials must be at least 1");
    }
    Ok(Config {
        format_version: bench::FORMAT_VERSION,
        models: models.models,
        tasks,
        trials: args.trials,
        seed: args.seed,
        max_iterations: args.max_iterations,
        budget: Budget {
            usd: Some(args.cell_budget_usd),
            tokens: Some(args.cell_budget_tokens),
        },
        code_versions: vec![bench::code_version(&Toolchain::default().repo)],
    })
}

fn rescore(from: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let out = out.unwrap_or(from);
    // A benchmark is there before anything is locked or written.
    Dir { root: from.into() }
        .load_config()
        .map_err(|e| anyhow!("--rescore: {e}"))?;
    // Not while a run writes there.
    let _lock = dirlock::DirLock::acquire(out)?;
    let _source_lock = if same_dir(from, out) {
        None
    } else {
        Some(dirlock::DirLock::acquire(from)?)
    };
    let report =
        bench::write_report(&Dir { root: from.into() }, out).map_err(anyhow::Error::msg)?;
    print_summary(&report);
    println!("rescored: {}", out.join("report.json").display());
    Ok(())
}

fn print_summary(r: &report::Report) {
    for (m, s) in &r.models {
        println!(
            "{m}: {}/{} succeeded ({}), 95 % [{:.2}, {:.2}], {} API calls/cell, {}",
            s.successes,
            s.trials,
            s.success_rate
                .map_or("–".into(), |x| format!("{:.0} %", 100.0 * x)),
            s.wilson95[0],
            s.wilson95[1],
            s.mean_api_calls.map_or("–".into(), |x| format!("{x:.2}")),
            s.cost_usd
                .map_or("cost unknown".into(), |c| format!("${c:.4}"))
        );
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `bench-runs/YYYYMMDD-HHMMSS` (UTC).
fn default_out() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    PathBuf::from(format!(
        "bench-runs/{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

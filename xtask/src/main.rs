//! `cargo xtask <command>`: the project's commands. One module per command; this file is the
//! list and the dispatch. `main` decides exit codes: any error prints `error: ...` and exits 1.

mod agent;
mod analyze;
mod bench;
mod bench_agents;
mod bench_compile;
mod bench_reprocess;
mod bench_train;
mod convert;
mod fetch;
mod fit_toys;
mod generate;
mod inputs;
mod inspect;
mod progress;
mod slurm;
mod stage;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "ATLAS Open Data H→γγ analysis: project commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole H→γγ analysis (default: on the SYNTHETIC default dataset) into results/.
    Analyze(analyze::Args),
    /// Show the trees, entries, branches (types, compression, sizes) of ROOT files.
    Inspect(inspect::Args),
    /// Write an ntuple's branches as .npy files plus a manifest.
    Convert(convert::Args),
    /// Validate the fit with toys: pulls of every parameter.
    FitToys(fit_toys::Args),
    /// Write the SYNTHETIC default dataset (2020 layout) into data/generated/.
    Generate(generate::Args),
    /// Download the real 2020 ATLAS Open Data GamGam files, with resume and checks.
    FetchData(fetch::Args),
    /// Run one reference stage as its own process: JSON in, JSON out.
    Stage(stage::Args),
    /// Benchmark: events/s reading the photon branches, next to uproot+awkward.
    BenchRead(bench::Args),
    /// Let an LLM write one analysis stage: compiled, sandboxed, validated against the reference.
    Agent(agent::Args),
    /// Benchmark: latency of the agent's compile loop (confined rustc check / build of a stage).
    BenchCompile(bench_compile::Args),
    /// Benchmark: reprocessing 1 and N files at 1..T threads — events/s, peak RSS, next to
    /// the inflate-only limit.
    BenchReprocess(bench_reprocess::Args),
    /// Benchmark LLMs: models × tasks × trials → success rates with intervals, error
    /// taxonomy, cost, API calls; resumable, re-scorable, replayable.
    BenchAgents(bench_agents::Args),
    /// Benchmark: the step-4 classifier trained and scored by ours and by LightGBM on the same
    /// sample, beside pT_γγ/m alone — held-out AUC and time.
    BenchTrain(bench_train::Args),
}

fn main() {
    // Output piped into `head` ends the way any Unix tool's does: quietly, by SIGPIPE. (Rust
    // ignores SIGPIPE by default, so `println!` would panic on the closed pipe.) `analyze`
    // commits its outputs by renames, so a run ended this way leaves nothing half-written.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Convert(a) => convert::run(a),
        Command::FitToys(a) => fit_toys::run(a),
        Command::Generate(a) => generate::run(a),
        Command::FetchData(a) => fetch::run(a),
        Command::Stage(a) => stage::run(a),
        Command::BenchRead(a) => bench::run(a),
        Command::Agent(a) => agent::run(a),
        Command::BenchCompile(a) => bench_compile::run(a),
        Command::BenchAgents(a) => bench_agents::run(a),
        Command::BenchReprocess(a) => bench_reprocess::run(a),
        Command::BenchTrain(a) => bench_train::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

//! `cargo xtask generate`: write the SYNTHETIC default dataset.

use dataset::synth::Config;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (default: data/generated/, where `analyze` looks for it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Events in the data file (after the ≥ 2 photon skim).
    #[arg(long, default_value_t = Config::default().data_events)]
    data_events: usize,
    /// Events in the signal MC file.
    #[arg(long, default_value_t = Config::default().mc_events)]
    mc_events: usize,
    /// Events in the background-only continuum file (0: none), the spurious-signal test's
    /// template.
    #[arg(long, default_value_t = Config::default().continuum_events)]
    continuum_events: usize,
    /// Random seed: the same seed writes the same events (and bytes, at the same path).
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = args.out.unwrap_or_else(dataset::generated_dir);
    let cfg = Config {
        seed: args.seed,
        data_events: args.data_events,
        mc_events: args.mc_events,
        continuum_events: args.continuum_events,
        ..Config::default()
    };
    let t0 = std::time::Instant::now();
    let ds = dataset::ensure_default(&dir, &cfg, || {
        eprintln!(
            "generating the SYNTHETIC default dataset in {} ...",
            dir.display()
        )
    })?;
    println!(
        "SYNTHETIC dataset (not real ATLAS data), seed {}:\n  data: {} ({} events, {} generated H→γγ inside)\n  mc:   {} ({} events)",
        ds.seed,
        ds.data.display(),
        ds.written.data_events,
        ds.written.data_signal_generated,
        ds.mc.display(),
        ds.written.mc_events,
    );
    if let Some(c) = &ds.continuum {
        println!(
            "  continuum: {} ({} background-only events, the spurious-signal test's template)",
            c.display(),
            ds.written.continuum_events
        );
    }
    println!("  ({:.1} s)", t0.elapsed().as_secs_f64());
    Ok(())
}

//! `cargo xtask fit-toys`: validate the fit with toys generated from the fitted model: the pulls
//! (θ̂ − θ_true)/σ̂ of every parameter should have mean 0 and width 1. Prints them, with the
//! failed toys counted by reason, and plots each parameter's pulls into `--out`.

use analysis::fit::{toys, Background, FitModel, Signal, NBKG, NSIG};
use analysis::stage::{Fit, MakeHistogram, Reference};
use analysis::workflow::{AnalysisConfig, Inputs};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Data files whose fit gives the truth (default: the SYNTHETIC default dataset).
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Number of toys.
    #[arg(long, default_value_t = 1000)]
    toys: usize,
    /// Seed of toy 0 (toy i uses seed + i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Signal shape: gaussian or dscb.
    #[arg(long, default_value = "gaussian")]
    signal: Signal,
    /// Background shape: exp or bernstein:N.
    #[arg(long, default_value = "exp")]
    background: Background,
    /// Multiply the fitted yields by this factor for the truth (more events: pulls approach
    /// their asymptotic mean 0 and width 1).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Folder for the pull plots: `pull_PARAM.png` and `.svg`, a histogram of each parameter's
    /// pulls with the unit Gaussian.
    #[arg(long, default_value = "fit-toys")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = if args.data.is_empty() {
        vec![
            dataset::ensure_default(&dataset::generated_dir(), &Default::default(), || {
                eprintln!("generating the SYNTHETIC default dataset (first run only) ...")
            })?
            .data,
        ]
    } else {
        args.data
    };
    let cfg = AnalysisConfig {
        model: FitModel {
            signal: args.signal,
            background: args.background,
            ..FitModel::default()
        },
        ..AnalysisConfig::default()
    };
    let inputs = Inputs {
        data,
        ..Default::default()
    };
    // The analysis runs as it always does, as rules, here into a folder of its own.
    let work = tempfile::tempdir()?;
    let r = analysis::rules::run(&inputs, &cfg, work.path())?;
    let h = Reference.histogram(&Default::default(), &cfg.binning)?; // empty template, same binning
    let fit = Reference.fit(&cfg.model, &r.histogram)?;
    let t0 = std::time::Instant::now();
    let mut truth = fit.values();
    truth[NSIG] *= args.scale;
    truth[NBKG] *= args.scale;
    let report = toys::run(&cfg.model, &h, &truth, args.toys, args.seed);
    let why: Vec<String> = report
        .failures
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    println!(
        "{} toys from the fit to {} selected events × {} ({} + {}), {} failed{}, {:.1} s",
        report.toys,
        r.histogram.integral(),
        args.scale,
        cfg.model.signal,
        cfg.model.background,
        report.failed,
        match why.is_empty() {
            true => String::new(),
            false => format!(" ({})", why.join(", ")),
        },
        t0.elapsed().as_secs_f64()
    );
    println!("| parameter | truth | pull mean | pull width |");
    println!("|---|---:|---:|---:|");
    for p in &report.pulls {
        println!(
            "| {} | {:.5} | {:+.3} ± {:.3} | {:.3} ± {:.3} |",
            p.param, p.truth, p.mean, p.mean_error, p.width, p.width_error
        );
    }
    std::fs::create_dir_all(&args.out)?;
    let exp = analysis::plot::Experiment::of(&r);
    for p in &report.pulls {
        analysis::plot::pull_plot(p, &exp, &args.out.join(format!("pull_{}", p.param)))
            .map_err(|e| anyhow::anyhow!("pull plot of {}: {e}", p.param))?;
    }
    println!(
        "wrote the pull plots to {}/pull_PARAM.png|svg",
        args.out.display()
    );
    Ok(())
}

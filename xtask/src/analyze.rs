//! `cargo xtask analyze`: the whole chain (select → histogram → fit → measure → plots) on the
//! default SYNTHETIC dataset, or on the files given.

use analysis::fit::{Background, FitModel, FitStatus, Signal};
use analysis::histogram::Binning;
use analysis::stage::Reference;
use analysis::workflow::{self, AnalysisConfig, AnalysisResult, Inputs};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Data files or globs (release auto-detected). Default: the SYNTHETIC default dataset,
    /// generated into data/generated/ on first use.
    #[arg(long, num_args = 1..)]
    data: Vec<String>,
    /// Signal MC files or globs, for ε×A, σ×B and μ. Default: the default dataset's MC when
    /// --data is not given; none otherwise.
    #[arg(long, num_args = 1..)]
    mc: Vec<String>,
    /// Output folder for results.json and the plots.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Signal shape: gaussian or dscb.
    #[arg(long, default_value = "gaussian")]
    signal: Signal,
    /// Background shape: exp or bernstein:N (N = 1..8).
    #[arg(long, default_value = "exp")]
    background: Background,
    /// Number of m_γγ bins on 105–160 GeV.
    #[arg(long, default_value_t = 55)]
    bins: usize,
    /// Integrated luminosity of the data, pb⁻¹ (for MC weights and σ×B).
    #[arg(long, default_value_t = 10064.0)]
    lumi: f64,
    /// Worker threads (default: all cores). The result does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

/// Expands globs; a pattern that matches nothing is an error naming it.
fn expand(patterns: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in patterns {
        if !p.contains(['*', '?', '[']) {
            out.push(PathBuf::from(p));
            continue;
        }
        let matches: Vec<PathBuf> = glob::glob(p)
            .with_context(|| format!("bad glob pattern '{p}'"))?
            .filter_map(Result::ok)
            .collect();
        if matches.is_empty() {
            bail!("no file matches '{p}'");
        }
        out.extend(matches);
    }
    Ok(out)
}

/// Crate version and git commit of the code that runs.
fn code_version() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the repo");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    format!(
        "{} {commit}{}",
        env!("CARGO_PKG_VERSION"),
        if dirty { " (modified)" } else { "" }
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // One run per output directory (a crashed run's lock goes with it).
    let _lock = dirlock::DirLock::acquire(&args.out)?;
    let mut inputs = Inputs {
        data: expand(&args.data)?,
        mc: expand(&args.mc)?,
    };
    if inputs.data.is_empty() {
        let ds = dataset::ensure_default(&dataset::generated_dir(), &Default::default(), || {
            eprintln!("generating the SYNTHETIC default dataset (first run only) ...")
        })?;
        inputs.data.push(ds.data);
        if inputs.mc.is_empty() {
            inputs.mc.push(ds.mc);
        }
    }
    let mut cfg = AnalysisConfig {
        model: FitModel {
            signal: args.signal,
            background: args.background,
            ..FitModel::default()
        },
        binning: Binning {
            bins: args.bins,
            ..Binning::default()
        },
        ..AnalysisConfig::default()
    };
    cfg.cuts.lumi_pb = args.lumi;
    if !(args.lumi > 0.0) {
        bail!("--lumi must be positive, got {}", args.lumi);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()?;
    let total = workflow::count_entries(&inputs)?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:40} {human_pos}/{human_len} events ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    bar.set_message("selecting");
    let t0 = std::time::Instant::now();
    let result = pool
        .install(|| workflow::run(&inputs, &cfg, &Reference, &code_version(), &|n| bar.inc(n)))?;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let label = if result.synthetic_inputs {
        "SYNTHETIC data"
    } else {
        "data"
    };
    analysis::plot::mass_plot(
        &result.histogram,
        &result.fit,
        label,
        &args.out.join("m_yy"),
    )
    .map_err(|e| anyhow::anyhow!("drawing m_yy plot: {e}"))?;
    analysis::plot::cut_flow_plot(&result.cut_flow, label, &args.out.join("cut_flow"))
        .map_err(|e| anyhow::anyhow!("drawing cut-flow plot: {e}"))?;
    write_atomically(
        &args.out.join("results.json"),
        &serde_json::to_vec_pretty(&result)?,
    )?;
    print_summary(&result, &args.out, total, secs);
    Ok(())
}

/// Writes `path` through a temporary file and a rename: readers never see half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

fn print_summary(r: &AnalysisResult, out: &Path, events: u64, secs: f64) {
    if r.synthetic_inputs {
        println!("NOTE: the inputs are SYNTHETIC (simulated, not real ATLAS data).");
    }
    println!(
        "{events} events in {secs:.2} s ({:.1} M events/s)\n",
        events as f64 / secs / 1e6
    );
    println!("cut flow (data)                               pass        all");
    for c in &r.cut_flow.0 {
        println!("  {:<40} {:>9} {:>10}", c.cut, c.pass, c.all);
    }
    let f = &r.fit;
    println!(
        "\nfit: {} signal + {} background, status {:?}",
        f.model.signal, f.model.background, f.status
    );
    for p in &f.params {
        println!("  {:<9} = {:>12.5} ± {:.5}", p.name, p.value, p.error);
    }
    println!("  q0 = {:.3}, Z = {:.2} σ", f.q0, f.z);
    if f.status != FitStatus::Ok {
        println!("  WARNING: the fit is not trustworthy ({:?})", f.status);
    }
    if let Some(m) = &r.measurement {
        println!(
            "\nε×A  = {:.4} ± {:.4} (MC stat)",
            m.eff_acc, m.eff_acc_error
        );
        println!(
            "σ×B  = {:.4} ± {:.4} (stat) ± {:.4} (MC stat) pb   [MC assumes {:.4} pb, L = {} pb⁻¹]",
            m.xsec_br_pb,
            m.xsec_br_stat_error_pb,
            m.xsec_br_mc_error_pb,
            m.theory_xsec_br_pb,
            m.lumi_pb
        );
        println!(
            "μ    = {:.3} ± {:.3} (stat) ± {:.3} (MC stat)",
            m.mu, m.mu_stat_error, m.mu_mc_error
        );
    }
    println!(
        "\nwrote {}/results.json, m_yy.png/.svg, cut_flow.png/.svg",
        out.display()
    );
}

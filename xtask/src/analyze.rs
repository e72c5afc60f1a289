//! `cargo xtask analyze`: the whole chain (inspect → select → histogram → merge → fit →
//! measure → results → plots) on the default SYNTHETIC dataset, or on the files given, as
//! rules of the `flow` engine (`analysis::rules`): a rerun does only what changed and says
//! why. `--stage select=PATH` runs a model-written select stage (built and sandboxed as the
//! agent does) over everything, beside the reference, and compares the two.

use agent::stage_crate::Toolchain;
use agent::stage_run::SandboxedStage;
use analysis::fit::{Background, FitModel, FitStatus, Signal};
use analysis::histogram::Binning;
use analysis::rules::{self, Chain, Comparison, SelectImpl, Step};
use analysis::stage::StageKind;
use analysis::workflow::{self, AnalysisConfig, AnalysisResult, Inputs};
use anyhow::{bail, Context};
use sandbox::Limits;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Data: files, globs ('mydata/*.root'), directories (their *.root files) or @LIST (a file
    /// with one path per line, relative to the list; '#' comments). Release auto-detected.
    /// Default: the SYNTHETIC default dataset, generated into data/generated/ on first use.
    #[arg(long, num_args = 1..)]
    data: Vec<String>,
    /// Signal MC, given as --data is, for ε×A, σ×B and μ. Default: the default dataset's MC when
    /// --data is not given; none otherwise.
    #[arg(long, num_args = 1..)]
    mc: Vec<String>,
    /// Background-only continuum files (the data layout, read as unweighted events), given as
    /// --data is: the template of the spurious-signal test, which then picks each category's
    /// background function (the simplest that passes). Default: the default dataset's
    /// continuum when --data is not given; none otherwise (no test: every category gets
    /// --background, with a spurious signal of 10 % of its signal).
    #[arg(long, num_args = 1..)]
    continuum: Vec<String>,
    /// Output folder for results.json, the plots, work/ and provenance/.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Signal shape: gaussian or dscb.
    #[arg(long, default_value = "gaussian")]
    signal: Signal,
    /// Background shape: exp or bernstein:N (N = 1..8), of the inclusive fit, and of every
    /// category unless the spurious-signal test chooses (with --continuum).
    #[arg(long, default_value = "exp")]
    background: Background,
    /// Number of m_γγ bins on 105–160 GeV.
    #[arg(long, default_value_t = 55)]
    bins: usize,
    /// Integrated luminosity of the data, pb⁻¹ (for MC weights and σ×B).
    #[arg(long, default_value_t = 10064.0)]
    lumi: f64,
    /// Minimum photon pT, GeV.
    #[arg(long, default_value_t = 25.0)]
    pt_min: f64,
    /// Worker threads (default: all cores). The result does not depend on it. Finished
    /// rules are committed (fsync, rename, hashing their outputs) by 4 threads beside them.
    #[arg(long)]
    threads: Option<usize>,
    /// List the rules that would run and why; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rerun these rules (a name such as `fit`, or a prefix such as `select`) whatever their
    /// state.
    #[arg(long)]
    force: Vec<String>,
    /// Run only these rules (names or prefixes, comma-separated) and what they need.
    #[arg(long)]
    until: Option<String>,
    /// Steps 4–5 (with signal MC): a classifier separates signal from background and the
    /// score is cut into categories maximising the expected significance: `auto` (add
    /// boundaries while Z grows by ≥ 1 %), a number of categories, or `none`.
    #[arg(long, default_value = "auto", value_parser = parse_categories)]
    categories: CategoriesArg,
    /// Keep the data in the signal window (120–130 GeV) out of every fit and plot until you
    /// rerun without it: the inclusive fit is background-only on the sidebands (no μ, no
    /// measurement), the m_γγ plots hide the window, and the categorized fit reports only
    /// the expected significance.
    #[arg(long)]
    blind: bool,
    /// Also convert every input file to .npy columns (work/convert/ROLE/FILE/, the paper's
    /// step 2), as rules like the others.
    #[arg(long)]
    convert: bool,
    /// A model-written stage in place of the reference's, beside it: `select=PATH` (a
    /// stage.rs, or the --out folder of `cargo xtask agent`). Built and run in the sandbox as
    /// the agent does; its results go to OUT/stage-select/ and OUT/comparison.md.
    #[arg(long, value_parser = parse_stage)]
    stage: Option<PathBuf>,
    /// Where the per-file steps run: `local` (this machine's threads) or `slurm` (job arrays
    /// submitted with sbatch; OUT must be on a filesystem the nodes share). The merges, fits
    /// and plots run here; results.json is the same bytes either way.
    #[arg(long, value_enum, default_value = "local")]
    executor: Executor,
    /// Slurm partition (sbatch --partition).
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account (sbatch --account).
    #[arg(long)]
    account: Option<String>,
    /// Time limit of each task (sbatch --time, e.g. 00:30:00).
    #[arg(long)]
    time: Option<String>,
    /// Memory of each task (sbatch --mem, e.g. 2G).
    #[arg(long)]
    mem: Option<String>,
    /// At most this many tasks of an array at once (sbatch --array=…%N).
    #[arg(long)]
    max_jobs: Option<usize>,
    /// Any other sbatch option, passed as is (repeatable): --sbatch-arg=--qos=short.
    #[arg(long, allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
    /// Resubmissions of tasks that did not finish, per step.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// (Internal) a Slurm task: no directory lock (the coordinator holds it), no run log.
    #[arg(long, hide = true)]
    worker: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Executor {
    Local,
    Slurm,
}

#[derive(Clone, Copy, Debug)]
enum CategoriesArg {
    None,
    Auto,
    Exactly(usize),
}

fn parse_categories(s: &str) -> Result<CategoriesArg, String> {
    match s {
        "none" => Ok(CategoriesArg::None),
        "auto" => Ok(CategoriesArg::Auto),
        n => match n.parse::<usize>() {
            Ok(n) if (1..=8).contains(&n) => Ok(CategoriesArg::Exactly(n)),
            _ => Err(format!("expected auto, none or 1..8, got '{n}'")),
        },
    }
}

fn parse_stage(s: &str) -> Result<PathBuf, String> {
    match s.split_once('=') {
        Some(("select", path)) if !path.is_empty() => Ok(PathBuf::from(path)),
        Some((kind, _)) => Err(format!(
            "only a select stage can replace the reference's for now (got '{kind}')"
        )),
        None => Err("expected select=PATH".into()),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (inputs, cfg) = configure(&args)?;
    let slurm = args.executor == Executor::Slurm;
    if slurm
        && (args.stage.is_some() || args.dry_run || !args.force.is_empty() || args.until.is_some())
    {
        bail!("--executor slurm runs the whole analysis: not with --stage, --dry-run, --force or --until");
    }
    // One run per output directory (a crashed run's lock goes with it); a Slurm task works
    // under its coordinator's lock.
    let _lock = if args.worker {
        None
    } else {
        Some(dirlock::DirLock::acquire(&args.out)?)
    };

    // Every event goes through each chain's selection (the reference's, and a --stage's).
    let chains = 1 + u64::from(args.stage.is_some());
    let total: u64 = if args.dry_run {
        0
    } else {
        chains * workflow::count_entries(&inputs)?
    };
    let event_loop = Arc::new(crate::progress::EventLoop::new(total));
    let progress: Arc<dyn Fn(workflow::LoopEvent) + Send + Sync> = {
        let event_loop = event_loop.clone();
        Arc::new(move |e| event_loop.on(e))
    };
    let reference = Chain {
        convert: args.convert,
        ..Chain::reference(&args.out)
    };
    let mut all = rules::chain(&inputs, &cfg, &reference, progress.clone())?;
    let stage_chain = match &args.stage {
        Some(path) => Some(stage_chain(
            &args, path, &inputs, &cfg, &reference, progress, &mut all,
        )?),
        None => None,
    };
    let engine = flow::Flow::new(all, args.out.join("provenance"))?;
    let opts = flow::Options {
        dry_run: args.dry_run,
        force: args.force.clone(),
        until: args.until.clone(),
        tools: [
            ("hgg".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            (
                "stage-api".to_string(),
                analysis::stage::STAGE_API_VERSION.to_string(),
            ),
        ]
        .into(),
    };
    if slurm {
        run_on_slurm(&args, &engine, &opts)?;
    }
    let files = inputs.data.len() + inputs.mc.len();
    let finished = execute(&args, &engine, &opts, &event_loop, files)?;
    if !finished || args.until.is_some() {
        return Ok(());
    }
    let result: AnalysisResult = flow::read_json(&args.out.join("results.json"))?;
    print_summary(&result, &args.out);
    if let Some(chain) = stage_chain {
        let c: Comparison = flow::read_json(&args.out.join("comparison.json"))?;
        println!("\n{}", rules::comparison_markdown(&c));
        println!(
            "the stage's own results: {}/results.json; comparison: {}/comparison.md",
            chain.dir.display(),
            args.out.display()
        );
    }
    // A result that must not be quoted is a failed run, whatever was written.
    if !result.problems.is_empty() {
        bail!(
            "the result is not a measurement: {} (see {}/results.json)",
            result.problems.join("; "),
            args.out.display()
        );
    }
    Ok(())
}

/// The inputs (the default dataset when none are given) and the configuration the options
/// say, checked before any file is read.
fn configure(args: &Args) -> anyhow::Result<(Inputs, AnalysisConfig)> {
    if !(args.lumi > 0.0) {
        bail!("--lumi must be positive, got {}", args.lumi);
    }
    let mut inputs = Inputs {
        data: crate::inputs::expand(&args.data)?,
        mc: crate::inputs::expand(&args.mc)?,
        continuum: crate::inputs::expand(&args.continuum)?,
    };
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
    cfg.cuts.pt_min = args.pt_min;
    cfg.blind = args
        .blind
        .then_some(analysis::categorize::CategorizeConfig::default().signal_window);
    cfg.categorization = match args.categories {
        CategoriesArg::None => None,
        CategoriesArg::Auto => Some(workflow::Categorization::default()),
        CategoriesArg::Exactly(n) => {
            let mut c = workflow::Categorization::default();
            c.categorize.categories = Some(n);
            Some(c)
        }
    };
    if inputs.data.is_empty() {
        let ds = dataset::ensure_default(&dataset::generated_dir(), &Default::default(), || {
            eprintln!("generating the SYNTHETIC default dataset (first run only) ...")
        })?;
        inputs.data.push(ds.data);
        if inputs.mc.is_empty() {
            inputs.mc.push(ds.mc);
        }
        if inputs.continuum.is_empty() {
            inputs.continuum.extend(ds.continuum);
        }
    }
    workflow::check_config(&inputs, &cfg)?;
    Ok((inputs, cfg))
}

/// `--stage select=PATH`: the stage built (confined, as the agent does), its chain beside the
/// reference's and the `compare` rule, added to `all`.
fn stage_chain(
    args: &Args,
    path: &Path,
    inputs: &Inputs,
    cfg: &AnalysisConfig,
    reference: &Chain,
    progress: Arc<dyn Fn(workflow::LoopEvent) + Send + Sync>,
    all: &mut Vec<rules::Rule>,
) -> anyhow::Result<Chain> {
    eprintln!(
        "building the select stage {} (confined, as the agent does)",
        path.display()
    );
    sandbox::require(sandbox::Weak::Refuse)?;
    let stage = SandboxedStage::build(
        &Toolchain::default(),
        StageKind::Select,
        path,
        Limits::default(),
    )?;
    let chain = Chain {
        prefix: "stage-select/".into(),
        dir: args.out.join("stage-select"),
        select: SelectImpl {
            identity: stage.identity.clone(),
            stage: Arc::new(stage),
        },
        ..Chain::reference(&args.out)
    };
    all.extend(rules::chain(inputs, cfg, &chain, progress)?);
    all.push(rules::compare_rule(
        reference,
        &chain,
        &args.out,
        &format!("the select stage {}", path.display()),
    ));
    Ok(chain)
}

/// Runs the engine with a line per rule (per-file rules to the log only when there are many
/// files) and the event loop's bar; `false` when there is nothing more to say (a dry run, a
/// Slurm worker).
fn execute(
    args: &Args,
    engine: &flow::Flow<Step>,
    opts: &flow::Options,
    event_loop: &crate::progress::EventLoop,
    files: usize,
) -> anyhow::Result<bool> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()?;
    let quiet_per_file = files > 8;
    if quiet_per_file {
        eprintln!(
            "{files} input files: per-file steps are logged in {}/logs/",
            args.out.display()
        );
    }
    let log = std::sync::Mutex::new(Vec::<String>::new());
    let t0 = std::time::Instant::now();
    let first_check = std::sync::Once::new();
    let on_event = |e: flow::Event<Step>| {
        let (line, kind) = match e {
            // With many files, hashing the input files (the first layer's inputs) takes a
            // while before the first event: say so.
            flow::Event::Checking { rules: 0 } => return,
            flow::Event::Checking { rules } => {
                let s = if rules == 1 { "" } else { "s" };
                let line = format!("checking {rules} rule{s}: hashing the inputs not seen before");
                if rules > 16 {
                    first_check.call_once(|| event_loop.suspend(|| eprintln!("{line}")));
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                return;
            }
            flow::Event::Started {
                rule,
                kind,
                reasons,
            } => {
                if kind == Step::Select {
                    event_loop.started();
                }
                let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                (format!("run  {rule}: {}", why.join("; ")), kind)
            }
            flow::Event::Finished { rule, kind, wall_s } => {
                if kind == Step::Select {
                    event_loop.finished();
                }
                (format!("done {rule} ({wall_s:.2} s)"), kind)
            }
        };
        if !(quiet_per_file && kind.per_file()) {
            event_loop.suspend(|| eprintln!("{line}"));
        }
        log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    };
    let outcomes = pool.install(|| engine.run(opts, &on_event));
    let looped = event_loop.finish();
    let outcomes = outcomes?;
    let secs = t0.elapsed().as_secs_f64();

    if args.dry_run {
        let would: Vec<&flow::Outcome> =
            outcomes.iter().filter(|o| !o.reasons.is_empty()).collect();
        for o in &would {
            let why: Vec<String> = o.reasons.iter().map(|r| r.to_string()).collect();
            println!("would run {}: {}", o.rule, why.join("; "));
        }
        println!(
            "{} of {} rules would run (dry run: nothing ran)",
            would.len(),
            outcomes.len()
        );
        return Ok(false);
    }
    let ran = outcomes.iter().filter(|o| o.ran).count();
    if args.worker {
        return Ok(false);
    }
    write_log(
        &args.out,
        &log.into_inner().unwrap_or_default(),
        ran,
        outcomes.len(),
    )?;
    if ran == 0 {
        println!(
            "nothing to do: all {} rules are up to date (inputs, parameters and code unchanged)",
            outcomes.len()
        );
    } else {
        println!("{ran} of {} rules ran in {secs:.2} s", outcomes.len());
    }
    if let Some(l) = looped {
        let rate = |s: f64| crate::progress::human(l.events as f64 / s.max(1e-9));
        println!(
            "event loop: {} events read and selected in {:.4} s = {} events/s (the time any \
             file's batches were being read, inflated, decoded and selected); with each file's \
             selected events written: {:.4} s = {} events/s (their commits run beside the loop; \
             inspection, merging, training, fits and plots not counted)",
            crate::progress::human(l.events as f64),
            l.loop_seconds,
            rate(l.loop_seconds),
            l.rule_seconds,
            rate(l.rule_seconds),
        );
    }
    Ok(true)
}

/// The per-file rules through Slurm (see `slurm.rs`); returns when they are all up to date.
fn run_on_slurm(
    args: &Args,
    engine: &flow::Flow<Step>,
    opts: &flow::Options,
) -> anyhow::Result<()> {
    let names = engine.rule_names();
    let with = |prefixes: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
            .cloned()
            .collect()
    };
    // One task per input file: its histogram (which brings its selection, and the selection
    // its inspection, run before it) and (with --convert) its conversion.
    let files: Vec<String> = with(&["histogram/"])
        .iter()
        .map(|h| {
            let file = h.trim_start_matches("histogram/");
            let convert = format!("convert/{file}");
            if names.contains(&convert) {
                format!("{h},{convert}")
            } else {
                h.clone()
            }
        })
        .collect();
    let phases = [
        crate::slurm::Phase {
            name: "files",
            targets: files,
        },
        crate::slurm::Phase {
            name: "train",
            targets: with(&["classify/train"]),
        },
        crate::slurm::Phase {
            name: "scores",
            targets: with(&["score/"]),
        },
    ];
    let cpus = args.threads.unwrap_or(1).max(1);
    let argv: Vec<String> = std::env::args().collect();
    let worker = crate::slurm::worker_command(&argv, cpus)?;
    let up_to_date = |target: &str| -> anyhow::Result<bool> {
        let dry = flow::Options {
            dry_run: true,
            until: Some(target.to_string()),
            ..opts.clone()
        };
        let outcomes = engine.run(&dry, &|_| {})?;
        Ok(outcomes.iter().all(|o| o.reasons.is_empty()))
    };
    let s = crate::slurm::Options {
        partition: args.partition.clone(),
        account: args.account.clone(),
        time: args.time.clone(),
        mem: args.mem.clone(),
        max_jobs: args.max_jobs,
        sbatch_args: args.sbatch_arg.clone(),
        retries: args.retries,
        cpus,
    };
    crate::slurm::run(&s, &phases, &worker, &args.out, &up_to_date)
}

/// `OUT/logs/run-<unix seconds>.log`: what ran this time and why.
fn write_log(out: &Path, lines: &[String], ran: usize, total: usize) -> anyhow::Result<()> {
    let dir = out.join("logs");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut text = lines.join("\n");
    text.push_str(&format!("\n{ran} of {total} rules ran\n"));
    let path = dir.join(format!("run-{now}.log"));
    std::fs::write(&path, text).with_context(|| path.display().to_string())
}

fn cats_len(r: &AnalysisResult) -> usize {
    r.categories.as_ref().map_or(0, |c| c.categories.len())
}

fn print_summary(r: &AnalysisResult, out: &Path) {
    if r.synthetic_inputs {
        println!("NOTE: the inputs are SYNTHETIC (simulated, not real ATLAS data).");
    }
    let events: u64 = r.provenance.inputs.iter().map(|f| f.entries).sum();
    println!("{events} events in {} files\n", r.provenance.inputs.len());
    println!("cut flow (data)                               pass        all");
    for c in &r.cut_flow.0 {
        println!("  {:<40} {:>9} {:>10}", c.cut, c.pass, c.all);
    }
    let f = &r.fit;
    let blind = r.provenance.config.blind;
    match blind {
        Some((a, b)) => println!(
            "\nfit: BLINDED — {} background only, to the sidebands (data in {a}–{b} GeV not \
             used), status {:?}",
            f.model.background, f.status
        ),
        None => println!(
            "\nfit: {} signal + {} background, status {:?}",
            f.model.signal, f.model.background, f.status
        ),
    }
    // Blinded, the signal's parameters were held at their starting values: not shown.
    let background = |i: usize| i == analysis::fit::NBKG || i >= 2 + f.model.n_signal_shape();
    for (i, p) in f.params.iter().enumerate() {
        if blind.is_none() || background(i) {
            println!("  {:<9} = {:>12.5} ± {:.5}", p.name, p.value, p.error);
        }
    }
    if blind.is_none() {
        println!("  q0 = {:.3}, Z = {:.2} σ", f.q0, f.z);
    }
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
    if let (Some(c), Some(cats)) = (&r.classifier, &r.categories) {
        println!(
            "\nclassifier ({} signal MC / {} sideband events, two folds: {} | {}): held-out AUC {:.4}",
            c.n_signal, c.n_background, c.models[0], c.models[1], c.auc
        );
        let top: Vec<String> = {
            let mut imp = c.importance.clone();
            imp.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            imp.iter()
                .take(4)
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect()
        };
        println!("  most important: {}", top.join(", "));
        println!(
            "categories (expected in {:?} GeV, blinded):",
            cats.config.signal_window
        );
        println!("  score range        s         b      Z_A");
        for k in &cats.categories {
            println!(
                "  [{:.3}, {:.3})  {:>8.2}  {:>8.2}  {:>6.3}",
                k.score.0, k.score.1, k.s, k.b, k.z
            );
        }
        println!(
            "  expected Z (counting in the window): inclusive {:.3}, categorized {:.3} ({} categories)",
            cats.z_inclusive,
            cats.z,
            cats.categories.len()
        );
    }
    if let (Some(c), Some(i)) = (&r.combined, &r.combined_inclusive) {
        let mu = |c: &analysis::fit::simultaneous::Combined| {
            if c.blinded {
                "blinded".to_string()
            } else {
                format!("{:.3} ± {:.3}", c.mu, c.mu_error)
            }
        };
        let z = |c: &analysis::fit::simultaneous::Combined| {
            c.z.map_or("blinded".to_string(), |z| format!("{z:.2} σ"))
        };
        let mass = |c: &analysis::fit::simultaneous::Combined| {
            c.mass.as_ref().map_or("blinded".to_string(), |m| {
                format!("{:.2} ± {:.2} GeV", m.value, m.error)
            })
        };
        let local = |c: &analysis::fit::simultaneous::Combined| {
            c.z_local
                .map_or("blinded".to_string(), |z| format!("{z:.2} σ"))
        };
        if let Some(m) = &r.model {
            let name = |b: &analysis::fit::Background| match b {
                analysis::fit::Background::Exp => "exp".to_string(),
                analysis::fit::Background::Bernstein(n) => format!("bernstein:{n}"),
            };
            println!(
                "\nstatistical model (workspace.json): {:?} signal (σ = {:.3} GeV at {:.2} GeV, \
                 fitted to the signal MC); nuisance parameters: lumi {:.1} %, photon_resolution \
                 {:.0} %, photon_scale {:.1} %, a spurious signal per category",
                m.signal.shape,
                m.signal.sigma,
                m.signal.mass,
                100.0 * m.systematics.lumi,
                100.0 * m.systematics.resolution,
                100.0 * m.systematics.scale,
            );
            if m.spurious_test.is_empty() {
                println!(
                    "  no continuum template (--continuum): every category fits --background, \
                     its spurious signal set to {:.0} % of its signal",
                    100.0 * m.systematics.spurious_fraction
                );
            } else {
                println!(
                    "  spurious-signal test on the continuum template (smoothed by {}): |S_spur| \
                     / signal, / its stat. error (pass: < 10 % or < 20 %); * the function used",
                    name(&analysis::fit::spurious::SMOOTHER)
                );
                print!("  {:<10}", "category");
                for c in &m.spurious_test[0].candidates {
                    print!(" {:>18}", name(&c.function));
                }
                println!();
                for t in &m.spurious_test {
                    print!("  {:<10}", t.category);
                    for c in &t.candidates {
                        let mark = if c.function == t.chosen { '*' } else { ' ' };
                        let pass = if c.passes { "" } else { " ✗" };
                        print!(
                            " {:>17}{mark}",
                            format!(
                                "{:.0}% / {:.0}%{pass}",
                                100.0 * c.of_signal,
                                100.0 * c.of_stat
                            )
                        );
                    }
                    println!(
                        "{}",
                        if t.passes {
                            ""
                        } else {
                            "   none passes: the smallest is used"
                        }
                    );
                }
            }
        }
        println!(
            "same model on one category vs the categories (μ and Z at the nominal mass; the \
             categorized μ is the result to quote):"
        );
        println!(
            "                      inclusive          {} categories",
            cats_len(r)
        );
        println!("  μ                   {:<18} {}", mu(i), mu(c));
        println!("  m_H (floating)      {:<18} {}", mass(i), mass(c));
        println!("  Z observed          {:<18} {}", z(i), z(c));
        println!("  Z local (m_H free)  {:<18} {}", local(i), local(c));
        let (zi, zc) = (format!("{:.2} σ", i.z_expected), c.z_expected);
        println!("  Z expected (μ = 1)  {zi:<18} {zc:.2} σ");
        if !c.blinded {
            println!(
                "  nuisance parameters of the categorized fit: pull (post-fit error), impact on μ"
            );
            for f in c.parameters.iter().filter(|f| f.pull.is_some()) {
                let ((p, e), (up, down)) =
                    (f.pull.unwrap_or_default(), f.impact.unwrap_or_default());
                println!(
                    "    {:<20} {p:+.2} ({e:.2})   {up:+.4} / {down:+.4}",
                    f.name
                );
            }
        }
        if !c.hessian_ok || !i.hessian_ok {
            println!("  WARNING: a simultaneous fit's Hessian is not positive definite");
        }
        for (fit, which) in [(i, "inclusive"), (c, "categorized")] {
            if !fit.at_bound.is_empty() {
                println!(
                    "  WARNING: the {which} fit ended with {} at a bound: its errors mean nothing \
                     (is --lumi the data's luminosity?)",
                    fit.at_bound.join(", ")
                );
            }
        }
    }
    println!(
        "\nwrote {0}/results.json{1}, m_yy.png/.svg, cut_flow.png/.svg (provenance in {0}/provenance/)",
        out.display(),
        if r.combined.is_some() { ", workspace.json (pyhf)" } else { "" }
    );
}

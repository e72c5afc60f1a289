//! `cargo xtask bench-reprocess`: the whole `analyze` on 1 and N distinct files (the
//! project's generator, different seeds) at 1..T threads — the event loop's events/s as
//! `analyze` reports it, the process's wall time and peak RSS — next to the limit for these
//! files on one core: their baskets read and inflated, nothing decoded (once each file is
//! open: the loop's time leaves out opening the files too).
//!
//! Each configuration runs `analyze` as its own process (this binary), into a fresh output
//! directory, `--categories none` (steps 4–5 train on a bounded sample and are not part of
//! the reprocessing loop); peak RSS is the child's, from `wait4`.

use analysis::events::EventFile;

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// How many distinct files (seeds 1..=N).
    #[arg(long, default_value_t = 16)]
    files: usize,
    /// Events per file (after the generator's ≥ 2 photon skim).
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Most threads to try (1, 2, 4, ... up to it). Default: the cores available.
    #[arg(long)]
    threads: Option<usize>,
    /// File counts to run (each ≤ --files), comma-separated. Default: 1 and --files.
    #[arg(long, value_delimiter = ',')]
    counts: Vec<usize>,
    /// Runs per configuration; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Where the generated files are kept between runs.
    #[arg(long, default_value = "target/bench-data/reprocess")]
    dir: PathBuf,
    /// A Python with uproot and awkward (and optionally PyPI `root`): the same event loop in
    /// uproot+awkward and RDataFrame, one thread, on the same files, as anchors.
    #[arg(long)]
    python: Option<PathBuf>,
    /// (Internal) time the inflate-only pass over the files in this list and print seconds.
    #[arg(long, hide = true)]
    inflate_only: Option<PathBuf>,
}

struct Run {
    /// Events passing the whole selection (the cut flow's last line).
    selected: u64,
    loop_s: f64,
    /// The selection rules' time: the loop plus opening files and writing their outputs.
    rule_s: f64,
    wall_s: f64,
    rss_mib: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(list) = &args.inflate_only {
        let files: Vec<PathBuf> = std::fs::read_to_string(list)?
            .lines()
            .map(PathBuf::from)
            .collect();
        let mut seconds = 0.0;
        for f in &files {
            seconds += inflate_only(f)?;
        }
        println!("{seconds}");
        return Ok(());
    }
    if args.files == 0 || args.events == 0 || args.repeats == 0 {
        bail!("--files, --events and --repeats must be positive");
    }
    // Everything heavy runs in child processes (generation, the inflate-only pass, analyze):
    // the kernel's peak RSS of a child counts its parent's at the fork, so this process stays
    // small.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_threads = args.threads.unwrap_or(cores).max(1);
    let files = generate(&args)?;
    let events_per_file = args.events as u64;
    let scratch = tempfile::tempdir()?;
    let all_list = scratch.path().join("all.txt");
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    std::fs::write(&all_list, names.join("\n"))?;

    // The limit: every basket of the selection's branches read and inflated, one thread.
    let mut limit = vec![];
    for _ in 0..args.repeats {
        limit.push(inflate_only_child(&all_list)?);
    }
    let limit_s = median(&mut limit);
    let all_events = events_per_file as f64 * files.len() as f64;

    let mut threads = vec![];
    let mut t = 1;
    while t < max_threads {
        threads.push(t);
        t *= 2;
    }
    threads.push(max_threads);

    let first = EventFile::open(&files[0])?.as_data();
    let read = first.branches_read();
    println!(
        "bench-reprocess: {} SYNTHETIC files of {} events (2020 layout, zlib), this machine: {cores} cores",
        files.len(),
        events_per_file
    );
    println!(
        "limit, 1 thread: the {} branches the event loop reads ({}) of all {} files read and \
         inflated, nothing decoded (timed once each file is open, as the loop is): {:.3} s = \
         {}events/s",
        read.len(),
        read.join(", "),
        files.len(),
        limit_s,
        crate::progress::human(all_events / limit_s) + " "
    );
    println!();
    println!(
        "| files | threads | event loop events/s | × 1 thread | efficiency | vs inflate-only | with outputs events/s | vs inflate-only | wall s | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let counts = if args.counts.is_empty() {
        vec![1, files.len()]
    } else {
        args.counts.clone()
    };
    if let Some(n) = counts.iter().find(|&&n| n == 0 || n > files.len()) {
        bail!(
            "--counts {n}: each count must be between 1 and --files ({})",
            files.len()
        );
    }
    let mut one_thread_rates = vec![];
    for n in counts {
        let list = scratch.path().join(format!("files-{n}.txt"));
        let names: Vec<String> = files[..n].iter().map(|f| f.display().to_string()).collect();
        std::fs::write(&list, names.join("\n"))?;
        let events = events_per_file as f64 * n as f64;
        let mut one_thread = None;
        for &t in &threads {
            let mut runs = vec![];
            // Each run right after an inflate-only pass over the same files: the ratios are
            // taken pair by pair, so a drift of the machine's speed between phases cancels.
            let (mut ratio, mut ratio_out) = (vec![], vec![]);
            for r in 0..args.repeats {
                let limit_n = inflate_only_child(&list)?;
                let run = analyze(&list, t, &scratch.path().join(format!("out-{n}-{t}-{r}")))?;
                ratio.push(run.loop_s / (limit_n / t as f64));
                ratio_out.push(run.rule_s / (limit_n / t as f64));
                runs.push(run);
            }
            let loop_s = median(&mut runs.iter().map(|r| r.loop_s).collect::<Vec<_>>());
            let rule_s = median(&mut runs.iter().map(|r| r.rule_s).collect::<Vec<_>>());
            let wall_s = median(&mut runs.iter().map(|r| r.wall_s).collect::<Vec<_>>());
            let rss = runs.iter().map(|r| r.rss_mib).fold(0.0, f64::max);
            let rate = events / loop_s;
            let base = *one_thread.get_or_insert(rate);
            if t == 1 {
                one_thread_rates.push((n, list.clone(), rate, events / rule_s, runs[0].selected));
            }
            println!(
                "| {n} | {t} | {} | {:.2} | {:.2} | {:.2}× | {} | {:.2}× | {wall_s:.2} | {rss:.1} |",
                crate::progress::human(rate),
                rate / base,
                rate / base / t as f64,
                median(&mut ratio),
                crate::progress::human(events / rule_s),
                median(&mut ratio_out),
            );
        }
    }
    if let Some(python) = &args.python {
        println!(
            "\n| anchor (1 thread, same files) | files | events/s | this project ÷ anchor | with outputs ÷ anchor | selected (this project) |"
        );
        println!("|---|---|---|---|---|---|");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/reprocess_anchors.py");
        for (n, list, ours, ours_with_outputs, selected) in &one_thread_rates {
            let out = std::process::Command::new(python)
                .arg(&script)
                .arg(list)
                .arg(args.repeats.to_string())
                .env("OMP_NUM_THREADS", "1")
                .output()
                .context("running the Python anchors")?;
            if !out.status.success() {
                bail!(
                    "the Python anchors failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .with_context(|| String::from_utf8_lossy(&out.stdout).to_string())?;
            let events = events_per_file as f64 * *n as f64;
            for (name, key) in [
                (
                    format!(
                        "uproot {} + awkward {}",
                        v["uproot"].as_str().unwrap_or("?"),
                        v["awkward"].as_str().unwrap_or("?")
                    ),
                    "uproot_s",
                ),
                (
                    format!("RDataFrame (ROOT {})", v["root"].as_str().unwrap_or("?")),
                    "rdf_s",
                ),
            ] {
                if let Some(secs) = v[key].as_f64() {
                    let rate = events / secs;
                    let theirs = v[key.replace("_s", "_selected")].as_u64().unwrap_or(0);
                    println!(
                        "| {name} | {n} | {} | {:.2} | {:.2} | {theirs} ({selected}) |",
                        crate::progress::human(rate),
                        ours / rate,
                        ours_with_outputs / rate
                    );
                }
            }
        }
    }
    println!(
        "(this process's own peak RSS, a floor for the column: {:.1} MiB)",
        own_rss_mib()
    );
    println!(
        "\nevent loop: events over the time any file's batches were being read, inflated, decoded \
         and selected, as `analyze` prints it (the anchors time their loops the same way, \
         opening the files included, after a warm-up, median of the same number of repeats); \
         with outputs: over the time any selection rule ran (also opening each file and \
         writing its selected events; their commits, fsync and hashing of the outputs, run on \
         threads beside the loop; the input files are hashed before the jobs start); median of \
         {} runs. efficiency: speed-up / threads. \
         vs inflate-only: time / (the inflate-only time of the same files / threads), the \
         inflate-only pass run just before each run, median of the pairs' ratios. \
         Peak RSS: the largest of the runs, whole process.",
        args.repeats
    );
    Ok(())
}

/// The N files, generated once (seeds 1..=N) into `--dir`, each by `generate` in its own
/// process (which keeps an existing file whose manifest matches).
fn generate(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![];
    for seed in 1..=args.files as u64 {
        let dir = args.dir.join(format!("{}-{seed}", args.events));
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["generate", "--mc-events", "1000", "--data-events"])
            .arg(args.events.to_string())
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--out")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("generating file {seed} into {} failed", dir.display());
        }
        out.push(std::fs::canonicalize(dir.join(dataset::DATA_FILE))?);
    }
    Ok(out)
}

/// The inflate-only pass over the files in `list`, in a child process: its seconds.
fn inflate_only_child(list: &Path) -> anyhow::Result<f64> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["bench-reprocess", "--inflate-only"])
        .arg(list)
        .output()?;
    if !out.status.success() {
        bail!(
            "the inflate-only pass failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>()?)
}

/// Reads and inflates every basket of the branches the event loop reads from `file` (as
/// data), decoding nothing; returns the seconds this took once the file was open (the event
/// loop's time leaves out opening the file too).
fn inflate_only(file: &Path) -> anyhow::Result<f64> {
    use oxyroot::rtree::columnar::{BasketSource, RawBasket};
    let f = EventFile::open(file)?.as_data();
    let nt = f.ntuple();
    let source = BasketSource::open(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    let (mut scratch, mut basket) = (Vec::new(), RawBasket::default());
    let mut bytes = 0u64;
    for name in f.branches_read() {
        let baskets = nt
            .basket_locations(name)
            .with_context(|| format!("{}: no branch {name}", file.display()))?;
        for loc in baskets {
            source
                .read_basket(loc, &mut scratch, &mut basket)
                .map_err(|e| anyhow::anyhow!("{}: {name}: {e}", file.display()))?;
            bytes += basket.data.len() as u64;
        }
    }
    std::hint::black_box(bytes);
    Ok(t.elapsed().as_secs_f64())
}

/// One `analyze` process: the event loop's seconds (from its own line), wall time, peak RSS.
fn analyze(list: &Path, threads: usize, out: &Path) -> anyhow::Result<Run> {
    let stdout = out.with_extension("stdout");
    let t = Instant::now();
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["analyze", "--categories", "none", "--threads"])
        .arg(threads.to_string())
        .arg("--data")
        .arg(format!("@{}", list.display()))
        .arg("--out")
        .arg(out)
        .stdout(std::fs::File::create(&stdout)?)
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting analyze")?;
    let (status, rss_kib) = wait_with_rss(child.id() as libc::pid_t)?;
    let wall_s = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&stdout)?;
    if status != 0 {
        bail!("analyze failed (status {status}):\n{text}");
    }
    // "event loop: N events read and selected in X s = … committed: Y s = …"
    let seconds = |after: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix("event loop: ")?;
            let secs = rest.split(after).nth(1)?.split(" s").next()?;
            secs.trim().parse::<f64>().ok()
        })
    };
    let (Some(loop_s), Some(rule_s)) = (seconds(" in "), seconds(" written: ")) else {
        bail!("no event loop line in analyze's output:\n{text}");
    };
    let selected = text
        .lines()
        .find_map(|l| {
            let rest = l.trim_start().strip_prefix("mass window")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .with_context(|| format!("no cut flow in analyze's output:\n{text}"))?;
    let _ = std::fs::remove_dir_all(out);
    Ok(Run {
        selected,
        loop_s,
        rule_s,
        wall_s,
        rss_mib: rss_kib as f64 / 1024.0,
    })
}

/// Waits for `pid`; its exit status and peak RSS (KiB), from the kernel's accounting.
fn wait_with_rss(pid: libc::pid_t) -> anyhow::Result<(i32, i64)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with pointers to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok((code, usage.ru_maxrss))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// This process's peak RSS so far, MiB.
fn own_rss_mib() -> f64 {
    // SAFETY: a zeroed rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a pointer to a live local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

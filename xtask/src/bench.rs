//! `cargo xtask bench-read`: how fast the photon branches of a 2020-layout file are read, one
//! thread, next to oxyroot's per-entry API and (when a Python with uproot is given) uproot+awkward
//! on the same file, measured in the same run.

use analysis::events::EventFile;
use analysis::rootio::Ntuple;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The branches uproot reads in `xtask/bench/uproot_read.py`: what the selection needs.
pub(crate) const BRANCHES: [&str; 9] = [
    "photon_n",
    "trigP",
    "photon_pt",
    "photon_eta",
    "photon_phi",
    "photon_E",
    "photon_isTightID",
    "photon_ptcone30",
    "photon_etcone20",
];

/// The float vector branches besides `photon_pt` (which is summed as a cross-check).
const OTHER_FLOATS: [&str; 5] = [
    "photon_eta",
    "photon_phi",
    "photon_E",
    "photon_ptcone30",
    "photon_etcone20",
];

#[derive(clap::Args)]
pub struct Args {
    /// 2020-layout file (tree `mini`). Default: a 430k-event SYNTHETIC zlib file made with the
    /// project's generator in target/bench-data/ (about one real 2020 data period).
    file: Option<PathBuf>,
    /// Python with uproot and awkward installed, to run the uproot+awkward anchor.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Timed repetitions (best is reported) after one warm-up.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

struct Row {
    reader: String,
    seconds: f64,
    sum_pt: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let file = match args.file {
        Some(f) => f,
        None => bench_file()?,
    };
    let entries = Ntuple::open(&file, &["mini"])?.entries();
    let mut rows = vec![
        best_of(args.repeats, "columnar (this project), raw columns", || {
            columnar(&file)
        })?,
        best_of(args.repeats, "event model (GeV, cross-checked)", || {
            event_model(&file)
        })?,
        best_of(
            1.min(args.repeats),
            "oxyroot per-entry API (stock path)",
            || per_entry(&file),
        )?,
    ];
    if let Some(py) = &args.python {
        rows.push(uproot(py, &file, args.repeats)?);
    }
    let anchor = rows
        .iter()
        .find(|r| r.reader.starts_with("uproot"))
        .map(|r| r.seconds);
    println!(
        "file: {} ({entries} entries), {} branches, one thread, best of {}",
        file.display(),
        BRANCHES.len(),
        args.repeats
    );
    println!("| reader | seconds | events/s | Σ photon_pt (MeV) | × uproot+awkward |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        let ratio = anchor.map_or("-".to_string(), |a| format!("{:.2}", a / r.seconds));
        println!(
            "| {} | {:.3} | {:.2} M | {:.6e} | {ratio} |",
            r.reader,
            r.seconds,
            entries as f64 / r.seconds / 1e6,
            r.sum_pt
        );
    }
    let sums: Vec<f64> = rows.iter().map(|r| r.sum_pt).collect();
    if sums.iter().any(|s| ((s - sums[0]) / sums[0]).abs() > 1e-9) {
        anyhow::bail!("readers disagree on Σ photon_pt: {sums:?}");
    }
    Ok(())
}

fn best_of(repeats: usize, name: &str, f: impl Fn() -> anyhow::Result<f64>) -> anyhow::Result<Row> {
    let mut sum_pt = f()?; // warm-up (page cache)
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        sum_pt = f()?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(Row {
        reader: name.into(),
        seconds: best,
        sum_pt,
    })
}

/// All nine branches as flat columns, basket-aligned chunks of ~100k entries.
fn columnar(file: &Path) -> anyhow::Result<f64> {
    let nt = Ntuple::open(file, &["mini"])?;
    let mut sum = 0.0;
    for r in nt.chunks(&BRANCHES, 100_000)? {
        std::hint::black_box(nt.read_count("photon_n", r.clone())?);
        std::hint::black_box(nt.read_scalar::<bool>("trigP", r.clone())?);
        let pt = nt.read_jagged::<f32>("photon_pt", r.clone())?;
        sum += pt.values.iter().map(|&v| v as f64).sum::<f64>();
        for b in OTHER_FLOATS {
            std::hint::black_box(nt.read_jagged::<f32>(b, r.clone())?);
        }
        std::hint::black_box(nt.read_jagged::<bool>("photon_isTightID", r)?);
    }
    Ok(sum)
}

/// The same branches through the event model (units, consistency checks, MC columns).
fn event_model(file: &Path) -> anyhow::Result<f64> {
    let f = EventFile::open(file)?;
    let mut sum = 0.0;
    for r in f.chunks(100_000)? {
        let ev = f.read(r)?;
        sum += ev
            .photons
            .pt
            .iter()
            .map(|&v| v as f64 * 1000.0)
            .sum::<f64>();
    }
    Ok(sum)
}

/// oxyroot's stock per-entry API: one `Vec` per event per branch.
fn per_entry(file: &Path) -> anyhow::Result<f64> {
    let mut f = oxyroot::RootFile::open(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = f.get_tree("mini").map_err(|e| anyhow::anyhow!("{e}"))?;
    let br = |n: &str| t.branch(n).ok_or_else(|| anyhow::anyhow!("no branch {n}"));
    std::hint::black_box(
        br("photon_n")?
            .as_iter::<u32>()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .count(),
    );
    std::hint::black_box(
        br("trigP")?
            .as_iter::<bool>()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .count(),
    );
    let mut sum = 0.0;
    for v in br("photon_pt")?
        .as_iter::<Vec<f32>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        sum += v.iter().map(|&x| x as f64).sum::<f64>();
    }
    for b in OTHER_FLOATS {
        std::hint::black_box(
            br(b)?
                .as_iter::<Vec<f32>>()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .count(),
        );
    }
    std::hint::black_box(
        br("photon_isTightID")?
            .as_iter::<Vec<bool>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .count(),
    );
    Ok(sum)
}

fn uproot(python: &Path, file: &Path, repeats: usize) -> anyhow::Result<Row> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/uproot_read.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(file)
        .arg(repeats.to_string())
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "uproot anchor failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(Row {
        reader: format!(
            "uproot {} + awkward {}",
            v["uproot"].as_str().unwrap_or("?"),
            v["awkward"].as_str().unwrap_or("?")
        ),
        seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        sum_pt: v["sum_photon_pt"].as_f64().unwrap_or(f64::NAN),
    })
}

/// A 430k-event SYNTHETIC 2020-layout zlib file from the project's generator.
fn bench_file() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the repo");
    let dir = root.join("target/bench-data");
    let cfg = dataset::synth::Config {
        data_events: 430_000,
        mc_events: 1_000,
        continuum_events: 0,
        ..Default::default()
    };
    let ds = dataset::ensure_default(&dir, &cfg, || {
        eprintln!("generating the 430k-event benchmark file ...")
    })?;
    Ok(ds.data)
}

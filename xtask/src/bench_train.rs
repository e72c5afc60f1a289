//! `cargo xtask bench-train`: the classifier of step 4 trained and scored on one sample by our
//! GBDT (forust-ml, as `analyze` runs it), next to LightGBM (Python, same features, folds,
//! validation splits and class balance) and the best single variable (pT_γγ/m), measured in
//! the same run: held-out AUC, training and scoring time.
//!
//! The samples are the analysis's own: the selected events of the data (sidebands only) and
//! the signal MC, as the `classify/train` rule gathers them. Without arguments: the small
//! fixture sample (`tests/fixtures`, 2.8k sideband events: where overfitting shows) and the
//! SYNTHETIC default dataset.

use analysis::classify::{self, ClassifierConfig, Sample, Scorer};
use analysis::select::Diphotons;
use analysis::stage::{Cuts, Reference};
use analysis::workflow::{open_input, select_file};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Data files (default: the fixture sample, then the SYNTHETIC default dataset).
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Signal MC files (with --data).
    #[arg(long, num_args = 1..)]
    mc: Vec<PathBuf>,
    /// A Python with lightgbm, numpy and scikit-learn, for the LightGBM anchor
    /// (xtask/checks/lightgbm_train.py); without it the anchor's row says so.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Timed repetitions (the fastest is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let samples: Vec<(String, Vec<PathBuf>, Vec<PathBuf>)> = if args.data.is_empty() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let ds = dataset::ensure_default(&dataset::generated_dir(), &Default::default(), || {
            eprintln!("generating the SYNTHETIC default dataset (first run only) ...")
        })?;
        vec![
            (
                "fixtures (small)".into(),
                vec![fixtures.join("data_2020_zlib.GamGam.root")],
                vec![fixtures.join("mc_343981.ggH125_gamgam_2020_zlib.GamGam.root")],
            ),
            ("default dataset".into(), vec![ds.data], vec![ds.mc]),
        ]
    } else {
        anyhow::ensure!(!args.mc.is_empty(), "--data needs --mc (the signal sample)");
        vec![("given files".into(), args.data, args.mc)]
    };
    println!(
        "| sample | classifier | train events (s/b) | trees | held-out AUC | train s | score s | train + score s |"
    );
    println!("|---|---|---|---|---:|---:|---:|---:|");
    for (name, data, mc) in samples {
        bench_sample(
            &name,
            &data,
            &mc,
            args.python.as_deref(),
            args.repeats.max(1),
        )?;
    }
    println!(
        "\n2 folds, each model trained on the other fold (early stopping on a fifth of it) and \
         scored on its own; score s: every selected event of the sample's files. Times in \
         process, best of {}; LightGBM on all cores, ours one thread per fold.",
        args.repeats.max(1)
    );
    Ok(())
}

/// The selected events of `files`, merged.
fn select(files: &[PathBuf], data: bool) -> anyhow::Result<Diphotons> {
    let mut all = Diphotons::default();
    for f in files {
        let file = open_input(f)?;
        let file = if data { file.as_data() } else { file };
        let parts = select_file(&file, &Cuts::default(), 25_000, &Reference, &|_| {})?;
        all.extend(&parts.merged().diphotons);
    }
    Ok(all)
}

fn bench_sample(
    name: &str,
    data: &[PathBuf],
    mc: &[PathBuf],
    python: Option<&Path>,
    repeats: usize,
) -> anyhow::Result<()> {
    let cfg = ClassifierConfig::default();
    let (d, m) = (select(data, true)?, select(mc, false)?);
    let mut sample = Sample::default();
    sample.add(&d, false, 1, &cfg);
    sample.add(&m, true, 1, &cfg);
    let n_s = sample.y.iter().filter(|&&y| y > 0.5).count();
    let counts = format!("{n_s}/{}", sample.y.len() - n_s);
    let every = d.len() + m.len();

    // Ours, as analyze runs it.
    let (mut train_s, mut score_s) = (f64::INFINITY, f64::INFINITY);
    let mut trained = None;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let c = classify::train(&sample, &cfg)?;
        train_s = train_s.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let scorer = Scorer::new(&c)?;
        let n = scorer.score(&d).len() + scorer.score(&m).len();
        score_s = score_s.min(t0.elapsed().as_secs_f64());
        assert_eq!(n, every);
        trained = Some(c);
    }
    let c = trained.expect("at least one repeat");
    row(
        name,
        "ours (forust-ml GBDT)",
        &counts,
        &format!("{} / {}", c.models[0].describe(), c.models[1].describe()),
        c.auc,
        Some((train_s, score_s)),
    );

    // The best single variable: pT_γγ/m (feature 5) as the score.
    let pt_over_m: Vec<f64> = sample.x.iter().map(|x| x[5]).collect();
    let (auc, _) = classify::roc(&pt_over_m, &sample.y, &sample.w);
    row(name, "pT_γγ/m alone (a cut)", &counts, "–", auc, None);

    // LightGBM on the same sample.
    match python {
        None => println!("| {name} | LightGBM | {counts} | – | n/a (no --python given) | | | |"),
        Some(py) => {
            let dir = tempfile::tempdir()?;
            write_csv(&dir.path().join("sample.csv"), &sample)?;
            let mut score = String::new();
            for set in [&d, &m] {
                for i in 0..set.len() {
                    let x = classify::features(set, i);
                    score.push_str(&join(&x));
                    score.push('\n');
                }
            }
            std::fs::write(dir.path().join("score.csv"), score)?;
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("checks/lightgbm_train.py");
            let (mut train_s, mut score_s, mut last) = (f64::INFINITY, f64::INFINITY, None);
            for _ in 0..repeats {
                let o = std::process::Command::new(py)
                    .arg(&script)
                    .arg(dir.path())
                    .output()
                    .map_err(|e| anyhow::anyhow!("running {}: {e}", py.display()))?;
                anyhow::ensure!(
                    o.status.success(),
                    "{} failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
                train_s = train_s.min(v["train_s"].as_f64().unwrap_or(f64::NAN));
                score_s = score_s.min(v["score_s"].as_f64().unwrap_or(f64::NAN));
                last = Some(v);
            }
            let v = last.expect("at least one repeat");
            let trees = format!("{}/{}", v["trees"][0], v["trees"][1]);
            row(
                name,
                "LightGBM 4",
                &counts,
                &trees,
                v["auc"].as_f64().unwrap_or(f64::NAN),
                Some((train_s, score_s)),
            );
        }
    }
    Ok(())
}

fn row(sample: &str, what: &str, counts: &str, trees: &str, auc: f64, t: Option<(f64, f64)>) {
    let times = t.map_or("– | – | –".to_string(), |(a, b)| {
        format!("{a:.3} | {b:.3} | {:.3}", a + b)
    });
    println!("| {sample} | {what} | {counts} | {trees} | {auc:.4} | {times} |");
}

fn join(x: &[f64]) -> String {
    x.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The sample as LightGBM's script reads it: 12 features, label, weight, fold, validation.
fn write_csv(path: &Path, s: &Sample) -> anyhow::Result<()> {
    let mut out = String::new();
    for i in 0..s.x.len() {
        out.push_str(&join(&s.x[i]));
        out.push_str(&format!(
            ",{},{},{},{}\n",
            s.y[i],
            s.w[i],
            s.fold[i],
            u8::from(s.validation[i])
        ));
    }
    Ok(std::fs::write(path, out)?)
}

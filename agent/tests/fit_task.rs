//! The fit as an agent task: a known-good stage (`answers/fit_ok.rs`: a simplex, Newton
//! iterations with a numeric Hessian, a Cholesky inverse and an erf, on `std` and the contract
//! only) passes validation the way a model's answer would ([`Checker`]: the code screen, the
//! confined build, the sandboxed run, validation against the reference fit, then the held-out
//! inputs). It is a test fixture, not a model's answer: the helper session that wrote it read
//! the reference's fit module too, and its Newton loop follows the reference's (damping,
//! step sizes).

mod support;

use agent::check::Verdict;
use agent::task::{Task, Variant};
use agent::trajectory::Record;

const FIT: &str = include_str!("answers/fit_ok.rs");

/// The verdict on `code` for `task` with `variant` in trial `trial`, and the held-out run's
/// check details (name: detail), when there was one.
fn attempt_screened(
    task: &Task,
    variant: &Variant,
    trial: u32,
    code: &str,
    screen: bool,
) -> (Verdict, Vec<String>) {
    let (verdict, record) = support::check(task, variant, trial, code, screen);
    let mut held_out = Vec::new();
    if let Record::Attempt {
        held_out: Some(h), ..
    } = record
    {
        match h.validation {
            Some(v) => held_out.extend(
                v.checks
                    .iter()
                    .map(|c| format!("{} ({}): {}", c.name, pass(c.passed), c.detail)),
            ),
            None => held_out.push(format!("no output: {:?}", h.class)),
        }
    }
    (verdict, held_out)
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "passed"
    } else {
        "FAILED"
    }
}

/// Asserts that `code` passes `task` with `variant` in trial `trial`, printing every check.
fn passes(task: &Task, variant: &Variant, trial: u32, code: &str) {
    let label = format!("{} trial {trial} {variant:?}", task.name);
    let (verdict, held_out) = attempt_screened(task, variant, trial, code, true);
    for line in &held_out {
        eprintln!("{label} held-out {line}");
    }
    match verdict {
        Verdict::Passed(v, _) => {
            assert!(v.validated, "{label}: not validated");
            for c in &v.checks {
                eprintln!("{label} passed {}: {}", c.name, c.detail);
            }
        }
        other => panic!("{label}: {other:?}"),
    }
}

#[test]
fn fit_a_stage_written_from_the_contract_passes() {
    assert!(
        agent::policy::check(FIT).is_empty(),
        "{:?}",
        agent::policy::check(FIT)
    );
    // An inconsistent input is a StageError, not a panic.
    {
        use stage_api::{Background, Binning, Fit as _, FitModel, Histogram};
        let model = FitModel::default();
        let mut h = Histogram::new(Binning::default());
        assert!(fit_ok::Stage.fit(&model, &h).is_err(), "an empty histogram");
        h.sumw = vec![10.0; 54];
        assert!(
            fit_ok::Stage.fit(&model, &h).is_err(),
            "sumw of the wrong length"
        );
        h.sumw = vec![10.0; 55];
        let outside = FitModel {
            mean_range: (100.0, 130.0),
            ..model
        };
        assert!(
            fit_ok::Stage.fit(&outside, &h).is_err(),
            "a mean range outside the fit range"
        );
        let other = FitModel {
            background: Background::Bernstein(3),
            ..model
        };
        assert!(
            fit_ok::Stage.fit(&other, &h).is_err(),
            "a model it does not fit"
        );
        h.binning.bins = 0;
        assert!(fit_ok::Stage.fit(&model, &h).is_err(), "no bins");
    }
    let task = Task::load("fit").unwrap();
    // The task's own draws (only the default when it declares no `[vary]`); each trial also
    // meets its own held-out dataset (another signal strength, other events).
    let mut seen = Vec::new();
    for trial in 0..3 {
        let variant = task.draw(0, trial);
        passes(&task, &variant, trial, FIT);
        seen.push(variant);
    }
    // Every value a draw can give (e.g. each binning of `binning.bins`), once.
    for (key, values) in &task.vary {
        for (k, value) in values.iter().enumerate() {
            if seen.iter().any(|v| v.get(key) == Some(value)) {
                continue;
            }
            let variant = Variant::from([(key.clone(), value.clone())]);
            passes(&task, &variant, 10 + k as u32, FIT);
            seen.push(variant);
        }
    }
}

/// The answer compiled in-process.
mod fit_ok {
    include!("answers/fit_ok.rs");
}

/// The answer against the reference fit directly, on many datasets of the project's generator
/// (signal strengths 0.7, 1.0, 1.3; 44, 55 and 110 bins): the largest pulls and error
/// differences. Slow: `cargo test -p agent --test fit_task -- --ignored`.
#[test]
#[ignore]
fn fit_answer_agrees_with_the_reference_on_generated_datasets() {
    use analysis::stage::{Binning, Cuts, Fit as _, FitModel, MakeHistogram, Reference, Select};
    let var = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let n = var("FIT_TOYS", 6.0) as u64;
    let events = var("FIT_EVENTS", 20_000.0) as usize;
    let strengths: Vec<f64> = std::env::var("FIT_STRENGTHS")
        .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![0.7, 1.0, 1.3]);
    let model = FitModel::default();
    let (mut worst_pull, mut worst_err, mut worst_z) = (0.0f64, 0.0f64, 0.0f64);
    for seed in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let (data, sim) = (dir.path().join("d.root"), dir.path().join("m.root"));
        let cfg = dataset::synth::Config {
            seed: 1000 + seed,
            data_events: events,
            mc_events: 10,
            signal_strength: strengths[seed as usize % strengths.len()],
            continuum_events: 0,
            ..Default::default()
        };
        dataset::synth::write_dataset(&cfg, &data, &sim, &data.with_extension("continuum.root"))
            .unwrap();
        let file = analysis::events::EventFile::open(&data).unwrap();
        let events = file.read(0..file.entries()).unwrap();
        let selected = Reference.select(&events, &Cuts::default()).unwrap();
        for bins in [44, 55, 110] {
            let b = Binning {
                bins,
                ..Binning::default()
            };
            let h = Reference.histogram(&selected.diphotons, &b).unwrap();
            let r = Reference.fit(&model, &h).unwrap();
            let t0 = std::time::Instant::now();
            let s = fit_ok::Stage.fit(&model, &h).unwrap();
            let dt = t0.elapsed().as_secs_f64();
            let mut line = format!(
                "seed {seed} bins {bins} ({dt:.2} s) {:?}/{:?}:",
                s.status, r.status
            );
            for (p, q) in s.params.iter().zip(&r.params) {
                let pull = (p.value - q.value).abs() / q.error.max(f64::MIN_POSITIVE);
                let d = (p.error - q.error).abs()
                    / q.error.abs().max(p.error.abs()).max(f64::MIN_POSITIVE);
                worst_pull = worst_pull.max(pull);
                worst_err = worst_err.max(d);
                line.push_str(&format!(" {} {:.4}σ {:.1e}", p.name, pull, d));
            }
            worst_z = worst_z.max((s.z - r.z).abs());
            line.push_str(&format!(
                " z {:.4}/{:.4} nll {:.6}/{:.6}",
                s.z, r.z, s.nll, r.nll
            ));
            if s.nll != r.nll && (s.z - r.z).abs() > 0.01 {
                line.push_str(&format!(
                    "\n   stage {:?}\n   reference {:?}",
                    s.values(),
                    r.values()
                ));
            }
            eprintln!("{line}");
        }
    }
    eprintln!("worst pull {worst_pull:.2e}σ, worst error difference {worst_err:.2e}, worst Δz {worst_z:.2e}");
    assert!(
        worst_pull <= 0.01 && worst_err <= 0.02 && worst_z <= 0.01,
        "see the lines above"
    );
}

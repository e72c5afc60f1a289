//! Toys generated from the fit to a fixture, refitted: the pulls of the signal mean and yield
//! are centred on 0 with unit width (loose bounds: 400 toys; `cargo xtask fit-toys` runs more),
//! and the study is reproducible whatever the thread count.

use analysis::fit::{fit, toys, FitModel};
use analysis::histogram::{Binning, Histogram};

fn fixture_histogram() -> Histogram {
    let r = &tests::reference()["data_2020_zlib.GamGam.root"];
    let mut h = Histogram::new(Binning::default());
    for (i, c) in r["hist_m_yy_105_160_1GeV"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        h.sumw[i] = c.as_f64().unwrap();
        h.sumw2[i] = h.sumw[i];
    }
    h
}

#[test]
fn pulls_of_mean_and_nsig_are_standard_normal() {
    let h = fixture_histogram();
    let truth = fit(&FitModel::default(), &h).unwrap().values();
    let report = toys::run(&FitModel::default(), &h, &truth, 400, 11);
    assert!(
        report.failed < 10,
        "{} of 400 toy fits failed",
        report.failed
    );
    // Every failed toy is counted under its reason.
    assert_eq!(
        report.failures.values().sum::<usize>(),
        report.failed,
        "{:?}",
        report.failures
    );
    for name in ["mean", "nsig"] {
        let p = report.pulls.iter().find(|p| p.param == name).unwrap();
        assert!(p.mean.abs() < 0.2, "{name}: pull mean {}", p.mean);
        assert!(
            (p.width - 1.0).abs() < 0.15,
            "{name}: pull width {}",
            p.width
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let again = pool.install(|| toys::run(&FitModel::default(), &h, &truth, 40, 11));
    let first40 = toys::run(&FitModel::default(), &h, &truth, 40, 11);
    assert_eq!(again, first40, "same toys, same result, any thread count");
}

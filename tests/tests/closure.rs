//! Closure of the simultaneous fit of the categories: signal injected at several strengths
//! into background-only pseudo-data (Poisson toys around the model's expectation, 200 per
//! strength) comes back unbiased — the mean pull of μ within three of its standard errors of
//! zero, the pulls' width near one.

use analysis::fit::simultaneous::{Channel, Model};
use analysis::histogram::{Binning, Histogram};
use analysis::rng::Rng;

#[test]
fn injected_signal_is_recovered_by_the_categorized_fit() {
    let binning = Binning {
        bins: 55,
        lo: 105.0,
        hi: 160.0,
    };
    // Four categories like the default dataset's: expected signal and background per category.
    let yields = [
        (260.0, 60_000.0),
        (115.0, 17_000.0),
        (50.0, 4_000.0),
        (6.0, 100.0),
    ];
    let channels: Vec<Channel> = yields
        .iter()
        .enumerate()
        .map(|(k, (s, _))| Channel {
            name: k.to_string(),
            data: Histogram::new(binning),
            signal_yield: *s,
        })
        .collect();
    let mut model = Model::new(channels, 1.6, (120.0, 130.0), None);
    for (k, (_, b)) in yields.iter().enumerate() {
        model.parameters[3 + 2 * k].init = *b;
        model.parameters[3 + 2 * k].hi = 10.0 * b;
    }
    model.parameters[1].init = 125.0; // the mass, held in the toy fits
    let mut truth: Vec<f64> = model.parameters.iter().map(|p| p.init).collect();
    let mut rng = Rng::new(2026);
    for mu in [0.0, 1.0, 3.0] {
        truth[0] = mu;
        let expected = model.expectation(&truth);
        let mut pulls = Vec::new();
        for _ in 0..200 {
            let toy: Vec<Vec<f64>> = expected
                .iter()
                .map(|h| h.iter().map(|&v| rng.poisson(v) as f64).collect())
                .collect();
            let (fitted, error) = model.fit_mu(&toy).unwrap();
            assert!(error > 0.0);
            pulls.push((fitted - mu) / error);
        }
        let n = pulls.len() as f64;
        let mean = pulls.iter().sum::<f64>() / n;
        let width = (pulls.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let se = width / n.sqrt();
        println!("μ = {mu}: mean pull {mean:.3} ± {se:.3}, width {width:.3}");
        assert!(mean.abs() < 3.0 * se, "μ = {mu}: mean pull {mean} ± {se}");
        assert!((width - 1.0).abs() < 0.15, "μ = {mu}: pull width {width}");
    }
}

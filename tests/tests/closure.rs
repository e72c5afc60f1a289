//! Closure of the simultaneous fit of the categories: signal injected at several strengths
//! into background-only pseudo-data (Poisson toys around the model's expectation, 200 per
//! strength, the constraints' auxiliary measurements drawn around their nominal values) comes
//! back unbiased — the mean pull of μ within three of its standard errors of
//! zero, the pulls' width near one.

use analysis::fit::simultaneous::{ChannelSpec, Model, SignalShape, Spec, Systematics};
use analysis::fit::{Background, Signal};
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
    let channels = yields
        .iter()
        .enumerate()
        .map(|(k, (s, _))| ChannelSpec::new(k.to_string(), Histogram::new(binning), *s))
        .collect();
    let spec = Spec {
        signal: SignalShape {
            shape: Signal::Gaussian,
            mass: 125.0,
            sigma: 1.6,
            tails: Default::default(),
        },
        background: Background::Exp,
        mass_range: (120.0, 130.0),
        systematics: Systematics::default(),
        blind: None,
    };
    let mut model = Model::build(channels, &spec);
    for (k, (_, b)) in yields.iter().enumerate() {
        let i = model.index(&format!("nbkg_{k}")).unwrap();
        model.parameters[i].init = *b;
        model.parameters[i].hi = 10.0 * b;
    }
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
            // The auxiliary measurements fluctuate too (each constraint's centre).
            let mut toy_model = model.clone();
            for p in toy_model.parameters.iter_mut() {
                if let Some(c) = &mut p.constraint {
                    c.centre = rng.gaus(c.centre, c.width);
                }
            }
            let (fitted, error) = toy_model.fit_mu(&toy).unwrap();
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

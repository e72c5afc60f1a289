//! Toy studies: generate histograms from a fitted model, fit each, and check that the pulls
//! (θ̂ − θ_true) / σ̂ are unbiased with unit width. Toy `i` uses seed `seed + i`, so the result
//! does not depend on the number of threads. A toy whose fit gives no pull is counted under
//! its reason (`ToyReport::failures`).

use super::{expected_per_bin, fit, FitError, FitModel, FitResult, FitStatus};
use crate::histogram::Histogram;
use crate::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pull statistics of one parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pull {
    /// Parameter name.
    pub param: String,
    /// True value the toys were generated with.
    pub truth: f64,
    /// Mean pull and its statistical error.
    pub mean: f64,
    /// Statistical error of the mean pull.
    pub mean_error: f64,
    /// Standard deviation of the pulls and its statistical error.
    pub width: f64,
    /// Statistical error of the pull width.
    pub width_error: f64,
    /// Each good toy's pull, in toy order (what a pull plot histograms).
    pub values: Vec<f64>,
}

/// What a toy study found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyReport {
    /// Number of toys generated.
    pub toys: usize,
    /// Toys whose fit failed or ended at a parameter bound (excluded from the pulls, which
    /// slightly biases them when a bound is often reached, e.g. for a weak signal).
    pub failed: usize,
    /// How many toys failed for each reason: the fit's error ("minimiser error" for the
    /// minimiser's), "Hessian not positive definite", "minimum not reached (EDM too large)"
    /// or "NAME at a bound".
    pub failures: BTreeMap<String, usize>,
    /// Pulls of each parameter that has an error (fixed ones are left out).
    pub pulls: Vec<Pull>,
}

/// A toy's fit `r` of `h` as (value, error) per parameter, or why it gives no pull (the
/// reasons of [`ToyReport::failures`]).
fn outcome(
    model: &FitModel,
    h: &Histogram,
    r: Result<FitResult, FitError>,
) -> Result<Vec<(f64, f64)>, String> {
    let r = r.map_err(|e| match e {
        FitError::Minimizer(_) => "minimiser error".to_string(),
        e => e.to_string(),
    })?;
    match r.status {
        FitStatus::Ok => Ok(r.params.iter().map(|p| (p.value, p.error)).collect()),
        // A Hessian that cannot be inverted leaves the covariance zero.
        FitStatus::Failed if r.covariance.iter().flatten().all(|&c| c == 0.0) => {
            Err("Hessian not positive definite".to_string())
        }
        FitStatus::Failed => Err("minimum not reached (EDM too large)".to_string()),
        FitStatus::AtBound => {
            // The bounds the fit used, and the minimiser's tolerance for "at" one.
            let names: Vec<String> = model
                .params(h.integral())
                .into_iter()
                .zip(&r.params)
                .filter(|(s, p)| {
                    let tol = 1e-6 * (s.hi - s.lo);
                    p.value - s.lo < tol || s.hi - p.value < tol
                })
                .map(|(s, _)| s.name)
                .collect();
            Err(if names.is_empty() {
                "a parameter at a bound".to_string()
            } else {
                format!("{} at a bound", names.join(", "))
            })
        }
    }
}

/// Runs `n` toys generated from `truth` (parameter values of `model`) with the binning of
/// `template`, and summarises the pulls of every parameter.
pub fn run(
    model: &FitModel,
    template: &Histogram,
    truth: &[f64],
    n: usize,
    seed: u64,
) -> ToyReport {
    let b = template.binning;
    let expected: Vec<f64> = (0..b.bins)
        .map(|i| expected_per_bin(model, template, truth, b.center(i)).0)
        .collect();
    let fits: Vec<Result<Vec<(f64, f64)>, String>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng::new(seed.wrapping_add(i as u64));
            let mut h = Histogram::new(b);
            for (k, &mu) in expected.iter().enumerate() {
                let c = rng.poisson(mu) as f64;
                h.sumw[k] = c;
                h.sumw2[k] = c;
            }
            outcome(model, &h, fit(model, &h))
        })
        .collect();
    let ok: Vec<&Vec<(f64, f64)>> = fits.iter().flatten().collect();
    let mut failures = BTreeMap::new();
    for why in fits.iter().filter_map(|f| f.as_ref().err()) {
        *failures.entry(why.clone()).or_insert(0) += 1;
    }
    let names = model.params(1.0);
    // Fixed parameters (the DSCB tails) have no error and no pull.
    let pulls = names
        .iter()
        .enumerate()
        .filter(|(k, _)| !ok.is_empty() && ok.iter().all(|f| f[*k].1 > 0.0))
        .map(|(k, spec)| {
            let v: Vec<f64> = ok.iter().map(|f| (f[k].0 - truth[k]) / f[k].1).collect();
            let m = v.len().max(1) as f64;
            let mean = v.iter().sum::<f64>() / m;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
            Pull {
                param: spec.name.clone(),
                truth: truth[k],
                mean,
                mean_error: (var / m).sqrt(),
                width: var.sqrt(),
                width_error: (var / (2.0 * (m - 1.0).max(1.0))).sqrt(),
                values: v,
            }
        })
        .collect();
    ToyReport {
        toys: n,
        failed: n - ok.len(),
        failures,
        pulls,
    }
}

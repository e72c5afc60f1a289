//! Histogram → fit: an extended binned maximum-likelihood fit of signal + background to the
//! m_γγ histogram, with Hessian errors and the discovery significance from q0.
//!
//! The likelihood is RooFit's for a `RooDataHist` (what `reference.py` fits): the normalised
//! densities are evaluated at bin centres,
//!
//! ```text
//! −ln L = (nsig + nbkg) − Σ_bins n_i · ln( nsig · s(x_i) + nbkg · b(x_i) )   (+ const)
//! ```
//!
//! `fit` never reads files: it takes a model ([`FitModel`]) and a [`Histogram`].

mod minimize;
mod model;
pub mod simultaneous;
pub mod spurious;
pub mod toys;

pub use minimize::invert_spd;
pub use model::{
    Background, Densities, DscbTails, FitModel, ParamSpec, Signal, MEAN, NBKG, NSIG, SIGMA,
};

use crate::histogram::Histogram;
use minimize::{minimize, Bound};
pub use stage_api::fit::{FitParam, FitResult, FitStatus};

/// Why a fit could not be run.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The fit model or the histogram's binning is invalid.
    #[error("invalid fit model: {0}")]
    Model(String),
    /// The histogram's integral is not positive.
    #[error("the histogram is empty: nothing to fit")]
    Empty,
    /// The minimisation failed.
    #[error("{0}")]
    Minimizer(String),
}

/// −ln L of the model with parameters `p` for bin contents `n` (see the module docs).
pub fn nll(model: &FitModel, hist: &Histogram, p: &[f64]) -> f64 {
    let b = &hist.binning;
    let d = Densities::new(model, p, b.lo, b.hi);
    let mut s = p[NSIG] + p[NBKG];
    for (i, &n) in hist.sumw.iter().enumerate() {
        if n == 0.0 {
            continue;
        }
        let x = b.center(i);
        let nu = p[NSIG] * d.signal(x) + p[NBKG] * d.background(x);
        if !(nu > 0.0) || !nu.is_finite() {
            return 1e30; // outside the physical region: a large finite penalty
        }
        s -= n * nu.ln();
    }
    s
}

/// Checks the inputs and returns the parameter specifications.
fn prepare(model: &FitModel, hist: &Histogram) -> Result<Vec<ParamSpec>, FitError> {
    let b = &hist.binning;
    b.validate().map_err(FitError::Model)?;
    model.validate(b.lo, b.hi).map_err(FitError::Model)?;
    let total = hist.integral();
    if total <= 0.0 {
        return Err(FitError::Empty);
    }
    Ok(model.params(total))
}

/// Minimises −ln L from `x0` with the parameters `fixed` held.
fn minimize_nll(
    model: &FitModel,
    hist: &Histogram,
    specs: &[ParamSpec],
    x0: &[f64],
    fixed: &[usize],
) -> Result<minimize::Minimum, FitError> {
    minimize(
        &|p: &[f64]| nll(model, hist, p),
        x0,
        &spec_bounds(specs, |i| fixed.contains(&i)),
    )
    .map_err(FitError::Minimizer)
}

/// The minimiser's bounds of `specs`, those for which `fixed` says so held.
fn spec_bounds(specs: &[ParamSpec], fixed: impl Fn(usize) -> bool) -> Vec<Bound> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| Bound {
            lo: s.lo,
            hi: s.hi,
            fixed: fixed(i),
        })
        .collect()
}

/// Fits `model` to `hist`. The DSCB tails (if any) are held at `model.dscb_tails`.
pub fn fit(model: &FitModel, hist: &Histogram) -> Result<FitResult, FitError> {
    let specs = prepare(model, hist)?;
    let x0: Vec<f64> = specs.iter().map(|s| s.init).collect();
    let tails: Vec<usize> = model.tail_params().collect();
    let best = minimize_nll(model, hist, &specs, &x0, &tails)?;

    // Background-only: nsig = 0 with the signal shape fixed at its best fit.
    let mut x_b = best.x.clone();
    x_b[NSIG] = 0.0;
    let fixed: Vec<usize> = std::iter::once(NSIG)
        .chain(2..2 + model.n_signal_shape())
        .collect();
    let bonly = minimize_nll(model, hist, &specs, &x_b, &fixed)?;
    let q0 = if best.x[NSIG] > 0.0 {
        (2.0 * (bonly.f - best.f)).max(0.0)
    } else {
        0.0
    };

    Ok(result(model, &specs, best, q0))
}

/// A minimum as a [`FitResult`]: its status, the named parameters with Hessian errors.
fn result(model: &FitModel, specs: &[ParamSpec], best: minimize::Minimum, q0: f64) -> FitResult {
    let status = if !best.hessian_ok || best.edm > 1e-3 {
        FitStatus::Failed
    } else if !best.at_bound.is_empty() {
        FitStatus::AtBound
    } else {
        FitStatus::Ok
    };
    FitResult {
        model: *model,
        params: specs
            .iter()
            .enumerate()
            .map(|(i, s)| FitParam {
                name: s.name.clone(),
                value: best.x[i],
                error: best.cov[i][i].max(0.0).sqrt(),
            })
            .collect(),
        covariance: best.cov,
        nll: best.f,
        edm: best.edm,
        status,
        q0,
        z: q0.sqrt(),
    }
}

/// The blinded fit: background only, to the bins outside `window` (by bin centre); the data
/// in the window are never read. The extended term counts the background expected in the
/// sidebands (its density summed over the sideband bins' centres × width, as the densities
/// are evaluated elsewhere), so `nbkg` stays the background over the whole range. `nsig` is
/// held at 0 and the signal shape at its initial values; q0 and Z are 0 (nothing is tested).
pub fn fit_sidebands(
    model: &FitModel,
    hist: &Histogram,
    window: (f64, f64),
) -> Result<FitResult, FitError> {
    let b = hist.binning;
    let outside: Vec<usize> = (0..b.bins)
        .filter(|&i| {
            let x = b.center(i);
            x < window.0 || x > window.1
        })
        .collect();
    let sideband = Histogram {
        sumw: (0..b.bins)
            .map(|i| {
                if outside.contains(&i) {
                    hist.sumw[i]
                } else {
                    0.0
                }
            })
            .collect(),
        ..hist.clone()
    };
    let specs = prepare(model, &sideband)?;
    let nll_sb = |p: &[f64]| -> f64 {
        let d = Densities::new(model, p, b.lo, b.hi);
        let mut expected = 0.0;
        let mut s = 0.0;
        for &i in &outside {
            let x = b.center(i);
            let nu = p[NBKG] * d.background(x);
            expected += nu * b.width();
            let n = hist.sumw[i];
            if n == 0.0 {
                continue;
            }
            if !(nu > 0.0) || !nu.is_finite() {
                return 1e30;
            }
            s -= n * nu.ln();
        }
        s + expected
    };
    let mut x0: Vec<f64> = specs.iter().map(|s| s.init).collect();
    x0[NSIG] = 0.0;
    // Only the background's normalisation and shape float (the signal's shape parameters,
    // tails included, sit at 2..2 + n_signal_shape).
    let bounds = spec_bounds(&specs, |i| {
        i == NSIG || (2..2 + model.n_signal_shape()).contains(&i)
    });
    let best = minimize(&nll_sb, &x0, &bounds).map_err(FitError::Minimizer)?;
    Ok(result(model, &specs, best, 0.0))
}

/// Fits the DSCB tails (and mean, width) to a signal-only histogram, the signal MC: no
/// background, all signal shape parameters free. Returns the tails to hold in the data fit.
pub fn fit_signal_tails(model: &FitModel, signal_mc: &Histogram) -> Result<DscbTails, FitError> {
    if model.signal != Signal::Dscb {
        return Ok(model.dscb_tails);
    }
    let specs = prepare(model, signal_mc)?;
    let mut x0: Vec<f64> = specs.iter().map(|s| s.init).collect();
    x0[NSIG] = signal_mc.integral();
    x0[NBKG] = 0.0;
    let fixed: Vec<usize> = std::iter::once(NBKG)
        .chain(2 + model.n_signal_shape()..specs.len())
        .collect();
    // A signal without tails (e.g. a pure Gaussian) leaves the tail parameters unconstrained:
    // any point on the flat direction fits equally well, so the minimum is used as found even
    // when the Hessian is singular there.
    let m = minimize_nll(model, signal_mc, &specs, &x0, &fixed)?;
    Ok(DscbTails {
        alpha_lo: m.x[4],
        n_lo: m.x[5],
        alpha_hi: m.x[6],
        n_hi: m.x[7],
    })
}

/// Expected events per bin at `x` for parameters `p`: (signal + background, background only).
pub fn expected_per_bin(model: &FitModel, hist: &Histogram, p: &[f64], x: f64) -> (f64, f64) {
    let b = &hist.binning;
    let d = Densities::new(model, p, b.lo, b.hi);
    let w = b.width();
    let bkg = p[NBKG] * d.background(x) * w;
    (p[NSIG] * d.signal(x) * w + bkg, bkg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Binning;

    /// An exponential background (slope −0.03) with a peak at 125 GeV cut to 120–130 GeV,
    /// 55 bins on 105–160.
    fn spectrum(peak: f64) -> Histogram {
        let b = Binning::default();
        let mut h = Histogram::new(b);
        for i in 0..b.bins {
            let x = b.center(i);
            let signal = if (120.0..130.0).contains(&x) {
                peak * (-0.5 * ((x - 125.0) / 1.7f64).powi(2)).exp()
            } else {
                0.0
            };
            let n = (4000.0 * (-0.03 * (x - 105.0)).exp() + signal).round();
            h.sumw[i] = n;
            h.sumw2[i] = n;
        }
        h
    }

    #[test]
    fn the_blinded_fit_never_reads_the_window_and_finds_the_background() {
        let model = FitModel::default();
        let window = (120.0, 130.0);
        let with_peak = fit_sidebands(&model, &spectrum(900.0), window).unwrap();
        let without = fit_sidebands(&model, &spectrum(0.0), window).unwrap();
        // Only bins in the window differ between the two spectra: the fits are identical.
        assert_eq!(with_peak, without);
        assert_eq!(with_peak.status, FitStatus::Ok);
        let p = with_peak.values();
        assert_eq!(p[NSIG], 0.0);
        assert_eq!((with_peak.q0, with_peak.z), (0.0, 0.0));
        // The background over the whole range: the sum of the exponential's bins.
        let truth: f64 = spectrum(0.0).sumw.iter().sum();
        assert!(
            (p[NBKG] / truth - 1.0).abs() < 0.02,
            "{} vs {truth}",
            p[NBKG]
        );
        let slope = with_peak.param("slope").unwrap();
        assert!(
            (slope.value + 0.03).abs() < 3.0 * slope.error + 1e-3,
            "{slope:?}"
        );
        // Unblinded, the same data do show the peak.
        assert!(fit(&model, &spectrum(900.0)).unwrap().z > 5.0);
    }
}

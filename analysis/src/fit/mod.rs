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
    #[error("invalid fit model: {0}")]
    Model(String),
    #[error("the histogram is empty: nothing to fit")]
    Empty,
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
    let bounds: Vec<Bound> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| Bound {
            lo: s.lo,
            hi: s.hi,
            fixed: fixed.contains(&i),
        })
        .collect();
    minimize(&|p: &[f64]| nll(model, hist, p), x0, &bounds).map_err(FitError::Minimizer)
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

    let status = if !best.hessian_ok || best.edm > 1e-3 {
        FitStatus::Failed
    } else if !best.at_bound.is_empty() {
        FitStatus::AtBound
    } else {
        FitStatus::Ok
    };
    Ok(FitResult {
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
    })
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

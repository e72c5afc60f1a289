//! The simultaneous fit of the categories: one likelihood over every category's m_γγ
//! histogram with a shared signal strength μ and Higgs mass, each category's signal yield
//! μ × its expected yield from MC, and its own exponential background (normalisation and
//! slope). The model is data, as in pyhf: named parameters with initial values, bounds and a
//! fixed flag ([`Parameter`]), and channels ([`Channel`]); nothing is addressed by position
//! outside this file.
//!
//! ```text
//! −ln L = Σ_k Σ_i (ν_ki − n_ki ln ν_ki),
//! ν_ki = w · (μ s_k G(x_i; m_H, σ) + b_k E(x_i; c_k))     (densities normalised on the range)
//! ```
//!
//! Blinded, the bins inside the signal window are left out of every sum. Errors from the
//! Hessian; q0 from the fit with μ = 0 (mass and σ held); the expected significance from the
//! Asimov dataset of the fitted background plus μ = 1.

use super::minimize::{minimize, Bound};
use super::model::{Densities, FitModel};
use crate::histogram::Histogram;
use serde::{Deserialize, Serialize};

/// One named parameter of the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// Parameter name (`mu`, `mass`, `sigma`, `nbkg_K`, `slope_K`).
    pub name: String,
    /// Initial value.
    pub init: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Whether the parameter is held at `init` in the fit.
    pub fixed: bool,
}

/// One category: its data and its expected signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Channel name (`K` in the `nbkg_K` and `slope_K` parameters).
    pub name: String,
    /// The category's data m_γγ histogram.
    pub data: Histogram,
    /// Expected signal events over the whole range at μ = 1 (from MC).
    pub signal_yield: f64,
}

/// The model: parameters `mu`, `mass`, `sigma`, then `nbkg_K` and `slope_K` per channel K.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Named parameters, in the order above.
    pub parameters: Vec<Parameter>,
    /// The categories fitted together.
    pub channels: Vec<Channel>,
    /// Bins whose centre is in this window are left out (blinded).
    pub blind: Option<(f64, f64)>,
}

/// A fitted parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// Parameter name.
    pub name: String,
    /// Best-fit value.
    #[serde(with = "stage_api::finite")]
    pub value: f64,
    /// Error from the Hessian.
    #[serde(with = "stage_api::finite")]
    pub error: f64,
}

/// What the simultaneous fit found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    /// Every parameter's fitted value and error, in model order.
    pub parameters: Vec<Fitted>,
    /// Best-fit signal strength μ.
    #[serde(with = "stage_api::finite")]
    pub mu: f64,
    /// Error on μ from the Hessian.
    #[serde(with = "stage_api::finite")]
    pub mu_error: f64,
    /// Observed (None when blinded) and expected (Asimov, μ = 1) discovery tests.
    #[serde(default, with = "stage_api::finite::option")]
    pub q0: Option<f64>,
    /// Observed significance √q0 (`None` when blinded).
    #[serde(default, with = "stage_api::finite::option")]
    pub z: Option<f64>,
    /// Expected significance (Asimov dataset, μ = 1).
    #[serde(with = "stage_api::finite")]
    pub z_expected: f64,
    /// Whether the signal window was blinded (μ held at 0, no observed test).
    pub blinded: bool,
    /// Whether the Hessian was positive definite at the minimum.
    pub hessian_ok: bool,
    /// Free parameters that ended at a bound (their errors mean nothing there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_bound: Vec<String>,
    /// Every minimisation behind these numbers, and how each ended.
    #[serde(default)]
    pub fits: Vec<FitRecord>,
}

/// One minimisation behind a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitRecord {
    /// Which: `best` (the fit), `mu=0` (the background-only fit behind q0), `asimov` and
    /// `asimov mu=0` (the two behind the expected Z).
    pub fit: String,
    /// `failed`: the Hessian is not positive definite; `at_bound`: a free parameter ended at a
    /// bound; else `ok`.
    pub status: stage_api::FitStatus,
    /// Estimated distance to the minimum.
    #[serde(with = "stage_api::finite")]
    pub edm: f64,
    /// −ln L at the minimum.
    #[serde(with = "stage_api::finite")]
    pub nll: f64,
}

impl FitRecord {
    fn of(fit: &str, m: &super::minimize::Minimum, fixed: &[usize]) -> Self {
        let status = if !m.hessian_ok {
            stage_api::FitStatus::Failed
        } else if m.at_bound.iter().any(|i| !fixed.contains(i)) {
            stage_api::FitStatus::AtBound
        } else {
            stage_api::FitStatus::Ok
        };
        Self {
            fit: fit.into(),
            status,
            edm: m.edm,
            nll: m.f,
        }
    }
}

/// The categorized fit and, for comparison, the same model on one inclusive category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fits {
    /// The same model on one inclusive category.
    pub inclusive: Combined,
    /// The simultaneous fit of the categories.
    pub combined: Combined,
    /// The categorized model (its channels hold the data histograms), for the plots.
    pub model: Model,
}

impl Model {
    /// The standard parameters for `channels`: μ in [−5, 20], the mass in `mass_range`, σ
    /// fixed at `sigma` (from the signal MC), per channel a background normalisation around
    /// its data and a slope.
    pub fn new(
        channels: Vec<Channel>,
        sigma: f64,
        mass_range: (f64, f64),
        blind: Option<(f64, f64)>,
    ) -> Self {
        let mut parameters = vec![
            Parameter {
                name: "mu".into(),
                init: 1.0,
                lo: -5.0,
                hi: 20.0,
                fixed: false,
            },
            Parameter {
                name: "mass".into(),
                init: 0.5 * (mass_range.0 + mass_range.1),
                lo: mass_range.0,
                hi: mass_range.1,
                fixed: false,
            },
            Parameter {
                name: "sigma".into(),
                init: sigma,
                lo: 0.1,
                hi: 10.0,
                fixed: true,
            },
        ];
        let kept = |x: f64| blind.is_none_or(|(a, b)| x < a || x > b);
        for c in &channels {
            // The data seen (blinded: the sidebands, scaled to the whole range by bin count),
            // so that not even the fit's starting point depends on a blinded window.
            let b = &c.data.binning;
            let seen: Vec<usize> = (0..b.bins).filter(|&i| kept(b.center(i))).collect();
            let n = (seen.iter().map(|&i| c.data.sumw[i]).sum::<f64>() * b.bins as f64
                / seen.len().max(1) as f64)
                .max(1.0);
            parameters.push(Parameter {
                name: format!("nbkg_{}", c.name),
                init: n,
                lo: 0.0,
                hi: 10.0 * n + 100.0,
                fixed: false,
            });
            parameters.push(Parameter {
                name: format!("slope_{}", c.name),
                init: -0.03,
                lo: -0.3,
                hi: 0.2,
                fixed: false,
            });
        }
        Self {
            parameters,
            channels,
            blind,
        }
    }

    fn index(&self, name: &str) -> usize {
        self.parameters
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }

    fn kept(&self, h: &Histogram, i: usize) -> bool {
        let x = h.binning.center(i);
        self.blind.is_none_or(|(a, b)| x < a || x > b)
    }

    /// Expected events per bin of channel `k` at `p`.
    fn expected(&self, k: usize, p: &[f64]) -> Vec<f64> {
        let c = &self.channels[k];
        let b = &c.data.binning;
        let (mu, mass, sigma) = (p[0], p[1], p[2]);
        let (nb, slope) = (p[3 + 2 * k], p[4 + 2 * k]);
        let model = FitModel::default(); // Gaussian + exponential
        let q = [0.0, 0.0, mass, sigma, slope];
        let d = Densities::new(&model, &q, b.lo, b.hi);
        (0..b.bins)
            .map(|i| {
                let x = b.center(i);
                b.width() * (mu * c.signal_yield * d.signal(x) + nb * d.background(x))
            })
            .collect()
    }

    /// −ln L at `p` against `data` (one histogram per channel).
    fn nll(&self, p: &[f64], data: &[Vec<f64>]) -> f64 {
        let mut s = 0.0;
        for k in 0..self.channels.len() {
            let nu = self.expected(k, p);
            let h = &self.channels[k].data;
            for (i, &v) in nu.iter().enumerate() {
                if !self.kept(h, i) {
                    continue;
                }
                if !(v > 0.0) || !v.is_finite() {
                    return 1e30;
                }
                let n = data[k][i];
                s += v - if n > 0.0 { n * v.ln() } else { 0.0 };
            }
        }
        s
    }

    fn bounds(&self, extra_fixed: &[usize]) -> Vec<Bound> {
        self.parameters
            .iter()
            .enumerate()
            .map(|(i, p)| Bound {
                lo: p.lo,
                hi: p.hi,
                fixed: p.fixed || extra_fixed.contains(&i),
            })
            .collect()
    }

    /// Fits `data` from `x0`, holding `fixed`.
    fn minimum(
        &self,
        data: &[Vec<f64>],
        x0: &[f64],
        fixed: &[usize],
    ) -> Result<super::minimize::Minimum, super::FitError> {
        minimize(&|p: &[f64]| self.nll(p, data), x0, &self.bounds(fixed))
            .map_err(super::FitError::Minimizer)
    }

    /// The fit, the discovery test and the expected significance.
    pub fn fit(&self) -> Result<Combined, super::FitError> {
        let data: Vec<Vec<f64>> = self.channels.iter().map(|c| c.data.sumw.clone()).collect();
        let x0: Vec<f64> = self.parameters.iter().map(|p| p.init).collect();
        let (mu, mass) = (self.index("mu"), self.index("mass"));
        let blinded = self.blind.is_some();
        // Blinded: μ cannot be measured; the background comes from the sidebands (μ = 0).
        let best_fixed: &[usize] = if blinded { &[mu, mass] } else { &[] };
        let best = if blinded {
            let mut x = x0.clone();
            x[mu] = 0.0;
            self.minimum(&data, &x, best_fixed)?
        } else {
            self.minimum(&data, &x0, best_fixed)?
        };
        let mut fits = vec![FitRecord::of("best", &best, best_fixed)];
        let q0 = if blinded {
            None
        } else {
            let mut x = best.x.clone();
            x[mu] = 0.0;
            let bonly = self.minimum(&data, &x, &[mu, mass])?;
            fits.push(FitRecord::of("mu=0", &bonly, &[mu, mass]));
            Some(if best.x[mu] > 0.0 {
                (2.0 * (bonly.f - best.f)).max(0.0)
            } else {
                0.0
            })
        };
        let (z_expected, asimov) = self.asimov_z(&best.x)?;
        fits.extend(asimov);
        Ok(Combined {
            parameters: self
                .parameters
                .iter()
                .enumerate()
                .map(|(i, p)| Fitted {
                    name: p.name.clone(),
                    value: best.x[i],
                    error: best.cov[i][i].max(0.0).sqrt(),
                })
                .collect(),
            mu: best.x[mu],
            mu_error: best.cov[mu][mu].max(0.0).sqrt(),
            q0,
            z: q0.map(f64::sqrt),
            z_expected,
            blinded,
            hessian_ok: best.hessian_ok,
            at_bound: best
                .at_bound
                .iter()
                .filter(|&&i| !(blinded && (i == mu || i == mass)))
                .map(|&i| self.parameters[i].name.clone())
                .collect(),
            fits,
        })
    }

    /// √q0 on the Asimov dataset of the background at `p` plus μ = 1 (mass at its initial
    /// value, the signal MC's).
    pub fn expected_z(&self, p: &[f64]) -> Result<f64, super::FitError> {
        Ok(self.asimov_z(p)?.0)
    }

    /// [`Model::expected_z`] and the records of its two fits.
    fn asimov_z(&self, p: &[f64]) -> Result<(f64, [FitRecord; 2]), super::FitError> {
        let (mu, mass) = (self.index("mu"), self.index("mass"));
        let mut truth = p.to_vec();
        truth[mu] = 1.0;
        truth[mass] = self.parameters[mass].init;
        let asimov: Vec<Vec<f64>> = (0..self.channels.len())
            .map(|k| self.expected(k, &truth))
            .collect();
        // Unblinded for the expectation: the Asimov data are not data.
        let open = Model {
            blind: None,
            ..self.clone()
        };
        let free = open.minimum(&asimov, &truth, &[mass])?;
        let mut x = truth.clone();
        x[mu] = 0.0;
        let bonly = open.minimum(&asimov, &x, &[mu, mass])?;
        let records = [
            FitRecord::of("asimov", &free, &[mass]),
            FitRecord::of("asimov mu=0", &bonly, &[mu, mass]),
        ];
        Ok(((2.0 * (bonly.f - free.f)).max(0.0).sqrt(), records))
    }

    /// Fits pseudo-data `data` (one histogram per channel) with the mass held at its initial
    /// value (a known Higgs mass: a floating mass on a background-only toy looks elsewhere):
    /// the fitted μ and its error.
    pub fn fit_mu(&self, data: &[Vec<f64>]) -> Result<(f64, f64), super::FitError> {
        let x0: Vec<f64> = self.parameters.iter().map(|p| p.init).collect();
        let (mu, mass) = (self.index("mu"), self.index("mass"));
        let m = self.minimum(data, &x0, &[mass])?;
        Ok((m.x[mu], m.cov[mu][mu].max(0.0).sqrt()))
    }

    /// Expected background events per bin of channel `k` at `p` (μ = 0).
    pub fn background(&self, k: usize, p: &[f64]) -> Vec<f64> {
        let mut q = p.to_vec();
        q[0] = 0.0;
        self.expected(k, &q)
    }

    /// Expected events per bin of every channel at `p`.
    pub fn expectation(&self, p: &[f64]) -> Vec<Vec<f64>> {
        (0..self.channels.len())
            .map(|k| self.expected(k, p))
            .collect()
    }

    /// The parameter vector of `c` (values by name).
    pub fn values(&self, c: &Combined) -> Vec<f64> {
        self.parameters
            .iter()
            .map(|p| {
                c.parameters
                    .iter()
                    .find(|f| f.name == p.name)
                    .map_or(p.init, |f| f.value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Binning;

    /// Two categories built from the model itself at μ = 1 (an Asimov dataset): the fit
    /// returns μ = 1 and the truth's mass.
    #[test]
    fn an_asimov_dataset_fits_back_to_its_truth() {
        let binning = Binning {
            bins: 55,
            lo: 105.0,
            hi: 160.0,
        };
        let empty = |n: f64| {
            let mut h = Histogram::new(binning);
            h.sumw = vec![n; 55];
            h
        };
        let channels = vec![
            Channel {
                name: "0".into(),
                data: empty(100.0),
                signal_yield: 60.0,
            },
            Channel {
                name: "1".into(),
                data: empty(10.0),
                signal_yield: 30.0,
            },
        ];
        let mut m = Model::new(channels, 1.6, (120.0, 130.0), None);
        let truth = [1.0, 125.0, 1.6, 5000.0, -0.03, 400.0, -0.02];
        let exp = m.expectation(&truth);
        for (c, e) in m.channels.iter_mut().zip(&exp) {
            c.data.sumw = e.clone();
        }
        let r = m.fit().unwrap();
        assert!((r.mu - 1.0).abs() < 1e-3, "{r:?}");
        let mass = r.parameters.iter().find(|p| p.name == "mass").unwrap();
        assert!((mass.value - 125.0).abs() < 1e-2, "{mass:?}");
        assert!(r.hessian_ok && r.mu_error > 0.0);
        assert!(r.at_bound.is_empty(), "{:?}", r.at_bound);
        // On its own Asimov dataset, observed and expected agree.
        assert!(
            (r.z.unwrap() - r.z_expected).abs() < 0.05 * r.z_expected,
            "{r:?}"
        );

        // The same data with the signal expectation 40 times too small (data of 40 periods
        // read with one period's luminosity): μ runs into its bound, and the fit says so.
        for c in m.channels.iter_mut() {
            c.signal_yield /= 40.0;
        }
        let r = m.fit().unwrap();
        assert!(r.at_bound.contains(&"mu".to_string()), "{r:?}");
    }
}

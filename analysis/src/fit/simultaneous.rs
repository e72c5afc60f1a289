//! The statistical model of the categories, as data (pyhf's HistFactory in spirit): channels
//! (one per category, each with its data histogram and three samples), named parameters with
//! bounds and Gaussian constraints, and one function that builds it from the configuration
//! ([`Model::build`]). Every number the categorized result quotes comes from fits of this
//! object; [`Model::workspace`] writes it as a pyhf JSON workspace.
//!
//! ```text
//! ν_ki = lumi · μ · s_k · S_i(m, σ)  +  θ_spur,k · S_spur,k · S_i(m, σ)  +  nbkg_k · B_i(shape_k)
//!   m = mass · (1 + δ_scale θ_scale),   σ = σ_MC · (1 + δ_res θ_res)
//! −ln L = Σ_k Σ_i (ν_ki − n_ki ln ν_ki) + Σ_constrained (θ − centre)² / (2 width²)
//! ```
//!
//! `S_i` and `B_i` are the shapes' exact integrals over bin i, normalised on the fit range
//! (so `Σ_i ν_ki` is the exact extended term — RooFit's bin-integrated binned likelihood, not
//! densities at bin centres). The signal shape (`--signal`: Gaussian or DSCB) comes from a fit
//! to the signal MC ([`fit_signal`]); every category has the configured background function
//! (`--background`: exponential or Bernstein) with its own normalisation and shape parameters.
//!
//! Nuisance parameters, named as pyhf names modifiers: `lumi` (luminosity, multiplicative on the
//! signal), `photon_resolution` and `photon_scale` (the signal's width and position),
//! `spurious_K` (an additive signal-shaped yield in category K: the background function's bias).
//! Each has a Gaussian constraint; they are profiled in every fit, and results.json lists their
//! pulls and their impacts on μ.
//!
//! Fits (each recorded with status and EDM): `best` (mass floating: m_H and the local
//! significance), `fixed mass` (mass at the signal MC's peak: the μ to quote, its pulls and
//! impacts), `mu=0` and `mu=0 at m_H` (behind q0 at the nominal and at the fitted mass: the
//! spurious signal's shape sits at the mass), `mu=1` (the conditional fit the Asimov data come
//! from),
//! `asimov` and `asimov mu=0` (the expected significance, at the fixed mass like the observed
//! one). Blinded, the bins inside the window are left out of every sum, μ is not fitted, and
//! only expected results are made.

use super::minimize::{fisher, minimize, polish, Bound, Minimum, Poisson};
use super::model::{Background, Densities, DscbTails, FitModel, Signal};
use crate::histogram::Histogram;
use serde::{Deserialize, Serialize};
use stage_api::FitStatus;

/// The systematic uncertainties the model carries (relative sizes of one standard deviation).
///
/// These are the analysis's stated assumptions, written into results.json with the model:
/// the photon energy resolution and scale uncertainties are of the size ATLAS quotes for
/// H → γγ with Run 2 photons (width ~10 %, peak position ~0.3 %), the luminosity uncertainty is
/// that of the 2015–16 dataset (1.7 %).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Systematics {
    /// Relative uncertainty on the signal's width (photon energy resolution).
    pub resolution: f64,
    /// Relative uncertainty on the signal's position (photon energy scale).
    pub scale: f64,
    /// Relative uncertainty on the integrated luminosity.
    pub lumi: f64,
    /// The spurious signal assigned to each category, as a fraction of its expected signal
    /// (the bias a background function may have; the spurious-signal test's acceptance
    /// threshold, used until it is measured).
    pub spurious_fraction: f64,
}

impl Default for Systematics {
    fn default() -> Self {
        Self {
            resolution: 0.10,
            scale: 0.003,
            lumi: 0.017,
            spurious_fraction: 0.10,
        }
    }
}

/// A Gaussian constraint term on a parameter: (θ − centre)² / (2 width²) in −ln L.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    /// The auxiliary measurement (0 for a θ, 1 for `lumi`; an Asimov dataset's own).
    pub centre: f64,
    /// Its standard deviation.
    pub width: f64,
}

/// One named parameter of the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// Parameter name (`mu`, `mass`, `photon_resolution`, `photon_scale`, `lumi`, and per
    /// channel K `spurious_K`, `nbkg_K` and its background shape's `slope_K` or `bern_K_j`).
    pub name: String,
    /// Initial value.
    pub init: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Whether the parameter is held at `init` in every fit.
    pub fixed: bool,
    /// A nuisance parameter's constraint (`None`: free, or fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
}

/// The signal's shape, from the fit to the signal MC.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalShape {
    /// Gaussian or DSCB (`--signal`).
    pub shape: Signal,
    /// The peak position fitted to the MC (GeV): the nominal Higgs mass.
    pub mass: f64,
    /// The width fitted to the MC (GeV).
    pub sigma: f64,
    /// The DSCB tails fitted to the MC (unused for a Gaussian).
    pub tails: DscbTails,
}

/// One category: its data and what is expected in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Channel name (`K` in its parameters' names).
    pub name: String,
    /// The category's data m_γγ histogram.
    pub data: Histogram,
    /// Expected signal events over the whole range at μ = 1 (from MC).
    pub signal_yield: f64,
    /// The spurious signal of the category's background function (events; one standard
    /// deviation of `spurious_K`).
    pub spurious: f64,
    /// The category's background function.
    pub background: Background,
}

/// One category as [`Model::build`] takes it.
#[derive(Clone, Debug)]
pub struct ChannelSpec {
    /// Channel name (`K` in its parameters' names).
    pub name: String,
    /// The category's data m_γγ histogram.
    pub data: Histogram,
    /// Expected signal events over the whole range at μ = 1 (from MC).
    pub signal_yield: f64,
    /// Its background function (`None`: the configured one, [`Spec::background`]).
    pub background: Option<Background>,
    /// Its spurious signal in events (`None`: [`Systematics::spurious_fraction`] of the signal).
    pub spurious: Option<f64>,
}

impl ChannelSpec {
    /// A category with the configured background function and spurious signal.
    pub fn new(name: impl Into<String>, data: Histogram, signal_yield: f64) -> Self {
        Self {
            name: name.into(),
            data,
            signal_yield,
            background: None,
            spurious: None,
        }
    }
}

/// The model: parameters, channels, the signal shape and the background function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Named parameters: the five shared ones ([`GLOBAL`]), then each channel's.
    pub parameters: Vec<Parameter>,
    /// The categories fitted together.
    pub channels: Vec<Channel>,
    /// The signal shape (the same in every category).
    pub signal: SignalShape,
    /// The systematic uncertainties' sizes.
    pub systematics: Systematics,
    /// Bins whose centre is in this window are left out (blinded).
    pub blind: Option<(f64, f64)>,
}

/// The shared parameters, in order (their indices: `MU`, `MASS`, `RES`, `SCALE`, `LUMI`).
pub const GLOBAL: [&str; 5] = ["mu", "mass", "photon_resolution", "photon_scale", "lumi"];
/// The range of a constrained θ: wide enough that no bound cuts the constraint off where the
/// data could push it (a background-only fit of data with a strong signal pulls the spurious
/// signal's θ well past 5, which costs (θ²/2) in −ln L and is what q0 must include).
const THETA: f64 = 20.0;
const MU: usize = 0;
const MASS: usize = 1;
const RES: usize = 2;
const SCALE: usize = 3;
const LUMI: usize = 4;

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
    /// A nuisance parameter's pull, (value − centre) / width, and its post-fit error in units
    /// of the width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<(f64, f64)>,
    /// A nuisance parameter's impact on μ: Δμ when it is held at its value + and − its error
    /// and the rest refitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<(f64, f64)>,
}

/// What the fits of the model found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    /// Every parameter at the quoted fit (`fixed mass`; blinded: `best`), in model order.
    pub parameters: Vec<Fitted>,
    /// μ at the nominal mass: the signal strength to quote (0 when blinded).
    #[serde(with = "stage_api::finite")]
    pub mu: f64,
    /// Its error from the Hessian, nuisance parameters profiled.
    #[serde(with = "stage_api::finite")]
    pub mu_error: f64,
    /// The Higgs mass fitted with μ (`None` when blinded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass: Option<Fitted>,
    /// q0 at the nominal mass (`None` when blinded).
    #[serde(default, with = "stage_api::finite::option")]
    pub q0: Option<f64>,
    /// Observed significance √q0 at the nominal mass — like for like with `z_expected`.
    #[serde(default, with = "stage_api::finite::option")]
    pub z: Option<f64>,
    /// Local observed significance with the mass floating in its range (`None` when blinded).
    #[serde(default, with = "stage_api::finite::option")]
    pub z_local: Option<f64>,
    /// Expected significance at the nominal mass: Asimov data from the conditional μ = 1 fit.
    #[serde(with = "stage_api::finite")]
    pub z_expected: f64,
    /// Whether the signal window was blinded (μ held at 0, no observed test).
    pub blinded: bool,
    /// Whether the quoted fit's Hessian was positive definite.
    pub hessian_ok: bool,
    /// Free parameters of the quoted fit that ended at a bound (their errors mean nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_bound: Vec<String>,
    /// Every minimisation behind these numbers, and how each ended.
    #[serde(default)]
    pub fits: Vec<FitRecord>,
}

/// One minimisation behind a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitRecord {
    /// Which (see the module docs; impacts are `impact NAME +` and `impact NAME -`).
    pub fit: String,
    /// `failed`: the Hessian is not positive definite; `at_bound`: a free parameter ended at a
    /// bound; else `ok`.
    pub status: FitStatus,
    /// Estimated distance to the minimum.
    #[serde(with = "stage_api::finite")]
    pub edm: f64,
    /// −ln L at the minimum.
    #[serde(with = "stage_api::finite")]
    pub nll: f64,
    /// The free parameters that ended at a bound, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_bound: Vec<String>,
}

impl FitRecord {
    /// The record of minimum `m` of the fit called `fit`, `fixed` held; `name` names a
    /// parameter by index (for those at a bound).
    fn of(fit: &str, m: &Minimum, fixed: &[usize], name: impl Fn(usize) -> String) -> Self {
        let at_bound: Vec<String> = m
            .at_bound
            .iter()
            .filter(|i| !fixed.contains(i))
            .map(|&i| name(i))
            .collect();
        let status = if !m.hessian_ok {
            FitStatus::Failed
        } else if !at_bound.is_empty() {
            FitStatus::AtBound
        } else {
            FitStatus::Ok
        };
        Self {
            fit: fit.into(),
            status,
            edm: m.edm,
            nll: m.f,
            at_bound,
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
    /// The fit of the signal shape to the signal MC.
    pub signal_fit: FitRecord,
    /// The spurious-signal test per category, then on the inclusive one (empty without a
    /// continuum template).
    #[serde(default)]
    pub spurious: Vec<super::spurious::SpuriousTest>,
}

/// Fits the signal shape (`shape`) to the signal MC histogram: peak, width and — for a DSCB —
/// the tails, by a binned likelihood of the bin-integrated shape (the MC's shape only; its
/// normalisation is the signal yield). A Gaussian is fitted to the core, the bins within 5 GeV
/// of the mass range (a Gaussian has no room for the MC's few far outliers, which would widen
/// it); a DSCB to the whole range, its tails taking them. The record says whether a parameter
/// sits at a bound.
pub fn fit_signal(
    shape: Signal,
    mc: &Histogram,
    mass_range: (f64, f64),
) -> Result<(SignalShape, FitRecord), super::FitError> {
    let full = mc.binning;
    let bins: Vec<usize> = (0..full.bins)
        .filter(|&i| {
            shape == Signal::Dscb
                || (full.edge(i) >= mass_range.0 - 5.0 - 1e-9
                    && full.edge(i + 1) <= mass_range.1 + 5.0 + 1e-9)
        })
        .collect();
    let (Some(&first), Some(&last)) = (bins.first(), bins.last()) else {
        return Err(super::FitError::Empty);
    };
    let (lo, hi) = (full.edge(first), full.edge(last + 1));
    if bins.iter().map(|&i| mc.sumw[i]).sum::<f64>() <= 0.0 {
        return Err(super::FitError::Empty);
    }
    let model = FitModel {
        signal: shape,
        background: Background::Exp,
        mean_range: mass_range,
        ..FitModel::default()
    };
    // FitModel's layout: nsig, nbkg, mean, sigma, tails…, slope (unused here).
    let specs = model.params(mc.integral());
    let mut x0: Vec<f64> = specs.iter().map(|s| s.init).collect();
    x0[3] = 1.5;
    let nll = |p: &[f64]| {
        let d = Densities::new(&model, p, lo, hi);
        let mut s = 0.0;
        for &i in &bins {
            let n = mc.sumw[i];
            if n != 0.0 {
                let q = d.signal_in(full.edge(i), full.edge(i + 1));
                if !(q > 0.0) || !q.is_finite() {
                    return 1e30;
                }
                s -= n * q.ln();
            }
        }
        s
    };
    let shape_params = 2..2 + model.n_signal_shape();
    let bounds = super::spec_bounds(&specs, |i| !shape_params.contains(&i));
    let fixed: Vec<usize> = (0..specs.len())
        .filter(|i| !shape_params.contains(i))
        .collect();
    let m = minimize(&nll, &x0, &bounds).map_err(super::FitError::Minimizer)?;
    let tails = match shape {
        Signal::Gaussian => DscbTails::default(),
        Signal::Dscb => DscbTails {
            alpha_lo: m.x[4],
            n_lo: m.x[5],
            alpha_hi: m.x[6],
            n_hi: m.x[7],
        },
    };
    let record = FitRecord::of("signal MC", &m, &fixed, |i| specs[i].name.clone());
    Ok((
        SignalShape {
            shape,
            mass: m.x[2],
            sigma: m.x[3],
            tails,
        },
        record,
    ))
}

/// What [`Model::build`] needs of the configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    /// The signal shape from the MC ([`fit_signal`]).
    pub signal: SignalShape,
    /// The background function of a category that does not name its own (`--background`).
    pub background: Background,
    /// The range the mass floats in (GeV).
    pub mass_range: (f64, f64),
    /// The systematic uncertainties.
    pub systematics: Systematics,
    /// The blinded window, if any.
    pub blind: Option<(f64, f64)>,
}

/// The fit's view of the parameter vector: (constraint index, centre, width) per constrained
/// parameter, computed once per fit.
type Constraints = Vec<(usize, f64, f64)>;

impl Model {
    /// The model of `channels`: the one function that turns the configuration into the
    /// statistical model.
    pub fn build(channels: Vec<ChannelSpec>, spec: &Spec) -> Self {
        let sys = spec.systematics;
        let p = |name: &str, init: f64, lo: f64, hi: f64, c: Option<Constraint>| Parameter {
            name: name.into(),
            init,
            lo,
            hi,
            fixed: false,
            constraint: c,
        };
        let theta = Some(Constraint {
            centre: 0.0,
            width: 1.0,
        });
        let mut parameters = vec![
            p("mu", 1.0, -5.0, 20.0, None),
            p(
                "mass",
                spec.signal.mass.clamp(spec.mass_range.0, spec.mass_range.1),
                spec.mass_range.0,
                spec.mass_range.1,
                None,
            ),
            p("photon_resolution", 0.0, -THETA, THETA, theta),
            p("photon_scale", 0.0, -THETA, THETA, theta),
            p(
                "lumi",
                1.0,
                1.0 - 5.0 * sys.lumi,
                1.0 + 5.0 * sys.lumi,
                Some(Constraint {
                    centre: 1.0,
                    width: sys.lumi,
                }),
            ),
        ];
        let kept = |x: f64| spec.blind.is_none_or(|(a, b)| x < a || x > b);
        let mut out = Vec::new();
        for c in channels {
            let (name, data, signal_yield) = (c.name, c.data, c.signal_yield);
            let background = c.background.unwrap_or(spec.background);
            // The data seen (blinded: the sidebands, scaled to the whole range by bin count),
            // so that not even the fit's starting point depends on a blinded window.
            let b = &data.binning;
            let seen: Vec<usize> = (0..b.bins).filter(|&i| kept(b.center(i))).collect();
            let n = (seen.iter().map(|&i| data.sumw[i]).sum::<f64>() * b.bins as f64
                / seen.len().max(1) as f64)
                .max(1.0);
            parameters.push(p(&format!("spurious_{name}"), 0.0, -THETA, THETA, theta));
            parameters.push(p(&format!("nbkg_{name}"), n, 0.0, 10.0 * n + 100.0, None));
            match background {
                Background::Exp => {
                    parameters.push(p(&format!("slope_{name}"), -0.03, -0.3, 0.2, None))
                }
                Background::Bernstein(order) => {
                    // Coefficients of either sign: the background must be positive in every
                    // bin (the likelihood refuses any other), which c ≥ 0 would only ensure by
                    // excluding good shapes and leaving fits pressed on 0.
                    for j in 1..=order {
                        parameters.push(p(&format!("bern_{name}_{j}"), 1.0, -50.0, 50.0, None));
                    }
                }
            }
            out.push(Channel {
                name,
                data,
                signal_yield,
                spurious: c.spurious.unwrap_or(sys.spurious_fraction * signal_yield),
                background,
            });
        }
        Self {
            parameters,
            channels: out,
            signal: spec.signal,
            systematics: sys,
            blind: spec.blind,
        }
    }

    /// The index of the parameter called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.parameters.iter().position(|p| p.name == name)
    }

    /// The index of channel `k`'s first parameter, and how many it has: spurious, nbkg,
    /// then its background shape's.
    fn channel_parameters(&self, k: usize) -> (usize, usize) {
        let count = |c: &Channel| {
            2 + match c.background {
                Background::Exp => 1,
                Background::Bernstein(n) => n,
            }
        };
        let first = GLOBAL.len() + self.channels[..k].iter().map(count).sum::<usize>();
        (first, count(&self.channels[k]))
    }

    /// The constrained parameters: (index, centre, width).
    fn constraints(&self) -> Constraints {
        self.parameters
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.constraint.map(|c| (i, c.centre, c.width)))
            .collect()
    }

    /// The nuisance parameters (constrained), by index.
    pub fn nuisance(&self) -> Vec<usize> {
        self.constraints().iter().map(|c| c.0).collect()
    }

    fn kept(&self, h: &Histogram, i: usize) -> bool {
        let x = h.binning.center(i);
        self.blind.is_none_or(|(a, b)| x < a || x > b)
    }

    /// Expected events per bin of channel `k` at `p`: (signal + spurious, background); `None`
    /// where the parameters make no shape (a width that is not positive).
    fn samples(&self, k: usize, p: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
        let c = &self.channels[k];
        let b = &c.data.binning;
        let sys = &self.systematics;
        let sigma = self.signal.sigma * (1.0 + sys.resolution * p[RES]);
        let mass = p[MASS] * (1.0 + sys.scale * p[SCALE]);
        if !(sigma > 0.0) {
            return None;
        }
        let (first, count) = self.channel_parameters(k);
        let (theta_spur, nbkg) = (p[first], p[first + 1]);
        let model = FitModel {
            signal: self.signal.shape,
            background: c.background,
            ..FitModel::default()
        };
        // FitModel's layout: nsig, nbkg, mean, sigma, tails (DSCB), background shape.
        let mut q = vec![0.0, 0.0, mass, sigma];
        if self.signal.shape == Signal::Dscb {
            let t = &self.signal.tails;
            q.extend([t.alpha_lo, t.n_lo, t.alpha_hi, t.n_hi]);
        }
        q.extend_from_slice(&p[first + 2..first + count]);
        let d = Densities::new(&model, &q, b.lo, b.hi);
        let s = p[LUMI] * p[MU] * c.signal_yield + theta_spur * c.spurious;
        let (mut sig, mut bkg) = (Vec::with_capacity(b.bins), Vec::with_capacity(b.bins));
        for i in 0..b.bins {
            let (lo, hi) = (b.edge(i), b.edge(i + 1));
            sig.push(s * d.signal_in(lo, hi));
            bkg.push(nbkg * d.background_in(lo, hi));
        }
        Some((sig, bkg))
    }

    /// Expected events per bin of channel `k` at `p` (zeros where `p` makes no shape).
    fn expected(&self, k: usize, p: &[f64]) -> Vec<f64> {
        match self.samples(k, p) {
            Some((s, b)) => s.iter().zip(&b).map(|(s, b)| s + b).collect(),
            None => vec![0.0; self.channels[k].data.binning.bins],
        }
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

    /// Fits `data` from `x0`, holding `fixed`, with the constraints centred as given: Fisher
    /// scoring, then — where the errors are quoted (`errors`) — Newton steps with the observed
    /// Hessian; Nelder–Mead first where scoring does not converge.
    fn minimum(
        &self,
        data: &[Vec<f64>],
        constraints: &Constraints,
        x0: &[f64],
        fixed: &[usize],
        errors: bool,
    ) -> Result<Minimum, super::FitError> {
        let kept: Vec<Vec<usize>> = self
            .channels
            .iter()
            .map(|c| {
                (0..c.data.binning.bins)
                    .filter(|&i| self.kept(&c.data, i))
                    .collect()
            })
            .collect();
        let expect = |p: &[f64]| -> Option<Vec<f64>> {
            let mut nu = Vec::new();
            for (k, bins) in kept.iter().enumerate() {
                let (s, b) = self.samples(k, p)?;
                // Every bin's expectation must be positive, the blinded window's too (no
                // data there, but a background that dips below zero is no model).
                if s.iter().zip(&b).any(|(s, b)| !(s + b > 0.0)) {
                    return None;
                }
                nu.extend(bins.iter().map(|&i| s[i] + b[i]));
            }
            Some(nu)
        };
        let observed: Vec<f64> = kept
            .iter()
            .enumerate()
            .flat_map(|(k, bins)| bins.iter().map(move |&i| data[k][i]))
            .collect();
        let poisson = Poisson {
            expect: &expect,
            data: &observed,
            constraints,
        };
        let nll = |p: &[f64]| poisson.nll(p);
        let bounds = self.bounds(fixed);
        let m = match fisher(&poisson, x0, &bounds) {
            Ok(m) if !errors => Ok(m),
            Ok(m) => polish(&nll, &m, &bounds),
            Err(_) => minimize(&nll, x0, &bounds),
        };
        m.map_err(super::FitError::Minimizer)
    }

    /// The record of a minimisation of this model.
    fn record(&self, fit: &str, m: &Minimum, fixed: &[usize]) -> FitRecord {
        FitRecord::of(fit, m, fixed, |i| self.parameters[i].name.clone())
    }

    fn fitted(&self, m: &Minimum) -> Vec<Fitted> {
        self.parameters
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let error = m.cov[i][i].max(0.0).sqrt();
                Fitted {
                    name: p.name.clone(),
                    value: m.x[i],
                    error,
                    pull: p
                        .constraint
                        .map(|c| ((m.x[i] - c.centre) / c.width, error / c.width)),
                    impact: None,
                }
            })
            .collect()
    }

    /// The fits (see the module docs) and what they give.
    pub fn fit(&self) -> Result<Combined, super::FitError> {
        let data: Vec<Vec<f64>> = self.channels.iter().map(|c| c.data.sumw.clone()).collect();
        let cons = self.constraints();
        let x0: Vec<f64> = self.parameters.iter().map(|p| p.init).collect();
        let mut fits = Vec::new();
        let mut record = |name: &str, m: &Minimum, fixed: &[usize]| {
            fits.push(self.record(name, m, fixed));
        };
        let with = |x: &[f64], i: usize, v: f64| {
            let mut x = x.to_vec();
            x[i] = v;
            x
        };
        let nominal = x0[MASS];
        let (quoted, quoted_fixed, mass, q0, q0_local, conditional);
        if let Some(_window) = self.blind {
            // Blinded: the background from the sidebands (μ = 0); no observed test.
            let best = self.minimum(&data, &cons, &with(&x0, MU, 0.0), &[MU, MASS], true)?;
            record("best", &best, &[MU, MASS]);
            let cond = self.minimum(&data, &cons, &with(&best.x, MU, 1.0), &[MU, MASS], false)?;
            record("mu=1", &cond, &[MU, MASS]);
            (quoted, quoted_fixed, mass) = (best, vec![MU, MASS], None);
            (q0, q0_local, conditional) = (None, None, cond);
        } else {
            // Mass floating and mass at its nominal value: two fits side by side.
            let (best, fixed) = rayon::join(
                || self.minimum(&data, &cons, &x0, &[], true),
                || self.minimum(&data, &cons, &with(&x0, MASS, nominal), &[MASS], true),
            );
            let (best, fixed) = (best?, fixed?);
            record("best", &best, &[]);
            record("fixed mass", &fixed, &[MASS]);
            let bonly = self.minimum(&data, &cons, &with(&fixed.x, MU, 0.0), &[MU, MASS], false)?;
            record("mu=0", &bonly, &[MU, MASS]);
            // The local test's background-only fit at the floating fit's mass: the spurious
            // signal's shape sits at the mass, so μ = 0 is not one hypothesis for every mass.
            let bonly_local =
                self.minimum(&data, &cons, &with(&best.x, MU, 0.0), &[MU, MASS], false)?;
            record("mu=0 at m_H", &bonly_local, &[MU, MASS]);
            let cond = self.minimum(&data, &cons, &with(&fixed.x, MU, 1.0), &[MU, MASS], false)?;
            record("mu=1", &cond, &[MU, MASS]);
            let q = |m: &Minimum, b: &Minimum| {
                if m.x[MU] > 0.0 {
                    (2.0 * (b.f - m.f)).max(0.0)
                } else {
                    0.0
                }
            };
            (q0, q0_local) = (Some(q(&fixed, &bonly)), Some(q(&best, &bonly_local)));
            mass = Some(self.fitted(&best)[MASS].clone());
            (quoted, quoted_fixed, conditional) = (fixed, vec![MASS], cond);
        }
        let mut parameters = self.fitted(&quoted);
        // Impacts: each nuisance parameter held at its fitted value ± its error, the rest
        // refitted at the nominal mass. Independent fits, in parallel (and beside the Asimov
        // fits), recorded in order.
        let impacts = || -> Result<Vec<(usize, f64, Minimum, String)>, super::FitError> {
            use rayon::prelude::*;
            if self.blinded() {
                return Ok(Vec::new());
            }
            self.nuisance()
                .into_iter()
                .flat_map(|j| [(j, 1.0), (j, -1.0)])
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|(j, sign)| {
                    let (v, e) = (quoted.x[j], parameters[j].error);
                    let p = &self.parameters[j];
                    let x = with(&quoted.x, j, (v + sign * e).clamp(p.lo, p.hi));
                    let m = self.minimum(&data, &cons, &x, &[MASS, j], false)?;
                    let name = format!("impact {} {}", p.name, if sign > 0.0 { "+" } else { "-" });
                    Ok((j, sign, m, name))
                })
                .collect()
        };
        let (asimov, shifts) = rayon::join(|| self.asimov_z(&conditional), impacts);
        let (z_expected, asimov) = asimov?;
        fits.extend(asimov);
        for (j, sign, m, name) in shifts? {
            fits.push(self.record(&name, &m, &[MASS, j]));
            let (up, down) = parameters[j].impact.unwrap_or_default();
            let shift = m.x[MU] - quoted.x[MU];
            parameters[j].impact = Some(if sign > 0.0 {
                (shift, down)
            } else {
                (up, shift)
            });
        }
        Ok(Combined {
            mu: quoted.x[MU],
            mu_error: parameters[MU].error,
            parameters,
            mass,
            q0,
            z: q0.map(f64::sqrt),
            z_local: q0_local.map(f64::sqrt),
            z_expected,
            blinded: self.blinded(),
            hessian_ok: quoted.hessian_ok,
            at_bound: quoted
                .at_bound
                .iter()
                .filter(|i| !quoted_fixed.contains(i))
                .map(|&i| self.parameters[i].name.clone())
                .collect(),
            fits,
        })
    }

    fn blinded(&self) -> bool {
        self.blind.is_some()
    }

    /// √q0 at the nominal mass on the Asimov dataset of the conditional μ = 1 fit `cond`
    /// (every bin, the window included: Asimov data are not data), with the constraints
    /// centred on that fit's nuisance parameters (ATLAS's conditional Asimov), and the records
    /// of its two fits.
    fn asimov_z(&self, cond: &Minimum) -> Result<(f64, [FitRecord; 2]), super::FitError> {
        let asimov = self.expectation(&cond.x);
        let open = Model {
            blind: None,
            ..self.clone()
        };
        let cons: Constraints = self
            .constraints()
            .into_iter()
            .map(|(i, _, w)| (i, cond.x[i], w))
            .collect();
        let free = open.minimum(&asimov, &cons, &cond.x, &[MASS], false)?;
        let mut x = cond.x.clone();
        x[MU] = 0.0;
        let bonly = open.minimum(&asimov, &cons, &x, &[MU, MASS], false)?;
        let records = [
            self.record("asimov", &free, &[MASS]),
            self.record("asimov mu=0", &bonly, &[MU, MASS]),
        ];
        Ok(((2.0 * (bonly.f - free.f)).max(0.0).sqrt(), records))
    }

    /// Fits pseudo-data `data` (one histogram per channel) at the nominal mass: the fitted μ
    /// and its error.
    pub fn fit_mu(&self, data: &[Vec<f64>]) -> Result<(f64, f64), super::FitError> {
        let (x, errors) = self.fit_at_nominal_mass(data)?;
        Ok((x[MU], errors[MU]))
    }

    /// Fits `data` (one histogram per channel) at the nominal mass: every parameter's value
    /// and error (the expected information's).
    pub fn fit_at_nominal_mass(
        &self,
        data: &[Vec<f64>],
    ) -> Result<(Vec<f64>, Vec<f64>), super::FitError> {
        let x0: Vec<f64> = self.parameters.iter().map(|p| p.init).collect();
        let m = self.minimum(data, &self.constraints(), &x0, &[MASS], false)?;
        let errors = (0..m.x.len())
            .map(|i| m.cov[i][i].max(0.0).sqrt())
            .collect();
        Ok((m.x, errors))
    }

    /// Expected background events per bin of channel `k` at `p`.
    pub fn background(&self, k: usize, p: &[f64]) -> Vec<f64> {
        self.samples(k, p)
            .map_or_else(|| vec![0.0; self.channels[k].data.binning.bins], |(_, b)| b)
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

    /// The model as a pyhf JSON workspace (HistFactory), at the quoted fit `c`: per channel a
    /// `signal` sample (normfactor `mu`, `lumi`, and `histosys` for `photon_resolution` and
    /// `photon_scale`), a `spurious` sample (`histosys` `spurious_K`) and a `background` sample
    /// (normfactor `bkg_K`). Shapes pyhf cannot express are binned templates at the fit's
    /// values: the mass and each category's background shape (held there, pyhf refits the
    /// rest to the same minimum, up to the spurious sample's shape, which pyhf holds at the
    /// fitted resolution and scale). pyhf interpolates a `histosys` between its ±1 templates,
    /// while our shapes move exactly with θ: so each θ is exported as θ' = θ − θ̂, its
    /// templates taken at θ̂ and θ̂ ± 1 (interpolation exact at the minimum) and its constraint
    /// kept on θ by the auxiliary datum −θ̂ (the measurement's `auxdata`): θ = θ' − auxdata.
    /// Blinded, the window's bins are left out of every channel.
    pub fn workspace(&self, c: &Combined) -> serde_json::Value {
        use serde_json::json;
        let x = self.values(c);
        // Every θ at its fit value, lumi at 1, μ at 1: the nominal templates.
        let mut at_fit = x.clone();
        at_fit[MU] = 1.0;
        at_fit[LUMI] = 1.0;
        let with = |changes: &[(usize, f64)]| {
            let mut p = at_fit.clone();
            for &(i, v) in changes {
                p[i] = v;
            }
            p
        };
        let mut config = vec![
            json!({
                "name": "lumi", "auxdata": [1.0], "sigmas": [self.systematics.lumi],
                "bounds": [[self.parameters[LUMI].lo, self.parameters[LUMI].hi]], "inits": [1.0]
            }),
            json!({ "name": "mu", "bounds": [[self.parameters[MU].lo, self.parameters[MU].hi]], "inits": [1.0] }),
        ];
        let theta = |i: usize| {
            let p = &self.parameters[i];
            json!({
                "name": p.name, "auxdata": [-x[i]], "inits": [0.0],
                "bounds": [[p.lo - x[i], p.hi - x[i]]]
            })
        };
        config.push(theta(RES));
        config.push(theta(SCALE));
        let mut channels = Vec::new();
        let mut observations = Vec::new();
        for (k, ch) in self.channels.iter().enumerate() {
            let kept: Vec<usize> = (0..ch.data.binning.bins)
                .filter(|&i| self.kept(&ch.data, i))
                .collect();
            let pick = |v: Vec<f64>| -> Vec<f64> { kept.iter().map(|&i| v[i]).collect() };
            let sig = |p: Vec<f64>| {
                self.samples(k, &p)
                    .map_or(vec![0.0; ch.data.binning.bins], |s| s.0)
            };
            let (spur, _) = self.channel_parameters(k);
            // The signal alone (its spurious term at zero), and the spurious term alone (μ 0).
            let signal = |i: usize, shift: f64| sig(with(&[(spur, 0.0), (i, x[i] + shift)]));
            let spurious = |shift: f64| sig(with(&[(MU, 0.0), (spur, x[spur] + shift)]));
            let bkg = self.background(k, &x);
            let name = format!("category_{}", ch.name);
            channels.push(json!({
                "name": name,
                "samples": [
                    {
                        "name": "signal",
                        "data": pick(signal(RES, 0.0)),
                        "modifiers": [
                            { "name": "mu", "type": "normfactor", "data": null },
                            { "name": "lumi", "type": "lumi", "data": null },
                            { "name": "photon_resolution", "type": "histosys",
                              "data": { "hi_data": pick(signal(RES, 1.0)), "lo_data": pick(signal(RES, -1.0)) } },
                            { "name": "photon_scale", "type": "histosys",
                              "data": { "hi_data": pick(signal(SCALE, 1.0)), "lo_data": pick(signal(SCALE, -1.0)) } }
                        ]
                    },
                    {
                        "name": "spurious",
                        "data": pick(spurious(0.0)),
                        "modifiers": [
                            { "name": self.parameters[spur].name, "type": "histosys",
                              "data": { "hi_data": pick(spurious(1.0)), "lo_data": pick(spurious(-1.0)) } }
                        ]
                    },
                    {
                        "name": "background",
                        "data": pick(bkg),
                        "modifiers": [
                            { "name": format!("bkg_{}", ch.name), "type": "normfactor", "data": null }
                        ]
                    }
                ]
            }));
            observations.push(json!({ "name": name, "data": pick(ch.data.sumw.clone()) }));
            config.push(theta(spur));
            config.push(json!({ "name": format!("bkg_{}", ch.name), "bounds": [[0.0, 10.0]], "inits": [1.0] }));
        }
        json!({
            "channels": channels,
            "observations": observations,
            "measurements": [{ "name": "hgg", "config": { "poi": "mu", "parameters": config } }],
            "version": "1.0.0"
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::histogram::Binning;

    /// A Gaussian signal at 125 GeV of 1.6 GeV, `background` in every category.
    pub(crate) fn spec(background: Background) -> Spec {
        Spec {
            signal: SignalShape {
                shape: Signal::Gaussian,
                mass: 125.0,
                sigma: 1.6,
                tails: DscbTails::default(),
            },
            background,
            mass_range: (120.0, 130.0),
            systematics: Systematics::default(),
            blind: None,
        }
    }

    /// Two categories built from the model itself at μ = 1 (an Asimov dataset): the fit
    /// returns μ = 1, the truth's mass, nuisance parameters at their centres.
    #[test]
    fn an_asimov_dataset_fits_back_to_its_truth() {
        let binning = Binning {
            bins: 55,
            lo: 105.0,
            hi: 160.0,
        };
        let flat = |n: f64| {
            let mut h = Histogram::new(binning);
            h.sumw = vec![n; 55];
            h
        };
        for background in [Background::Exp, Background::Bernstein(2)] {
            let channels = vec![
                ChannelSpec::new("0", flat(100.0), 60.0),
                ChannelSpec::new("1", flat(10.0), 30.0),
            ];
            let mut m = Model::build(channels, &spec(background));
            let mut truth: Vec<f64> = m.parameters.iter().map(|p| p.init).collect();
            truth[m.index("nbkg_0").unwrap()] = 5000.0;
            truth[m.index("nbkg_1").unwrap()] = 400.0;
            let exp = m.expectation(&truth);
            for (c, e) in m.channels.iter_mut().zip(&exp) {
                c.data.sumw = e.clone();
            }
            let r = m.fit().unwrap();
            assert!((r.mu - 1.0).abs() < 1e-3, "{r:?}");
            let mass = r.mass.as_ref().unwrap();
            assert!((mass.value - 125.0).abs() < 1e-2, "{mass:?}");
            assert!(r.hessian_ok && r.mu_error > 0.0);
            assert!(r.at_bound.is_empty(), "{:?}", r.at_bound);
            for f in &r.parameters {
                if let Some((pull, _)) = f.pull {
                    assert!(pull.abs() < 1e-2, "{f:?}");
                    let (up, down) = f.impact.unwrap();
                    assert!(up.abs() < r.mu_error && down.abs() < r.mu_error, "{f:?}");
                }
            }
            // The luminosity moves μ by about its own size, the opposite way.
            let lumi = r.parameters.iter().find(|f| f.name == "lumi").unwrap();
            let (up, down) = lumi.impact.unwrap();
            assert!(up < 0.0 && down > 0.0, "{lumi:?}");
            // On its own Asimov dataset, observed and expected agree.
            assert!(
                (r.z.unwrap() - r.z_expected).abs() < 0.02 * r.z_expected,
                "{r:?}"
            );
            assert!(
                r.fits.iter().all(|f| f.status == FitStatus::Ok),
                "{:?}",
                r.fits
            );

            // The same data with the signal expectation 40 times too small: μ runs into its
            // bound, and the fit says so.
            for c in m.channels.iter_mut() {
                c.signal_yield /= 40.0;
            }
            let r = m.fit().unwrap();
            assert!(r.at_bound.contains(&"mu".to_string()), "{r:?}");
        }
    }

    /// The signal MC's own shape comes back from the shape fit.
    #[test]
    fn the_signal_shape_is_fitted_to_the_mc() {
        let binning = Binning {
            bins: 110,
            lo: 105.0,
            hi: 160.0,
        };
        let mut h = Histogram::new(binning);
        let truth = spec(Background::Exp).signal;
        let model = Model::build(
            vec![ChannelSpec::new("0", h.clone(), 1000.0)],
            &spec(Background::Exp),
        );
        let mut p: Vec<f64> = model.parameters.iter().map(|p| p.init).collect();
        p[model.index("nbkg_0").unwrap()] = 0.0;
        h.sumw = model.expectation(&p)[0].clone();
        let (s, record) = fit_signal(Signal::Gaussian, &h, (120.0, 130.0)).unwrap();
        assert!(
            (s.mass - truth.mass).abs() < 1e-3 && (s.sigma - truth.sigma).abs() < 1e-3,
            "{s:?}"
        );
        assert_eq!(record.status, FitStatus::Ok);
    }
}

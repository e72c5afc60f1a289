//! The statistical model as data (shapes, parameters, starting values and bounds) and what a
//! fit returns. The densities and the minimisation are `analysis::fit`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Signal shape in m_γγ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Gaussian(mean, sigma).
    Gaussian,
    /// Double-sided Crystal Ball: Gaussian core, power-law tails on both sides.
    Dscb,
}

/// Background shape in m_γγ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// exp(slope · m).
    Exp,
    /// Bernstein polynomial of the given order (order + 1 coefficients, the first fixed to 1).
    Bernstein(usize),
}

/// Tail parameters of the double-sided Crystal Ball (in units of sigma, and power-law
/// exponents). They are not fitted to data: a weak signal cannot constrain them. They come from
/// a fit to the signal MC (`analysis::fit::fit_signal_tails`) or keep these defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DscbTails {
    /// Where the low-mass tail starts, in units of sigma below the mean.
    pub alpha_lo: f64,
    /// Power-law exponent of the low-mass tail.
    pub n_lo: f64,
    /// Where the high-mass tail starts, in units of sigma above the mean.
    pub alpha_hi: f64,
    /// Power-law exponent of the high-mass tail.
    pub n_hi: f64,
}

impl Default for DscbTails {
    fn default() -> Self {
        Self {
            alpha_lo: 1.5,
            n_lo: 10.0,
            alpha_hi: 1.5,
            n_hi: 10.0,
        }
    }
}

/// What is fitted: a signal + background model on the histogram's range. Validated on use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitModel {
    /// Signal shape.
    pub signal: Signal,
    /// Background shape.
    pub background: Background,
    /// Allowed range of the signal mean (GeV).
    pub mean_range: (f64, f64),
    /// Fixed tails of the DSCB signal (unused for a Gaussian).
    pub dscb_tails: DscbTails,
}

impl Default for FitModel {
    /// The model RooFit fitted in `reference.json`: Gaussian + exponential.
    fn default() -> Self {
        Self {
            signal: Signal::Gaussian,
            background: Background::Exp,
            mean_range: (120.0, 130.0),
            dscb_tails: DscbTails::default(),
        }
    }
}

impl std::str::FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gaussian" => Ok(Signal::Gaussian),
            "dscb" => Ok(Signal::Dscb),
            _ => Err(format!("unknown signal shape '{s}': use gaussian or dscb")),
        }
    }
}

impl std::str::FromStr for Background {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "exp" {
            return Ok(Background::Exp);
        }
        if let Some(n) = s.strip_prefix("bernstein:") {
            return match n.parse::<usize>() {
                Ok(n) if (1..=8).contains(&n) => Ok(Background::Bernstein(n)),
                _ => Err(format!("Bernstein order must be 1 to 8, got '{n}'")),
            };
        }
        Err(format!(
            "unknown background shape '{s}': use exp or bernstein:N"
        ))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Gaussian => "gaussian",
            Signal::Dscb => "dscb",
        })
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Background::Exp => f.write_str("exp"),
            Background::Bernstein(n) => write!(f, "bernstein:{n}"),
        }
    }
}

/// One fit parameter: name, starting value and bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Name of the parameter.
    pub name: String,
    /// Starting value.
    pub init: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

/// Index of the signal yield in the parameter vector.
pub const NSIG: usize = 0;
/// Index of the background yield.
pub const NBKG: usize = 1;
/// Index of the signal mean.
pub const MEAN: usize = 2;
/// Index of the signal width.
pub const SIGMA: usize = 3;

impl FitModel {
    /// The parameters, in order: `nsig`, `nbkg`, signal shape, background shape. Starting
    /// values and bounds follow `reference.py` (RooFit) for a histogram of `total` events.
    pub fn params(&self, total: f64) -> Vec<ParamSpec> {
        let p = |name: &str, init: f64, lo: f64, hi: f64| ParamSpec {
            name: name.into(),
            init,
            lo,
            hi,
        };
        let total = total.max(1.0);
        let mut v = vec![
            p("nsig", 0.02 * total, -0.5 * total, total),
            p("nbkg", total, 0.0, 2.0 * total),
            p(
                "mean",
                0.5 * (self.mean_range.0 + self.mean_range.1),
                self.mean_range.0,
                self.mean_range.1,
            ),
            p("sigma", 2.0, 0.5, 5.0),
        ];
        if self.signal == Signal::Dscb {
            let t = &self.dscb_tails;
            v.push(p("alpha_lo", t.alpha_lo, 0.2, 5.0));
            v.push(p("n_lo", t.n_lo, 1.05, 50.0));
            v.push(p("alpha_hi", t.alpha_hi, 0.2, 5.0));
            v.push(p("n_hi", t.n_hi, 1.05, 50.0));
        }
        match self.background {
            Background::Exp => v.push(p("slope", -0.03, -1.0, 0.0)),
            Background::Bernstein(n) => {
                for k in 1..=n {
                    v.push(p(&format!("c{k}"), 1.0, 0.0, 50.0));
                }
            }
        }
        v
    }

    /// Checks the model against the fit range.
    pub fn validate(&self, lo: f64, hi: f64) -> Result<(), String> {
        let (a, b) = self.mean_range;
        if !(a < b && a >= lo && b <= hi) {
            return Err(format!(
                "signal mean range [{a}, {b}] must lie inside the fit range [{lo}, {hi}]"
            ));
        }
        Ok(())
    }

    /// Indices of the DSCB tail parameters (empty for a Gaussian): fixed in data fits.
    pub fn tail_params(&self) -> std::ops::Range<usize> {
        match self.signal {
            Signal::Gaussian => 0..0,
            Signal::Dscb => 4..8,
        }
    }

    /// Number of signal shape parameters (after the yields).
    pub fn n_signal_shape(&self) -> usize {
        match self.signal {
            Signal::Gaussian => 2,
            Signal::Dscb => 6,
        }
    }
}

/// A fitted parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitParam {
    /// Name of the parameter, as in [`FitModel::params`].
    pub name: String,
    /// Value at the minimum.
    #[serde(with = "crate::finite")]
    pub value: f64,
    /// Symmetric error from the Hessian (HESSE).
    #[serde(with = "crate::finite")]
    pub error: f64,
}

/// Whether the fit can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStatus {
    /// Converged, Hessian positive definite, no parameter at a bound.
    Ok,
    /// Converged with a parameter at one of its bounds: its error is not meaningful.
    AtBound,
    /// The Hessian is not positive definite or the minimum was not reached.
    Failed,
}

/// Everything a fit produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitResult {
    /// The model that was fitted.
    pub model: FitModel,
    /// The fitted parameters, in the order of [`FitModel::params`].
    pub params: Vec<FitParam>,
    /// Covariance matrix of the parameters, in the order of `params`.
    #[serde(with = "crate::finite::vec2")]
    pub covariance: Vec<Vec<f64>>,
    /// −ln L at the minimum (up to a constant).
    #[serde(with = "crate::finite")]
    pub nll: f64,
    /// Estimated distance to the minimum.
    #[serde(with = "crate::finite")]
    pub edm: f64,
    /// Whether the fit can be trusted.
    pub status: FitStatus,
    /// q0 = 2 (−ln L(nsig = 0, signal shape fixed) − −ln L(best)), 0 when nsig < 0.
    #[serde(with = "crate::finite")]
    pub q0: f64,
    /// Discovery significance √q0.
    #[serde(with = "crate::finite")]
    pub z: f64,
}

impl FitResult {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&FitParam> {
        self.params.iter().find(|p| p.name == name)
    }
    /// Parameter values in model order.
    pub fn values(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.value).collect()
    }
}

//! The statistical model as data: signal and background shapes, their parameters and bounds,
//! and the normalised densities on the fit range.

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
/// a fit to the signal MC ([`super::fit_signal_tails`]) or keep these defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DscbTails {
    pub alpha_lo: f64,
    pub n_lo: f64,
    pub alpha_hi: f64,
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
    pub signal: Signal,
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
    pub name: String,
    pub init: f64,
    pub lo: f64,
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

/// Normalised densities of one parameter point on `[lo, hi]`.
pub struct Densities<'a> {
    model: &'a FitModel,
    p: &'a [f64],
    lo: f64,
    hi: f64,
    sig_norm: f64,
    bkg_norm: f64,
}

impl<'a> Densities<'a> {
    pub fn new(model: &'a FitModel, p: &'a [f64], lo: f64, hi: f64) -> Self {
        let mut d = Self {
            model,
            p,
            lo,
            hi,
            sig_norm: 1.0,
            bkg_norm: 1.0,
        };
        d.sig_norm = match model.signal {
            Signal::Gaussian => {
                let (m, s) = (p[MEAN], p[SIGMA]);
                let z = |x: f64| libm::erf((x - m) / (s * std::f64::consts::SQRT_2));
                0.5 * (z(hi) - z(lo)) * s * (2.0 * std::f64::consts::PI).sqrt()
            }
            Signal::Dscb => dscb_integral(p, lo, hi),
        };
        d.bkg_norm = match model.background {
            Background::Exp => {
                let c = p[d.bkg_index()];
                if c.abs() < 1e-12 {
                    hi - lo
                } else {
                    // ∫ exp(c (x - lo)) dx, shifted for stability
                    (c * (hi - lo)).exp_m1() / c
                }
            }
            Background::Bernstein(n) => {
                (hi - lo) * d.bernstein_coeffs().sum::<f64>() / (n as f64 + 1.0)
            }
        };
        d
    }

    fn bkg_index(&self) -> usize {
        2 + self.model.n_signal_shape()
    }

    fn bernstein_coeffs(&self) -> impl Iterator<Item = f64> + '_ {
        let i = self.bkg_index();
        std::iter::once(1.0).chain(self.p[i..].iter().copied())
    }

    fn signal_raw(&self, x: f64) -> f64 {
        let t = (x - self.p[MEAN]) / self.p[SIGMA];
        match self.model.signal {
            Signal::Gaussian => (-0.5 * t * t).exp(),
            Signal::Dscb => {
                let (al, nl, ah, nh) = (self.p[4], self.p[5], self.p[6], self.p[7]);
                if t < -al {
                    let a = (nl / al).powf(nl) * (-0.5 * al * al).exp();
                    a * (nl / al - al - t).powf(-nl)
                } else if t > ah {
                    let a = (nh / ah).powf(nh) * (-0.5 * ah * ah).exp();
                    a * (nh / ah - ah + t).powf(-nh)
                } else {
                    (-0.5 * t * t).exp()
                }
            }
        }
    }

    /// Signal density at `x` (integrates to 1 on the range).
    pub fn signal(&self, x: f64) -> f64 {
        self.signal_raw(x) / self.sig_norm
    }

    /// Background density at `x` (integrates to 1 on the range).
    pub fn background(&self, x: f64) -> f64 {
        match self.model.background {
            Background::Exp => (self.p[self.bkg_index()] * (x - self.lo)).exp() / self.bkg_norm,
            Background::Bernstein(n) => {
                let t = (x - self.lo) / (self.hi - self.lo);
                let mut s = 0.0;
                for (k, c) in self.bernstein_coeffs().enumerate() {
                    s += c * binomial(n, k) * t.powi(k as i32) * (1.0 - t).powi((n - k) as i32);
                }
                s / self.bkg_norm
            }
        }
    }
}

/// ∫ of the unnormalised DSCB over `[lo, hi]`, analytically (a numeric rule would make −ln L
/// non-smooth as the tail joints move across its grid, and spoil the numeric Hessian).
fn dscb_integral(p: &[f64], lo: f64, hi: f64) -> f64 {
    let (m, s) = (p[MEAN], p[SIGMA]);
    let (al, nl, ah, nh) = (p[4], p[5], p[6], p[7]);
    let (tl, th) = ((lo - m) / s, (hi - m) / s);
    let mut sum = 0.0;
    // Gaussian core on [-al, ah].
    let (a, b) = (tl.max(-al), th.min(ah));
    if a < b {
        let e = |t: f64| libm::erf(t / std::f64::consts::SQRT_2);
        sum += (std::f64::consts::PI / 2.0).sqrt() * (e(b) - e(a));
    }
    // Left power law A (B − t)^−n on [tl, −al].
    if tl < -al {
        let (a, b) = (tl, th.min(-al));
        let amp = (nl / al).powf(nl) * (-0.5 * al * al).exp();
        let bb = nl / al - al;
        sum += amp / (nl - 1.0) * ((bb - b).powf(1.0 - nl) - (bb - a).powf(1.0 - nl));
    }
    // Right power law A (B + t)^−n on [ah, th].
    if th > ah {
        let (a, b) = (tl.max(ah), th);
        let amp = (nh / ah).powf(nh) * (-0.5 * ah * ah).exp();
        let bb = nh / ah - ah;
        sum += amp / (nh - 1.0) * ((bb + a).powf(1.0 - nh) - (bb + b).powf(1.0 - nh));
    }
    sum * s
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Composite Simpson rule with `n` (even) intervals (tests cross-check normalisations with it).
#[cfg(test)]
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densities_integrate_to_one() {
        for model in [
            FitModel::default(),
            FitModel {
                signal: Signal::Dscb,
                background: Background::Bernstein(3),
                ..FitModel::default()
            },
        ] {
            let mut p: Vec<f64> = model.params(1000.0).iter().map(|s| s.init).collect();
            p[SIGMA] = 1.6;
            let d = Densities::new(&model, &p, 105.0, 160.0);
            let s = simpson(|x| d.signal(x), 105.0, 160.0, 20000);
            let b = simpson(|x| d.background(x), 105.0, 160.0, 20000);
            assert!(
                (s - 1.0).abs() < 1e-9 && (b - 1.0).abs() < 1e-9,
                "{model:?}: {s} {b}"
            );
        }
    }

    #[test]
    fn shapes_parse_from_the_command_line() {
        assert_eq!(
            "bernstein:4".parse::<Background>(),
            Ok(Background::Bernstein(4))
        );
        assert!("bernstein:0".parse::<Background>().is_err());
        assert!("poly".parse::<Background>().is_err());
        assert_eq!("dscb".parse::<Signal>(), Ok(Signal::Dscb));
    }
}

//! The normalised densities of the model on the fit range (the model itself, as data, is
//! `stage_api::fit`).

pub use stage_api::fit::{
    Background, DscbTails, FitModel, ParamSpec, Signal, MEAN, NBKG, NSIG, SIGMA,
};

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
    /// The densities of `model` at parameters `p`, normalised on `[lo, hi]` (GeV).
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

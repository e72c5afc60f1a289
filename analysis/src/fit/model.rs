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

    /// The signal's probability in the bin `[a, b]` (exact: the sum over bins covering the
    /// range is 1).
    pub fn signal_in(&self, a: f64, b: f64) -> f64 {
        let raw = match self.model.signal {
            Signal::Gaussian => {
                let (m, s) = (self.p[MEAN], self.p[SIGMA]);
                let z = |x: f64| (x - m) / (s * std::f64::consts::SQRT_2);
                // A bin far in a tail as a difference of erfc's, not of erf's (which are both
                // 1 there to the last digit).
                let p = if a >= m {
                    libm::erfc(z(a)) - libm::erfc(z(b))
                } else if b <= m {
                    libm::erfc(-z(b)) - libm::erfc(-z(a))
                } else {
                    libm::erf(z(b)) - libm::erf(z(a))
                };
                0.5 * p * s * (2.0 * std::f64::consts::PI).sqrt()
            }
            Signal::Dscb => dscb_integral(self.p, a, b),
        };
        raw / self.sig_norm
    }

    /// The background's probability in the bin `[a, b]` (exact, as [`Densities::signal_in`]).
    pub fn background_in(&self, a: f64, b: f64) -> f64 {
        match self.model.background {
            Background::Exp => {
                let c = self.p[self.bkg_index()];
                let raw = if c.abs() < 1e-12 {
                    b - a
                } else {
                    ((c * (b - self.lo)).exp() - (c * (a - self.lo)).exp()) / c
                };
                raw / self.bkg_norm
            }
            Background::Bernstein(n) => {
                // ∫₀ᵀ Σ c_k b_{k,n} = 1/(n+1) Σ_{j=1}^{n+1} (Σ_{k<j} c_k) b_{j,n+1}(T).
                let w = self.hi - self.lo;
                let c: Vec<f64> = self.bernstein_coeffs().collect();
                let primitive = |x: f64| {
                    let t = ((x - self.lo) / w).clamp(0.0, 1.0);
                    let (mut sum, mut acc) = (0.0, 0.0);
                    for j in 1..=n + 1 {
                        acc += c[j - 1];
                        sum += acc
                            * binomial(n + 1, j)
                            * t.powi(j as i32)
                            * (1.0 - t).powi((n + 1 - j) as i32);
                    }
                    sum * w / (n as f64 + 1.0)
                };
                (primitive(b) - primitive(a)) / self.bkg_norm
            }
        }
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
            if let Background::Bernstein(n) = model.background {
                // A falling polynomial, not the flat starting point.
                let first = p.len() - n;
                for (k, c) in p[first..].iter_mut().enumerate() {
                    *c = 0.8 / (k + 1) as f64;
                }
            }
            let d = Densities::new(&model, &p, 105.0, 160.0);
            // Bin probabilities: each the density's integral, all summing to one.
            let (mut ps, mut pb) = (0.0, 0.0);
            for i in 0..11 {
                let (a, b) = (105.0 + 5.0 * i as f64, 110.0 + 5.0 * i as f64);
                let (si, bi) = (d.signal_in(a, b), d.background_in(a, b));
                let (sn, bn) = (
                    simpson(|x| d.signal(x), a, b, 2000),
                    simpson(|x| d.background(x), a, b, 2000),
                );
                assert!(
                    (si - sn).abs() < 1e-9 && (bi - bn).abs() < 1e-9,
                    "{model:?} bin {i}"
                );
                ps += si;
                pb += bi;
            }
            assert!(
                (ps - 1.0).abs() < 1e-12 && (pb - 1.0).abs() < 1e-12,
                "{ps} {pb}"
            );
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

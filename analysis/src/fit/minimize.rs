//! Bounded minimisation: Nelder–Mead (argmin) in Minuit's internal coordinates, then Newton
//! steps with a numeric Hessian to converge tightly, then the covariance from that Hessian.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;

/// A bounded parameter as the minimiser sees it.
#[derive(Clone, Debug)]
pub struct Bound {
    pub lo: f64,
    pub hi: f64,
    pub fixed: bool,
}

/// What the minimiser found.
#[derive(Clone, Debug)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    /// Estimated distance to the minimum, gᵀ H⁻¹ g / 2.
    pub edm: f64,
    /// Covariance of the free parameters (zero rows/columns for fixed ones).
    pub cov: Vec<Vec<f64>>,
    /// Whether the Hessian at the minimum is positive definite.
    pub hessian_ok: bool,
    /// Parameters that ended within 1e-6 of the range of a bound.
    pub at_bound: Vec<usize>,
}

/// Minuit's transform of a bounded parameter to an unbounded internal one.
fn to_internal(x: f64, b: &Bound) -> f64 {
    (2.0 * (x - b.lo) / (b.hi - b.lo) - 1.0)
        .clamp(-1.0, 1.0)
        .asin()
}
fn to_external(u: f64, b: &Bound) -> f64 {
    b.lo + (b.hi - b.lo) * (u.sin() + 1.0) / 2.0
}

struct Internal<'a, F: Fn(&[f64]) -> f64> {
    f: &'a F,
    x0: &'a [f64],
    bounds: &'a [Bound],
    free: &'a [usize],
}

impl<F: Fn(&[f64]) -> f64> Internal<'_, F> {
    fn external(&self, u: &[f64]) -> Vec<f64> {
        let mut x = self.x0.to_vec();
        for (k, &i) in self.free.iter().enumerate() {
            x[i] = to_external(u[k], &self.bounds[i]);
        }
        x
    }
}

impl<F: Fn(&[f64]) -> f64> CostFunction for Internal<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok((self.f)(&self.external(u)))
    }
}

/// Minimises `f` from `x0` within `bounds`. `f` must return a finite (large) value outside
/// its domain, never NaN or infinity.
pub fn minimize(
    f: &impl Fn(&[f64]) -> f64,
    x0: &[f64],
    bounds: &[Bound],
) -> Result<Minimum, String> {
    let free: Vec<usize> = (0..x0.len()).filter(|&i| !bounds[i].fixed).collect();
    let problem = Internal {
        f,
        x0,
        bounds,
        free: &free,
    };
    // Nelder–Mead simplex: the start and one step of 0.1 rad along each internal axis.
    let u0: Vec<f64> = free
        .iter()
        .map(|&i| to_internal(x0[i], &bounds[i]))
        .collect();
    let mut simplex = vec![u0.clone()];
    for k in 0..free.len() {
        let mut u = u0.clone();
        u[k] += if u[k] > 1.0 { -0.1 } else { 0.1 };
        simplex.push(u);
    }
    let mut x = x0.to_vec();
    if !free.is_empty() {
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-9)
            .map_err(|e| e.to_string())?;
        let res = Executor::new(problem, solver)
            .configure(|s| s.max_iters(20_000))
            .run()
            .map_err(|e| format!("minimiser failed: {e}"))?;
        let best = res
            .state()
            .get_best_param()
            .cloned()
            .ok_or("minimiser returned no point")?;
        x = Internal {
            f,
            x0,
            bounds,
            free: &free,
        }
        .external(&best);
    }
    newton_polish(f, x, bounds, &free, None)
}

/// Newton steps from `x` (already near the minimum) with the observed Hessian: the tight
/// minimum, its EDM and the covariance, as [`minimize`] ends.
///
/// `near` is the minimiser's own estimate at `x` (e.g. [`fisher`]'s): its errors set the
/// numeric derivatives' steps from the start, so a point already converged takes one Hessian,
/// not two.
pub fn polish(
    f: &impl Fn(&[f64]) -> f64,
    near: &Minimum,
    bounds: &[Bound],
) -> Result<Minimum, String> {
    let free: Vec<usize> = (0..near.x.len()).filter(|&i| !bounds[i].fixed).collect();
    // 1 % of the errors; where there is none (a parameter the minimiser left on a bound), the
    // bounds' scale, as from scratch.
    let steps: Vec<f64> = (0..near.x.len())
        .map(|i| match near.cov[i][i] {
            v if v > 0.0 => (0.01 * v.sqrt()).max(1e-9),
            _ => 1e-5 * (bounds[i].hi - bounds[i].lo),
        })
        .collect();
    newton_polish(f, near.x.clone(), bounds, &free, Some(&steps))
}

/// Newton steps with a numeric gradient and Hessian until the EDM is negligible.
fn newton_polish(
    f: &impl Fn(&[f64]) -> f64,
    mut x: Vec<f64>,
    bounds: &[Bound],
    free: &[usize],
    steps: Option<&[f64]>,
) -> Result<Minimum, String> {
    // A parameter the minimum presses against a bound stays there (an active constraint): it
    // is left out of the Newton steps and the covariance, and reported as at a bound. One near
    // a bound but not pressing on it is moved inside, so central differences stay in range.
    let step0 = |i: usize| 1e-5 * (bounds[i].hi - bounds[i].lo);
    let mut active = Vec::new();
    for &i in free {
        let (lo, hi, h) = (bounds[i].lo, bounds[i].hi, step0(i));
        for (edge, inside) in [(lo, lo + h), (hi, hi - h)] {
            if (x[i] - edge).abs() < h {
                let mut y = x.clone();
                y[i] = edge;
                let f_edge = f(&y);
                y[i] = inside;
                if f_edge <= f(&y) {
                    x[i] = edge;
                    active.push(i);
                } else {
                    x[i] = inside;
                }
            }
        }
    }
    let free: Vec<usize> = free
        .iter()
        .copied()
        .filter(|i| !active.contains(i))
        .collect();
    let free = free.as_slice();
    let n = free.len();
    // Step sizes: start from the bounds' scale (or the steps given), then 1 % of the
    // parameter errors.
    let mut h: Vec<f64> = free
        .iter()
        .map(|&i| steps.map_or_else(|| step0(i), |s| s[i]))
        .collect();
    let mut fx = f(&x);
    let mut edm = f64::INFINITY;
    // The last Hessian, where and with which steps it was taken: reused for the covariance
    // when the minimum is already there.
    type Taken = (Vec<f64>, Vec<f64>, Vec<Vec<f64>>);
    let mut last: Option<Taken> = None;
    for _ in 0..60 {
        let (g, hess) = derivatives(f, &x, free, &h);
        last = Some((x.clone(), h.clone(), hess.clone()));
        // Where the Hessian is not positive definite (far from the minimum, or a non-convex
        // stretch), damp it Levenberg–Marquardt style until it is.
        let mut lambda = 0.0;
        let cov = loop {
            let mut damped = hess.clone();
            for k in 0..n {
                damped[k][k] += lambda * hess[k][k].abs().max(1e-12);
            }
            if let Some(c) = invert_spd(&damped) {
                break Some(c);
            }
            lambda = if lambda == 0.0 { 1e-3 } else { lambda * 10.0 };
            if lambda > 1e9 {
                break None;
            }
        };
        let Some(cov) = cov else {
            break;
        };
        if lambda == 0.0 {
            for k in 0..n {
                let want = (0.01 * cov[k][k].sqrt()).max(1e-9);
                // Given steps are kept while within a factor 2 of the errors' 1 %.
                if steps.is_none() || !(want / h[k] > 0.5 && want / h[k] < 2.0) {
                    h[k] = want;
                }
            }
        }
        let step: Vec<f64> = (0..n)
            .map(|a| -(0..n).map(|b| cov[a][b] * g[b]).sum::<f64>())
            .collect();
        edm = (-0.5 * (0..n).map(|a| g[a] * step[a]).sum::<f64>()).max(0.0);
        // From a given start (another minimiser's minimum) the EDM target is 1e-7, far below
        // MINUIT's 1e-3 yet reached by the first Hessian, which then gives the covariance too;
        // from scratch, 1e-10.
        let target = if steps.is_some() { 1e-7 } else { 1e-10 };
        if lambda == 0.0 && edm < target {
            break;
        }
        if lambda > 0.0 {
            edm = f64::INFINITY; // a damped step gives no distance estimate
        }
        match backtrack(f, &x, fx, free, &step, bounds) {
            Some((y, fy)) => (x, fx) = (y, fy),
            None => break,
        }
    }
    // The covariance from a Hessian taken with steps of 1 % of the final errors.
    let hess = match last {
        Some((at, with, hess)) if at == x && with == h => hess,
        _ => derivatives(f, &x, free, &h).1,
    };
    let inv = invert_spd(&hess);
    let mut cov = vec![vec![0.0; x.len()]; x.len()];
    if let Some(inv) = &inv {
        for (a, &i) in free.iter().enumerate() {
            for (b, &j) in free.iter().enumerate() {
                cov[i][j] = inv[a][b];
            }
        }
    }
    let at_bound = active
        .iter()
        .chain(free)
        .copied()
        .filter(|&i| {
            let r = 1e-6 * (bounds[i].hi - bounds[i].lo);
            x[i] - bounds[i].lo < r || bounds[i].hi - x[i] < r
        })
        .collect();
    Ok(Minimum {
        x,
        f: fx,
        edm,
        cov,
        hessian_ok: inv.is_some(),
        at_bound,
    })
}

/// A binned Poisson likelihood with Gaussian constraints, as [`fisher`] sees it: `expect(x)`
/// gives the expected count of every bin that enters (`None` where `x` makes no model),
/// `data` the observed counts of the same bins, `constraints` (index, centre, width).
pub struct Poisson<'a> {
    pub expect: &'a dyn Fn(&[f64]) -> Option<Vec<f64>>,
    pub data: &'a [f64],
    pub constraints: &'a [(usize, f64, f64)],
}

impl Poisson<'_> {
    /// −ln L = Σ (ν − n ln ν) + Σ (θ − c)² / 2w²; a large finite value outside the model.
    pub fn nll(&self, x: &[f64]) -> f64 {
        let Some(nu) = (self.expect)(x) else {
            return 1e30;
        };
        let mut s = 0.0;
        for (&v, &n) in nu.iter().zip(self.data) {
            if !(v > 0.0) || !v.is_finite() {
                return 1e30;
            }
            s += v - if n > 0.0 { n * v.ln() } else { 0.0 };
        }
        for &(i, c, w) in self.constraints {
            s += 0.5 * ((x[i] - c) / w).powi(2);
        }
        s
    }
}

/// Minimises a [`Poisson`] likelihood by Fisher scoring: the gradient and the expected
/// information Σ_i ∂ν_i/∂a ∂ν_i/∂b / ν_i from the Jacobian of the expectation (2 n evaluations
/// of the model per step, where a numeric Hessian of −ln L takes 2 n²), backtracking inside the
/// bounds. `Err` when it does not converge: the caller falls back to [`minimize`]. The
/// covariance returned is the inverse expected information (use [`minimize`] from the point
/// for the observed Hessian's).
pub fn fisher(p: &Poisson, x0: &[f64], bounds: &[Bound]) -> Result<Minimum, String> {
    let movable: Vec<usize> = (0..x0.len()).filter(|&i| !bounds[i].fixed).collect();
    let mut x = x0.to_vec();
    let mut fx = p.nll(&x);
    if fx >= 1e30 {
        return Err("the start is outside the model".into());
    }
    let near = |x: &[f64], i: usize| {
        let r = 1e-6 * (bounds[i].hi - bounds[i].lo);
        (x[i] - bounds[i].lo < r, bounds[i].hi - x[i] < r)
    };
    for _ in 0..100 {
        // A parameter on a bound that −ln L pushes outwards stays there (an active
        // constraint): out of this step.
        let slope = |i: usize| {
            let h = 1e-6 * (bounds[i].hi - bounds[i].lo);
            let mut y = x.clone();
            let (lo, _) = near(&x, i);
            y[i] = if lo { x[i] + h } else { x[i] - h };
            p.nll(&y) - fx
        };
        let (free, pressed): (Vec<usize>, Vec<usize>) = movable.iter().partition(|&&i| {
            let (lo, hi) = near(&x, i);
            !((lo || hi) && slope(i) > 0.0)
        });
        let n = free.len();
        let nu = (p.expect)(&x).ok_or("the model failed")?;
        let mut jac = Vec::with_capacity(n);
        for &i in &free {
            let h = 1e-6 * (bounds[i].hi - bounds[i].lo);
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] = (x[i] + h).min(bounds[i].hi);
            down[i] = (x[i] - h).max(bounds[i].lo);
            let (a, b) = (
                (p.expect)(&up).ok_or("the model failed")?,
                (p.expect)(&down).ok_or("the model failed")?,
            );
            let d = up[i] - down[i];
            jac.push(
                a.iter()
                    .zip(&b)
                    .map(|(a, b)| (a - b) / d)
                    .collect::<Vec<f64>>(),
            );
        }
        let mut g = vec![0.0; n];
        let mut info = vec![vec![0.0; n]; n];
        for (k, (&v, &obs)) in nu.iter().zip(p.data).enumerate() {
            let r = 1.0 - obs / v;
            for a in 0..n {
                g[a] += r * jac[a][k];
                for b in 0..=a {
                    info[a][b] += jac[a][k] * jac[b][k] / v;
                }
            }
        }
        for a in 0..n {
            for b in 0..a {
                info[b][a] = info[a][b];
            }
        }
        for &(i, c, w) in p.constraints {
            if let Some(a) = free.iter().position(|&j| j == i) {
                g[a] += (x[i] - c) / (w * w);
                info[a][a] += 1.0 / (w * w);
            }
        }
        let cov = invert_spd(&info).ok_or("the information matrix is singular")?;
        let step: Vec<f64> = (0..n)
            .map(|a| -(0..n).map(|b| cov[a][b] * g[b]).sum::<f64>())
            .collect();
        let edm = (-0.5 * (0..n).map(|a| g[a] * step[a]).sum::<f64>()).max(0.0);
        let done = |x: Vec<f64>, fx: f64| {
            let mut full = vec![vec![0.0; x.len()]; x.len()];
            for (a, &i) in free.iter().enumerate() {
                for (b, &j) in free.iter().enumerate() {
                    full[i][j] = cov[a][b];
                }
            }
            // At a bound: the parameters the last step left out as pressing on one.
            let at_bound = pressed.clone();
            Minimum {
                x,
                f: fx,
                edm,
                cov: full,
                hessian_ok: true,
                at_bound,
            }
        };
        if edm < 1e-9 {
            return Ok(done(x, fx));
        }
        match backtrack(&|y: &[f64]| p.nll(y), &x, fx, &free, &step, bounds) {
            Some((y, fy)) => (x, fx) = (y, fy),
            // No lower point along the step: converged to rounding, or pressed on a bound.
            None if edm < 1e-6 => return Ok(done(x, fx)),
            None => return Err(format!("no descent (EDM {edm:.2e})")),
        }
    }
    Err("Fisher scoring did not converge in 100 steps".into())
}

/// Backtracking along `step` (over the `free` parameters) from `x`: the largest of 1, ½, ¼, …
/// (30 halvings) of the step that lowers `f` below `fx` inside the bounds, and `f` there;
/// `None` when none does.
fn backtrack(
    f: &impl Fn(&[f64]) -> f64,
    x: &[f64],
    fx: f64,
    free: &[usize],
    step: &[f64],
    bounds: &[Bound],
) -> Option<(Vec<f64>, f64)> {
    let mut t = 1.0;
    for _ in 0..30 {
        let mut y = x.to_vec();
        for (k, &i) in free.iter().enumerate() {
            y[i] = (x[i] + t * step[k]).clamp(bounds[i].lo, bounds[i].hi);
        }
        let fy = f(&y);
        if fy < fx {
            return Some((y, fy));
        }
        t *= 0.5;
    }
    None
}

/// Central-difference gradient and Hessian of `f` over the free parameters.
fn derivatives(
    f: &impl Fn(&[f64]) -> f64,
    x: &[f64],
    free: &[usize],
    h: &[f64],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = free.len();
    let at = |d: &[(usize, f64)]| {
        let mut y = x.to_vec();
        for &(k, s) in d {
            y[free[k]] += s;
        }
        f(&y)
    };
    let f0 = f(x);
    let mut g = vec![0.0; n];
    let mut hess = vec![vec![0.0; n]; n];
    for a in 0..n {
        let (fp, fm) = (at(&[(a, h[a])]), at(&[(a, -h[a])]));
        g[a] = (fp - fm) / (2.0 * h[a]);
        hess[a][a] = (fp - 2.0 * f0 + fm) / (h[a] * h[a]);
        for b in 0..a {
            let v = (at(&[(a, h[a]), (b, h[b])])
                - at(&[(a, h[a]), (b, -h[b])])
                - at(&[(a, -h[a]), (b, h[b])])
                + at(&[(a, -h[a]), (b, -h[b])]))
                / (4.0 * h[a] * h[b]);
            hess[a][b] = v;
            hess[b][a] = v;
        }
    }
    (g, hess)
}

/// Inverse of a symmetric positive-definite matrix by Cholesky; `None` if it is not one.
pub fn invert_spd(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = m[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    // Invert L, then M⁻¹ = L⁻ᵀ L⁻¹.
    let mut li = vec![vec![0.0; n]; n];
    for i in 0..n {
        li[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            li[i][j] = -(j..i).map(|k| l[i][k] * li[k][j]).sum::<f64>() / l[i][i];
        }
    }
    Some(
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (i.max(j)..n).map(|k| li[k][i] * li[k][j]).sum())
                    .collect()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_bounded_quadratic_minimum_and_its_covariance() {
        // f = (x-1)²/(2·0.5²) + (y+2)²/(2·3²) + 0.3 (x-1)(y+2)/... keep it diagonal-dominant
        let f = |p: &[f64]| 0.5 * ((p[0] - 1.0) / 0.5).powi(2) + 0.5 * ((p[1] + 2.0) / 3.0).powi(2);
        let b = [
            Bound {
                lo: -10.0,
                hi: 10.0,
                fixed: false,
            },
            Bound {
                lo: -20.0,
                hi: 20.0,
                fixed: false,
            },
        ];
        let m = minimize(&f, &[0.0, 0.0], &b).unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] + 2.0).abs() < 1e-6,
            "{:?}",
            m.x
        );
        assert!((m.cov[0][0].sqrt() - 0.5).abs() < 1e-5 && (m.cov[1][1].sqrt() - 3.0).abs() < 1e-4);
        assert!(m.hessian_ok && m.edm < 1e-9 && m.at_bound.is_empty());
    }

    #[test]
    fn fixed_parameters_stay_put() {
        let f = |p: &[f64]| (p[0] - p[1]).powi(2) + p[1].powi(2);
        let b = [
            Bound {
                lo: -5.0,
                hi: 5.0,
                fixed: false,
            },
            Bound {
                lo: -5.0,
                hi: 5.0,
                fixed: true,
            },
        ];
        let m = minimize(&f, &[0.0, 2.0], &b).unwrap();
        assert_eq!(m.x[1], 2.0);
        assert!((m.x[0] - 2.0).abs() < 1e-6);
        assert_eq!(m.cov[1][1], 0.0);
    }

    #[test]
    fn inverts_spd_and_rejects_indefinite() {
        let m = vec![vec![4.0, 1.0], vec![1.0, 3.0]];
        let inv = invert_spd(&m).unwrap();
        let det = 11.0;
        assert!((inv[0][0] - 3.0 / det).abs() < 1e-12 && (inv[0][1] + 1.0 / det).abs() < 1e-12);
        assert!(invert_spd(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
    }
}

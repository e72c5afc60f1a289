use stage_api::{
    Background, Fit, FitModel, FitParam, FitResult, FitStatus, Histogram, ParamSpec, Signal,
    StageError,
};

pub struct Stage;

/// What −ln L returns where the model is unphysical (a non-positive expected density in a
/// bin with data, or a non-finite value): large and finite, so the simplex walks away.
const PENALTY: f64 = 1e30;

/// erf(x), accurate to a few 1e-16: a series without cancellation below 3, the continued
/// fraction of erfc above.
fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 3.0 {
        // erf(a) = 2/√π e^(−a²) Σ 2ⁿ a^(2n+1) / (1·3·…·(2n+1))
        let a2 = a * a;
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while n < 400.0 {
            n += 1.0;
            term *= 2.0 * a2 / (2.0 * n + 1.0);
            sum += term;
            if term <= 1e-17 * sum {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * (-a2).exp() * sum
    } else if a < 27.0 {
        // erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …))))
        let mut t = a;
        for k in (1..=100).rev() {
            t = a + (k as f64 / 2.0) / t;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * t)
    } else {
        1.0
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// The binned data and the fit range: −ln L of the Gaussian + exponential model.
struct Likelihood {
    lo: f64,
    hi: f64,
    /// (bin centre, n) for the bins with n ≠ 0.
    bins: Vec<(f64, f64)>,
}

impl Likelihood {
    /// −ln L = (nsig + nbkg) − Σ n_i ln(nsig G(x_i) + nbkg E(x_i)), p = [nsig, nbkg, mean,
    /// sigma, slope]; G and E normalised to 1 on [lo, hi].
    fn nll(&self, p: &[f64]) -> f64 {
        let (nsig, nbkg, mean, sigma, slope) = (p[0], p[1], p[2], p[3], p[4]);
        if !(sigma > 0.0) {
            return PENALTY;
        }
        let (lo, hi) = (self.lo, self.hi);
        let s2 = sigma * std::f64::consts::SQRT_2;
        let gauss_norm = 0.5
            * (erf((hi - mean) / s2) - erf((lo - mean) / s2))
            * sigma
            * (2.0 * std::f64::consts::PI).sqrt();
        // ∫ exp(slope (x − lo)) dx on [lo, hi]
        let exp_norm = if slope == 0.0 {
            hi - lo
        } else {
            (slope * (hi - lo)).exp_m1() / slope
        };
        if !(gauss_norm > 0.0) || !(exp_norm > 0.0) {
            return PENALTY;
        }
        let mut v = nsig + nbkg;
        for &(x, n) in &self.bins {
            let t = (x - mean) / sigma;
            let g = (-0.5 * t * t).exp() / gauss_norm;
            let e = (slope * (x - lo)).exp() / exp_norm;
            let nu = nsig * g + nbkg * e;
            if !(nu > 0.0) || !nu.is_finite() {
                return PENALTY;
            }
            v -= n * nu.ln();
        }
        if v.is_finite() {
            v
        } else {
            PENALTY
        }
    }
}

/// A minimum of −ln L.
struct Minimum {
    x: Vec<f64>,
    f: f64,
    edm: f64,
    /// Full size; zero rows and columns for fixed parameters and those held at a bound.
    cov: Vec<Vec<f64>>,
    hessian_ok: bool,
    /// Parameters at one of their bounds.
    at_bound: Vec<usize>,
}

/// Bounds and which parameters are held fixed.
struct Bounds {
    lo: Vec<f64>,
    hi: Vec<f64>,
    fixed: Vec<bool>,
}

impl Bounds {
    fn range(&self, i: usize) -> f64 {
        self.hi[i] - self.lo[i]
    }
    /// Minuit's transform of a bounded parameter to an unbounded angle, and back.
    fn to_angle(&self, i: usize, x: f64) -> f64 {
        (2.0 * (x - self.lo[i]) / self.range(i) - 1.0)
            .clamp(-1.0, 1.0)
            .asin()
    }
    fn at_angle(&self, i: usize, u: f64) -> f64 {
        (self.lo[i] + self.range(i) * (u.sin() + 1.0) / 2.0).clamp(self.lo[i], self.hi[i])
    }
}

/// Nelder–Mead simplex on `g` from `start` with an initial step `step` on every axis.
fn simplex(
    g: &dyn Fn(&[f64]) -> f64,
    start: &[f64],
    step: f64,
    max_evals: usize,
) -> (Vec<f64>, f64) {
    let n = start.len();
    if n == 0 {
        return (start.to_vec(), g(start));
    }
    let mut pts: Vec<Vec<f64>> = vec![start.to_vec()];
    for k in 0..n {
        let mut p = start.to_vec();
        p[k] += if p[k] > 1.0 { -step } else { step };
        pts.push(p);
    }
    let mut vals: Vec<f64> = pts.iter().map(|p| g(p)).collect();
    let mut evals = n + 1;
    loop {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        pts = order.iter().map(|&i| pts[i].clone()).collect();
        vals = order.iter().map(|&i| vals[i]).collect();
        let size = (1..=n)
            .map(|i| {
                (0..n)
                    .map(|d| (pts[i][d] - pts[0][d]).abs())
                    .fold(0.0, f64::max)
            })
            .fold(0.0, f64::max);
        if evals >= max_evals || (vals[n] - vals[0] <= 1e-10 && size < 1e-7) || size < 1e-12 {
            break;
        }
        let c: Vec<f64> = (0..n)
            .map(|d| (0..n).map(|i| pts[i][d]).sum::<f64>() / n as f64)
            .collect();
        let along =
            |t: f64| -> Vec<f64> { (0..n).map(|d| c[d] + t * (pts[n][d] - c[d])).collect() };
        let xr = along(-1.0);
        let fr = g(&xr);
        evals += 1;
        if fr < vals[0] {
            let xe = along(-2.0);
            let fe = g(&xe);
            evals += 1;
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            let outside = fr < vals[n];
            let xc = along(if outside { -0.5 } else { 0.5 });
            let fc = g(&xc);
            evals += 1;
            if (outside && fc <= fr) || (!outside && fc < vals[n]) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                for i in 1..=n {
                    let p: Vec<f64> = (0..n)
                        .map(|d| pts[0][d] + 0.5 * (pts[i][d] - pts[0][d]))
                        .collect();
                    vals[i] = g(&p);
                    pts[i] = p;
                }
                evals += n;
            }
        }
    }
    (pts[0].clone(), vals[0])
}

/// Central-difference gradient and Hessian of `f` at `x` over the parameters `vars`.
fn derivatives(
    f: &dyn Fn(&[f64]) -> f64,
    x: &[f64],
    vars: &[usize],
    h: &[f64],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = vars.len();
    let at = |moves: &[(usize, f64)]| {
        let mut y = x.to_vec();
        for &(k, d) in moves {
            y[vars[k]] += d;
        }
        f(&y)
    };
    let f0 = f(x);
    let mut g = vec![0.0; n];
    let mut hess = vec![vec![0.0; n]; n];
    for a in 0..n {
        let fp = at(&[(a, h[a])]);
        let fm = at(&[(a, -h[a])]);
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

/// Inverse of a symmetric positive-definite matrix (Cholesky); `None` if it is not one.
fn invert_spd(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = m[i][j];
            for k in 0..j {
                s -= l[i][k] * l[j][k];
            }
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
    // L⁻¹ (lower triangular), then M⁻¹ = L⁻ᵀ L⁻¹.
    let mut li = vec![vec![0.0; n]; n];
    for i in 0..n {
        li[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            let mut s = 0.0;
            for k in j..i {
                s += l[i][k] * li[k][j];
            }
            li[i][j] = -s / l[i][i];
        }
    }
    let mut inv = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            let mut s = 0.0;
            for k in i.max(j)..n {
                s += li[k][i] * li[k][j];
            }
            inv[i][j] = s;
        }
    }
    Some(inv)
}

/// Newton iterations (numeric gradient and Hessian, Levenberg damping where the Hessian is
/// not positive definite, backtracking inside the bounds) over `vars`. Returns the point, its
/// value and the step sizes (1 % of the parameter errors once they are known).
fn newton(
    f: &dyn Fn(&[f64]) -> f64,
    mut x: Vec<f64>,
    bx: &Bounds,
    vars: &[usize],
) -> (Vec<f64>, f64, Vec<f64>) {
    let n = vars.len();
    let mut h: Vec<f64> = vars.iter().map(|&i| 1e-5 * bx.range(i)).collect();
    let mut fx = f(&x);
    if n == 0 {
        return (x, fx, h);
    }
    for _ in 0..200 {
        let (g, hess) = derivatives(f, &x, vars, &h);
        let mut lambda = 0.0;
        let inv = loop {
            let mut m = hess.clone();
            for k in 0..n {
                m[k][k] += lambda * hess[k][k].abs().max(1e-12);
            }
            if let Some(inv) = invert_spd(&m) {
                break Some(inv);
            }
            lambda = if lambda == 0.0 { 1e-3 } else { lambda * 10.0 };
            if lambda > 1e12 {
                break None;
            }
        };
        let Some(inv) = inv else {
            break;
        };
        if lambda == 0.0 {
            for k in 0..n {
                h[k] = (0.01 * inv[k][k].sqrt()).max(1e-10 * (1.0 + x[vars[k]].abs()));
            }
        }
        let step: Vec<f64> = (0..n)
            .map(|a| -(0..n).map(|b| inv[a][b] * g[b]).sum::<f64>())
            .collect();
        let edm = -0.5 * (0..n).map(|a| g[a] * step[a]).sum::<f64>();
        if lambda == 0.0 && edm < 1e-12 {
            break;
        }
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..40 {
            let mut y = x.clone();
            for (k, &i) in vars.iter().enumerate() {
                y[i] = (x[i] + t * step[k]).clamp(bx.lo[i], bx.hi[i]);
            }
            let fy = f(&y);
            if fy < fx {
                x = y;
                fx = fy;
                moved = true;
                break;
            }
            t *= 0.5;
        }
        if !moved {
            break;
        }
    }
    (x, fx, h)
}

/// Minimises `f` from `x0` within the box: a simplex in bounded (angle) coordinates, then
/// Newton iterations; a parameter the minimum presses against a bound is held there.
fn minimise(f: &dyn Fn(&[f64]) -> f64, x0: &[f64], bx: &Bounds) -> Minimum {
    let np = x0.len();
    let free: Vec<usize> = (0..np).filter(|&i| !bx.fixed[i]).collect();
    let x0: Vec<f64> = (0..np).map(|i| x0[i].clamp(bx.lo[i], bx.hi[i])).collect();

    // 1. Simplex, restarted from its best point until it stops improving.
    let point = |u: &[f64]| -> Vec<f64> {
        let mut x = x0.clone();
        for (k, &i) in free.iter().enumerate() {
            x[i] = bx.at_angle(i, u[k]);
        }
        x
    };
    let g = |u: &[f64]| f(&point(u));
    let mut u: Vec<f64> = free.iter().map(|&i| bx.to_angle(i, x0[i])).collect();
    let mut fu = g(&u);
    for round in 0..6 {
        let (ub, fb) = simplex(&g, &u, if round == 0 { 0.1 } else { 0.02 }, 20_000);
        let gain = fu - fb;
        if fb <= fu {
            u = ub;
            fu = fb;
        }
        if round > 0 && gain < 1e-9 {
            break;
        }
    }
    let mut x = point(&u);

    // 2. Parameters within a hair of a bound: on it if the bound is lower than just inside.
    let mut held: Vec<usize> = Vec::new();
    for &i in &free {
        let h = 1e-5 * bx.range(i);
        for (edge, inside) in [(bx.lo[i], bx.lo[i] + h), (bx.hi[i], bx.hi[i] - h)] {
            if (x[i] - edge).abs() < h {
                let mut y = x.clone();
                y[i] = edge;
                let f_edge = f(&y);
                y[i] = inside;
                if f_edge <= f(&y) {
                    x[i] = edge;
                    held.push(i);
                } else {
                    x[i] = inside;
                }
            }
        }
    }

    // 3. Newton over the others; one that ends on a bound with f rising inward is held too.
    let mut vars: Vec<usize>;
    let mut fx;
    let mut h;
    loop {
        vars = free.iter().copied().filter(|i| !held.contains(i)).collect();
        let (xn, fnew, hn) = newton(f, x, bx, &vars);
        x = xn;
        fx = fnew;
        h = hn;
        let mut more = Vec::new();
        for &i in &vars {
            let d = 1e-5 * bx.range(i);
            let inward = if x[i] <= bx.lo[i] {
                Some(bx.lo[i] + d)
            } else if x[i] >= bx.hi[i] {
                Some(bx.hi[i] - d)
            } else {
                None
            };
            if let Some(v) = inward {
                let mut y = x.clone();
                y[i] = v;
                if f(&y) >= fx {
                    more.push(i);
                }
            }
        }
        if more.is_empty() {
            break;
        }
        held.extend(more);
    }

    // 4. Covariance: the inverse of the Hessian at the minimum, steps 1 % of the errors.
    let (g, hess) = derivatives(f, &x, &vars, &h);
    let inv = invert_spd(&hess);
    let mut cov = vec![vec![0.0; np]; np];
    let mut edm = f64::INFINITY;
    if let Some(inv) = &inv {
        for (a, &i) in vars.iter().enumerate() {
            for (b, &j) in vars.iter().enumerate() {
                cov[i][j] = inv[a][b];
            }
        }
        let n = vars.len();
        edm = 0.5
            * (0..n)
                .map(|a| g[a] * (0..n).map(|b| inv[a][b] * g[b]).sum::<f64>())
                .sum::<f64>();
    }
    let mut at_bound = held.clone();
    for &i in &vars {
        let r = 1e-6 * bx.range(i);
        if x[i] - bx.lo[i] < r || bx.hi[i] - x[i] < r {
            at_bound.push(i);
        }
    }
    Minimum {
        x,
        f: fx,
        edm,
        cov,
        hessian_ok: inv.is_some(),
        at_bound,
    }
}

impl Fit for Stage {
    fn fit(&self, model: &FitModel, histogram: &Histogram) -> Result<FitResult, StageError> {
        let b = histogram.binning;
        b.validate()?;
        if histogram.sumw.len() != b.bins || histogram.sumw2.len() != b.bins {
            return Err(StageError::from(format!(
                "the histogram has {} bins but {} sumw and {} sumw2 values",
                b.bins,
                histogram.sumw.len(),
                histogram.sumw2.len()
            )));
        }
        if histogram.sumw.iter().any(|w| !w.is_finite()) {
            return Err(StageError::from(
                "the histogram has a non-finite bin content",
            ));
        }
        model.validate(b.lo, b.hi)?;
        if model.signal != Signal::Gaussian || model.background != Background::Exp {
            return Err(StageError::from(format!(
                "this stage fits a Gaussian signal and an exponential background, not {} + {}",
                model.signal, model.background
            )));
        }
        let total: f64 = histogram.sumw.iter().sum();
        if !(total > 0.0) {
            return Err(StageError::from("the histogram is empty: nothing to fit"));
        }
        let specs: Vec<ParamSpec> = model.params(total);
        let names = ["nsig", "nbkg", "mean", "sigma", "slope"];
        if specs.len() != names.len() || specs.iter().zip(names).any(|(s, n)| s.name != n) {
            return Err(StageError::from(
                "unexpected parameters for a Gaussian + exponential model",
            ));
        }

        let lik = Likelihood {
            lo: b.lo,
            hi: b.hi,
            bins: (0..b.bins)
                .filter(|&i| histogram.sumw[i] != 0.0)
                .map(|i| (b.center(i), histogram.sumw[i]))
                .collect(),
        };
        let f = |p: &[f64]| lik.nll(p);
        let mut bx = Bounds {
            lo: specs.iter().map(|s| s.lo).collect(),
            hi: specs.iter().map(|s| s.hi).collect(),
            fixed: vec![false; specs.len()],
        };
        let init: Vec<f64> = specs.iter().map(|s| s.init).collect();

        // The best fit, from the starting values (as Minuit does in RooFit's fit).
        let best = minimise(&f, &init, &bx);

        // Background only: nsig = 0, mean and sigma at the best fit; nbkg and slope refitted.
        let mut x_b = best.x.clone();
        x_b[0] = 0.0;
        bx.fixed = vec![true, false, true, true, false];
        let bonly = minimise(&f, &x_b, &bx);
        let q0 = if best.x[0] > 0.0 {
            (2.0 * (bonly.f - best.f)).max(0.0)
        } else {
            0.0
        };

        let status = if !best.hessian_ok || !(best.edm <= 1e-3) {
            FitStatus::Failed
        } else if !best.at_bound.is_empty() {
            FitStatus::AtBound
        } else {
            FitStatus::Ok
        };
        let params = specs
            .iter()
            .enumerate()
            .map(|(i, s)| FitParam {
                name: s.name.clone(),
                value: best.x[i],
                error: best.cov[i][i].max(0.0).sqrt(),
            })
            .collect();
        let edm = if best.edm.is_finite() { best.edm } else { 1e30 };
        Ok(FitResult {
            model: *model,
            params,
            covariance: best.cov,
            nll: best.f,
            edm,
            status,
            q0,
            z: q0.sqrt(),
        })
    }
}

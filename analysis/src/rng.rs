//! A small, seedable random number generator (xoshiro256**) with the distributions the project
//! needs (uniform, Gaussian, exponential, Poisson). Hand-written so that a seed gives the same
//! numbers on every platform and with every dependency version: synthetic datasets and toy
//! studies are reproducible bit for bit.

/// A small, fast, seedable generator (xoshiro256**), so files are reproducible across
/// platforms and crate versions. Cloning it forks the sequence (both give the same numbers).
#[derive(Clone, Debug)]
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator seeded with `seed` (state filled by SplitMix64).
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Rng([next(), next(), next(), next()])
    }
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in [`a`, `b`).
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }
    /// Gaussian with mean `mean` and standard deviation `sigma` (Box–Muller).
    pub fn gaus(&mut self, mean: f64, sigma: f64) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        mean + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Exponential with mean `mean`.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
    /// Poisson-distributed count (Knuth's method; large means are split into parts ≤ 50,
    /// whose counts add up to an exact Poisson draw).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        if !(mean > 0.0) {
            return 0;
        }
        let parts = (mean / 50.0).ceil() as u32;
        let m = mean / parts as f64;
        let l = (-m).exp();
        let mut total = 0;
        for _ in 0..parts {
            let (mut k, mut p) = (0, 1.0);
            loop {
                p *= self.uniform();
                if p <= l {
                    break;
                }
                k += 1;
            }
            total += k;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn moments_are_right() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let g: Vec<f64> = (0..n).map(|_| r.gaus(1.0, 2.0)).collect();
        let mean = g.iter().sum::<f64>() / n as f64;
        let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (mean - 1.0).abs() < 0.02 && (var.sqrt() - 2.0).abs() < 0.02,
            "{mean} {var}"
        );
        for m in [0.3, 7.0, 160.0] {
            let p: Vec<f64> = (0..50_000).map(|_| r.poisson(m) as f64).collect();
            let pm = p.iter().sum::<f64>() / p.len() as f64;
            let pv = p.iter().map(|x| (x - pm).powi(2)).sum::<f64>() / p.len() as f64;
            assert!(
                (pm / m - 1.0).abs() < 0.02 && (pv / m - 1.0).abs() < 0.05,
                "{m}: {pm} {pv}"
            );
        }
        assert_eq!(Rng::new(5).uniform(), Rng::new(5).uniform());
    }
}

//! The statistics of a benchmark: success rates with Wilson intervals, the unbiased pass@k
//! and pass^k estimators, and the aggregates of a group of cells (a model on a task, a
//! model, a task). Only scored cells count (harness errors are reported apart).

use super::cell::{Caught, Cell};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval for `successes` of `n` at `z` (`[0, 1]` when `n` is 0).
pub fn wilson(successes: u64, n: u64, z: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// pass@k: the chance that at least one of k trials drawn without replacement from `n`
/// with `c` successes succeeds, 1 − C(n−c, k)/C(n, k) (the unbiased estimator of Chen et al.
/// 2021), as a product so no binomial overflows. `None` when k > n.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - miss)
}

/// pass^k: the chance that all of k trials drawn without replacement succeed, C(c, k)/C(n, k).
pub fn pass_all_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    if c < k {
        return Some(0.0);
    }
    Some((0..k).map(|i| (c - i) as f64 / (n - i) as f64).product())
}

/// Mean and median of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Centre {
    /// The arithmetic mean.
    pub mean: f64,
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
}

/// The mean and median of `values` (`None` when it is empty).
pub fn centre(values: &[f64]) -> Option<Centre> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Centre {
        mean: v.iter().sum::<f64>() / n as f64,
        median,
    })
}

/// The deterministic statistics of a group of cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Scored cells (harness errors excluded).
    pub trials: u64,
    /// Scored cells that succeeded.
    pub successes: u64,
    /// `None` when no cell was scored.
    pub success_rate: Option<f64>,
    /// The 95 % Wilson interval of the success rate.
    pub wilson95: [f64; 2],
    /// k → pass@k for k = 1..=trials (for a group of several (model, task) pairs: the mean
    /// over the pairs of their pass@k, for the k every pair reaches).
    #[serde(deserialize_with = "k_map")]
    pub pass_at_k: BTreeMap<u64, f64>,
    /// k → pass^k (all k succeed), as above.
    #[serde(deserialize_with = "k_map")]
    pub pass_all_k: BTreeMap<u64, f64>,
    /// Iterations the successes took.
    pub iterations_to_success: Option<Centre>,
    /// Model calls over the scored cells.
    pub api_calls: u64,
    /// Model calls per scored cell (`None` when no cell was scored).
    pub mean_api_calls: Option<f64>,
    /// Prompt tokens over the scored cells.
    pub prompt_tokens: u64,
    /// Completion tokens over the scored cells.
    pub completion_tokens: u64,
    /// Of the prompt tokens, those served from the provider's prompt cache.
    pub cached_prompt_tokens: u64,
    /// Of the completion tokens, those spent reasoning.
    pub reasoning_tokens: u64,
    /// Total USD (`None`: some cell's model has no price).
    pub cost_usd: Option<f64>,
    /// Mean USD per scored cell (`None`: a cost unknown, or no cell scored).
    pub cost_per_cell: Option<f64>,
    /// USD per success (`None`: a cost unknown, or no success).
    pub cost_per_success: Option<f64>,
    /// Failed cells by final category (kind → count).
    pub errors: BTreeMap<String, u64>,
    /// Failed cells by final category with detail (`kind/detail` → count).
    pub error_details: BTreeMap<String, u64>,
    /// All failed attempts by category (`kind/detail` → count).
    pub attempt_errors: BTreeMap<String, u64>,
    /// Failed attempts by where they were caught (screen, compiler, runtime, validation).
    pub caught: BTreeMap<String, u64>,
    /// Share of failed attempts caught by the compiler (screen included: before any run) vs
    /// only at run time or by validation.
    pub caught_before_run: Option<f64>,
    /// Cells ended as harness errors (not in any rate).
    pub harness_errors: u64,
}

impl Stats {
    /// The statistics of `cells` (in matrix order, so sums are in a fixed order).
    pub fn of(cells: &[&Cell]) -> Stats {
        let harness_errors = cells.iter().filter(|c| !c.scored()).count() as u64;
        let scored: Vec<&Cell> = cells.iter().copied().filter(|c| c.scored()).collect();
        let n = scored.len() as u64;
        let c = scored.iter().filter(|c| c.success()).count() as u64;

        // pass@k per (model, task) pair, averaged over the pairs.
        let mut pairs: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for cell in &scored {
            let e = pairs.entry((&cell.model, &cell.task)).or_default();
            e.0 += 1;
            e.1 += cell.success() as u64;
        }
        let kmax = pairs.values().map(|p| p.0).min().unwrap_or(0);
        let mean_over_pairs = |f: fn(u64, u64, u64) -> Option<f64>| -> BTreeMap<u64, f64> {
            (1..=kmax)
                .map(|k| {
                    let sum: f64 = pairs.values().filter_map(|&(n, c)| f(n, c, k)).sum();
                    (k, sum / pairs.len() as f64)
                })
                .collect()
        };

        let iterations: Vec<f64> = scored
            .iter()
            .filter(|c| c.success())
            .map(|c| c.iterations as f64)
            .collect();
        let api_calls: u64 = scored.iter().map(|c| c.api_calls as u64).sum();
        let cost_usd = if scored.iter().all(|c| c.cost_usd.is_some()) {
            Some(scored.iter().filter_map(|c| c.cost_usd).sum::<f64>())
        } else {
            None
        };
        let mut errors = BTreeMap::new();
        let mut error_details = BTreeMap::new();
        let mut attempt_errors = BTreeMap::new();
        let mut caught: BTreeMap<String, u64> = Caught::ALL
            .iter()
            .map(|c| (c.name().to_string(), 0))
            .collect();
        for cell in &scored {
            if let Some(cat) = &cell.category {
                *errors.entry(cat.kind.name().to_string()).or_insert(0) += 1;
                *error_details.entry(cat.label()).or_insert(0) += 1;
            }
            for a in &cell.attempts {
                if let Some(f) = &a.failure {
                    *attempt_errors.entry(f.label()).or_insert(0) += 1;
                }
                if let Some(w) = a.caught {
                    *caught.entry(w.name().to_string()).or_insert(0) += 1;
                }
            }
        }
        let failed: u64 = caught.values().sum();
        let before_run = caught["screen"] + caught["compiler"];
        let sum = |f: fn(&Cell) -> u64| scored.iter().map(|c| f(c)).sum::<u64>();
        Stats {
            trials: n,
            successes: c,
            success_rate: (n > 0).then(|| c as f64 / n as f64),
            wilson95: wilson(c, n, Z95),
            pass_at_k: mean_over_pairs(pass_at_k),
            pass_all_k: mean_over_pairs(pass_all_k),
            iterations_to_success: centre(&iterations),
            api_calls,
            mean_api_calls: (n > 0).then(|| api_calls as f64 / n as f64),
            prompt_tokens: sum(|c| c.usage.prompt_tokens),
            completion_tokens: sum(|c| c.usage.completion_tokens),
            cached_prompt_tokens: sum(|c| c.usage.cached_prompt_tokens),
            reasoning_tokens: sum(|c| c.usage.reasoning_tokens),
            cost_usd,
            cost_per_cell: cost_usd.filter(|_| n > 0).map(|t| t / n as f64),
            cost_per_success: cost_usd.filter(|_| c > 0).map(|t| t / c as f64),
            errors,
            error_details,
            attempt_errors,
            caught,
            caught_before_run: (failed > 0).then(|| before_run as f64 / failed as f64),
            harness_errors,
        }
    }
}

/// Reads a k → value map whose keys arrive as strings (JSON object keys; serde's
/// `flatten`, used by the report, does not turn them back into integers itself).
fn k_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, f64>, D::Error> {
    BTreeMap::<String, f64>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| {
            k.parse()
                .map(|k| (k, v))
                .map_err(|_| serde::de::Error::custom(format!("k = {k:?} is not a number")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_at_the_edges_and_inside() {
        // Worked by hand: n/(n+z²) and z²/(n+z²) at the edges.
        let [lo, hi] = wilson(3, 3, Z95);
        assert!((lo - 0.438_502_8).abs() < 1e-6 && hi == 1.0, "{lo}");
        let [lo, hi] = wilson(0, 3, Z95);
        assert!(lo == 0.0 && (hi - 0.561_497_2).abs() < 1e-6, "{hi}");
        // 1 of 2 is symmetric about one half.
        let [lo, hi] = wilson(1, 2, Z95);
        assert!((lo + hi - 1.0).abs() < 1e-12);
        assert_eq!(wilson(0, 0, Z95), [0.0, 1.0]);
    }

    #[test]
    fn pass_at_k_and_pass_all_k_by_hand() {
        // n = 5, c = 2: pass@1 = 2/5; pass@2 = 1 − C(3,2)/C(5,2) = 1 − 3/10;
        // pass^2 = C(2,2)/C(5,2) = 1/10; pass@4 = 1 (only 3 failures).
        assert!((pass_at_k(5, 2, 1).unwrap() - 0.4).abs() < 1e-12);
        assert!((pass_at_k(5, 2, 2).unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 2, 4), Some(1.0));
        assert!((pass_all_k(5, 2, 2).unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(pass_all_k(5, 2, 3), Some(0.0));
        assert_eq!(pass_at_k(3, 1, 4), None);
    }

    #[test]
    fn centres() {
        assert_eq!(centre(&[3.0, 1.0, 2.0, 10.0]).unwrap().median, 2.5);
        assert_eq!(centre(&[3.0, 1.0, 2.0]).unwrap().mean, 2.0);
        assert!(centre(&[]).is_none());
    }
}

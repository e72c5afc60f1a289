//! Step 5, categorization: boundaries on the classifier score that maximise the combined
//! Asimov significance Z = √(Σ Z_i²), Z_i = √(2((s_i + b_i) ln(1 + s_i/b_i) − s_i)), with s
//! from signal MC in the signal window and b from the data sidebands scaled into the window
//! (blinded: data in the window is never looked at). The boundaries are the exact optimum for
//! each number of categories ([`optimal`], a dynamic programme over the score bins' edges),
//! with as many categories as still gain; every category keeps a minimum expected background.
//! The categories chosen, each category's background is estimated again from its own
//! sidebands (its own exponential fit), not the inclusive spectrum's shape.
//!
//! The inputs are score × m_γγ histograms ([`ScoreMass`]), filled per file as events are
//! scored, so memory does not grow with the number of events.

use crate::histogram::{Binning, Histogram};
use serde::{Deserialize, Serialize};

/// Bins of the score axis on [0, 1]: boundaries fall on their edges.
pub const SCORE_BINS: usize = 200;

/// A score × m_γγ histogram (row-major: score bin, then mass bin). Masses outside the
/// binning are not kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreMass {
    /// Binning of the m_γγ axis (GeV).
    pub binning: Binning,
    /// Number of score bins on [0, 1] (`SCORE_BINS`).
    pub score_bins: usize,
    /// Sum of weights per cell (row-major: score bin, then mass bin).
    pub sumw: Vec<f64>,
    /// Sum of squared weights per cell.
    pub sumw2: Vec<f64>,
}

impl ScoreMass {
    /// An empty histogram: `SCORE_BINS` score bins by `binning` on the mass axis.
    pub fn new(binning: Binning) -> Self {
        let n = SCORE_BINS * binning.bins;
        Self {
            binning,
            score_bins: SCORE_BINS,
            sumw: vec![0.0; n],
            sumw2: vec![0.0; n],
        }
    }

    /// The score bin of a score in [0, 1] (1 itself in the last bin).
    pub fn score_bin(&self, score: f64) -> usize {
        ((score.clamp(0.0, 1.0) * self.score_bins as f64) as usize).min(self.score_bins - 1)
    }

    /// Adds weight `w` at `score` and mass `m` (GeV); masses outside the binning are dropped.
    pub fn fill(&mut self, score: f64, m: f64, w: f64) {
        let Some(j) = crate::histogram::find_bin(&self.binning, m) else {
            return;
        };
        let k = self.score_bin(score) * self.binning.bins + j;
        self.sumw[k] += w;
        self.sumw2[k] += w * w;
    }

    /// Adds `o`'s contents cell by cell (both must have the same binning).
    pub fn add(&mut self, o: &ScoreMass) {
        for (a, b) in self.sumw.iter_mut().zip(&o.sumw) {
            *a += b;
        }
        for (a, b) in self.sumw2.iter_mut().zip(&o.sumw2) {
            *a += b;
        }
    }

    /// The m_γγ histogram of score bins `lo..hi`.
    pub fn mass(&self, lo: usize, hi: usize) -> Histogram {
        let n = self.binning.bins;
        let mut h = Histogram::new(self.binning);
        for s in lo..hi {
            for j in 0..n {
                h.sumw[j] += self.sumw[s * n + j];
                h.sumw2[j] += self.sumw2[s * n + j];
            }
        }
        h.entries = 0;
        h
    }

    /// Per score bin, Σw over the mass bins whose centre satisfies `keep`.
    fn per_score(&self, keep: impl Fn(f64) -> bool) -> Vec<f64> {
        let n = self.binning.bins;
        let cols: Vec<usize> = (0..n).filter(|&j| keep(self.binning.center(j))).collect();
        (0..self.score_bins)
            .map(|s| cols.iter().map(|&j| self.sumw[s * n + j]).sum())
            .collect()
    }
}

impl Categories {
    /// Score-bin ranges of the categories (lowest score first).
    pub fn bin_ranges(&self, score_bins: usize) -> Vec<(usize, usize)> {
        self.categories
            .iter()
            .map(|c| {
                let b = |x: f64| (x * score_bins as f64).round() as usize;
                (b(c.score.0), b(c.score.1))
            })
            .collect()
    }
}

/// The weighted mean and standard deviation of a histogram within `range` (the signal MC's
/// peak and width).
pub fn peak(h: &Histogram, range: (f64, f64)) -> (f64, f64) {
    let b = &h.binning;
    let (mut w, mut wx, mut wxx) = (0.0, 0.0, 0.0);
    for i in 0..b.bins {
        let x = b.center(i);
        if x > range.0 && x < range.1 {
            w += h.sumw[i];
            wx += h.sumw[i] * x;
            wxx += h.sumw[i] * x * x;
        }
    }
    let mean = wx / w.max(f64::MIN_POSITIVE);
    (
        mean,
        (wxx / w.max(f64::MIN_POSITIVE) - mean * mean)
            .max(0.0)
            .sqrt(),
    )
}

/// The Asimov significance of `s` over `b` (0 when either is not positive).
pub fn asimov_z(s: f64, b: f64) -> f64 {
    if s <= 0.0 || b <= 0.0 {
        return 0.0;
    }
    (2.0 * ((s + b) * (1.0 + s / b).ln() - s)).max(0.0).sqrt()
}

/// How categories are chosen (the categorization rule's parameters).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategorizeConfig {
    /// The blinded signal window: s counted in it, data never looked at in it.
    pub signal_window: (f64, f64),
    /// Every category keeps at least this expected background in the window (as the
    /// optimisation estimates it, with the inclusive window/sideband ratio; a category's own
    /// estimate, reported, may come out slightly different).
    pub min_background: f64,
    /// Stop when a boundary adds less than this fraction to Z (auto).
    pub min_gain: f64,
    /// Exactly this many categories when given (fewer if no valid boundary is left).
    pub categories: Option<usize>,
    /// The most categories ever made (caps `categories` too).
    pub max_categories: usize,
}

impl Default for CategorizeConfig {
    fn default() -> Self {
        Self {
            signal_window: (120.0, 130.0),
            min_background: 10.0,
            min_gain: 0.01,
            categories: None,
            max_categories: 8,
        }
    }
}

/// One category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// Score range [lo, hi).
    pub score: (f64, f64),
    /// Expected signal (MC) in the window.
    pub s: f64,
    /// Expected background in the window: the category's sideband events × its own
    /// window/sideband ratio.
    pub b: f64,
    /// Asimov significance of the category (from `s` and `b`).
    pub z: f64,
    /// Background in the window per sideband event, from an exponential fitted to this
    /// category's own sidebands.
    #[serde(default)]
    pub sideband_to_window: f64,
}

/// What `categorize` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Categories {
    /// The configuration the categories were chosen with.
    pub config: CategorizeConfig,
    /// Inner boundaries, ascending.
    pub boundaries: Vec<f64>,
    /// From the lowest score to the highest.
    pub categories: Vec<Category>,
    /// Combined Asimov Z of the categories (each with its own background estimate).
    pub z: f64,
    /// Asimov Z of one inclusive category (all scores).
    pub z_inclusive: f64,
    /// The best combined Z with 1, 2, … categories, as the optimisation saw it (the
    /// inclusive window/sideband ratio for every score bin).
    pub z_by_categories: Vec<f64>,
    /// Background in the window per sideband event (from an exponential fitted to the
    /// inclusive sidebands): what the optimisation uses for every score bin.
    pub sideband_to_window: f64,
    /// Per score bin: Σw of signal MC (all masses) and of data in the sidebands (the score
    /// distributions; the data window stays blinded).
    pub score_signal: Vec<f64>,
    /// Per score bin: Σw of data in the sidebands (the window stays blinded).
    pub score_background: Vec<f64>,
}

/// The exponential slope that best describes the sideband bins (binned maximum likelihood on
/// the sidebands alone, golden-section search), and the window/sideband ratio it implies.
fn sideband_ratio(h: &Histogram, window: (f64, f64)) -> f64 {
    let b = &h.binning;
    let side: Vec<usize> = (0..b.bins)
        .filter(|&j| crate::classify::in_sidebands(b.center(j), window))
        .collect();
    let inside: Vec<usize> = (0..b.bins)
        .filter(|&j| !crate::classify::in_sidebands(b.center(j), window))
        .collect();
    let x0 = b.lo;
    let shape = |slope: f64, j: usize| (slope * (b.center(j) - x0)).exp();
    let nll = |slope: f64| {
        let norm: f64 = side.iter().map(|&j| shape(slope, j)).sum();
        -side
            .iter()
            .map(|&j| h.sumw[j] * (shape(slope, j) / norm).ln())
            .sum::<f64>()
    };
    let (mut lo, mut hi) = (-0.5, 0.5);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let (a, c) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if nll(a) < nll(c) {
            hi = c;
        } else {
            lo = a;
        }
    }
    let slope = (lo + hi) / 2.0;
    let sum = |js: &[usize]| js.iter().map(|&j| shape(slope, j)).sum::<f64>();
    sum(&inside) / sum(&side).max(f64::MIN_POSITIVE)
}

/// Per score bin: the expected signal in the window (MC) and background in the window (data
/// sidebands × the exponential's window/sideband ratio), and that ratio. The data window is
/// never looked at.
pub fn window_arrays(
    signal: &ScoreMass,
    data: &ScoreMass,
    window: (f64, f64),
) -> (Vec<f64>, Vec<f64>, f64) {
    let inside = |m: f64| !crate::classify::in_sidebands(m, window);
    let s_bins = signal.per_score(inside);
    let side = data.per_score(|m| crate::classify::in_sidebands(m, window));
    let ratio = sideband_ratio(&data.mass(0, data.score_bins), window);
    (s_bins, side.iter().map(|b| b * ratio).collect(), ratio)
}

/// The combined Asimov Z of `boundaries` (score values, ascending, on bin edges) over the
/// per-bin `s` and `b`; `None` when one of several categories has less than
/// `min_background`, or a boundary is not an inner bin edge in ascending order.
pub fn total_z(s: &[f64], b: &[f64], boundaries: &[f64], min_background: f64) -> Option<f64> {
    let n = s.len();
    let mut edges = vec![0usize];
    for &x in boundaries {
        let e = (x * n as f64).round();
        if (e / n as f64 - x).abs() > 1e-9 || e <= 0.0 || e >= n as f64 {
            return None;
        }
        let e = e as usize;
        if e <= *edges.last().expect("non-empty") {
            return None;
        }
        edges.push(e);
    }
    edges.push(n);
    let mut z2 = 0.0;
    let single = edges.len() == 2;
    for w in edges.windows(2) {
        let (cs, cb): (f64, f64) = (s[w[0]..w[1]].iter().sum(), b[w[0]..w[1]].iter().sum());
        // One category is always allowed (there is nothing to split).
        if cb < min_background && !single {
            return None;
        }
        z2 += asimov_z(cs, cb).powi(2);
    }
    Some(z2.sqrt())
}

/// The best boundaries on per-bin `s` and `b`, exactly: a dynamic programme over the bin
/// edges finds, for each number of categories, the partition that maximises Σ Z_c² (Z² adds
/// over categories) with every category keeping `min_background` (one category is always
/// allowed). With `target`, that many categories (fewer if no valid partition has more);
/// without, the fewest after which one more category would raise Z by less than `min_gain`.
/// Returns the inner edges (bin indices) and the best Z for 1, 2, … categories up to the one
/// chosen. Among equal partitions the one with the lowest edges wins.
pub fn optimal(
    s: &[f64],
    b: &[f64],
    min_background: f64,
    min_gain: f64,
    target: Option<usize>,
    max_categories: usize,
) -> (Vec<usize>, Vec<f64>) {
    let n = s.len();
    let prefix = |v: &[f64]| {
        let mut p = vec![0.0];
        for x in v {
            p.push(p.last().expect("non-empty") + x);
        }
        p
    };
    let (ps, pb) = (prefix(s), prefix(b));
    let z2 = |i: usize, j: usize| asimov_z(ps[j] - ps[i], pb[j] - pb[i]).powi(2);
    let limit = target
        .unwrap_or(max_categories)
        .min(max_categories)
        .clamp(1, n.max(1));
    // best[c][j]: the largest Σ Z² of c + 1 valid categories covering bins 0..j, and where
    // the last one starts.
    let mut best: Vec<Vec<Option<(f64, usize)>>> = vec![vec![None; n + 1]; limit];
    for j in 1..=n {
        if pb[j] >= min_background {
            best[0][j] = Some((z2(0, j), 0));
        }
    }
    for c in 1..limit {
        for j in 1..=n {
            let mut top: Option<(f64, usize)> = None;
            for i in 1..j {
                let Some((prev, _)) = best[c - 1][i] else {
                    continue;
                };
                if pb[j] - pb[i] < min_background {
                    continue;
                }
                let v = prev + z2(i, j);
                if top.is_none_or(|(t, _)| v > t) {
                    top = Some((v, i));
                }
            }
            best[c][j] = top;
        }
    }
    let edges_of = |c: usize| -> Vec<usize> {
        let mut edges = Vec::new();
        let (mut j, mut c) = (n, c);
        while c > 0 {
            let (_, i) = best[c][j].expect("a chosen partition exists");
            edges.push(i);
            j = i;
            c -= 1;
        }
        edges.reverse();
        edges
    };
    let single = asimov_z(ps[n], pb[n]);
    let mut z_by = vec![single];
    let mut chosen = 0;
    for c in 1..limit {
        let Some((v, _)) = best[c][n] else { break };
        let z = v.sqrt();
        if target.is_none() && z < z_by[c - 1] * (1.0 + min_gain) {
            break;
        }
        z_by.push(z);
        chosen = c;
    }
    (edges_of(chosen), z_by)
}

/// Chooses the boundaries from the signal MC's and the data's score × mass histograms.
pub fn categorize(signal: &ScoreMass, data: &ScoreMass, cfg: &CategorizeConfig) -> Categories {
    let (s, b, ratio) = window_arrays(signal, data, cfg.signal_window);
    let n = s.len();
    let (inner, z_by) = optimal(
        &s,
        &b,
        cfg.min_background,
        cfg.min_gain,
        cfg.categories,
        cfg.max_categories,
    );
    let edge = |e: usize| e as f64 / n as f64;
    let mut edges = vec![0];
    edges.extend(&inner);
    edges.push(n);
    let side = data.per_score(|m| crate::classify::in_sidebands(m, cfg.signal_window));
    let categories: Vec<Category> = edges
        .windows(2)
        .map(|p| {
            // The category's own sideband shape gives its background in the window.
            let own = sideband_ratio(&data.mass(p[0], p[1]), cfg.signal_window);
            let cs = s[p[0]..p[1]].iter().sum();
            let cb = side[p[0]..p[1]].iter().sum::<f64>() * own;
            Category {
                score: (edge(p[0]), edge(p[1])),
                s: cs,
                b: cb,
                z: asimov_z(cs, cb),
                sideband_to_window: own,
            }
        })
        .collect();
    Categories {
        config: *cfg,
        boundaries: inner.iter().map(|&e| edge(e)).collect(),
        z: categories.iter().map(|c| c.z * c.z).sum::<f64>().sqrt(),
        categories,
        z_inclusive: asimov_z(s.iter().sum(), b.iter().sum()),
        z_by_categories: z_by,
        sideband_to_window: ratio,
        score_signal: signal.per_score(|_| true),
        score_background: side,
    }
}

/// The input of a categorization stage from one data and one signal MC selection: the
/// classifier trained on them (two folds, default configuration), every event scored, and the
/// per-bin expected signal and background in the window (the categorize task's input).
pub fn categorize_input(
    data: &crate::select::Diphotons,
    mc: &crate::select::Diphotons,
    binning: &Binning,
) -> Result<stage_api::CategorizeInput, crate::classify::ClassifyError> {
    let ccfg = crate::classify::ClassifierConfig::default();
    let cfg = CategorizeConfig::default();
    let mut sample = crate::classify::Sample::default();
    sample.add(data, false, 1, &ccfg);
    sample.add(mc, true, 1, &ccfg);
    let classifier = crate::classify::train(&sample, &ccfg)?;
    let scorer = crate::classify::Scorer::new(&classifier)?;
    let fill = |d: &crate::select::Diphotons| {
        let mut h = ScoreMass::new(*binning);
        for (i, s) in scorer.score(d).iter().enumerate() {
            h.fill(*s, d.m_yy[i], d.weight[i]);
        }
        h
    };
    let (s, b, _) = window_arrays(&fill(mc), &fill(data), cfg.signal_window);
    Ok(stage_api::CategorizeInput {
        signal: s,
        background: b,
        min_background: cfg.min_background,
        max_categories: cfg.max_categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asimov_z_by_hand() {
        // s ≪ b: Z → s/√b.
        assert!((asimov_z(1.0, 10_000.0) - 0.01).abs() < 1e-5);
        // s = b = 1: √(2(2 ln 2 − 1)) = 0.878971.
        assert!((asimov_z(1.0, 1.0) - 0.878_971).abs() < 1e-6);
        assert_eq!(asimov_z(0.0, 5.0), 0.0);
    }

    /// The dynamic programme finds what trying every partition finds, for every number of
    /// categories.
    #[test]
    fn the_boundaries_are_the_exact_optimum() {
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..20 {
            let n = 12;
            let s: Vec<f64> = (0..n).map(|i| rng.exp(1.0 + i as f64)).collect();
            let b: Vec<f64> = (0..n).map(|i| rng.exp(40.0 / (1.0 + i as f64))).collect();
            let min_b = 3.0;
            for c in 1..=5 {
                let (inner, z_by) = optimal(&s, &b, min_b, 0.0, Some(c), 8);
                let z = total_z(
                    &s,
                    &b,
                    &inner
                        .iter()
                        .map(|&e| e as f64 / n as f64)
                        .collect::<Vec<_>>(),
                    min_b,
                );
                // Every subset of the 11 inner edges with c − 1 of them.
                let mut brute: Option<f64> = None;
                for mask in 0u32..(1 << (n - 1)) {
                    if mask.count_ones() as usize != c - 1 {
                        continue;
                    }
                    let edges: Vec<f64> = (1..n)
                        .filter(|e| mask & (1 << (e - 1)) != 0)
                        .map(|e| e as f64 / n as f64)
                        .collect();
                    if let Some(v) = total_z(&s, &b, &edges, min_b) {
                        brute = Some(brute.map_or(v, |t: f64| t.max(v)));
                    }
                }
                match brute {
                    Some(best) => {
                        assert_eq!(inner.len(), c - 1);
                        assert!((z.unwrap() - best).abs() < 1e-12, "{c}: {z:?} vs {best}");
                        assert!((z_by[c - 1] - best).abs() < 1e-12);
                    }
                    None => assert!(inner.len() < c - 1),
                }
            }
        }
    }

    #[test]
    fn a_pure_signal_region_becomes_its_own_category() {
        let binning = Binning {
            bins: 10,
            lo: 100.0,
            hi: 150.0,
        };
        let (mut sig, mut data) = (ScoreMass::new(binning), ScoreMass::new(binning));
        // Flat background in mass, all at low score; signal at 125 GeV, high score.
        for j in 0..10 {
            let m = 102.5 + 5.0 * j as f64;
            data.fill(0.2, m, 100.0);
            data.fill(0.95, m, 8.0);
        }
        sig.fill(0.9, 125.0, 20.0);
        sig.fill(0.2, 125.0, 5.0);
        let c = categorize(&sig, &data, &CategorizeConfig::default());
        assert_eq!(c.categories.len(), 2, "{c:?}");
        assert!(c.z > c.z_inclusive);
        let top = c.categories.last().unwrap();
        assert!((top.s - 20.0).abs() < 1e-9, "{top:?}");
        // The boundary falls between the two populations.
        assert!(
            c.boundaries[0] > 0.2 && c.boundaries[0] <= 0.9,
            "{:?}",
            c.boundaries
        );
        // Flat sidebands: the window (2 of 10 bins... here 120–130 = 2 bins) gets 2/8 of them.
        assert!(
            (c.sideband_to_window - 0.25).abs() < 0.01,
            "{}",
            c.sideband_to_window
        );
    }
}

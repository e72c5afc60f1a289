//! The m_γγ histogram as data: equal-width binning, Σw and Σw² per bin, under/overflow.
//! Filling it is `analysis::histogram`.

use serde::{Deserialize, Serialize};

/// Equal-width bins on `[lo, hi)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binning {
    /// Number of bins.
    pub bins: usize,
    /// Lower edge of the range, inclusive (GeV for m_γγ).
    pub lo: f64,
    /// Upper edge of the range, exclusive (GeV for m_γγ).
    pub hi: f64,
}

impl Default for Binning {
    /// The reference: 55 bins of 1 GeV on 105–160 GeV.
    fn default() -> Self {
        Self {
            bins: 55,
            lo: 105.0,
            hi: 160.0,
        }
    }
}

impl Binning {
    /// `Ok` when 0 < `bins` ≤ 10⁷, `lo` < `hi` and both are finite; an error saying what is
    /// wrong otherwise.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(lo < hi)` also rejects NaN
    pub fn validate(&self) -> Result<(), String> {
        if self.bins == 0
            || self.bins > 10_000_000
            || !(self.lo < self.hi)
            || !self.lo.is_finite()
            || !self.hi.is_finite()
        {
            return Err(format!(
                "binning needs 0 < bins ≤ 10^7 and lo < hi, got {} bins on [{}, {})",
                self.bins, self.lo, self.hi
            ));
        }
        Ok(())
    }
    /// Width of every bin.
    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.bins as f64
    }
    /// Centre of bin `i`.
    pub fn center(&self, i: usize) -> f64 {
        self.lo + (i as f64 + 0.5) * self.width()
    }
    /// Lower edge of bin `i` (`i = bins` gives `hi`).
    pub fn edge(&self, i: usize) -> f64 {
        self.lo + i as f64 * self.width()
    }
}

/// A weighted histogram: per bin Σw and Σw², plus what fell outside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The binning of m_γγ.
    pub binning: Binning,
    /// Σw per bin.
    pub sumw: Vec<f64>,
    /// Σw² per bin (the squared statistical error).
    pub sumw2: Vec<f64>,
    /// Σw below `lo`, and at or above `hi` (including NaN, as ROOT does).
    pub underflow: f64,
    /// Σw at or above `hi`, NaN values included.
    pub overflow: f64,
    /// Number of fills.
    pub entries: u64,
}

impl Histogram {
    /// An empty histogram with this binning: `sumw` and `sumw2` hold `bins` zeros, the rest
    /// is zero.
    pub fn new(binning: Binning) -> Self {
        Self {
            binning,
            sumw: vec![0.0; binning.bins],
            sumw2: vec![0.0; binning.bins],
            underflow: 0.0,
            overflow: 0.0,
            entries: 0,
        }
    }

    /// Adds another histogram with the same binning.
    pub fn add(&mut self, o: &Histogram) {
        debug_assert_eq!(self.binning, o.binning);
        for i in 0..self.sumw.len() {
            self.sumw[i] += o.sumw[i];
            self.sumw2[i] += o.sumw2[i];
        }
        self.underflow += o.underflow;
        self.overflow += o.overflow;
        self.entries += o.entries;
    }

    /// Σw inside the range.
    pub fn integral(&self) -> f64 {
        self.sumw.iter().sum()
    }
}

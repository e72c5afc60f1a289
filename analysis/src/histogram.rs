//! Selected diphotons → a weighted 1D histogram of m_γγ, with under/overflow and Σw².
//!
//! The types are the contract's (`stage_api::histogram`); filling them is here, because
//! filling is the histogram stage's answer and the contract crate holds no answers.

pub use stage_api::histogram::{Binning, Histogram};

/// The bin of `x`, computed as ROOT's `TAxis::FindBin` does; `None` outside `[lo, hi)`.
pub fn find_bin(b: &Binning, x: f64) -> Option<usize> {
    if !(x >= b.lo && x < b.hi) {
        return None;
    }
    let i = (b.bins as f64 * (x - b.lo) / (b.hi - b.lo)) as usize;
    Some(i.min(b.bins - 1))
}

/// Adds one entry of weight `w` at `x` (NaN to the overflow, as in ROOT).
pub fn fill(h: &mut Histogram, x: f64, w: f64) {
    h.entries += 1;
    match find_bin(&h.binning, x) {
        Some(i) => {
            h.sumw[i] += w;
            h.sumw2[i] += w * w;
        }
        None if !(x < h.binning.lo) => h.overflow += w,
        None => h.underflow += w,
    }
}

/// `h` with the bins whose centre lies in `window` emptied, and its `entries` without them:
/// what a blinded result shows of the data (the work directory's merged histograms keep
/// everything). Data events weigh 1, so a bin's Σw is its count: no number left here adds up
/// to the window's.
pub fn blinded(mut h: Histogram, window: (f64, f64)) -> Histogram {
    let b = h.binning;
    let mut removed = 0.0;
    for i in 0..b.bins {
        let x = b.center(i);
        if x >= window.0 && x <= window.1 {
            removed += h.sumw[i];
            h.sumw[i] = 0.0;
            h.sumw2[i] = 0.0;
        }
    }
    h.entries = h.entries.saturating_sub(removed.round().max(0.0) as u64);
    h
}

/// A data cut flow as a blinded result shows it: without the last cut, the mass range, whose
/// count less the sidebands' would be the number of events in the window.
pub fn blinded_cut_flow(mut flow: crate::select::CutFlow) -> crate::select::CutFlow {
    flow.0.pop();
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_under_and_overflow() {
        let mut h = Histogram::new(Binning::default());
        for (x, w) in [
            (105.0, 1.0),
            (159.999, 2.0),
            (160.0, 3.0),
            (104.9, 4.0),
            (f64::NAN, 5.0),
            (125.5, 0.5),
        ] {
            fill(&mut h, x, w);
        }
        assert_eq!((h.sumw[0], h.sumw[54], h.sumw[20]), (1.0, 2.0, 0.5));
        assert_eq!((h.overflow, h.underflow, h.entries), (8.0, 4.0, 6));
        assert_eq!(h.sumw2[54], 4.0);
        assert!(Binning {
            bins: 0,
            lo: 1.0,
            hi: 2.0
        }
        .validate()
        .is_err());
    }
}

//! `histogram`: diphotons + binning → the weighted m_γγ histogram, with the edge cases the instruction defines added to the input.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde_json::Value;

/// See the module documentation.
pub(super) struct HistogramStage;

impl StageCase for HistogramStage {
    type Output = Histogram;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let binning = ctx.params.binning;
        let selected = ctx.selected(path)?;
        // The selection's masses are all inside the window and weigh 1: add the edge
        // cases the instruction defines (below lo, at lo, just below and at hi, above
        // hi) with non-unit and negative weights, so the stage must handle them.
        let mut diphotons = selected.diphotons;
        // A histogram needs only masses and weights.
        diphotons.kinematics = Default::default();
        let (lo, hi) = (binning.lo, binning.hi);
        for (m, w) in [
            (lo - 0.5, 0.5),
            (lo, 2.0),
            (hi - 1e-9, -1.0),
            (hi, 1.5),
            (hi + 3.0, 0.25),
            (0.5 * (lo + hi), 3.0),
        ] {
            diphotons.m_yy.push(m);
            diphotons.weight.push(w);
        }
        let h = Reference
            .histogram(&diphotons, &binning)
            .map_err(|e| e.message)?;
        let i = HistogramInput { diphotons, binning };
        Ok((to_json(&i), serde_json::to_value(&h).expect("plain data")))
    }

    fn sanity(c: &mut Checks, h: &Histogram) {
        let n = h.binning.bins;
        let ok = h.sumw.len() == n && h.sumw2.len() == n;
        let msg = format!(
            "{} sumw and {} sumw2 values for {n} bins",
            h.sumw.len(),
            h.sumw2.len()
        );
        c.add("one value per bin", ok, msg.clone(), msg);
        let finite = h
            .sumw
            .iter()
            .chain(&h.sumw2)
            .chain([&h.underflow, &h.overflow])
            .all(|x| x.is_finite());
        c.rule("finite values", finite, "bin contents are finite");
    }

    fn compare(c: &mut Checks, h: &Histogram, r: &Histogram, tol: &Tolerances) {
        let same_binning = h.binning == r.binning
            && h.sumw.len() == r.sumw.len()
            && h.sumw2.len() == r.sumw2.len();
        c.add(
            "binning",
            same_binning,
            format!("stage {:?}, reference {:?}", h.binning, r.binning),
            "the histogram must keep the input binning".into(),
        );
        if !same_binning {
            return;
        }
        for (name, a, b) in [("sumw", &h.sumw, &r.sumw), ("sumw2", &h.sumw2, &r.sumw2)] {
            let (w, i) = worst(a, b);
            c.add(
                name,
                w <= tol.rel,
                format!(
                    "largest relative difference {w:.2e} in bin {i}, tolerance {:.0e}",
                    tol.rel
                ),
                format!(
                    "{name} differs from the reference {} of {:.0e} relative (largest in bin {i})",
                    how_far(w / tol.rel),
                    tol.rel
                ),
            );
        }
        let flows = rel_diff(h.underflow, r.underflow) <= tol.rel
            && rel_diff(h.overflow, r.overflow) <= tol.rel;
        c.add(
            "under/overflow",
            flows,
            format!(
                "stage {}/{}, reference {}/{}",
                h.underflow, h.overflow, r.underflow, r.overflow
            ),
            format!(
                "underflow/overflow differ from the reference (yours: {}/{})",
                h.underflow, h.overflow
            ),
        );
        c.add(
            "entries",
            h.entries == r.entries,
            format!("stage {}, reference {}", h.entries, r.entries),
            format!("entries differs from the reference (yours: {})", h.entries),
        );
    }
}

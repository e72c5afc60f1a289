//! `categorize`: a score table (signal and background per score bin) → category boundaries; the harness computes their Z.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde_json::Value;

/// See the module documentation.
pub(super) struct CategorizeStage;

impl StageCase for CategorizeStage {
    type Output = CategorizeDoc;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let binning = ctx.params.binning;
        let selected = ctx.selected(path)?;
        let mc_selected = ctx.selected(ctx.mc()?)?;
        let mut input = analysis::categorize::categorize_input(
            &selected.diphotons,
            &mc_selected.diphotons,
            &binning,
        )
        .map_err(|e| e.to_string())?;
        // A classifier trained on other events orders them much as the visible one
        // does, so a remembered boundary can stay within the tolerance of the best Z
        // (seen: 0.785 passed a held-out table). The held-out table is the same
        // classifier's scores reversed (1 − s, as legitimate a table): its best
        // boundaries are mirrored, 1 − b, and a remembered one lands far from them.
        if ctx.held_out {
            input.signal.reverse();
            input.background.reverse();
        }
        let out = Reference.categorize(&input).map_err(|e| e.message)?;
        // The reference document carries the input: validation computes Z from it.
        let mut reference = serde_json::to_value(&out).expect("plain data");
        reference["input"] = serde_json::to_value(&input).expect("plain data");
        Ok((to_json(&input), reference))
    }

    fn sanity(c: &mut Checks, out: &CategorizeDoc) {
        let b = &out.boundaries;
        let ok = b.iter().all(|x| x.is_finite() && *x > 0.0 && *x < 1.0)
            && b.windows(2).all(|w| w[0] < w[1]);
        c.rule(
            "boundaries ordered",
            ok,
            "the boundaries are finite, strictly inside (0, 1) and strictly ascending",
        );
    }

    fn compare(c: &mut Checks, out: &CategorizeDoc, r: &CategorizeDoc, tol: &Tolerances) {
        let Some(input) = &r.input else { return };
        let z = |b: &[f64]| {
            analysis::categorize::total_z(&input.signal, &input.background, b, input.min_background)
        };
        let n = input.signal.len();
        let count_ok = out.boundaries.len() < input.max_categories.max(1);
        let stage_z = z(&out.boundaries);
        c.add(
            "valid categories",
            stage_z.is_some() && count_ok,
            format!(
                "{} boundaries; every one a bin edge (multiple of 1/{n}), at most {} categories, \
                 each with background ≥ {}: {}",
                out.boundaries.len(),
                input.max_categories,
                input.min_background,
                if stage_z.is_some() && count_ok {
                    "yes"
                } else {
                    "no"
                }
            ),
            format!(
                "the boundaries must be bin edges (multiples of 1/{n}), make at most {} categories, \
                 and leave every category at least {} background",
                input.max_categories, input.min_background
            ),
        );
        let (Some(zs), Some(zr)) = (stage_z, z(&r.boundaries)) else {
            return;
        };
        let need = tol.z_fraction * zr;
        c.add(
            "significance",
            zs >= need,
            format!("stage Z {zs:.4}, reference Z {zr:.4} (needed {need:.4})"),
            format!(
                "your boundaries fall short of the Z that is reachable {} (the tolerance: a \
                 shortfall of {:.0} %)",
                how_far((1.0 - zs / zr).max(0.0) / (1.0 - tol.z_fraction)),
                100.0 * (1.0 - tol.z_fraction)
            ),
        );
    }
}

/// A categorization as validation reads it: the stage's boundaries; in the reference
/// document also the input, from which the harness computes each answer's Z.
#[derive(serde::Deserialize)]
pub(super) struct CategorizeDoc {
    boundaries: Vec<f64>,
    #[serde(default)]
    input: Option<analysis::stage::CategorizeInput>,
}

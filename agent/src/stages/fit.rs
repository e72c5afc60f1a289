//! `fit`: a model + the m_γγ histogram of the selection → the fitted parameters, errors and significance.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde_json::Value;

/// See the module documentation.
pub(super) struct FitStage;

impl StageCase for FitStage {
    type Output = FitResult;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let (binning, model) = (ctx.params.binning, ctx.params.model);
        use analysis::stage::Fit;
        let selected = ctx.selected(path)?;
        let h = Reference
            .histogram(&selected.diphotons, &binning)
            .map_err(|e| e.message)?;
        let f = Reference.fit(&model, &h).map_err(|e| e.message)?;
        let i = analysis::stage::FitInput {
            model,
            histogram: h,
        };
        Ok((to_json(&i), serde_json::to_value(&f).expect("plain data")))
    }

    fn sanity(c: &mut Checks, f: &FitResult) {
        let finite = f
            .params
            .iter()
            .all(|p| p.value.is_finite() && p.error.is_finite())
            && f.nll.is_finite()
            && f.z.is_finite();
        c.rule(
            "finite values",
            finite,
            "parameter values, errors, nll and z are finite",
        );
        let n = f.params.len();
        let square = f.covariance.len() == n && f.covariance.iter().all(|r| r.len() == n);
        c.rule(
            "covariance shape",
            square,
            &format!("the covariance is {n}×{n}"),
        );
    }

    fn compare(c: &mut Checks, f: &FitResult, r: &FitResult, tol: &Tolerances) {
        let names = |x: &FitResult| x.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        let same = names(f) == names(r);
        c.add(
            "parameters",
            same,
            format!("stage {:?}, reference {:?}", names(f), names(r)),
            format!("the parameters must be, in order, {:?}", names(r)),
        );
        if !same {
            return;
        }
        for (p, q) in f.params.iter().zip(&r.params) {
            let pull = (p.value - q.value).abs() / q.error.max(f64::MIN_POSITIVE);
            c.add(
                &format!("{} value", p.name),
                pull <= tol.value_sigma,
                format!(
                    "stage {} reference {} ({pull:.3}σ, tolerance {}σ)",
                    p.value, q.value, tol.value_sigma
                ),
                format!(
                    "the fitted {} is not at the likelihood minimum the reference finds: {} of \
                     {}σ{}",
                    p.name,
                    how_far(pull / tol.value_sigma),
                    tol.value_sigma,
                    if p.value * q.value < 0.0 {
                        ", with the wrong sign"
                    } else {
                        ""
                    }
                ),
            );
            let d = rel_diff(p.error, q.error);
            c.add(
                &format!("{} error", p.name),
                d <= tol.error_rel,
                format!(
                    "stage {} reference {} (relative {d:.2e}, tolerance {})",
                    p.error, q.error, tol.error_rel
                ),
                format!(
                    "the error of {} differs from the reference's Hessian error {} of {} relative",
                    p.name,
                    how_far(d / tol.error_rel),
                    tol.error_rel,
                ),
            );
        }
        let dz = (f.z - r.z).abs();
        c.add(
            "significance",
            dz <= 0.01,
            format!("stage z {} reference {}", f.z, r.z),
            format!(
                "z differs from the reference {} of 0.01",
                how_far(dz / 0.01)
            ),
        );
    }
}

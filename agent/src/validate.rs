//! The stage's output against the reference stage's output on the same input.
//!
//! Every check has two texts: `detail`, for the user, which may quote reference numbers, and
//! `hint`, for the model, which quotes only the stage's own numbers — reference values are
//! never shown to the LLM (only the contract's names, such as the cut and parameter names). Without a reference (a user's own instruction) only sanity checks
//! run and the result says it is not validated.

use crate::stage_crate::StageKind;
use crate::task::Tolerances;
use analysis::stage::{FitResult, Histogram, SelectOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// For the user (may quote the reference).
    pub detail: String,
    /// For the model (never quotes the reference).
    pub hint: String,
}

/// All checks of one output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Whether a reference was compared (false: sanity checks only).
    pub validated: bool,
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl Validation {
    /// What the model is told: the failed checks' hints, one per line, then the names of the
    /// checks that passed (so it knows what not to change).
    pub fn hints(&self) -> String {
        let mut lines: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("- {}", c.hint))
            .collect();
        let passed: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.passed)
            .map(|c| c.name.as_str())
            .collect();
        if !passed.is_empty() {
            lines.push(format!("Checks that passed: {}.", passed.join(", ")));
        }
        lines.join("\n")
    }
    /// Failed checks' details, for the user.
    pub fn details(&self) -> String {
        let lines: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        lines.join("; ")
    }
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &str, passed: bool, detail: String, hint: String) {
        self.0.push(Check {
            name: name.into(),
            passed,
            detail,
            hint,
        });
    }
    /// A sanity rule: its text says "holds" or "violated", so a passed check never reads as
    /// a failure in a trajectory.
    fn rule(&mut self, name: &str, passed: bool, rule: &str) {
        let text = if passed {
            format!("holds: {rule}")
        } else {
            format!("violated: {rule}")
        };
        self.add(name, passed, text.clone(), text);
    }
    fn finish(self, validated: bool) -> Validation {
        let passed = self.0.iter().all(|c| c.passed);
        Validation {
            validated,
            passed,
            checks: self.0,
        }
    }
}

/// Compares `output` (the stage's JSON) with `reference` (when there is one).
pub fn validate(
    kind: StageKind,
    output: &str,
    reference: Option<&Value>,
    tol: &Tolerances,
) -> Validation {
    let mut c = Checks::default();
    let (o, r) = (output, reference);
    match kind {
        StageKind::Select => checks(&mut c, kind, o, r, tol, sanity_select, compare_select),
        StageKind::Histogram => {
            checks(&mut c, kind, o, r, tol, sanity_histogram, compare_histogram)
        }
        StageKind::Fit => checks(&mut c, kind, o, r, tol, sanity_fit, compare_fit),
        StageKind::Categorize => checks(
            &mut c,
            kind,
            o,
            r,
            tol,
            sanity_categorize,
            compare_categorize,
        ),
    }
    c.finish(reference.is_some())
}

/// Parses the output as `T`, then runs the sanity checks and (with a reference) the
/// comparison.
fn checks<T: serde::de::DeserializeOwned>(
    c: &mut Checks,
    kind: StageKind,
    output: &str,
    reference: Option<&Value>,
    tol: &Tolerances,
    sanity: fn(&mut Checks, &T),
    compare: fn(&mut Checks, &T, &T, &Tolerances),
) {
    let out: T = match serde_json::from_str(output) {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("the output is not a valid {} document: {e}", kind.name());
            c.add("output parses", false, msg.clone(), msg);
            return;
        }
    };
    sanity(c, &out);
    if let Some(r) = reference {
        let r: T = match serde_json::from_value(r.clone()) {
            Ok(r) => r,
            Err(e) => {
                // Task::prepare refuses such a reference before any model sees the task.
                let detail = format!("the reference is not a valid {} document: {e}", kind.name());
                c.add(
                    "reference parses",
                    false,
                    detail,
                    "the harness failed".into(),
                );
                return;
            }
        };
        compare(c, &out, &r, tol);
    }
}

fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
    }
}

/// Largest relative difference of two equally long series and where it is.
fn worst(a: &[f64], b: &[f64]) -> (f64, usize) {
    a.iter()
        .zip(b)
        .enumerate()
        .fold((0.0, 0), |(w, wi), (i, (&x, &y))| {
            let d = rel_diff(x, y);
            if d > w || d.is_nan() {
                (d, i)
            } else {
                (w, wi)
            }
        })
}

fn sanity_select(c: &mut Checks, out: &SelectOutput) {
    let flow = &out.cut_flow.0;
    let consistent =
        flow.iter().all(|l| l.pass <= l.all) && flow.windows(2).all(|w| w[1].all == w[0].pass);
    c.rule(
        "cut flow consistent",
        consistent,
        "every cut sees exactly the events that passed the one before, and passes no more than it sees",
    );
    let n = out.diphotons.m_yy.len();
    let selected = flow.last().map_or(0, |l| l.pass) as usize;
    let ok = n == out.diphotons.weight.len() && n == selected;
    let msg = format!(
        "{n} masses and {} weights for {selected} events passing the last cut",
        out.diphotons.weight.len()
    );
    c.add("one diphoton per selected event", ok, msg.clone(), msg);
    let finite = out
        .diphotons
        .m_yy
        .iter()
        .chain(&out.diphotons.weight)
        .all(|x| x.is_finite());
    c.rule("finite values", finite, "masses and weights are finite");
    let k = &out.diphotons.kinematics;
    let short: Vec<&str> = k
        .columns()
        .iter()
        .filter(|(_, v)| v.len() != n)
        .map(|(name, _)| *name)
        .collect();
    c.rule(
        "kinematics columns",
        short.is_empty(),
        &format!(
            "every kinematics column has one entry per selected event ({n}){}",
            if short.is_empty() {
                String::new()
            } else {
                format!("; these do not: {}", short.join(", "))
            }
        ),
    );
}

fn compare_select(c: &mut Checks, out: &SelectOutput, r: &SelectOutput, tol: &Tolerances) {
    let names =
        |f: &analysis::stage::CutFlow| f.0.iter().map(|l| l.cut.clone()).collect::<Vec<_>>();
    let same_names = names(&out.cut_flow) == names(&r.cut_flow);
    c.add(
        "cut names",
        same_names,
        format!(
            "stage {:?}, reference {:?}",
            names(&out.cut_flow),
            names(&r.cut_flow)
        ),
        "the cut flow must have the seven cuts of CutFlow::default(), in that order".into(),
    );
    if same_names {
        let first_bad = out
            .cut_flow
            .0
            .iter()
            .zip(&r.cut_flow.0)
            .position(|(a, b)| a != b);
        let (detail, hint) = match first_bad {
            Some(k) => {
                let (a, b) = (&out.cut_flow.0[k], &r.cut_flow.0[k]);
                (
                    format!("cut '{}': stage {}/{}, reference {}/{}", a.cut, a.pass, a.all, b.pass, b.all),
                    format!(
                        "the cut flow differs from the reference first at cut {} '{}' (your stage: {} of {} pass)",
                        k + 1, a.cut, a.pass, a.all
                    ),
                )
            }
            None => (String::new(), String::new()),
        };
        c.add("cut flow", first_bad.is_none(), detail, hint);
    }
    let (n, rn) = (out.diphotons.len(), r.diphotons.len());
    c.add(
        "selected events",
        n == rn,
        format!("stage {n}, reference {rn}"),
        format!("the number of selected events differs from the reference (your stage: {n})"),
    );
    if n == rn && n > 0 {
        let (w, i) = worst(&out.diphotons.m_yy, &r.diphotons.m_yy);
        c.add(
            "m_yy",
            w <= tol.rel,
            format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
            format!("m_yy differs from the reference by {:.1}× the tolerance of {:.0e} relative (largest at selected event {i}, your value {})", w / tol.rel, tol.rel, out.diphotons.m_yy[i]),
        );
        let columns = out
            .diphotons
            .kinematics
            .columns()
            .into_iter()
            .zip(r.diphotons.kinematics.columns());
        for ((name, a), (_, b)) in columns {
            if a.len() != b.len() {
                continue; // the sanity check names it
            }
            let (w, i) = worst(a, b);
            c.add(
                &format!("kinematics {name}"),
                w <= tol.rel,
                format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
                format!("kinematics.{name} differs from the reference by {:.1}× the tolerance of {:.0e} relative (largest at selected event {i}, your value {})", w / tol.rel, tol.rel, a[i]),
            );
        }
        let (w, i) = worst(&out.diphotons.weight, &r.diphotons.weight);
        c.add(
            "weights",
            w <= tol.rel,
            format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
            format!("event weights differ from the reference by {:.1}× the tolerance of {:.0e} relative (largest at selected event {i}, your weight {})", w / tol.rel, tol.rel, out.diphotons.weight[i]),
        );
    }
}

fn sanity_histogram(c: &mut Checks, h: &Histogram) {
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

fn compare_histogram(c: &mut Checks, h: &Histogram, r: &Histogram, tol: &Tolerances) {
    let same_binning =
        h.binning == r.binning && h.sumw.len() == r.sumw.len() && h.sumw2.len() == r.sumw2.len();
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
            format!("largest relative difference {w:.2e} in bin {i}, tolerance {:.0e}", tol.rel),
            format!("{name} differs from the reference by {:.1}× the tolerance of {:.0e} relative (largest in bin {i}, your value {})", w / tol.rel, tol.rel, a[i]),
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

fn sanity_fit(c: &mut Checks, f: &FitResult) {
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

fn compare_fit(c: &mut Checks, f: &FitResult, r: &FitResult, tol: &Tolerances) {
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
                "the fitted {} is not at the likelihood minimum the reference finds: {:.1}× the \
                 tolerance of {}σ away (yours: {})",
                p.name,
                pull / tol.value_sigma,
                tol.value_sigma,
                p.value
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
                "the error of {} differs from the reference's Hessian error by {:.1}× the \
                 tolerance of {} relative (yours: {})",
                p.name,
                d / tol.error_rel,
                tol.error_rel,
                p.error
            ),
        );
    }
    let dz = (f.z - r.z).abs();
    c.add(
        "significance",
        dz <= 0.01,
        format!("stage z {} reference {}", f.z, r.z),
        format!(
            "z differs from the reference by {:.1}× the tolerance of 0.01 (yours: {})",
            dz / 0.01,
            f.z
        ),
    );
}

/// A categorization as validation reads it: the stage's boundaries; in the reference
/// document also the input, from which the harness computes each answer's Z.
#[derive(serde::Deserialize)]
struct CategorizeDoc {
    boundaries: Vec<f64>,
    #[serde(default)]
    input: Option<analysis::stage::CategorizeInput>,
}

fn sanity_categorize(c: &mut Checks, out: &CategorizeDoc) {
    let b = &out.boundaries;
    let ok = b.iter().all(|x| x.is_finite() && *x > 0.0 && *x < 1.0)
        && b.windows(2).all(|w| w[0] < w[1]);
    c.rule(
        "boundaries ordered",
        ok,
        "the boundaries are finite, strictly inside (0, 1) and strictly ascending",
    );
}

fn compare_categorize(c: &mut Checks, out: &CategorizeDoc, r: &CategorizeDoc, tol: &Tolerances) {
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
            "your boundaries reach a combined Z of {zs:.4}: {:.1}× the allowed shortfall of {:.0} % \
             below what is reachable",
            (1.0 - zs / zr).max(0.0) / (1.0 - tol.z_fraction),
            100.0 * (1.0 - tol.z_fraction)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_that_does_not_read_back_fails_a_check_instead_of_panicking() {
        // JSON has no NaN: a reference written with one holds `null` there.
        let output = serde_json::json!({"binning": {"bins": 1, "lo": 0.0, "hi": 1.0},
            "sumw": [0.0], "sumw2": [0.0], "underflow": 0.0, "overflow": 0.0, "entries": 0});
        let mut reference = output.clone();
        reference["sumw"][0] = serde_json::Value::Null;
        let v = validate(
            StageKind::Histogram,
            &output.to_string(),
            Some(&reference),
            &Tolerances {
                rel: 1e-9,
                value_sigma: 0.01,
                error_rel: 0.02,
                z_fraction: 0.98,
            },
        );
        assert!(!v.passed);
        let failed: Vec<&str> = v
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["reference parses"]);
    }
}

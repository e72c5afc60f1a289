//! The stage's output against the reference stage's output on the same input.
//!
//! Every check has two texts: `detail`, for the user, which may quote reference numbers, and
//! `hint`, for the model, which quotes only the stage's own numbers — reference values are
//! never shown to the LLM (only the contract's names, such as the cut and parameter names). Without a reference (a user's own instruction) only sanity checks
//! run and the result says it is not validated.

use crate::stage_crate::StageKind;
use crate::task::Tolerances;
use analysis::stage::{FileSummary, FitResult, Histogram, NpyManifest, SelectOutput, TreeSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

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
            // A hint may quote the stage's own strings (names, paths): bounded, no control
            // characters.
            .map(|c| format!("- {}", crate::untrusted::inert(&c.hint, 600)))
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

/// Compares `output` (the stage's JSON) with `reference` (when there is one). `dir` is the
/// directory the stage ran in (its output directory), for stages that write files (convert).
pub fn validate(
    kind: StageKind,
    output: &str,
    dir: Option<&Path>,
    reference: Option<&Value>,
    tol: &Tolerances,
) -> Validation {
    let mut c = Checks::default();
    let (o, r) = (output, reference);
    match kind {
        StageKind::Inspect => checks(&mut c, kind, o, r, tol, sanity_inspect, compare_inspect),
        StageKind::Convert => {
            checks(&mut c, kind, o, r, tol, sanity_convert, compare_convert);
            if let (Some(r), Some(dir)) = (r, dir) {
                compare_arrays(&mut c, dir, r);
            }
        }
        StageKind::Separate => checks(&mut c, kind, o, r, tol, sanity_separate, compare_separate),
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

/// How far off a value is, in a few buckets of `ratio` = distance / tolerance: all a hint may
/// say of a distance. A precise distance next to the stage's own value would give the
/// reference away in a round or two (a stage of constants was accepted that way); a bucket
/// gives at most 2 bits per check and attempt (ARCHITECTURE.md, "the information budget").
fn how_far(ratio: f64) -> &'static str {
    if !ratio.is_finite() {
        "by an amount that is not finite (NaN or infinite), against the tolerance"
    } else if ratio <= 10.0 {
        "by less than 10× the tolerance"
    } else if ratio <= 100.0 {
        "by 10× to 100× the tolerance"
    } else if ratio <= 1000.0 {
        "by 100× to 1000× the tolerance"
    } else {
        "by more than 1000× the tolerance"
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
            format!("m_yy differs from the reference {} of {:.0e} relative (largest at selected event {i})", how_far(w / tol.rel), tol.rel),
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
                format!("kinematics.{name} differs from the reference {} of {:.0e} relative (largest at selected event {i})", how_far(w / tol.rel), tol.rel),
            );
        }
        let (w, i) = worst(&out.diphotons.weight, &r.diphotons.weight);
        c.add(
            "weights",
            w <= tol.rel,
            format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
            format!("event weights differ from the reference {} of {:.0e} relative (largest at selected event {i})", how_far(w / tol.rel), tol.rel),
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
            "your boundaries fall short of the Z that is reachable {} (the tolerance: a \
             shortfall of {:.0} %)",
            how_far((1.0 - zs / zr).max(0.0) / (1.0 - tol.z_fraction)),
            100.0 * (1.0 - tol.z_fraction)
        ),
    );
}

fn sanity_inspect(c: &mut Checks, out: &FileSummary) {
    let ok = out.trees.iter().all(|t| {
        let mut names: Vec<&str> = t.branches.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        names.windows(2).all(|w| w[0] != w[1])
    });
    c.rule("branches unique", ok, "no tree lists a branch twice");
}

fn compare_inspect(c: &mut Checks, out: &FileSummary, r: &FileSummary, _: &Tolerances) {
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    c.add(
        "path",
        out.path == r.path,
        format!("stage {:?}, reference {:?}", out.path, r.path),
        format!(
            "`path` must be the path as the input gives it (yours: {:?})",
            out.path
        ),
    );
    c.add(
        "size",
        out.size_bytes == r.size_bytes,
        format!("stage {}, reference {}", out.size_bytes, r.size_bytes),
        format!(
            "`size_bytes` must be the file's size in bytes (yours: {})",
            out.size_bytes
        ),
    );
    c.add(
        "compression",
        out.compression == r.compression,
        format!("stage {:?}, reference {:?}", out.compression, r.compression),
        format!(
            "`compression` of the file is not right (yours: {:?}; see the instruction for the \
             naming)",
            out.compression
        ),
    );
    let trees = |s: &FileSummary| -> Vec<(String, u64)> {
        s.trees
            .iter()
            .map(|t| (t.name.clone(), t.entries))
            .collect()
    };
    c.add(
        "trees",
        same(&trees(out), &trees(r)),
        format!("stage {:?}, reference {:?}", trees(out), trees(r)),
        format!(
            "the trees (name, entries) are not right (yours: {:?}): every TTree of the file, \
             once each, in the file's key order",
            trees(out)
        ),
    );
    // Branches of the trees both list, by name: which are missing, extra or mistyped.
    let (mut missing, mut extra, mut typed, mut order) = (vec![], vec![], vec![], true);
    let mut fields = vec![];
    for rt in &r.trees {
        let Some(ot) = out.trees.iter().find(|t| t.name == rt.name) else {
            continue;
        };
        for rb in &rt.branches {
            match ot.branches.iter().find(|b| b.name == rb.name) {
                None => missing.push(rb.name.clone()),
                Some(ob) if ob.type_name != rb.type_name => {
                    typed.push(format!("{} (yours: {:?})", ob.name, ob.type_name))
                }
                Some(ob) => {
                    for (field, same) in [
                        ("columnar", ob.columnar == rb.columnar),
                        ("compression", ob.compression == rb.compression),
                        ("baskets", ob.baskets == rb.baskets),
                        (
                            "compressed_bytes",
                            ob.compressed_bytes == rb.compressed_bytes,
                        ),
                        (
                            "uncompressed_bytes",
                            ob.uncompressed_bytes == rb.uncompressed_bytes,
                        ),
                    ] {
                        if !same {
                            fields.push(format!("{}.{field}", ob.name));
                        }
                    }
                }
            }
        }
        for ob in &ot.branches {
            if !rt.branches.iter().any(|b| b.name == ob.name) {
                extra.push(ob.name.clone());
            }
        }
        let names = |t: &TreeSummary| -> Vec<String> {
            t.branches.iter().map(|b| b.name.clone()).collect()
        };
        order &= names(ot) == names(rt);
    }
    let mut hint = vec![];
    if !missing.is_empty() {
        hint.push(format!("{} branch(es) missing", missing.len()));
    }
    if !extra.is_empty() {
        hint.push(format!("not branches of the tree: {}", extra.join(", ")));
    }
    if !typed.is_empty() {
        hint.push(format!("wrong type names: {}", typed.join(", ")));
    }
    if !fields.is_empty() {
        hint.push(format!("wrong values: {}", fields.join(", ")));
    }
    if hint.is_empty() && !order {
        hint.push("the branches are not in the tree's order".into());
    }
    c.add(
        "branches",
        hint.is_empty(),
        format!("missing {missing:?}, extra {extra:?}, mistyped {typed:?}, same order: {order}"),
        format!("branches: {}", hint.join("; ")),
    );
}

fn sanity_convert(c: &mut Checks, out: &NpyManifest) {
    let ok = out
        .columns
        .iter()
        .all(|col| safe_name(&col.values) && col.offsets.as_deref().is_none_or(safe_name));
    c.rule(
        "file names",
        ok,
        "every column's files are plain names in the output directory (no `/`, no `..`)",
    );
}

/// A file name a manifest may list: one plain component.
fn safe_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

fn compare_convert(c: &mut Checks, out: &NpyManifest, r: &NpyManifest, _: &Tolerances) {
    c.add(
        "manifest header",
        out.source == r.source && out.tree == r.tree && out.entries == r.entries,
        format!(
            "stage ({:?}, {:?}, {}), reference ({:?}, {:?}, {})",
            out.source, out.tree, out.entries, r.source, r.tree, r.entries
        ),
        format!(
            "`source` (the input path as given), `tree` and `entries` are not all right (yours: \
             {:?}, {:?}, {})",
            out.source, out.tree, out.entries
        ),
    );
    let mut wrong = vec![];
    for rc in &r.columns {
        match out.columns.iter().find(|o| o.branch == rc.branch) {
            None => wrong.push(format!("{}: not in the manifest", rc.branch)),
            Some(o) => {
                let mut what = vec![];
                if o.type_name != rc.type_name {
                    what.push(format!("type_name {:?}", o.type_name));
                }
                if o.dtype != rc.dtype {
                    what.push(format!("dtype {:?}", o.dtype));
                }
                if o.values != rc.values || o.offsets != rc.offsets {
                    what.push(format!("files {:?} / {:?}", o.values, o.offsets));
                }
                if o.len != rc.len {
                    what.push(format!("len {}", o.len));
                }
                if !what.is_empty() {
                    wrong.push(format!("{}: {}", rc.branch, what.join(", ")));
                }
            }
        }
    }
    if out.columns.len() != r.columns.len() {
        wrong.push(format!("{} columns listed", out.columns.len()));
    }
    c.add(
        "manifest columns",
        wrong.is_empty(),
        format!("differences: {wrong:?}"),
        format!("manifest columns not as specified: {}", wrong.join("; ")),
    );
}

/// The `.npy` files of a conversion as validation compares them: per file, dtype, shape and
/// BLAKE3 of the data bytes (headers may differ in spacing and still be valid).
pub fn npy_digests(dir: &Path, sub: &Path, manifest: &NpyManifest) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for col in &manifest.columns {
        for name in std::iter::once(&col.values).chain(col.offsets.as_ref()) {
            let a = read_npy(&dir.join(sub), name, u64::MAX).map_err(|e| format!("{name}: {e}"))?;
            out.insert(name.clone(), serde_json::to_value(a).expect("plain data"));
        }
    }
    Ok(serde_json::json!({ "dir": sub, "files": out }))
}

/// One `.npy` file as validation sees it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NpyArray {
    dtype: String,
    len: u64,
    blake3: String,
}

/// Reads a 1-D `.npy` file `name` in `dir` written by the stage: neither the directory nor
/// the file may be a link (the stage's uid made them), at most `cap` bytes. The header is
/// parsed by hand (a few fields of a Python dict literal): the npy crates read whole typed
/// arrays, while this needs only dtype, shape and the raw bytes, from a file that may be
/// hostile.
fn read_npy(dir: &Path, name: &str, cap: u64) -> Result<NpyArray, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !safe_name(name) {
        return Err("not a plain file name".into());
    }
    // Errors name the file as the stage knows it, never the harness's paths.
    let what = |io: std::io::Error| match io.kind() {
        std::io::ErrorKind::NotFound => "not written".to_string(),
        _ => format!("unreadable ({})", io.kind()),
    };
    for p in [dir, &dir.join(name)] {
        let m = std::fs::symlink_metadata(p).map_err(what)?;
        if m.file_type().is_symlink() {
            return Err("a link, not a file".into());
        }
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(name))
        .map_err(what)?;
    let mut bytes = vec![];
    f.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(what)?;
    if bytes.len() as u64 > cap {
        return Err(format!("larger than {cap} bytes"));
    }
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (no \\x93NUMPY magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unknown .npy format version {v}")),
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated or non-text header")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[at..].trim_start().strip_prefix(':')?.trim_start())
    };
    let dtype = field("descr")
        .and_then(|v| v.strip_prefix('\'')?.split('\'').next())
        .ok_or("no 'descr' in the header")?
        .to_string();
    if !field("fortran_order").is_some_and(|v| v.starts_with("False")) {
        return Err("fortran_order must be False".into());
    }
    let shape = field("shape")
        .and_then(|v| v.strip_prefix('(')?.split(')').next())
        .ok_or("no 'shape' in the header")?;
    let dims: Vec<&str> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let [len] = dims.as_slice() else {
        return Err(format!("shape ({shape}) is not one-dimensional"));
    };
    let len: u64 = len
        .parse()
        .map_err(|_| format!("shape ({shape}) is not a count"))?;
    let data = &bytes[start + hlen..];
    Ok(NpyArray {
        dtype,
        len,
        blake3: blake3::hash(data).to_hex()[..32].to_string(),
    })
}

/// The stage's `.npy` files against the reference's digests (`reference["arrays"]`).
fn compare_arrays(c: &mut Checks, dir: &Path, reference: &Value) {
    let Some(files) = reference["arrays"]["files"].as_object() else {
        return;
    };
    let sub = dir.join(reference["arrays"]["dir"].as_str().unwrap_or("npy"));
    let mut wrong = vec![];
    for (name, want) in files {
        let Ok(want) = serde_json::from_value::<NpyArray>(want.clone()) else {
            continue;
        };
        // Twice the reference's size, with room for a header: a right file is never larger.
        let cap = 2 * want.len * 8 + 4096;
        match read_npy(&sub, name, cap) {
            Err(e) => wrong.push(format!("{name}: {e}")),
            Ok(a) if a.dtype != want.dtype => wrong.push(format!(
                "{name}: dtype '{}', not the branch's type",
                a.dtype
            )),
            Ok(a) if a.len != want.len => wrong.push(format!(
                "{name}: shape ({},) is not the right length",
                a.len
            )),
            Ok(a) if a.blake3 != want.blake3 => wrong.push(format!(
                "{name}: the values differ (dtype and length are right)"
            )),
            Ok(_) => {}
        }
    }
    c.add(
        "arrays",
        wrong.is_empty(),
        format!("differences: {wrong:?}"),
        format!("the .npy files: {}", wrong.join("; ")),
    );
}

/// A separation as validation reads it: the stage's scores; in the reference document also
/// the held-out events' labels and weights.
#[derive(serde::Deserialize)]
struct SeparateDoc {
    score: Vec<f64>,
    #[serde(default)]
    signal: Option<Vec<bool>>,
    #[serde(default)]
    weight: Option<Vec<f64>>,
}

fn sanity_separate(c: &mut Checks, out: &SeparateDoc) {
    c.rule(
        "scores finite",
        out.score.iter().all(|s| s.is_finite()),
        "every score is a finite number",
    );
}

fn compare_separate(c: &mut Checks, out: &SeparateDoc, r: &SeparateDoc, tol: &Tolerances) {
    let (Some(signal), Some(weight)) = (&r.signal, &r.weight) else {
        return;
    };
    let n = signal.len();
    c.add(
        "one score per event",
        out.score.len() == n,
        format!("stage {} scores, {n} events", out.score.len()),
        format!(
            "{} scores for {n} events to score: one per row of `test`, in its order",
            out.score.len()
        ),
    );
    if out.score.len() != n || !out.score.iter().all(|s| s.is_finite()) {
        return;
    }
    let y: Vec<f64> = signal.iter().map(|&s| f64::from(u8::from(s))).collect();
    let auc = |s: &[f64]| analysis::classify::roc(s, &y, weight).0;
    let (a, ar) = (auc(&out.score), auc(&r.score));
    let need = ar - tol.auc_margin;
    let reversed = if a < 0.5 {
        " — below 0.5: signal must score high"
    } else {
        ""
    };
    c.add(
        "separation",
        a >= need,
        format!("stage AUC {a:.4}, reference {ar:.4} (needed {need:.4})"),
        format!(
            "the ROC AUC of your scores on the events to score is {a:.4}{reversed}; it falls \
             short of the required level {} of {} (the allowed margin)",
            how_far(((need - a) / tol.auc_margin).max(0.0)),
            tol.auc_margin
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_files_are_read_only_as_plain_files_and_never_through_links() {
        let d = tempfile::tempdir().unwrap();
        let npy = d.path().join("npy");
        std::fs::create_dir(&npy).unwrap();
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n";
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(npy.join("a.npy"), &bytes).unwrap();
        let a = read_npy(&npy, "a.npy", 1 << 20).unwrap();
        assert_eq!((a.dtype.as_str(), a.len), ("<f4", 2));
        // A link to a file, a linked directory, a path with a separator, a file too large.
        std::os::unix::fs::symlink(npy.join("a.npy"), npy.join("b.npy")).unwrap();
        assert_eq!(
            read_npy(&npy, "b.npy", 1 << 20).unwrap_err(),
            "a link, not a file"
        );
        let linked = d.path().join("linked");
        std::os::unix::fs::symlink(&npy, &linked).unwrap();
        assert_eq!(
            read_npy(&linked, "a.npy", 1 << 20).unwrap_err(),
            "a link, not a file"
        );
        assert!(read_npy(&npy, "../npy/a.npy", 1 << 20).is_err());
        assert!(read_npy(&npy, "a.npy", 16)
            .unwrap_err()
            .contains("larger than"));
        assert_eq!(read_npy(&npy, "c.npy", 1 << 20).unwrap_err(), "not written");
    }

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
            None,
            Some(&reference),
            &Tolerances {
                rel: 1e-9,
                value_sigma: 0.01,
                error_rel: 0.02,
                z_fraction: 0.98,
                auc_margin: 0.02,
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

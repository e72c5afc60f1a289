//! `results` (`results.json`: only what inputs, parameters and code determine) and, beside a
//! model-written stage's chain, `compare` (its whole analysis next to the reference's).

use super::{Chain, FileInfo, Input, Merged, Merges, Outputs, Rule, Step};
use crate::histogram::{blinded, blinded_cut_flow};
use crate::stage::STAGE_API_VERSION;
use crate::workflow::{
    AnalysisConfig, AnalysisResult, ClassifierSummary, InputFile, Provenance, RuleRef,
    RESULTS_FORMAT_VERSION,
};
use flow::Ctx;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) fn rule(
    c: &Chain,
    cfg: &AnalysisConfig,
    (files, continuum): (&[Input], &[Input]),
    merges: &Merges,
    outputs: &Outputs,
    rules: &[Rule],
) -> Rule {
    // Step (rule) name → what ran, for every rule before this one.
    let rule_refs: BTreeMap<String, RuleRef> = rules
        .iter()
        .map(|r| {
            let record = format!("provenance/{}.json", r.name.replace('/', "."));
            let implementation = r.implementation.clone();
            (
                r.name.clone(),
                RuleRef {
                    implementation,
                    record: Some(record),
                },
            )
        })
        .collect();
    let mut inputs: Vec<_> = files.iter().map(|f| f.info.clone()).collect();
    let n_inspected = inputs.len();
    inputs.push(merges.data.clone());
    inputs.extend(merges.mc.clone());
    inputs.push(outputs.fit.clone());
    inputs.extend(outputs.measure.clone());
    if let Some(o) = &outputs.categories {
        inputs.extend([o.model.clone(), o.categories.clone(), o.combined.clone()]);
    }
    // The continuum files' inspections last: listed as inputs, with no cut flow summed.
    let n_continuum = continuum.len();
    inputs.extend(continuum.iter().map(|f| f.info.clone()));
    let (has_mc, measured) = (merges.mc.is_some(), outputs.measure.is_some());
    let has_categories = outputs.categories.is_some();
    let (config, blind) = (cfg.clone(), cfg.blind);
    Rule {
        name: format!("{}results", c.prefix),
        after: vec![],
        inputs,
        outputs: vec![c.dir.join("results.json")],
        params: json!({ "config": config, "rules": rule_refs }),
        implementation: c.identities.results.into(),
        kind: Step::Results,
        job: Box::new(move |ctx: &Ctx| {
            let infos: Vec<FileInfo> = (0..n_inspected)
                .map(|i| ctx.read_json(i))
                .collect::<Result<_, _>>()?;
            let mut next = n_inspected;
            let mut take = || {
                next += 1;
                next - 1
            };
            let data: Merged = ctx.read_json(take())?;
            let mc: Option<Merged> = if has_mc {
                Some(ctx.read_json(take())?)
            } else {
                None
            };
            let fit: crate::fit::FitResult = ctx.read_json(take())?;
            // measure.json holds no measurement when the fit cannot give one.
            let measurement: Option<crate::measure::Measurement> = if measured {
                ctx.read_json(take())?
            } else {
                None
            };
            let mut problems: Vec<String> =
                crate::workflow::fit_problem(&fit).into_iter().collect();
            let (classifier, categories, combined) = if has_categories {
                let c: crate::classify::Classifier = ctx.read_json(take())?;
                let summary = ClassifierSummary {
                    hash: c.hash,
                    auc: c.auc,
                    importance: c.importance,
                    n_signal: c.n_signal,
                    n_background: c.n_background,
                    models: [c.models[0].describe(), c.models[1].describe()],
                };
                let cats = ctx.read_json(take())?;
                let fits: crate::fit::simultaneous::Fits = ctx.read_json(take())?;
                problems.extend(crate::workflow::categorized_problems(&fits));
                (Some(summary), Some(cats), Some(fits))
            } else {
                (None, None, None)
            };
            let flows = data
                .cut_flows
                .iter()
                .chain(mc.iter().flat_map(|m| m.cut_flows.iter()));
            // Blinded, no data cut flow shows the mass range's count (less the sidebands', the
            // window's): the last cut goes.
            let data_flow = |f: &crate::select::CutFlow, role: crate::workflow::Role| match blind {
                Some(_) if role == crate::workflow::Role::Data => blinded_cut_flow(f.clone()),
                _ => f.clone(),
            };
            let first_continuum = ctx.inputs().len() - n_continuum;
            let templates: Vec<FileInfo> = (first_continuum..ctx.inputs().len())
                .map(|i| ctx.read_json(i))
                .collect::<Result<_, _>>()?;
            let no_flow = crate::select::CutFlow(Vec::new());
            let files: Vec<InputFile> = infos
                .iter()
                .zip(flows)
                .chain(templates.iter().map(|t| (t, &no_flow)))
                .map(|(i, flow)| InputFile {
                    path: i.path.clone(),
                    role: i.role,
                    release: i.release,
                    title: i.title.clone(),
                    synthetic: i.synthetic,
                    entries: i.entries,
                    bytes: i.bytes,
                    blake3: i.blake3.clone(),
                    cut_flow: data_flow(flow, i.role),
                })
                .collect();
            let result = AnalysisResult {
                format_version: RESULTS_FORMAT_VERSION,
                synthetic_inputs: files.iter().any(|f| f.synthetic),
                cut_flow: data_flow(&data.cut_flow, crate::workflow::Role::Data),
                histogram: match blind {
                    Some(window) => blinded(data.histogram, window),
                    None => data.histogram,
                },
                fit,
                mc_cut_flow: mc.as_ref().map(|m| m.cut_flow.clone()),
                mc_histogram: mc.map(|m| m.histogram),
                measurement,
                classifier,
                categories,
                combined: combined.as_ref().map(|f| f.combined.clone()),
                model: combined.as_ref().map(|f| crate::workflow::ModelSummary {
                    signal: f.model.signal,
                    signal_fit: f.signal_fit.clone(),
                    backgrounds: f
                        .model
                        .channels
                        .iter()
                        .map(|c| (c.name.clone(), c.background))
                        .collect(),
                    spurious: f
                        .model
                        .channels
                        .iter()
                        .map(|c| (c.name.clone(), c.spurious))
                        .collect(),
                    systematics: f.model.systematics,
                    spurious_test: f.spurious.clone(),
                }),
                combined_inclusive: combined.map(|f| f.inclusive),
                problems,
                provenance: Provenance {
                    inputs: files,
                    config: config.clone(),
                    stage_api_version: STAGE_API_VERSION,
                    rules: rule_refs.clone(),
                },
            };
            Ok(ctx.write_json_pretty(0, &result)?)
        }),
    }
}

/// One line of the comparison: the reference's value, the stage's, the difference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// What is compared (e.g. `fit: Z`).
    pub quantity: String,
    /// The reference's value.
    pub reference: Value,
    /// The stage's value.
    pub stage: Value,
    /// stage − reference, for numbers.
    pub difference: Option<f64>,
}

/// What `compare` writes: the model-written stage's whole analysis next to the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The stage compared with the reference, as named to [`compare`] (`what`).
    pub stage: String,
    /// Whether cut flow, histogram, fit and measurement are identical.
    pub identical: bool,
    /// One row per compared quantity.
    pub differences: Vec<Difference>,
}

/// Compares two results: cut flow, histogram, fit parameters, Z, μ.
pub fn compare(reference: &AnalysisResult, stage: &AnalysisResult, what: &str) -> Comparison {
    let mut rows = Vec::new();
    let mut num = |q: String, a: f64, b: f64| {
        rows.push(Difference {
            quantity: q,
            reference: json!(a),
            stage: json!(b),
            difference: Some(b - a),
        })
    };
    for (a, b) in reference.cut_flow.0.iter().zip(&stage.cut_flow.0) {
        num(format!("cut flow: {}", a.cut), a.pass as f64, b.pass as f64);
    }
    num(
        "histogram: Σw".into(),
        reference.histogram.integral(),
        stage.histogram.integral(),
    );
    let worst = reference
        .histogram
        .sumw
        .iter()
        .zip(&stage.histogram.sumw)
        .map(|(a, b)| (b - a).abs())
        .fold(0.0, f64::max);
    num("histogram: largest |Δ| in a bin".into(), 0.0, worst);
    for (a, b) in reference.fit.params.iter().zip(&stage.fit.params) {
        num(format!("fit: {}", a.name), a.value, b.value);
    }
    num("fit: Z".into(), reference.fit.z, stage.fit.z);
    if let (Some(a), Some(b)) = (&reference.measurement, &stage.measurement) {
        num("μ".into(), a.mu, b.mu);
        num("σ×B (pb)".into(), a.xsec_br_pb, b.xsec_br_pb);
    }
    let identical = reference.cut_flow == stage.cut_flow
        && reference.histogram == stage.histogram
        && reference.fit == stage.fit
        && reference.measurement == stage.measurement;
    Comparison {
        stage: what.to_string(),
        identical,
        differences: rows,
    }
}

/// `comparison.md`.
pub fn comparison_markdown(c: &Comparison) -> String {
    let mut s = format!(
        "# {} against the reference\n\n{}\n\n| quantity | reference | stage | stage − reference |\n|---|---:|---:|---:|\n",
        c.stage,
        if c.identical {
            "Identical results: cut flow, histogram, fit and measurement."
        } else {
            "The results DIFFER from the reference's."
        }
    );
    for d in &c.differences {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            d.quantity,
            d.reference,
            d.stage,
            d.difference.map_or(String::new(), |x| format!("{x:+.6}"))
        ));
    }
    s
}

/// The `compare` rule: `reference/results.json` and the stage chain's, into
/// `comparison.json` and `comparison.md` in `out`.
pub fn compare_rule(reference: &Chain, stage: &Chain, out: &Path, what: &str) -> Rule {
    let what = what.to_string();
    Rule {
        name: "compare".into(),
        after: vec![],
        inputs: vec![
            reference.dir.join("results.json"),
            stage.dir.join("results.json"),
        ],
        outputs: vec![out.join("comparison.json"), out.join("comparison.md")],
        params: json!({ "stage": what }),
        implementation: reference.identities.results.into(),
        kind: Step::Compare,
        job: Box::new(move |ctx: &Ctx| {
            let a: AnalysisResult = ctx.read_json(0)?;
            let b: AnalysisResult = ctx.read_json(1)?;
            let c = compare(&a, &b, &what);
            ctx.write_json_pretty(0, &c)?;
            Ok(std::fs::write(ctx.output(1), comparison_markdown(&c))?)
        }),
    }
}

//! `separate`: labelled training rows and unlabelled rows to score → scores; the harness computes the AUC from labels the stage never sees.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde_json::Value;

/// See the module documentation.
pub(super) struct SeparateStage;

impl StageCase for SeparateStage {
    type Output = SeparateDoc;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let data = ctx.selected(path)?;
        let mc = ctx.selected(ctx.mc()?)?;
        let (input, truth) = separate_input(&data.diphotons, &mc.diphotons);
        let out = Reference.separate(&input).map_err(|e| e.message)?;
        // The reference document carries the held-out labels and weights: validation
        // computes both AUCs from them. They never reach the stage.
        let mut reference = serde_json::to_value(&out).expect("plain data");
        reference["signal"] = serde_json::to_value(&truth.signal).expect("plain data");
        reference["weight"] = serde_json::to_value(&truth.weight).expect("plain data");
        Ok((to_json(&input), reference))
    }

    fn sanity(c: &mut Checks, out: &SeparateDoc) {
        c.rule(
            "scores finite",
            out.score.iter().all(|s| s.is_finite()),
            "every score is a finite number",
        );
    }

    fn compare(c: &mut Checks, out: &SeparateDoc, r: &SeparateDoc, tol: &Tolerances) {
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
}

/// A separation as validation reads it: the stage's scores; in the reference document also
/// the held-out events' labels and weights.
#[derive(serde::Deserialize)]
pub(super) struct SeparateDoc {
    score: Vec<f64>,
    #[serde(default)]
    signal: Option<Vec<bool>>,
    #[serde(default)]
    weight: Option<Vec<f64>>,
}

/// The separation task's events: signal MC (every selected event) against background from
/// the data sidebands, as rows of the reference classifier's features. Half of each, chosen
/// by a hash of the event's class and index, is labelled for training; the other half is
/// scored, in an order fixed by the same hash (so position says nothing about the class).
/// Weights: MC weights (their magnitude) scaled so the signal weighs as much as the
/// background, whose events weigh 1. Returns the stage's input and the held-out truth.
fn separate_input(
    data: &analysis::stage::Diphotons,
    mc: &analysis::stage::Diphotons,
) -> (SeparateInput, TrainingSet) {
    use analysis::classify::{features, in_sidebands, ClassifierConfig, FEATURES};
    let window = ClassifierConfig::default().signal_window;
    let background: Vec<usize> = (0..data.len())
        .filter(|&i| in_sidebands(data.m_yy[i], window))
        .collect();
    let signal_total: f64 = mc.weight.iter().map(|w| w.abs()).sum();
    let scale = background.len() as f64 / signal_total.max(f64::MIN_POSITIVE);
    // (hash, row, signal, weight) for every event.
    let mut all: Vec<([u8; 8], Vec<f64>, bool, f64)> = Vec::new();
    let key = |class: &str, i: usize| -> [u8; 8] {
        let h = blake3::hash(format!("separate/{class}/{i}").as_bytes());
        h.as_bytes()[..8].try_into().expect("8 bytes")
    };
    for &i in &background {
        all.push((key("b", i), features(data, i).to_vec(), false, 1.0));
    }
    for i in 0..mc.len() {
        let w = (mc.weight[i].abs() * scale).max(f64::MIN_POSITIVE);
        all.push((key("s", i), features(mc, i).to_vec(), true, w));
    }
    all.sort_by_key(|a| a.0);
    let (mut train, mut truth, mut test) = (TrainingSet::default(), TrainingSet::default(), vec![]);
    for (h, row, signal, weight) in all {
        let set = if h[0] & 1 == 0 {
            &mut train
        } else {
            &mut truth
        };
        if h[0] & 1 == 1 {
            test.push(row.clone());
        }
        set.x.push(row);
        set.signal.push(signal);
        set.weight.push(weight);
    }
    truth.x.clear();
    let input = SeparateInput {
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        train,
        test,
        seed: 42,
    };
    (input, truth)
}

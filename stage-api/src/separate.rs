//! Types of the separation step: a classifier trained on labelled events scores unlabelled ones.

use serde::{Deserialize, Serialize};

/// What a separation stage sees: labelled training events and unlabelled events to score,
/// each a row of the same named features. The labels (and weights) of the events to score
/// stay with the caller, which judges the scores by their ROC AUC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparateInput {
    /// The feature names: column `j` of every row is `features[j]`.
    pub features: Vec<String>,
    /// The labelled training events.
    pub train: TrainingSet,
    /// The events to score, one row of features each.
    pub test: Vec<Vec<f64>>,
    /// A seed for whatever the stage draws at random.
    pub seed: u64,
}

/// Labelled events: row `i` of `x` is signal when `signal[i]`, and weighs `weight[i]` (> 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSet {
    /// The training events, one row of features each (columns as in `features`).
    pub x: Vec<Vec<f64>>,
    /// Per row of `x`: whether the event is signal (else background).
    pub signal: Vec<bool>,
    /// Per row of `x`: the event's weight (> 0).
    pub weight: Vec<f64>,
}

/// One score per event to score, in the same order; higher means more signal-like.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// The scores, one per row of `test`.
    pub score: Vec<f64>,
}

//! Types of the categorization step: the classifier score cut into categories.

use serde::{Deserialize, Serialize};

/// What a categorization sees: per score bin (equal bins on [0, 1], bin `i` is
/// [i/n, (i+1)/n)), the expected signal and background events in the signal window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorizeInput {
    /// Expected signal events per score bin.
    pub signal: Vec<f64>,
    /// Expected background events per score bin (as many bins as `signal`).
    pub background: Vec<f64>,
    /// Every category must keep at least this expected background.
    pub min_background: f64,
    /// At most this many categories.
    pub max_categories: usize,
}

/// The inner boundaries on the score, ascending, each a bin edge strictly inside (0, 1):
/// `k` boundaries make `k + 1` categories.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Boundaries {
    /// The inner boundaries, ascending.
    pub boundaries: Vec<f64>,
}

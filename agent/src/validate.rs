//! The stage's output against the reference stage's output on the same input: the checks
//! ([`Check`], [`Validation`]), the tolerances, and what a hint may say of a distance. What is
//! checked for each stage kind is in its module of [`crate::stages`].
//!
//! Every check has two texts: `detail`, for the user, which may quote reference numbers, and
//! `hint`, for the model, which quotes only the stage's own numbers — reference values are
//! never shown to the LLM (only the contract's names, such as the cut and parameter names). Without a reference (a user's own instruction) only sanity checks
//! run and the result says it is not validated.

use serde::{Deserialize, Serialize};

/// One check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The check's name (the model may see it).
    pub name: String,
    /// Whether the check passed.
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
    /// Whether every check passed.
    pub passed: bool,
    /// Every check made, in order.
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

/// The checks of one output as they are made (the stage modules add to it).
#[derive(Default)]
pub(crate) struct Checks(Vec<Check>);

impl Checks {
    pub(crate) fn add(&mut self, name: &str, passed: bool, detail: String, hint: String) {
        self.0.push(Check {
            name: name.into(),
            passed,
            detail,
            hint,
        });
    }
    /// A sanity rule: its text says "holds" or "violated", so a passed check never reads as
    /// a failure in a trajectory.
    pub(crate) fn rule(&mut self, name: &str, passed: bool, rule: &str) {
        let text = if passed {
            format!("holds: {rule}")
        } else {
            format!("violated: {rule}")
        };
        self.add(name, passed, text.clone(), text);
    }
    pub(crate) fn finish(self, validated: bool) -> Validation {
        let passed = self.0.iter().all(|c| c.passed);
        Validation {
            validated,
            passed,
            checks: self.0,
        }
    }
}

/// How far off a value is, in a few buckets of `ratio` = distance / tolerance: all a hint may
/// say of a distance. A precise distance next to the stage's own value would give the
/// reference away in a round or two (a stage of constants was accepted that way); a bucket
/// gives at most 2 bits per check and attempt (ARCHITECTURE.md, "the information budget").
pub(crate) fn how_far(ratio: f64) -> &'static str {
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

pub(crate) fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
    }
}

/// Largest relative difference of two equally long series and where it is.
pub(crate) fn worst(a: &[f64], b: &[f64]) -> (f64, usize) {
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

/// How close the stage's output must be to the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// Relative tolerance on floating-point outputs (m_γγ, weights, bin contents).
    #[serde(default = "default_rel")]
    pub rel: f64,
    /// Fit: largest |value − reference| in units of the reference's error.
    #[serde(default = "default_sigma")]
    pub value_sigma: f64,
    /// Fit: largest relative difference of the errors.
    #[serde(default = "default_error_rel")]
    pub error_rel: f64,
    /// Categorize: the stage's boundaries must reach this fraction of the reference's Z.
    #[serde(default = "default_z_fraction")]
    pub z_fraction: f64,
    /// Separate: the AUC of the stage's scores may fall at most this far below the
    /// reference classifier's on the same events.
    #[serde(default = "default_auc_margin")]
    pub auc_margin: f64,
}

fn default_rel() -> f64 {
    1e-6
}
fn default_sigma() -> f64 {
    0.01
}
fn default_error_rel() -> f64 {
    0.02
}
fn default_z_fraction() -> f64 {
    0.98
}
fn default_auc_margin() -> f64 {
    0.02
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::validate;
    use stage_api::StageKind;

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

//! What the measure stage takes and gives: the fit, the signal MC's yield and cross-section,
//! the luminosity → ε×A, σ×B and μ. The arithmetic is `analysis::measure`.

use crate::fit::FitResult;
use serde::{Deserialize, Serialize};

/// What the signal MC contributes: its selected weighted yield and its cross-section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalMc {
    /// Σw of selected MC events (weights include σ × L / ΣW).
    pub weighted_yield: f64,
    /// Σw² of selected MC events.
    pub sumw2: f64,
    /// σ × B of the sample (its `XSection` branch), pb.
    pub xsection_pb: f64,
}

/// Input of the measure stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureInput {
    /// The fit of the data's m_γγ histogram.
    pub fit: FitResult,
    /// The signal MC's selected yield and cross-section.
    pub signal_mc: SignalMc,
    /// Integrated luminosity of the data, pb⁻¹.
    pub lumi_pb: f64,
}

/// The measured quantities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Integrated luminosity of the data, pb⁻¹.
    #[serde(with = "crate::finite")]
    pub lumi_pb: f64,
    /// Efficiency × acceptance of the selection for the signal.
    #[serde(with = "crate::finite")]
    pub eff_acc: f64,
    /// MC-statistics error of `eff_acc`.
    #[serde(with = "crate::finite")]
    pub eff_acc_error: f64,
    /// Measured σ × B in pb.
    #[serde(with = "crate::finite")]
    pub xsec_br_pb: f64,
    /// Statistical error of `xsec_br_pb`, pb.
    #[serde(with = "crate::finite")]
    pub xsec_br_stat_error_pb: f64,
    /// MC-statistics error of `xsec_br_pb`, pb.
    #[serde(with = "crate::finite")]
    pub xsec_br_mc_error_pb: f64,
    /// σ × B the signal MC assumes, pb.
    #[serde(with = "crate::finite")]
    pub theory_xsec_br_pb: f64,
    /// Signal strength μ = σ×B / σ×B(theory).
    #[serde(with = "crate::finite")]
    pub mu: f64,
    /// Statistical error of `mu`.
    #[serde(with = "crate::finite")]
    pub mu_stat_error: f64,
    /// MC-statistics error of `mu`.
    #[serde(with = "crate::finite")]
    pub mu_mc_error: f64,
}

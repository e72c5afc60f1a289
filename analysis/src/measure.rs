//! Fit + signal MC → the measurement: ε×A, σ×B and the signal strength μ.
//!
//! ε×A = (weighted MC yield after all cuts) / (σ × L), where the MC weight already carries
//! σ × L / ΣW with ΣW over all generated events, so ε×A is the selected fraction of everything
//! generated. σ×B = n_sig / (ε×A × L); μ = σ×B / σ×B(theory), with σ×B(theory) the MC's
//! cross-section. Errors: statistical (from the fitted n_sig) and MC statistics (from Σw²).

pub use stage_api::measure::{MeasureInput, Measurement, SignalMc};

/// Why no measurement can be made.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A luminosity, cross-section or yield that makes the measurement meaningless.
    #[error(
        "need a positive luminosity, MC cross-section and selected MC yield (got L = {lumi_pb} \
         pb⁻¹, σ×B = {xsection_pb} pb, yield = {weighted_yield})"
    )]
    Meaningless {
        /// Integrated luminosity (pb⁻¹).
        lumi_pb: f64,
        /// Signal MC cross-section σ×B (pb).
        xsection_pb: f64,
        /// Weighted signal MC yield after all cuts.
        weighted_yield: f64,
    },
    /// The fit has no signal yield.
    #[error("the fit result has no 'nsig' parameter")]
    NoSignalYield,
}

/// Computes the measurement; errors for inputs that make it meaningless.
pub fn measure(input: &MeasureInput) -> Result<Measurement, MeasureError> {
    let mc = &input.signal_mc;
    let l = input.lumi_pb;
    if !(l > 0.0) || !(mc.xsection_pb > 0.0) || !(mc.weighted_yield > 0.0) {
        return Err(MeasureError::Meaningless {
            lumi_pb: l,
            xsection_pb: mc.xsection_pb,
            weighted_yield: mc.weighted_yield,
        });
    }
    let nsig = input.fit.param("nsig").ok_or(MeasureError::NoSignalYield)?;
    let eff = mc.weighted_yield / (mc.xsection_pb * l);
    let eff_rel = mc.sumw2.sqrt() / mc.weighted_yield;
    let xs = nsig.value / (eff * l);
    let mu = xs / mc.xsection_pb;
    Ok(Measurement {
        lumi_pb: l,
        eff_acc: eff,
        eff_acc_error: eff * eff_rel,
        xsec_br_pb: xs,
        xsec_br_stat_error_pb: nsig.error / (eff * l),
        xsec_br_mc_error_pb: xs.abs() * eff_rel,
        theory_xsec_br_pb: mc.xsection_pb,
        mu,
        mu_stat_error: nsig.error / (eff * l) / mc.xsection_pb,
        mu_mc_error: mu.abs() * eff_rel,
    })
}

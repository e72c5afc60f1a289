//! The spurious-signal test: how much signal a background function invents where there is
//! none. Per category, each candidate function ([`CANDIDATES`], fewest parameters first) is
//! fitted as signal + background to a background-only template — the continuum sample's
//! events in that category, many more than the data's — at the nominal mass. The fitted
//! signal, in the data's units, is the function's spurious signal S_spur. A function passes
//! when |S_spur| is below 10 % of the category's expected signal or below 20 % of the data's
//! statistical uncertainty on the signal (ATLAS's criteria), S_spur taken at the value within
//! two of its template-statistics errors closest to zero (ATLAS's relaxed criterion, for
//! templates of limited size); the simplest passing function is the category's, and that
//! relaxed |S_spur| the size of its `spurious_K` nuisance parameter. Where none passes, the
//! function with the smallest relaxed |S_spur| is used, and the test says so. A template not
//! much larger than the data cannot resolve a tenth of the signal: `resolved` says whether
//! its errors are below that threshold.

use super::simultaneous::{ChannelSpec, Model, Spec, Systematics, GLOBAL};
use super::{Background, FitError};
use crate::histogram::Histogram;
use serde::{Deserialize, Serialize};

/// The candidate background functions, simplest first.
pub const CANDIDATES: [Background; 4] = [
    Background::Exp,
    Background::Bernstein(2),
    Background::Bernstein(3),
    Background::Bernstein(4),
];

/// One function's result on one category's template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The background function.
    pub function: Background,
    /// The spurious signal, in events of the data.
    #[serde(with = "stage_api::finite")]
    pub s_spur: f64,
    /// Its uncertainty from the template's own statistics, in events of the data.
    #[serde(with = "stage_api::finite")]
    pub error: f64,
    /// The relaxed |S_spur|: max(0, |S_spur| − 2 × error).
    #[serde(with = "stage_api::finite")]
    pub relaxed: f64,
    /// The relaxed |S_spur| / the expected signal.
    #[serde(with = "stage_api::finite")]
    pub of_signal: f64,
    /// The relaxed |S_spur| / the data's statistical uncertainty on the signal.
    #[serde(with = "stage_api::finite")]
    pub of_stat: f64,
    /// Below 10 % of the signal or 20 % of its statistical uncertainty.
    pub passes: bool,
}

/// The test on one category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpuriousTest {
    /// The category (channel name).
    pub category: String,
    /// Template events per data event (sidebands).
    #[serde(with = "stage_api::finite")]
    pub template_per_data: f64,
    /// Every candidate, simplest first.
    pub candidates: Vec<Candidate>,
    /// The function used: the simplest that passes, else the smallest |S_spur|.
    pub chosen: Background,
    /// Whether the chosen function passes.
    pub passes: bool,
    /// The relaxed |S_spur| of the chosen function: its `spurious_K` uncertainty, events.
    #[serde(with = "stage_api::finite")]
    pub spurious: f64,
    /// Whether the template resolves a tenth of the signal (the chosen function's error is
    /// below it); when not, the test is weak and says so.
    pub resolved: bool,
}

/// The test on `template` (the category's continuum m_γγ histogram, unweighted events) for a
/// category expecting `signal_yield` signal events, whose data has `data_sidebands` events in
/// the sidebands of `window`.
pub fn test(
    category: &str,
    template: &Histogram,
    signal_yield: f64,
    data_sidebands: f64,
    window: (f64, f64),
    spec: &Spec,
) -> Result<SpuriousTest, FitError> {
    let b = &template.binning;
    let side: f64 = (0..b.bins)
        .filter(|&i| crate::classify::in_sidebands(b.center(i), window))
        .map(|i| template.sumw[i])
        .sum();
    if side <= 0.0 || data_sidebands <= 0.0 {
        return Err(FitError::Empty);
    }
    let r = side / data_sidebands;
    let candidates = CANDIDATES
        .iter()
        .map(|&function| {
            // The template fitted as it is (its own Poisson statistics), the signal scaled to
            // it; no nuisance parameter moves.
            let mut m = Model::build(
                vec![ChannelSpec {
                    background: Some(function),
                    spurious: Some(0.0),
                    ..ChannelSpec::new(category, template.clone(), signal_yield * r)
                }],
                &Spec {
                    blind: None,
                    systematics: Systematics::default(),
                    ..*spec
                },
            );
            for p in m.parameters.iter_mut().skip(2).take(GLOBAL.len() - 2) {
                p.fixed = true;
            }
            m.parameters[GLOBAL.len()].fixed = true; // spurious_K
            let (mu, mu_error) = m.fit_mu(std::slice::from_ref(&template.sumw))?;
            let (s_spur, error) = (mu * signal_yield, mu_error * signal_yield);
            // The data's statistical error on the signal: the template's, √r times larger.
            let stat = error * r.sqrt();
            let relaxed = (s_spur.abs() - 2.0 * error).max(0.0);
            let (of_signal, of_stat) = (
                relaxed / signal_yield.max(f64::MIN_POSITIVE),
                relaxed / stat.max(f64::MIN_POSITIVE),
            );
            Ok(Candidate {
                function,
                s_spur,
                error,
                relaxed,
                of_signal,
                of_stat,
                passes: of_signal < 0.1 || of_stat < 0.2,
            })
        })
        .collect::<Result<Vec<_>, FitError>>()?;
    let chosen = candidates.iter().find(|c| c.passes).unwrap_or_else(|| {
        candidates
            .iter()
            .min_by(|a, b| a.relaxed.total_cmp(&b.relaxed))
            .expect("candidates are not empty")
    });
    Ok(SpuriousTest {
        category: category.into(),
        template_per_data: r,
        chosen: chosen.function,
        passes: chosen.passes,
        spurious: chosen.relaxed,
        resolved: chosen.error < 0.1 * signal_yield,
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::simultaneous::SignalShape;
    use crate::fit::{DscbTails, Signal};
    use crate::histogram::Binning;

    fn spec() -> Spec {
        Spec {
            signal: SignalShape {
                shape: Signal::Gaussian,
                mass: 125.0,
                sigma: 1.6,
                tails: DscbTails::default(),
            },
            background: Background::Exp,
            mass_range: (120.0, 130.0),
            systematics: Systematics::default(),
            blind: None,
        }
    }

    /// A template that is exactly an exponential (its expectation, 100 times the data): the
    /// exponential invents no signal and is chosen. One that is the sum of a steep and a flat
    /// exponential: a single exponential invents signal there, fails, and a more flexible
    /// function is chosen.
    #[test]
    fn a_function_that_cannot_follow_the_template_invents_signal() {
        let binning = Binning {
            bins: 55,
            lo: 105.0,
            hi: 160.0,
        };
        let template = |f: &dyn Fn(f64) -> f64| {
            let mut h = Histogram::new(binning);
            for i in 0..55 {
                h.sumw[i] = f(binning.center(i));
            }
            h
        };
        let data_sidebands = 10_000.0;
        let plain = template(&|x| 40_000.0 * (-0.035 * (x - 105.0)).exp());
        let t = test("0", &plain, 100.0, data_sidebands, (120.0, 130.0), &spec()).unwrap();
        assert_eq!(t.chosen, Background::Exp, "{t:?}");
        assert!(t.passes && t.resolved, "{t:?}");
        assert!(t.candidates[0].s_spur.abs() < 1.0, "{t:?}");

        let two = template(&|x| {
            30_000.0 * (-0.08 * (x - 105.0)).exp() + 10_000.0 * (-0.015 * (x - 105.0)).exp()
        });
        let t = test("0", &two, 100.0, data_sidebands, (120.0, 130.0), &spec()).unwrap();
        let exp = &t.candidates[0];
        assert!(!exp.passes && exp.s_spur.abs() > 10.0, "{t:?}");
        assert_ne!(t.chosen, Background::Exp, "{t:?}");
        assert!(t.passes, "{t:?}");
    }
}

//! The spurious-signal test: how much signal a background function invents where there is
//! none. Per category, the continuum sample's events in that category — a background-only
//! template — are first smoothed by a fit of a more flexible function ([`SMOOTHER`], one order
//! above the most flexible candidate), so that the template's own statistical fluctuations do
//! not pass for a function's bias (the role Gaussian-process smoothing plays in ATLAS's
//! H → γγ analyses; a template the size of the data would otherwise dominate the test). Each
//! candidate function ([`CANDIDATES`], fewest parameters first) is then fitted as signal +
//! background to the smoothed template at the nominal mass: the fitted signal, in the data's
//! units, is its spurious signal S_spur. A function passes when |S_spur| is below 10 % of the
//! category's expected signal or below 20 % of the data's statistical uncertainty on the
//! signal (ATLAS's criteria); the simplest passing function is the category's, and its
//! |S_spur| the size of its `spurious_K` nuisance parameter. Where none passes, the function
//! with the smallest |S_spur| is used, and the test says so.

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

/// The function that smooths the template before the candidates are fitted to it.
pub const SMOOTHER: Background = Background::Bernstein(5);

/// One function's result on one category's template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The background function.
    pub function: Background,
    /// The spurious signal, in events of the data.
    #[serde(with = "stage_api::finite")]
    pub s_spur: f64,
    /// |S_spur| / the expected signal.
    #[serde(with = "stage_api::finite")]
    pub of_signal: f64,
    /// |S_spur| / the data's statistical uncertainty on the signal.
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
    /// The data's statistical uncertainty on the category's signal, events.
    #[serde(with = "stage_api::finite")]
    pub stat: f64,
    /// Every candidate, simplest first.
    pub candidates: Vec<Candidate>,
    /// The function used: the simplest that passes, else the smallest |S_spur|.
    pub chosen: Background,
    /// Whether the chosen function passes.
    pub passes: bool,
    /// |S_spur| of the chosen function: its `spurious_K` uncertainty, events.
    #[serde(with = "stage_api::finite")]
    pub spurious: f64,
}

/// The template model: one channel, `function` as background, no nuisance parameter free.
fn template_model(
    category: &str,
    template: &Histogram,
    signal_yield: f64,
    function: Background,
    spec: &Spec,
) -> Model {
    let mut m = Model::build(
        vec![ChannelSpec {
            background: Some(function),
            spurious: Some(0.0),
            ..ChannelSpec::new(category, template.clone(), signal_yield)
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
    m
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
    // The smoothed template: the background-only fit of the smoother, as expected counts.
    let mut smoother = template_model(category, template, 0.0, SMOOTHER, spec);
    smoother.parameters[0].fixed = true; // μ (no signal in a background-only fit)
    smoother.parameters[0].init = 0.0;
    let (x, _) = smoother.fit_at_nominal_mass(std::slice::from_ref(&template.sumw))?;
    let smooth = smoother.expectation(&x).remove(0);
    let mut stat = 0.0;
    let candidates = CANDIDATES
        .iter()
        .map(|&function| {
            let m = template_model(category, template, signal_yield * r, function, spec);
            let (x, errors) = m.fit_at_nominal_mass(std::slice::from_ref(&smooth))?;
            let s_spur = x[0] * signal_yield;
            // The data's statistical error on the signal: the template's, √r times larger.
            let data_stat = errors[0] * signal_yield * r.sqrt();
            let (of_signal, of_stat) = (
                s_spur.abs() / signal_yield.max(f64::MIN_POSITIVE),
                s_spur.abs() / data_stat.max(f64::MIN_POSITIVE),
            );
            Ok((
                Candidate {
                    function,
                    s_spur,
                    of_signal,
                    of_stat,
                    passes: of_signal < 0.1 || of_stat < 0.2,
                },
                data_stat,
            ))
        })
        .collect::<Result<Vec<_>, FitError>>()?
        .into_iter()
        .map(|(c, data_stat)| {
            if c.function == Background::Exp {
                stat = data_stat;
            }
            c
        })
        .collect::<Vec<_>>();
    let chosen = candidates.iter().find(|c| c.passes).unwrap_or_else(|| {
        candidates
            .iter()
            .min_by(|a, b| a.s_spur.abs().total_cmp(&b.s_spur.abs()))
            .expect("candidates are not empty")
    });
    Ok(SpuriousTest {
        category: category.into(),
        template_per_data: r,
        stat,
        chosen: chosen.function,
        passes: chosen.passes,
        spurious: chosen.s_spur.abs(),
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::simultaneous::tests::spec;
    use crate::histogram::Binning;

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
        let t = test(
            "0",
            &plain,
            100.0,
            data_sidebands,
            (120.0, 130.0),
            &spec(Background::Exp),
        )
        .unwrap();
        assert_eq!(t.chosen, Background::Exp, "{t:?}");
        assert!(t.passes, "{t:?}");
        assert!(t.candidates[0].s_spur.abs() < 1.0, "{t:?}");

        let two = template(&|x| {
            30_000.0 * (-0.08 * (x - 105.0)).exp() + 10_000.0 * (-0.015 * (x - 105.0)).exp()
        });
        let t = test(
            "0",
            &two,
            100.0,
            data_sidebands,
            (120.0, 130.0),
            &spec(Background::Exp),
        )
        .unwrap();
        let exp = &t.candidates[0];
        assert!(!exp.passes && exp.s_spur.abs() > 10.0, "{t:?}");
        assert_ne!(t.chosen, Background::Exp, "{t:?}");
        assert!(t.passes, "{t:?}");
    }
}

//! Steps 4–5: `classify/train` (a bounded sample of every file's selection), `score/ROLE/FILE`
//! (each file's events scored into score × m_γγ histograms), `categorize` (the boundaries)
//! and `categories/fit` (the simultaneous fit: shared μ and mass, a background per category,
//! beside the same model on one inclusive category).

use super::{CategoryOutputs as Outputs, Chain, Input, Rule, Step};
use crate::categorize::{Categories, ScoreMass};
use crate::classify::{Classifier, Sample, Scorer};
use crate::fit::simultaneous::{fit_signal, ChannelSpec, Fits, Model, Spec, Systematics};
use crate::fit::spurious::{self, SpuriousTest};
use crate::fit::FitModel;
use crate::histogram::Binning;
use crate::stage::SelectOutput;
use crate::workflow::{AnalysisConfig, Categorization, Role};
use flow::{Ctx, JobError};
use serde_json::json;
use std::path::Path;

/// The score × m_γγ histograms of inputs `first..` summed by role: (signal MC, data).
fn sum_scores(
    ctx: &Ctx,
    first: usize,
    is_mc: &[bool],
    binning: Binning,
) -> Result<(ScoreMass, ScoreMass), JobError> {
    let (mut sig, mut data) = (ScoreMass::new(binning), ScoreMass::new(binning));
    for (i, mc) in is_mc.iter().enumerate() {
        let h: ScoreMass = ctx.read_json(first + i)?;
        if *mc {
            sig.add(&h)
        } else {
            data.add(&h)
        }
    }
    Ok((sig, data))
}

pub(super) fn rules(
    c: &Chain,
    cfg: &AnalysisConfig,
    cat: Categorization,
    work: &Path,
    (files, continuum): (&[Input], &[Input]),
    rules: &mut Vec<Rule>,
) -> Outputs {
    let p = &c.prefix;
    let id = c.identities.categorize;
    let out = Outputs {
        model: work.join("classify/model.json"),
        categories: work.join("categories.json"),
        combined: work.join("fit_categories.json"),
        workspace: c.dir.join("workspace.json"),
    };
    let signal: Vec<bool> = files.iter().map(|f| f.role == Role::Mc).collect();
    let classifier = cat.classifier;
    let roles = signal.clone();
    rules.push(Rule {
        name: format!("{p}classify/train"),
        after: vec![],
        inputs: files.iter().map(|f| f.selected.clone()).collect(),
        outputs: vec![out.model.clone()],
        params: json!({ "classifier": classifier, "signal": signal }),
        implementation: id.into(),
        kind: Step::Train,
        job: Box::new(move |ctx: &Ctx| {
            let mut sample = Sample::default();
            let n_signal = roles.iter().filter(|&&s| s).count();
            let n_background = roles.len() - n_signal;
            // One file's selected events in memory at a time.
            for (i, &signal) in roles.iter().enumerate() {
                let s: SelectOutput = ctx.read_binary(i)?;
                let files = if signal { n_signal } else { n_background };
                sample.add(&s.diphotons, signal, files, &classifier);
            }
            Ok(ctx.write_json(0, &crate::classify::train(&sample, &classifier)?)?)
        }),
    });

    let binning = cfg.binning;
    let mut scores = Vec::new();
    for f in files.iter().chain(continuum) {
        let scored = work.join(format!("score/{}/{}.json", f.role, f.name));
        rules.push(Rule {
            name: format!("{p}score/{}/{}", f.role, f.name),
            after: vec![],
            inputs: vec![f.selected.clone(), out.model.clone()],
            outputs: vec![scored.clone()],
            params: json!({ "binning": binning }),
            implementation: id.into(),
            kind: Step::Score,
            job: Box::new(move |ctx: &Ctx| {
                let s: SelectOutput = ctx.read_binary(0)?;
                let c: Classifier = ctx.read_json(1)?;
                let scores = Scorer::new(&c)?.score(&s.diphotons);
                let mut h = ScoreMass::new(binning);
                for (i, score) in scores.iter().enumerate() {
                    h.fill(*score, s.diphotons.m_yy[i], s.diphotons.weight[i]);
                }
                Ok(ctx.write_json(0, &h)?)
            }),
        });
        scores.push(scored);
    }

    let categorize = cat.categorize;
    let flags = signal.clone();
    let n_files = files.len();
    rules.push(Rule {
        name: format!("{p}categorize"),
        after: vec![],
        inputs: scores[..n_files].to_vec(),
        outputs: vec![out.categories.clone()],
        params: json!({ "categorize": categorize, "signal": signal }),
        implementation: id.into(),
        kind: Step::Categorize,
        job: Box::new(move |ctx: &Ctx| {
            let (sig, data) = sum_scores(ctx, 0, &flags, binning)?;
            Ok(ctx.write_json(0, &crate::categorize::categorize(&sig, &data, &categorize))?)
        }),
    });

    let (blind, model) = (cfg.blind, cfg.model);
    let mut inputs = vec![out.categories.clone()];
    inputs.extend(scores);
    rules.push(Rule {
        name: format!("{p}categories/fit"),
        after: vec![],
        inputs,
        outputs: vec![out.combined.clone(), out.workspace.clone()],
        params: json!({ "blind": blind, "signal": signal, "model": model, "continuum": continuum.len() }),
        implementation: id.into(),
        kind: Step::FitCategories,
        job: Box::new(move |ctx: &Ctx| {
            let cats: Categories = ctx.read_json(0)?;
            let (sig, data) = sum_scores(ctx, 1, &signal, binning)?;
            let mut template: Option<ScoreMass> = None;
            for i in 1 + signal.len()..ctx.inputs().len() {
                let h: ScoreMass = ctx.read_json(i)?;
                template.get_or_insert_with(|| ScoreMass::new(binning)).add(&h);
            }
            let fits = fit_categories(&cats, &sig, &data, template.as_ref(), &model, blind)?;
            ctx.write_json_pretty(1, &fits.model.workspace(&fits.combined))?;
            Ok(ctx.write_json(0, &fits)?)
        }),
    });
    out
}

/// The categorized model and its fits, beside the same model on one inclusive category: the
/// signal shape fitted to the signal MC (`--signal`); with a continuum `template`, each
/// category's background function and spurious signal from the spurious-signal test, else the
/// configured function (`--background`) and 10 % of its signal.
fn fit_categories(
    cats: &Categories,
    sig: &ScoreMass,
    data: &ScoreMass,
    template: Option<&ScoreMass>,
    fit_model: &FitModel,
    blind: Option<(f64, f64)>,
) -> Result<Fits, crate::fit::FitError> {
    use rayon::prelude::*;
    let all = sig.score_bins;
    let window = cats.config.signal_window;
    let (signal, signal_fit) =
        fit_signal(fit_model.signal, &sig.mass(0, all), fit_model.mean_range)?;
    let spec = Spec {
        signal,
        background: fit_model.background,
        mass_range: fit_model.mean_range,
        systematics: Systematics::default(),
        blind,
    };
    let mut ranges: Vec<(String, usize, usize)> = cats
        .bin_ranges(all)
        .into_iter()
        .enumerate()
        .map(|(k, (lo, hi))| (k.to_string(), lo, hi))
        .collect();
    ranges.push(("inclusive".into(), 0, all));
    // The spurious-signal test per category (and on the inclusive one).
    let tests: Vec<Option<SpuriousTest>> = ranges
        .par_iter()
        .map(|(name, lo, hi)| {
            let Some(t) = template else { return Ok(None) };
            let d = data.mass(*lo, *hi);
            let b = &d.binning;
            let side: f64 = (0..b.bins)
                .filter(|&i| crate::classify::in_sidebands(b.center(i), window))
                .map(|i| d.sumw[i])
                .sum();
            let s = sig.mass(*lo, *hi).integral();
            spurious::test(name, &t.mass(*lo, *hi), s, side, window, &spec).map(Some)
        })
        .collect::<Result<_, _>>()?;
    let channel =
        |(name, lo, hi): &(String, usize, usize), test: &Option<SpuriousTest>| ChannelSpec {
            background: test.as_ref().map(|t| t.chosen),
            spurious: test.as_ref().map(|t| t.spurious),
            ..ChannelSpec::new(
                name.clone(),
                data.mass(*lo, *hi),
                sig.mass(*lo, *hi).integral(),
            )
        };
    let n = ranges.len() - 1;
    let channels = (0..n).map(|k| channel(&ranges[k], &tests[k])).collect();
    let one = vec![channel(&ranges[n], &tests[n])];
    let model = Model::build(channels, &spec);
    let (inclusive, combined) = rayon::join(|| Model::build(one, &spec).fit(), || model.fit());
    Ok(Fits {
        inclusive: inclusive?,
        combined: combined?,
        model,
        signal_fit,
        spurious: tests.into_iter().flatten().collect(),
    })
}

//! `plots` (m_γγ with the fit, the cut flow) and, with steps 4–5, `plots/classifier` (score,
//! ROC, Z per category, the categories' fits). Both read `results.json` for the experiment
//! label every plot carries (SYNTHETIC or not, the luminosity: `plot::Experiment`). The plot
//! functions name their files from a stem: each job draws into a scratch folder, then moves
//! each file to the temporary name the engine renames into place.

#![cfg(feature = "plot")]

use super::{CategoryOutputs, Chain, Rule, Step};
use crate::categorize::Categories;
use crate::classify::Classifier;
use crate::fit::simultaneous::Fits;
use crate::plot::{self, Experiment};
use crate::workflow::AnalysisResult;
use flow::{Ctx, JobError};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `STEM.png` and `STEM.svg` for each stem.
fn both(stems: &[&str]) -> Vec<String> {
    stems
        .iter()
        .flat_map(|s| ["png", "svg"].map(|e| format!("{s}.{e}")))
        .collect()
}

/// Moves the scratch folder's files (in `names` order) to the outputs.
fn publish(ctx: &Ctx, scratch: &Path, names: &[String]) -> Result<(), JobError> {
    for (i, name) in names.iter().enumerate() {
        std::fs::rename(scratch.join(name), ctx.output(i))?;
    }
    let _ = std::fs::remove_dir(scratch);
    Ok(())
}

pub(super) fn rules(
    c: &Chain,
    results: &Path,
    categories: Option<&CategoryOutputs>,
    rules: &mut Vec<Rule>,
) {
    let id = c.identities.plots;
    if let Some(o) = categories {
        // The categories' fits in one picture, a panel per category (how many categories
        // there are is known only after categorize, and a rule's outputs are fixed).
        let names = both(&["score", "roc", "z_categories", "m_yy_categories"]);
        let scratch = c.dir.join(".plots-classifier");
        rules.push(Rule {
            name: format!("{}plots/classifier", c.prefix),
            after: vec![],
            // results.json for the experiment label: whether the inputs are SYNTHETIC, and the
            // luminosity.
            inputs: vec![
                o.model.clone(),
                o.categories.clone(),
                o.combined.clone(),
                results.to_path_buf(),
            ],
            outputs: names
                .iter()
                .map(|n| c.dir.join(n))
                .collect::<Vec<PathBuf>>(),
            params: Value::Null,
            implementation: id.into(),
            kind: Step::Plots,
            job: Box::new(move |ctx: &Ctx| {
                let model: Classifier = ctx.read_json(0)?;
                let cats: Categories = ctx.read_json(1)?;
                let fits: Fits = ctx.read_json(2)?;
                let exp = Experiment::of(&ctx.read_json(3)?);
                std::fs::create_dir_all(&scratch)?;
                plot::score_plot(&cats, &exp, &scratch.join("score"))?;
                plot::roc_plot(&model.roc, model.auc, &exp, &scratch.join("roc"))?;
                plot::z_plot(&cats, &exp, &scratch.join("z_categories"))?;
                let m_yy = scratch.join("m_yy_categories");
                plot::categories_fit_plot(&fits, &cats, &exp, &m_yy)?;
                publish(ctx, &scratch, &names)
            }),
        });
    }
    let names = both(&["m_yy", "cut_flow"]);
    let scratch = c.dir.join(".plots");
    rules.push(Rule {
        name: format!("{}plots", c.prefix),
        after: vec![],
        inputs: vec![results.to_path_buf()],
        outputs: names.iter().map(|n| c.dir.join(n)).collect(),
        params: Value::Null,
        implementation: id.into(),
        kind: Step::Plots,
        job: Box::new(move |ctx: &Ctx| {
            let r: AnalysisResult = ctx.read_json(0)?;
            let exp = Experiment::of(&r);
            std::fs::create_dir_all(&scratch)?;
            let blind = r.provenance.config.blind;
            plot::mass_plot(&r.histogram, &r.fit, blind, &exp, &scratch.join("m_yy"))?;
            plot::cut_flow_plot(&r.cut_flow, &exp, &scratch.join("cut_flow"))?;
            publish(ctx, &scratch, &names)
        }),
    });
}

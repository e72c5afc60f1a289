//! `fit` (the DSCB tails from the signal MC when there is one; blinded, the background-only
//! fit to the sidebands) and, with signal MC and unblinded, `measure` (ε×A, σ×B, μ).

use super::{Chain, FileInfo, Input, Merged, Merges, Rule, Step};
use crate::stage::Reference;
use crate::workflow::{self, AnalysisConfig, Role};
use flow::Ctx;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The fit's and (when it runs) the measurement's work files.
pub(super) fn rules(
    c: &Chain,
    cfg: &AnalysisConfig,
    work: &Path,
    files: &[Input],
    merges: &Merges,
    rules: &mut Vec<Rule>,
) -> (PathBuf, Option<PathBuf>) {
    let fit_out = work.join("fit.json");
    let mut inputs = vec![merges.data.clone()];
    inputs.extend(merges.mc.clone());
    let (model, blind) = (cfg.model, cfg.blind);
    rules.push(Rule {
        name: format!("{}fit", c.prefix),
        after: vec![],
        inputs,
        outputs: vec![fit_out.clone()],
        params: json!({ "model": model, "blind": blind }),
        implementation: c.identities.fit.into(),
        kind: Step::Fit,
        job: Box::new(move |ctx: &Ctx| {
            let data: Merged = ctx.read_json(0)?;
            let mc: Option<Merged> = (ctx.inputs().len() > 1)
                .then(|| ctx.read_json(1))
                .transpose()?;
            let signal_mc = mc.as_ref().map(|m| &m.histogram);
            let fit = workflow::fit_data(&model, &data.histogram, signal_mc, blind, &Reference)?;
            Ok(ctx.write_json(0, &fit)?)
        }),
    });

    // Not when blinded: no signal yield is fitted.
    let (Some(mc), None) = (&merges.mc, cfg.blind) else {
        return (fit_out, None);
    };
    let measure_out = work.join("measure.json");
    let mut inputs = vec![fit_out.clone(), mc.clone()];
    inputs.extend(
        files
            .iter()
            .filter(|f| f.role == Role::Mc)
            .map(|f| f.info.clone()),
    );
    let lumi = cfg.cuts.lumi_pb;
    rules.push(Rule {
        name: format!("{}measure", c.prefix),
        after: vec![],
        inputs,
        outputs: vec![measure_out.clone()],
        params: json!({ "lumi_pb": lumi }),
        implementation: c.identities.fit.into(),
        kind: Step::Measure,
        job: Box::new(move |ctx: &Ctx| {
            let fit: crate::fit::FitResult = ctx.read_json(0)?;
            // A fit that failed or sits at a bound measures nothing (results.json says why).
            if workflow::fit_problem(&fit).is_some() {
                return Ok(ctx.write_json(0, &None::<crate::measure::Measurement>)?);
            }
            let mc: Merged = ctx.read_json(1)?;
            let mut processes = Vec::new();
            for i in 2..ctx.inputs().len() {
                let info: FileInfo = ctx.read_json(i)?;
                let (channel, xs) = info.process.ok_or("no XSection")?;
                processes.push((info.path, channel, xs));
            }
            let xs = workflow::total_xsection(&processes)?;
            let m = workflow::measure(&fit, &mc.histogram, xs, lumi, &Reference)?;
            Ok(ctx.write_json(0, &Some(m))?)
        }),
    });
    (fit_out, Some(measure_out))
}

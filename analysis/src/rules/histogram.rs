//! `histogram/ROLE/FILE` (a file's m_γγ histogram and cut flow) and `merge/ROLE` (summed in
//! file order).

use super::{Chain, FileHistogram, Input, Merged, Merges, Rule, Step};
use crate::histogram::Histogram;
use crate::select::CutFlow;
use crate::stage::{MakeHistogram, Reference, SelectOutput};
use crate::workflow::{self, AnalysisConfig, Role};
use flow::Ctx;
use serde_json::json;
use std::path::Path;

pub(super) fn rules(
    c: &Chain,
    cfg: &AnalysisConfig,
    work: &Path,
    files: &[Input],
    rules: &mut Vec<Rule>,
) -> Merges {
    let binning = cfg.binning;
    let merged = |role: Role, rules: &mut Vec<Rule>| {
        let mine: Vec<&Input> = files.iter().filter(|f| f.role == role).collect();
        if mine.is_empty() {
            return None;
        }
        let mut histograms = Vec::new();
        for f in mine {
            let hist = work.join(format!("histogram/{role}/{}.json", f.name));
            rules.push(Rule {
                name: format!("{}histogram/{role}/{}", c.prefix, f.name),
                after: vec![],
                inputs: vec![f.selected.clone()],
                outputs: vec![hist.clone()],
                params: json!({ "binning": binning }),
                implementation: c.identities.histogram.into(),
                kind: Step::Histogram,
                job: Box::new(move |ctx: &Ctx| {
                    let s: SelectOutput = ctx.read_binary(0)?;
                    let histogram = Reference.histogram(&s.diphotons, &binning)?;
                    let cut_flow = s.cut_flow;
                    Ok(ctx.write_json(
                        0,
                        &FileHistogram {
                            cut_flow,
                            histogram,
                        },
                    )?)
                }),
            });
            histograms.push(hist);
        }
        let out = work.join(format!("merge/{role}.json"));
        rules.push(Rule {
            name: format!("{}merge/{role}", c.prefix),
            after: vec![],
            inputs: histograms,
            outputs: vec![out.clone()],
            params: json!({ "binning": binning }),
            implementation: c.identities.histogram.into(),
            kind: Step::Merge,
            job: Box::new(move |ctx: &Ctx| {
                let parts: Vec<FileHistogram> = (0..ctx.inputs().len())
                    .map(|i| ctx.read_json(i))
                    .collect::<Result<_, _>>()?;
                let mut cut_flow = CutFlow::default();
                for p in &parts {
                    cut_flow.add(&p.cut_flow);
                }
                let hs: Vec<Histogram> = parts.iter().map(|p| p.histogram.clone()).collect();
                let merged = Merged {
                    cut_flow,
                    histogram: workflow::merge_histograms(&hs, &binning),
                    cut_flows: parts.into_iter().map(|p| p.cut_flow).collect(),
                };
                Ok(ctx.write_json(0, &merged)?)
            }),
        });
        Some(out)
    };
    let data = merged(Role::Data, rules).expect("check_config: data is not empty");
    let mc = merged(Role::Mc, rules);
    Merges { data, mc }
}

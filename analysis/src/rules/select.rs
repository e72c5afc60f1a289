//! `select/ROLE/FILE`: the event loop — a file's batches selected in parallel, written as the
//! merged selection's exact bytes (`workflow::SelectedParts`).

use super::{Chain, Input, Rule, Step};
use crate::workflow::{self, AnalysisConfig, LoopEvent, Role};
use flow::Ctx;
use serde_json::json;
use std::sync::Arc;

pub(super) fn rule(
    c: &Chain,
    cfg: &AnalysisConfig,
    f: &Input,
    progress: Arc<dyn Fn(LoopEvent) + Send + Sync>,
) -> Rule {
    // Data weights are 1: the luminosity cannot change a data file's selection.
    let mut cut_params = serde_json::to_value(&cfg.cuts).expect("plain data");
    // Data and the continuum are unweighted events.
    let is_data = f.role != Role::Mc;
    if let (true, Some(o)) = (is_data, cut_params.as_object_mut()) {
        o.remove("lumi_pb");
    }
    let (cuts, batch, stage) = (cfg.cuts.clone(), cfg.batch_entries, c.select.stage.clone());
    Rule {
        name: format!("{}select/{}/{}", c.prefix, f.role, f.name),
        // After the file's inspection: a file that cannot be inspected stops the run before
        // any event loop starts, and no file's loop shares its cores with another's
        // inspection. Order only: a new inspection never reruns a selection.
        after: vec![f.info.clone()],
        inputs: vec![f.file.clone()],
        outputs: vec![f.selected.clone()],
        params: json!({ "cuts": cut_params }),
        implementation: c.select.identity.clone(),
        kind: Step::Select,
        job: Box::new(move |ctx: &Ctx| {
            let file = workflow::open_input(ctx.input(0))?;
            let file = if is_data { file.as_data() } else { file };
            // Written as the merged SelectOutput, without merging (see SelectedParts).
            let out = workflow::select_file(&file, &cuts, batch, stage.as_ref(), &|e| progress(e))?;
            Ok(ctx.write_with(0, |w| Ok(out.write_postcard(w)?))?)
        }),
    }
}

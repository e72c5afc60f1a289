//! `convert/ROLE/FILE` (`--convert`, the paper's step 2): an input file as `.npy` columns and a
//! manifest.

use super::{Chain, Input, Rule, Step};
use crate::workflow;
use flow::Ctx;
use serde_json::Value;
use std::path::Path;

pub(super) fn rule(c: &Chain, work: &Path, f: &Input) -> Rule {
    // The columns go to a folder beside the manifest, moved into place by the job before the
    // engine renames the manifest (the record covers the manifest).
    let (role, name) = (f.role, &f.name);
    let columns = work.join(format!("convert/{role}/{name}"));
    Rule {
        name: format!("{}convert/{role}/{name}", c.prefix),
        // Beside the selections, after the inspections (as they are).
        after: vec![f.info.clone()],
        inputs: vec![f.file.clone()],
        outputs: vec![work.join(format!("convert/{role}/{name}.manifest.json"))],
        params: Value::Null,
        implementation: c.identities.convert.into(),
        kind: Step::Convert,
        job: Box::new(move |ctx: &Ctx| {
            let file = workflow::open_input(ctx.input(0))?;
            let tmp = columns.with_extension("flow-tmp-dir");
            let _ = std::fs::remove_dir_all(&tmp);
            let m = crate::convert::convert(file.ntuple(), None, &tmp)?;
            let _ = std::fs::remove_dir_all(&columns);
            std::fs::rename(&tmp, &columns)?;
            Ok(ctx.write_json(0, &m)?)
        }),
    }
}

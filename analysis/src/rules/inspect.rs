//! `inspect/ROLE/FILE`: what an input file is (release, tree, entries, hash; for signal MC
//! its process and cross-section). The first rule per file: a file that cannot be inspected
//! stops the run before any event loop starts.

use super::{Chain, FileInfo, Input, Rule, Step};
use crate::workflow::{self, Role};
use flow::Ctx;
use serde_json::json;

pub(super) fn rule(c: &Chain, f: &Input) -> Rule {
    let role = f.role;
    Rule {
        name: format!("{}inspect/{role}/{}", c.prefix, f.name),
        after: vec![],
        inputs: vec![f.file.clone()],
        outputs: vec![f.info.clone()],
        params: json!({ "role": role }),
        implementation: c.identities.inspect.into(),
        kind: Step::Inspect,
        job: Box::new(move |ctx: &Ctx| {
            let file = workflow::open_input(ctx.input(0))?;
            let process = match role {
                Role::Mc => Some(workflow::mc_process(&file)?),
                Role::Data | Role::Continuum => None,
            };
            let bytes = std::fs::metadata(ctx.input(0))?.len();
            Ok(ctx.write_json(
                0,
                &FileInfo {
                    path: ctx.input(0).display().to_string(),
                    role,
                    release: file.release(),
                    tree: file.ntuple().tree_name().into(),
                    title: file.ntuple().title().into(),
                    synthetic: workflow::is_synthetic(&file),
                    entries: file.entries(),
                    bytes,
                    blake3: ctx.input_hash(0).into(),
                    process,
                },
            )?)
        }),
    }
}

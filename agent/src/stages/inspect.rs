//! `inspect`: a ROOT file → its trees, entries and branches.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde_json::Value;

/// See the module documentation.
pub(super) struct InspectStage;

impl StageCase for InspectStage {
    type Output = FileSummary;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let file = ctx.give(path);
        let mut r = Reference.inspect(path).map_err(|e| e.message)?;
        r.path = file.clone();
        Ok((
            to_json(&serde_json::json!({ "file": file })),
            serde_json::to_value(&r).expect("plain data"),
        ))
    }

    fn sanity(c: &mut Checks, out: &FileSummary) {
        let ok = out.trees.iter().all(|t| {
            let mut names: Vec<&str> = t.branches.iter().map(|b| b.name.as_str()).collect();
            names.sort_unstable();
            names.windows(2).all(|w| w[0] != w[1])
        });
        c.rule("branches unique", ok, "no tree lists a branch twice");
    }

    fn compare(c: &mut Checks, out: &FileSummary, r: &FileSummary, _: &Tolerances) {
        let same =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
        c.add(
            "path",
            out.path == r.path,
            format!("stage {:?}, reference {:?}", out.path, r.path),
            format!(
                "`path` must be the path as the input gives it (yours: {:?})",
                out.path
            ),
        );
        c.add(
            "size",
            out.size_bytes == r.size_bytes,
            format!("stage {}, reference {}", out.size_bytes, r.size_bytes),
            format!(
                "`size_bytes` must be the file's size in bytes (yours: {})",
                out.size_bytes
            ),
        );
        c.add(
            "compression",
            out.compression == r.compression,
            format!("stage {:?}, reference {:?}", out.compression, r.compression),
            format!(
                "`compression` of the file is not right (yours: {:?}; see the instruction for the \
                 naming)",
                out.compression
            ),
        );
        let trees = |s: &FileSummary| -> Vec<(String, u64)> {
            s.trees
                .iter()
                .map(|t| (t.name.clone(), t.entries))
                .collect()
        };
        c.add(
            "trees",
            same(&trees(out), &trees(r)),
            format!("stage {:?}, reference {:?}", trees(out), trees(r)),
            format!(
                "the trees (name, entries) are not right (yours: {:?}): every TTree of the file, \
                 once each, in the file's key order",
                trees(out)
            ),
        );
        // Branches of the trees both list, by name: which are missing, extra or mistyped.
        let (mut missing, mut extra, mut typed, mut order) = (vec![], vec![], vec![], true);
        let mut fields = vec![];
        for rt in &r.trees {
            let Some(ot) = out.trees.iter().find(|t| t.name == rt.name) else {
                continue;
            };
            for rb in &rt.branches {
                match ot.branches.iter().find(|b| b.name == rb.name) {
                    None => missing.push(rb.name.clone()),
                    Some(ob) if ob.type_name != rb.type_name => {
                        typed.push(format!("{} (yours: {:?})", ob.name, ob.type_name))
                    }
                    Some(ob) => {
                        for (field, same) in [
                            ("columnar", ob.columnar == rb.columnar),
                            ("compression", ob.compression == rb.compression),
                            ("baskets", ob.baskets == rb.baskets),
                            (
                                "compressed_bytes",
                                ob.compressed_bytes == rb.compressed_bytes,
                            ),
                            (
                                "uncompressed_bytes",
                                ob.uncompressed_bytes == rb.uncompressed_bytes,
                            ),
                        ] {
                            if !same {
                                fields.push(format!("{}.{field}", ob.name));
                            }
                        }
                    }
                }
            }
            for ob in &ot.branches {
                if !rt.branches.iter().any(|b| b.name == ob.name) {
                    extra.push(ob.name.clone());
                }
            }
            let names = |t: &TreeSummary| -> Vec<String> {
                t.branches.iter().map(|b| b.name.clone()).collect()
            };
            order &= names(ot) == names(rt);
        }
        let mut hint = vec![];
        if !missing.is_empty() {
            hint.push(format!("{} branch(es) missing", missing.len()));
        }
        if !extra.is_empty() {
            hint.push(format!("not branches of the tree: {}", extra.join(", ")));
        }
        if !typed.is_empty() {
            hint.push(format!("wrong type names: {}", typed.join(", ")));
        }
        if !fields.is_empty() {
            hint.push(format!("wrong values: {}", fields.join(", ")));
        }
        if hint.is_empty() && !order {
            hint.push("the branches are not in the tree's order".into());
        }
        c.add(
            "branches",
            hint.is_empty(),
            format!(
                "missing {missing:?}, extra {extra:?}, mistyped {typed:?}, same order: {order}"
            ),
            format!("branches: {}", hint.join("; ")),
        );
    }
}

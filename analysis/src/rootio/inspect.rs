//! What is in a ROOT file: trees, entries, branches with types, compression and sizes
//! (step 1 of the paper's workflow).

use super::error::{guard, ReadError};
use super::{compression_name, Ntuple};
use oxyroot::Named;
use std::path::Path;

pub use stage_api::files::{BranchSummary, FileSummary, TreeSummary};

/// Lists every tree of the file with its branches.
pub fn inspect(path: impl AsRef<Path>) -> Result<FileSummary, ReadError> {
    let path = path.as_ref();
    let open_err = |reason: String| ReadError::Open {
        file: path.to_path_buf(),
        reason,
    };
    let size_bytes = std::fs::metadata(path)
        .map_err(|e| open_err(e.to_string()))?
        .len();
    let (compression, trees) = guard(|| {
        let file = oxyroot::RootFile::open(path).map_err(|e| e.to_string())?;
        let trees: Vec<String> = file
            .keys()
            .iter()
            .filter(|k| k.class_name() == "TTree")
            .map(|k| k.name().to_string())
            .collect();
        Ok((file.compression(), trees))
    })
    .map_err(open_err)?;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for name in trees {
        if seen.contains(&name) {
            continue; // older cycles of the same tree
        }
        let nt = Ntuple::open(path, &[name.as_str()])?;
        let branches = nt
            .branches()
            .iter()
            .map(|(n, m)| BranchSummary {
                name: n.clone(),
                type_name: m.type_name.clone(),
                columnar: m.column.is_some() && m.baskets_error.is_none(),
                compression: compression_name(m.compression),
                baskets: m.baskets.len(),
                compressed_bytes: m.zip_bytes,
                uncompressed_bytes: m.tot_bytes,
            })
            .collect();
        out.push(TreeSummary {
            name: name.clone(),
            entries: nt.entries(),
            branches,
        });
        seen.push(name);
    }
    Ok(FileSummary {
        path: path.display().to_string(),
        size_bytes,
        compression: compression_name(compression),
        trees: out,
    })
}

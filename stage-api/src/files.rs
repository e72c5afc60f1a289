//! What the inspect and convert stages return: file summaries and `.npy` manifests.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One file, as `cargo xtask inspect` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    pub size_bytes: u64,
    /// File-level compression setting, e.g. `zstd-5`.
    pub compression: String,
    pub trees: Vec<TreeSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeSummary {
    pub name: String,
    pub entries: u64,
    pub branches: Vec<BranchSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BranchSummary {
    pub name: String,
    /// Stored C++ type, e.g. `vector<float>` or `ROOT::VecOps::RVec<bool>`.
    pub type_name: String,
    /// Whether the columnar reader can decode this branch.
    pub columnar: bool,
    pub compression: String,
    pub baskets: usize,
    pub compressed_bytes: i64,
    pub uncompressed_bytes: i64,
}

/// One written column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NpyColumn {
    pub branch: String,
    /// Stored C++ type of the branch.
    pub type_name: String,
    /// numpy dtype of the values, e.g. `<f4`.
    pub dtype: String,
    /// File of the values (relative to the manifest).
    pub values: String,
    /// File of the entry offsets (`<i8`, n_entries + 1 values), for vector branches.
    pub offsets: Option<String>,
    /// Number of values.
    pub len: u64,
}

/// What `convert` wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NpyManifest {
    pub source: String,
    pub tree: String,
    pub entries: u64,
    pub columns: Vec<NpyColumn>,
    /// Branches that were asked for (or present) but cannot be written as flat columns.
    pub skipped: Vec<String>,
}

/// Input of the convert stage: which file, which branches (all when `None`), where to write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertInput {
    pub file: PathBuf,
    pub branches: Option<Vec<String>>,
    pub out_dir: PathBuf,
}

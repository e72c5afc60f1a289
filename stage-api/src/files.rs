//! What the inspect and convert stages return: file summaries and `.npy` manifests.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One file, as `cargo xtask inspect` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    /// Path of the file, as given.
    pub path: String,
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// File-level compression setting, e.g. `zstd-5`.
    pub compression: String,
    /// The file's trees, each name once.
    pub trees: Vec<TreeSummary>,
}

/// One tree of a file: its name, entries and branches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeSummary {
    /// Name of the tree.
    pub name: String,
    /// Number of entries (events).
    pub entries: u64,
    /// The tree's branches.
    pub branches: Vec<BranchSummary>,
}

/// One branch of a tree: its type, whether it can be read, compression and sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BranchSummary {
    /// Name of the branch.
    pub name: String,
    /// Stored C++ type, e.g. `vector<float>` or `ROOT::VecOps::RVec<bool>`.
    pub type_name: String,
    /// Whether the columnar reader can decode this branch.
    pub columnar: bool,
    /// Compression setting of the branch, e.g. `zlib-1`.
    pub compression: String,
    /// Number of baskets the branch is stored in.
    pub baskets: usize,
    /// Size of the branch's baskets on disk (compressed), bytes (ROOT's `fZipBytes`).
    pub compressed_bytes: i64,
    /// Size of the branch's data uncompressed, bytes (ROOT's `fTotBytes`).
    pub uncompressed_bytes: i64,
}

/// One written column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NpyColumn {
    /// Name of the branch.
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
    /// Path of the converted ROOT file.
    pub source: String,
    /// Name of the tree that was converted.
    pub tree: String,
    /// Number of entries in the tree.
    pub entries: u64,
    /// The columns written, one per converted branch.
    pub columns: Vec<NpyColumn>,
    /// Branches that were asked for (or present) but cannot be written as flat columns.
    pub skipped: Vec<String>,
}

/// Input of the convert stage: which file, which branches (all when `None`), where to write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertInput {
    /// The ROOT file to convert.
    pub file: PathBuf,
    /// Names of the branches to write; all branches when `None`.
    pub branches: Option<Vec<String>>,
    /// Directory the `.npy` files are written to.
    pub out_dir: PathBuf,
}

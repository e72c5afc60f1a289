//! ROOT file → columns. The only module that touches ROOT files.
//!
//! Layers, as in uproot: the patched `oxyroot` parses the file, directory, streamers and the
//! `TTree`/`TBranch` metadata once, at [`Ntuple::open`]; after that every read goes through
//! `oxyroot::rtree::columnar`: one positioned read per basket, one decompression, one bulk decode
//! into flat values plus entry offsets. An [`Ntuple`] holds only plain metadata, so it is `Sync`
//! and entry ranges can be read from many threads at once.
//!
//! Nothing here panics on bad input: every failure is a [`ReadError`] that names the file, and
//! the tree, branch, basket and entry where they are known.

mod error;
mod inspect;
mod ntuple;

pub use error::ReadError;
pub use inspect::{inspect, BranchSummary, FileSummary, TreeSummary};
pub use ntuple::{Jagged, Ntuple};
pub use oxyroot::rtree::columnar::{ColumnType, ElementType, Primitive};

/// Human name of a ROOT compression setting (algorithm × 100 + level), e.g. `zlib-1`.
pub fn compression_name(setting: i32) -> String {
    let algo = match setting / 100 {
        0 if setting % 100 == 0 => return "none".into(),
        0 | 1 => "zlib",
        2 => "lzma",
        3 => "old",
        4 => "lz4",
        5 => "zstd",
        _ => "unknown",
    };
    format!("{algo}-{}", setting % 100)
}

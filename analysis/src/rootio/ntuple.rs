//! [`Ntuple`]: one flat tree of one file, read column by column over entry ranges.

use super::error::{guard, ReadError};
use oxyroot::rtree::columnar::{
    self, BasketLocation, BasketSource, ColumnType, Primitive, RawBasket,
};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A variable-length column: entry `i` holds `values[offsets[i]..offsets[i + 1]]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Jagged<T> {
    /// Every entry's values, concatenated.
    pub values: Vec<T>,
    /// `n_entries + 1` offsets into `values`, starting at 0.
    pub offsets: Vec<u32>,
}

impl<T> Jagged<T> {
    /// Number of entries (one less than the number of offsets).
    pub fn n_entries(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

/// What the reader keeps of one branch after the file's metadata is parsed.
#[derive(Clone, Debug)]
pub(crate) struct BranchMeta {
    pub type_name: String,
    pub column: Option<ColumnType>,
    pub baskets: Vec<BasketLocation>,
    /// Why the baskets cannot be read, when they cannot (reported only if the branch is read).
    pub baskets_error: Option<String>,
    pub compression: i32,
    pub zip_bytes: i64,
    pub tot_bytes: i64,
}

/// One tree of one ROOT file, ready for columnar reads from any number of threads.
#[derive(Debug)]
pub struct Ntuple {
    path: PathBuf,
    tree: String,
    title: String,
    entries: u64,
    /// Branches in file order.
    branches: Vec<(String, BranchMeta)>,
    index: BTreeMap<String, usize>,
    source: BasketSource,
}

impl Ntuple {
    /// Opens the first tree of `trees` that the file has (e.g. `["mini", "analysis"]`).
    pub fn open(path: impl AsRef<Path>, trees: &[&str]) -> Result<Self, ReadError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |reason: String| ReadError::Open {
            file: path.clone(),
            reason,
        };
        let (tree, title, entries, branches) = guard(|| {
            let mut file = oxyroot::RootFile::open(&path).map_err(|e| e.to_string())?;
            let keys: Vec<String> = file.keys_name().map(str::to_string).collect();
            let Some(tree) = trees.iter().find(|t| keys.iter().any(|k| k == *t)) else {
                return Ok(Err(ReadError::NoTree {
                    file: path.clone(),
                    wanted: trees
                        .iter()
                        .map(|t| format!("'{t}'"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    found: if keys.is_empty() {
                        "none".into()
                    } else {
                        keys.join(", ")
                    },
                }));
            };
            let t = match file.get_tree(tree) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Err(ReadError::Tree {
                        file: path.clone(),
                        tree: tree.to_string(),
                        reason: e.to_string(),
                    }))
                }
            };
            let entries = t.entries();
            let branches = t
                .branches()
                .map(|b| (b.name().to_string(), meta(b, entries)))
                .collect();
            Ok(Ok((
                tree.to_string(),
                t.title().to_string(),
                t.entries(),
                branches,
            )))
        })
        .map_err(open_err)??;
        if entries < 0 {
            return Err(ReadError::Tree {
                file: path,
                tree,
                reason: format!("negative entry count {entries}"),
            });
        }
        let source = BasketSource::open(&path).map_err(|e| ReadError::Open {
            file: path.clone(),
            reason: e.to_string(),
        })?;
        let branches: Vec<(String, BranchMeta)> = branches;
        let index = branches
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        Ok(Self {
            path,
            tree,
            title,
            entries: entries as u64,
            branches,
            index,
            source,
        })
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Name of the tree read.
    pub fn tree_name(&self) -> &str {
        &self.tree
    }
    /// The tree's title, as the file says it.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Number of entries in the tree.
    pub fn entries(&self) -> u64 {
        self.entries
    }
    /// Whether the tree has a branch called `name`.
    pub fn has_branch(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
    /// Branch names in file order.
    pub fn branch_names(&self) -> impl Iterator<Item = &str> {
        self.branches.iter().map(|(n, _)| n.as_str())
    }
    /// Where `branch`'s baskets are (for benchmarks that read them raw), if it has any.
    pub fn basket_locations(&self, branch: &str) -> Option<&[BasketLocation]> {
        self.branches
            .iter()
            .find(|(n, _)| n == branch)
            .map(|(_, m)| m.baskets.as_slice())
    }
    pub(crate) fn branches(&self) -> &[(String, BranchMeta)] {
        &self.branches
    }

    /// Stored C++ type of a branch (`float`, `vector<float>`, `ROOT::VecOps::RVec<bool>`).
    pub fn type_name(&self, branch: &str) -> Option<&str> {
        self.index
            .get(branch)
            .map(|&i| self.branches[i].1.type_name.as_str())
    }

    /// Entry ranges of about `target` entries whose edges are basket edges of the heaviest
    /// branches in `branches`, so their baskets are decompressed once when the ranges are read
    /// one by one. The branches are taken by uncompressed size, largest first, each kept only
    /// if the edges it shares with those before cut as many ranges of `target` entries:
    /// ROOT writes flat trees in clusters (every branch shares the cluster edges), where all
    /// are kept; in files written without clusters a lighter branch may straddle a range edge
    /// and decompress one basket twice. Without any usable edges, plain ranges of `target`
    /// entries are returned.
    pub fn chunks(&self, branches: &[&str], target: u64) -> Result<Vec<Range<u64>>, ReadError> {
        let target = target.max(1);
        let mut metas = Vec::with_capacity(branches.len());
        for b in branches {
            let meta = self.meta(b)?;
            if let Some(e) = &meta.baskets_error {
                return Err(self.data_err(b, e));
            }
            metas.push(meta);
        }
        metas.sort_by_key(|m| std::cmp::Reverse(m.tot_bytes));
        let mut common: Option<Vec<u64>> = None;
        for meta in metas {
            let edges: Vec<u64> = meta.baskets.iter().map(|l| l.entries.end).collect();
            common = Some(match common {
                None => edges,
                Some(c) => {
                    let next: Vec<u64> = c
                        .iter()
                        .copied()
                        .filter(|e| edges.binary_search(e).is_ok())
                        .collect();
                    // Kept only if it costs no range (a cluster's edges are everyone's).
                    if spaced(&next, target) >= spaced(&c, target) {
                        next
                    } else {
                        c
                    }
                }
            });
        }
        let mut edges = common.unwrap_or_default();
        if edges.len() < 2 && self.entries > target {
            if self.entries / target > 10_000_000 {
                return Err(ReadError::Tree {
                    file: self.path.clone(),
                    tree: self.tree.clone(),
                    reason: format!("implausible entry count {}", self.entries),
                });
            }
            edges = (1..=self.entries.div_ceil(target))
                .map(|i| (i * target).min(self.entries))
                .collect();
        }
        let mut out = Vec::new();
        let mut start = 0;
        for e in edges {
            if e >= self.entries || e - start >= target {
                let e = e.min(self.entries);
                if e > start {
                    out.push(start..e);
                    start = e;
                }
            }
        }
        if start < self.entries {
            out.push(start..self.entries);
        }
        Ok(out)
    }

    fn meta(&self, branch: &str) -> Result<&BranchMeta, ReadError> {
        self.index
            .get(branch)
            .map(|&i| &self.branches[i].1)
            .ok_or_else(|| ReadError::MissingBranch {
                file: self.path.clone(),
                tree: self.tree.clone(),
                branch: branch.to_string(),
            })
    }

    fn data_err(&self, branch: &str, reason: impl std::fmt::Display) -> ReadError {
        ReadError::Data {
            file: self.path.clone(),
            tree: self.tree.clone(),
            branch: branch.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Checks that `branch` holds `want` and returns its metadata.
    fn typed(&self, branch: &str, want: ColumnType) -> Result<&BranchMeta, ReadError> {
        let meta = self.meta(branch)?;
        if meta.column != Some(want) {
            let expected = match want {
                ColumnType::Scalar(e) => format!("a scalar of {e:?}"),
                ColumnType::Jagged(e) => format!("a vector of {e:?}"),
            };
            return Err(ReadError::WrongType {
                file: self.path.clone(),
                tree: self.tree.clone(),
                branch: branch.to_string(),
                expected,
                found: meta.type_name.clone(),
            });
        }
        if let Some(e) = &meta.baskets_error {
            return Err(self.data_err(branch, e));
        }
        Ok(meta)
    }

    /// Reads the baskets of `branch` that overlap `range`, handing each to `decode` with the
    /// part of `range` it holds, in basket order.
    ///
    /// With more than one thread, the baskets are inflated in parallel, a window of twice the
    /// pool's threads (at most [`MAX_WINDOW`]) at a time — the read-ahead, and the memory, stay
    /// bounded; the other branches of the batch are read at the same time — and decoded in
    /// order: so even one file's one batch uses every core, and the result is the same for
    /// any thread count. The buffers are this thread's [`BASKETS`], reused from window to
    /// window and batch to batch (a read that rayon runs on a thread while it waits makes its
    /// own, dropped after).
    fn for_baskets(
        &self,
        branch: &str,
        meta: &BranchMeta,
        range: &Range<u64>,
        mut decode: impl FnMut(&RawBasket, Range<u64>) -> Result<(), String>,
    ) -> Result<(), ReadError> {
        use rayon::prelude::*;
        self.check_range(branch, range)?;
        let locs: Vec<&BasketLocation> = meta
            .baskets
            .iter()
            .filter(|l| l.entries.start < range.end && l.entries.end > range.start)
            .collect();
        let threads = rayon::current_num_threads();
        let window = if threads > 1 {
            (2 * threads).min(MAX_WINDOW)
        } else {
            1
        };
        let read = |loc: &BasketLocation, buf: &mut (Vec<u8>, RawBasket)| {
            self.source
                .read_basket(loc, &mut buf.0, &mut buf.1)
                .map_err(|e| self.data_err(branch, e))
        };
        // Taken out of the thread-local for the call, not borrowed: while this thread waits
        // for the window's inflates, rayon may run another branch's read on it, which then
        // finds no buffers and makes its own.
        let mut slots = BASKETS.with(|cell| cell.take());
        if slots.len() < window.min(locs.len()) {
            slots.resize_with(window.min(locs.len()), Default::default);
        }
        let result = (|| -> Result<(), ReadError> {
            for chunk in locs.chunks(window) {
                let slots = &mut slots[..chunk.len()];
                let reads: Vec<Result<(), ReadError>> = if let [loc] = chunk {
                    vec![read(loc, &mut slots[0])]
                } else {
                    chunk
                        .par_iter()
                        .zip(slots.par_iter_mut())
                        .map(|(loc, buf)| read(loc, buf))
                        .collect()
                };
                // Basket by basket, as one thread would: the first failure in basket order
                // (its read or its decoding) is the error, whatever the window.
                for ((loc, (_, basket)), read) in chunk.iter().zip(slots.iter()).zip(reads) {
                    read?;
                    let part = loc.entries.start.max(range.start)..loc.entries.end.min(range.end);
                    decode(basket, part).map_err(|e| {
                        self.data_err(
                            branch,
                            format!("basket {} (entries {:?}): {e}", loc.index, loc.entries),
                        )
                    })?;
                }
            }
            Ok(())
        })();
        BASKETS.with(|cell| cell.replace(slots));
        result
    }

    /// Checks `range` lies in the tree, before anything is allocated for it.
    fn check_range(&self, branch: &str, range: &Range<u64>) -> Result<usize, ReadError> {
        if range.start > range.end || range.end > self.entries {
            return Err(self.data_err(
                branch,
                format!("entries {range:?} outside 0..{}", self.entries),
            ));
        }
        Ok((range.end - range.start) as usize)
    }

    /// Checks a read produced one value per entry (the baskets may cover less than they claim).
    fn check_len(&self, branch: &str, got: usize, want: usize) -> Result<(), ReadError> {
        if got != want {
            return Err(self.data_err(
                branch,
                format!("baskets held {got} entries where {want} were expected"),
            ));
        }
        Ok(())
    }

    /// Reads entries `range` of a scalar branch of type `T`.
    pub fn read_scalar<T: Primitive>(
        &self,
        branch: &str,
        range: Range<u64>,
    ) -> Result<Vec<T>, ReadError> {
        let mut out = Vec::new();
        self.read_scalar_into(branch, range, &mut out)?;
        Ok(out)
    }

    /// [`Ntuple::read_scalar`] into `out` (cleared first), reusing its memory.
    pub fn read_scalar_into<T: Primitive>(
        &self,
        branch: &str,
        range: Range<u64>,
        out: &mut Vec<T>,
    ) -> Result<(), ReadError> {
        self.read_scalar_map(branch, range, out, |v: T| v)
    }

    /// Reads a scalar branch stored as `T` into `out` (cleared first), each value through `f`.
    fn read_scalar_map<T: Primitive, U>(
        &self,
        branch: &str,
        range: Range<u64>,
        out: &mut Vec<U>,
        f: impl Fn(T) -> U + Copy,
    ) -> Result<(), ReadError> {
        let meta = self.typed(branch, ColumnType::Scalar(T::TYPE))?;
        let n = self.check_range(branch, &range)?;
        out.clear();
        out.reserve(n);
        self.for_baskets(branch, meta, &range, |b, r| {
            columnar::decode_scalar_map(b, r, out, f)
        })?;
        self.check_len(branch, out.len(), n)
    }

    /// Reads entries `range` of a `vector<T>` / `RVec<T>` branch.
    pub fn read_jagged<T: Primitive>(
        &self,
        branch: &str,
        range: Range<u64>,
    ) -> Result<Jagged<T>, ReadError> {
        let mut out = Jagged::default();
        self.read_jagged_into(branch, range, &mut out.values, &mut out.offsets)?;
        Ok(out)
    }

    /// [`Ntuple::read_jagged`] into `values` and `offsets` (cleared first), reusing their
    /// memory.
    pub fn read_jagged_into<T: Primitive>(
        &self,
        branch: &str,
        range: Range<u64>,
        values: &mut Vec<T>,
        offsets: &mut Vec<u32>,
    ) -> Result<(), ReadError> {
        let meta = self.typed(branch, ColumnType::Jagged(T::TYPE))?;
        let n = self.check_range(branch, &range)?;
        // Reserve the values from the branch's uncompressed size (capped: it comes from the file).
        let per_entry = meta.tot_bytes.max(0) as f64 / self.entries.max(1) as f64;
        let guess = ((per_entry * n as f64) / T::SIZE as f64) as usize;
        values.clear();
        values.reserve(guess.min(n.saturating_mul(64)));
        offsets.clear();
        offsets.reserve(n + 1);
        offsets.push(0);
        self.for_baskets(branch, meta, &range, |b, r| {
            columnar::decode_jagged(b, r, values, offsets)
        })?;
        self.check_len(branch, offsets.len() - 1, n)
    }

    /// Reads a scalar count branch whose stored integer type varies between releases
    /// (`UInt_t` in 2020, `Int_t` in 2025) as `u32`.
    pub fn read_count(&self, branch: &str, range: Range<u64>) -> Result<Vec<u32>, ReadError> {
        let mut out = Vec::new();
        self.read_count_into(branch, range, &mut out)?;
        Ok(out)
    }

    /// [`Ntuple::read_count`] into `out` (cleared first), reusing its memory.
    pub fn read_count_into(
        &self,
        branch: &str,
        range: Range<u64>,
        out: &mut Vec<u32>,
    ) -> Result<(), ReadError> {
        use oxyroot::rtree::columnar::ElementType as E;
        match self.meta(branch)?.column {
            Some(ColumnType::Scalar(E::I32)) => {
                self.read_scalar_map(branch, range.clone(), out, |v: i32| v as u32)?;
                match out.iter().position(|&v| v > i32::MAX as u32) {
                    None => Ok(()),
                    Some(i) => Err(self.data_err(
                        branch,
                        format!(
                            "entry {}: count {} is negative",
                            range.start + i as u64,
                            out[i] as i32
                        ),
                    )),
                }
            }
            // U32, or anything else: let the typed read report the mismatch.
            _ => self.read_scalar_into::<u32>(branch, range, out),
        }
    }

    /// Reads an identifier branch (event or channel number: `Int_t`, `UInt_t` or `ULong64_t`
    /// depending on the release) as `u64`.
    pub fn read_id(&self, branch: &str, range: Range<u64>) -> Result<Vec<u64>, ReadError> {
        let mut out = Vec::new();
        self.read_id_into(branch, range, &mut out)?;
        Ok(out)
    }

    /// [`Ntuple::read_id`] into `out` (cleared first), reusing its memory.
    pub fn read_id_into(
        &self,
        branch: &str,
        range: Range<u64>,
        out: &mut Vec<u64>,
    ) -> Result<(), ReadError> {
        use oxyroot::rtree::columnar::ElementType as E;
        match self.meta(branch)?.column {
            // Negative Int_t identifiers keep their 32-bit pattern, as ROOT's UInt_t cast does.
            Some(ColumnType::Scalar(E::I32)) => {
                self.read_scalar_map(branch, range, out, |v: i32| v as u32 as u64)
            }
            Some(ColumnType::Scalar(E::U32)) => {
                self.read_scalar_map(branch, range, out, |v: u32| v as u64)
            }
            _ => self.read_scalar_into::<u64>(branch, range, out),
        }
    }
}

/// The most baskets of one branch inflated at once (each thread keeps this many buffers).
const MAX_WINDOW: usize = 8;

/// How many ranges of at least `target` entries the sorted `edges` cut (what `chunks` makes).
fn spaced(edges: &[u64], target: u64) -> usize {
    let (mut n, mut start) = (0, 0);
    for &e in edges {
        if e - start >= target {
            n += 1;
            start = e;
        }
    }
    n
}

thread_local! {
    /// One thread's basket buffers for [`Ntuple::for_baskets`]: per slot of the read-ahead
    /// window, the compressed bytes and the inflated basket. They keep the largest baskets'
    /// sizes (a few MiB at most in ntuples).
    static BASKETS: std::cell::RefCell<Vec<(Vec<u8>, RawBasket)>> = Default::default();
}

fn meta(b: &oxyroot::Branch, tree_entries: i64) -> BranchMeta {
    let (zip_bytes, tot_bytes) = b.byte_sizes();
    let (baskets, baskets_error) = match b.basket_locations() {
        Ok(_) if b.entries() != tree_entries => (
            Vec::new(),
            Some(format!(
                "branch has {} entries, its tree {tree_entries}",
                b.entries()
            )),
        ),
        Ok(l) => (l, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    BranchMeta {
        type_name: b.stored_type_name(),
        column: b.column_type(),
        baskets,
        baskets_error,
        compression: b.compression(),
        zip_bytes,
        tot_bytes,
    }
}

//! Ntuple → `.npy` columns, for numpy users (step 2 of the paper's workflow).
//!
//! Each branch becomes `BRANCH.npy` (scalars) or `BRANCH.values.npy` plus
//! `BRANCH.offsets.npy` (vectors: entry `i` is `values[offsets[i]:offsets[i+1]]`, as awkward's
//! `ListOffsetArray`). `manifest.json` lists every column. Values keep the file's units.

use crate::rootio::{ColumnType, ElementType, Ntuple, Primitive, ReadError};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use stage_api::files::{NpyColumn, NpyManifest};

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An input branch could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// An output file or folder could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes the branches `branches` (all flat-readable ones when `None`) of `nt` into `out`.
pub fn convert(
    nt: &Ntuple,
    branches: Option<&[String]>,
    out: &Path,
) -> Result<NpyManifest, ConvertError> {
    fn wr(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
        move |source| ConvertError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
    std::fs::create_dir_all(out).map_err(wr(out))?;
    let names: Vec<String> = match branches {
        Some(b) => b.to_vec(),
        None => nt.branch_names().map(str::to_string).collect(),
    };
    let mut columns = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        let type_name = nt
            .type_name(&name)
            .ok_or_else(|| ReadError::MissingBranch {
                file: nt.path().to_path_buf(),
                tree: nt.tree_name().to_string(),
                branch: name.clone(),
            })?
            .to_string();
        let Some(column) = ColumnType::parse(&type_name) else {
            skipped.push(name);
            continue;
        };
        let jagged = matches!(column, ColumnType::Jagged(_));
        let values = if jagged {
            format!("{name}.values.npy")
        } else {
            format!("{name}.npy")
        };
        let offsets = jagged.then(|| format!("{name}.offsets.npy"));
        let o_path = offsets.as_ref().map(|o| out.join(o));
        let (v_path, o_path) = (out.join(&values), o_path.as_deref());
        use ElementType::*;
        let len = match column.element() {
            Bool => write_column::<bool>(nt, &name, jagged, &v_path, o_path)?,
            I8 => write_column::<i8>(nt, &name, jagged, &v_path, o_path)?,
            U8 => write_column::<u8>(nt, &name, jagged, &v_path, o_path)?,
            I16 => write_column::<i16>(nt, &name, jagged, &v_path, o_path)?,
            U16 => write_column::<u16>(nt, &name, jagged, &v_path, o_path)?,
            I32 => write_column::<i32>(nt, &name, jagged, &v_path, o_path)?,
            U32 => write_column::<u32>(nt, &name, jagged, &v_path, o_path)?,
            I64 => write_column::<i64>(nt, &name, jagged, &v_path, o_path)?,
            U64 => write_column::<u64>(nt, &name, jagged, &v_path, o_path)?,
            F32 => write_column::<f32>(nt, &name, jagged, &v_path, o_path)?,
            F64 => write_column::<f64>(nt, &name, jagged, &v_path, o_path)?,
        };
        columns.push(NpyColumn {
            branch: name,
            type_name,
            dtype: dtype(column.element()).to_string(),
            values,
            offsets,
            len,
        });
    }
    let manifest = NpyManifest {
        source: nt.path().display().to_string(),
        tree: nt.tree_name().to_string(),
        entries: nt.entries(),
        columns,
        skipped,
    };
    let path = out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).expect("plain data serialises");
    std::fs::write(&path, text).map_err(wr(&path))?;
    Ok(manifest)
}

fn dtype(e: ElementType) -> &'static str {
    use ElementType::*;
    match e {
        Bool => "|b1",
        I8 => "|i1",
        U8 => "|u1",
        I16 => "<i2",
        U16 => "<u2",
        I32 => "<i4",
        U32 => "<u4",
        I64 => "<i8",
        U64 => "<u8",
        F32 => "<f4",
        F64 => "<f8",
    }
}

/// A value as numpy stores it, little-endian.
trait NpyValue: Primitive {
    fn put(&self, out: &mut Vec<u8>);
}
macro_rules! npy_value {
    ($($t:ty),*) => {$(
        impl NpyValue for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
npy_value!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);
impl NpyValue for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

/// Reads a whole column once and writes its values (and offsets); returns how many values.
fn write_column<T: NpyValue>(
    nt: &Ntuple,
    name: &str,
    jagged: bool,
    values: &Path,
    offsets: Option<&Path>,
) -> Result<u64, ConvertError> {
    let all = 0..nt.entries();
    let (v, o) = if jagged {
        let j = nt.read_jagged::<T>(name, all)?;
        (j.values, Some(j.offsets))
    } else {
        (nt.read_scalar::<T>(name, all)?, None)
    };
    let mut bytes = Vec::with_capacity(v.len() * T::SIZE);
    v.iter().for_each(|x| x.put(&mut bytes));
    write_npy(values, dtype(T::TYPE), v.len(), &bytes)?;
    if let (Some(o), Some(path)) = (o, offsets) {
        let mut bytes = Vec::with_capacity(o.len() * 8);
        o.iter().for_each(|&x| (x as i64).put(&mut bytes));
        write_npy(path, "<i8", o.len(), &bytes)?;
    }
    Ok(v.len() as u64)
}

/// Writes a 1-D `.npy` file (format version 1.0).
fn write_npy(path: &Path, descr: &str, len: usize, data: &[u8]) -> Result<(), ConvertError> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({len},), }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to 64 bytes, '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    let err = |source| ConvertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::create(path).map_err(err)?;
    f.write_all(&out).map_err(err)
}

// A correct convert stage, written from the task's instruction and the oxyroot notes.
use oxyroot::{Branch, RootFile, UnmarshalerInto};
use stage_api::{Convert, ConvertInput, NpyColumn, NpyManifest, StageError};
use std::path::Path;

pub struct Stage;

fn npy(path: &Path, descr: &str, len: usize, data: &[u8]) -> Result<(), StageError> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({len},), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Little-endian bytes of one value.
trait Le: Copy {
    fn put(self, out: &mut Vec<u8>);
}
impl Le for f32 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl Le for f64 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl Le for i32 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl Le for u32 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl Le for bool {
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self))
    }
}

/// (bytes, number of values, offsets for vectors)
type Column = (Vec<u8>, usize, Option<Vec<i64>>);

fn scalar<T: Le + UnmarshalerInto<Item = T>>(b: &Branch) -> Result<Column, String> {
    let mut bytes = Vec::new();
    let mut n = 0;
    for x in b.as_iter::<T>().map_err(|e| e.to_string())? {
        x.put(&mut bytes);
        n += 1;
    }
    Ok((bytes, n, None))
}

fn vector<T: Le>(b: &Branch) -> Result<Column, String>
where
    Vec<T>: UnmarshalerInto<Item = Vec<T>>,
{
    let mut bytes = Vec::new();
    let mut offsets = vec![0i64];
    let mut n = 0;
    for entry in b.as_iter::<Vec<T>>().map_err(|e| e.to_string())? {
        for x in &entry {
            x.put(&mut bytes);
        }
        n += entry.len();
        offsets.push(n as i64);
    }
    Ok((bytes, n, Some(offsets)))
}

/// The dtype and the column, or None for a type this converter does not write.
fn column(b: &Branch, ty: &str) -> Result<Option<(&'static str, Column)>, String> {
    let ty = ty.trim_start_matches("std::");
    let (inner, jagged) = match ty.strip_prefix("vector<").or(ty.strip_prefix("ROOT::VecOps::RVec<")) {
        Some(rest) => (rest.trim_end_matches('>').trim_start_matches("std::"), true),
        None => (ty, false),
    };
    Ok(Some(match (inner, jagged) {
        ("float" | "Float_t", false) => ("<f4", scalar::<f32>(b)?),
        ("double" | "Double_t", false) => ("<f8", scalar::<f64>(b)?),
        ("int" | "int32_t" | "Int_t", false) => ("<i4", scalar::<i32>(b)?),
        ("unsigned int" | "unsigned" | "uint32_t" | "UInt_t", false) => ("<u4", scalar::<u32>(b)?),
        ("bool" | "Bool_t", false) => ("|b1", scalar::<bool>(b)?),
        ("float" | "Float_t", true) => ("<f4", vector::<f32>(b)?),
        ("double" | "Double_t", true) => ("<f8", vector::<f64>(b)?),
        ("int" | "int32_t" | "Int_t", true) => ("<i4", vector::<i32>(b)?),
        ("unsigned int" | "unsigned" | "uint32_t" | "UInt_t", true) => ("<u4", vector::<u32>(b)?),
        ("bool" | "Bool_t", true) => ("|b1", vector::<bool>(b)?),
        _ => return Ok(None),
    }))
}

impl Convert for Stage {
    fn convert(&self, input: &ConvertInput) -> Result<NpyManifest, StageError> {
        let file = &input.file;
        let mut f = RootFile::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let tree = f.get_tree("mini").map_err(|e| format!("{}: {e}", file.display()))?;
        let names: Vec<String> = match &input.branches {
            Some(b) => b.clone(),
            None => tree.branches().map(|b| b.name().to_string()).collect(),
        };
        std::fs::create_dir_all(&input.out_dir).map_err(|e| e.to_string())?;
        let (mut columns, mut skipped) = (Vec::new(), Vec::new());
        for name in names {
            let b = tree
                .branch(&name)
                .ok_or_else(|| format!("no branch '{name}' in {}", file.display()))?;
            let ty = b.stored_type_name();
            let Some((dtype, (bytes, len, offsets))) = column(b, &ty).map_err(|e| format!("{name}: {e}"))? else {
                skipped.push(name);
                continue;
            };
            let values = if offsets.is_some() { format!("{name}.values.npy") } else { format!("{name}.npy") };
            npy(&input.out_dir.join(&values), dtype, len, &bytes)?;
            let offsets = match offsets {
                Some(o) => {
                    let file_name = format!("{name}.offsets.npy");
                    let bytes: Vec<u8> = o.iter().flat_map(|x| x.to_le_bytes()).collect();
                    npy(&input.out_dir.join(&file_name), "<i8", o.len(), &bytes)?;
                    Some(file_name)
                }
                None => None,
            };
            columns.push(NpyColumn { branch: name, type_name: ty, dtype: dtype.to_string(), values, offsets, len: len as u64 });
        }
        Ok(NpyManifest {
            source: file.display().to_string(),
            tree: "mini".to_string(),
            entries: tree.entries() as u64,
            columns,
            skipped,
        })
    }
}

//! `convert`: a ROOT file → `.npy` columns and a manifest; the arrays are read back (no links followed, size capped) and compared by dtype, length and BLAKE3.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// See the module documentation.
pub(super) struct ConvertStage;

impl StageCase for ConvertStage {
    type Output = NpyManifest;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let i = ConvertInput {
            file: ctx.give(path).into(),
            branches: Some(CONVERT_BRANCHES.iter().map(|b| b.to_string()).collect()),
            out_dir: "npy".into(),
        };
        // The reference writes where the stage will (relative to a scratch output
        // directory): validation reads both the same way.
        let dir = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
        let mut r = Reference
            .convert(&ConvertInput {
                file: path.to_path_buf(),
                out_dir: dir.path().join(&i.out_dir),
                ..i.clone()
            })
            .map_err(|e| e.message)?;
        r.source = i.file.display().to_string();
        let mut reference = serde_json::to_value(&r).expect("plain data");
        reference["arrays"] = npy_digests(dir.path(), &i.out_dir, &r)?;
        ctx.scratch = Some(dir);
        Ok((to_json(&i), reference))
    }

    fn files(c: &mut Checks, dir: &std::path::Path, reference: &Value) {
        compare_arrays(c, dir, reference);
    }

    fn sanity(c: &mut Checks, out: &NpyManifest) {
        let ok = out
            .columns
            .iter()
            .all(|col| safe_name(&col.values) && col.offsets.as_deref().is_none_or(safe_name));
        c.rule(
            "file names",
            ok,
            "every column's files are plain names in the output directory (no `/`, no `..`)",
        );
    }

    fn compare(c: &mut Checks, out: &NpyManifest, r: &NpyManifest, _: &Tolerances) {
        c.add(
            "manifest header",
            out.source == r.source && out.tree == r.tree && out.entries == r.entries,
            format!(
                "stage ({:?}, {:?}, {}), reference ({:?}, {:?}, {})",
                out.source, out.tree, out.entries, r.source, r.tree, r.entries
            ),
            format!(
                "`source` (the input path as given), `tree` and `entries` are not all right (yours: \
                 {:?}, {:?}, {})",
                out.source, out.tree, out.entries
            ),
        );
        let mut wrong = vec![];
        for rc in &r.columns {
            match out.columns.iter().find(|o| o.branch == rc.branch) {
                None => wrong.push(format!("{}: not in the manifest", rc.branch)),
                Some(o) => {
                    let mut what = vec![];
                    if o.type_name != rc.type_name {
                        what.push(format!("type_name {:?}", o.type_name));
                    }
                    if o.dtype != rc.dtype {
                        what.push(format!("dtype {:?}", o.dtype));
                    }
                    if o.values != rc.values || o.offsets != rc.offsets {
                        what.push(format!("files {:?} / {:?}", o.values, o.offsets));
                    }
                    if o.len != rc.len {
                        what.push(format!("len {}", o.len));
                    }
                    if !what.is_empty() {
                        wrong.push(format!("{}: {}", rc.branch, what.join(", ")));
                    }
                }
            }
        }
        if out.columns.len() != r.columns.len() {
            wrong.push(format!("{} columns listed", out.columns.len()));
        }
        c.add(
            "manifest columns",
            wrong.is_empty(),
            format!("differences: {wrong:?}"),
            format!("manifest columns not as specified: {}", wrong.join("; ")),
        );
    }
}

/// A file name a manifest may list: one plain component.
fn safe_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

/// The `.npy` files of a conversion as validation compares them: per file, dtype, shape and
/// BLAKE3 of the data bytes (headers may differ in spacing and still be valid).
pub fn npy_digests(dir: &Path, sub: &Path, manifest: &NpyManifest) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for col in &manifest.columns {
        for name in std::iter::once(&col.values).chain(col.offsets.as_ref()) {
            let a = read_npy(&dir.join(sub), name, u64::MAX).map_err(|e| format!("{name}: {e}"))?;
            out.insert(name.clone(), serde_json::to_value(a).expect("plain data"));
        }
    }
    Ok(serde_json::json!({ "dir": sub, "files": out }))
}

/// One `.npy` file as validation sees it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NpyArray {
    dtype: String,
    len: u64,
    blake3: String,
}

/// Reads a 1-D `.npy` file `name` in `dir` written by the stage: neither the directory nor
/// the file may be a link (the stage's uid made them), at most `cap` bytes. The header is
/// parsed by hand (a few fields of a Python dict literal): the npy crates read whole typed
/// arrays, while this needs only dtype, shape and the raw bytes, from a file that may be
/// hostile.
fn read_npy(dir: &Path, name: &str, cap: u64) -> Result<NpyArray, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !safe_name(name) {
        return Err("not a plain file name".into());
    }
    // Errors name the file as the stage knows it, never the harness's paths.
    let what = |io: std::io::Error| match io.kind() {
        std::io::ErrorKind::NotFound => "not written".to_string(),
        _ => format!("unreadable ({})", io.kind()),
    };
    for p in [dir, &dir.join(name)] {
        let m = std::fs::symlink_metadata(p).map_err(what)?;
        if m.file_type().is_symlink() {
            return Err("a link, not a file".into());
        }
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(name))
        .map_err(what)?;
    let mut bytes = vec![];
    f.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(what)?;
    if bytes.len() as u64 > cap {
        return Err(format!("larger than {cap} bytes"));
    }
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (no \\x93NUMPY magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unknown .npy format version {v}")),
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated or non-text header")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[at..].trim_start().strip_prefix(':')?.trim_start())
    };
    let dtype = field("descr")
        .and_then(|v| v.strip_prefix('\'')?.split('\'').next())
        .ok_or("no 'descr' in the header")?
        .to_string();
    if !field("fortran_order").is_some_and(|v| v.starts_with("False")) {
        return Err("fortran_order must be False".into());
    }
    let shape = field("shape")
        .and_then(|v| v.strip_prefix('(')?.split(')').next())
        .ok_or("no 'shape' in the header")?;
    let dims: Vec<&str> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let [len] = dims.as_slice() else {
        return Err(format!("shape ({shape}) is not one-dimensional"));
    };
    let len: u64 = len
        .parse()
        .map_err(|_| format!("shape ({shape}) is not a count"))?;
    let data = &bytes[start + hlen..];
    Ok(NpyArray {
        dtype,
        len,
        blake3: blake3::hash(data).to_hex()[..32].to_string(),
    })
}

/// The stage's `.npy` files against the reference's digests (`reference["arrays"]`).
fn compare_arrays(c: &mut Checks, dir: &Path, reference: &Value) {
    let Some(files) = reference["arrays"]["files"].as_object() else {
        return;
    };
    let sub = dir.join(reference["arrays"]["dir"].as_str().unwrap_or("npy"));
    let mut wrong = vec![];
    for (name, want) in files {
        let Ok(want) = serde_json::from_value::<NpyArray>(want.clone()) else {
            continue;
        };
        // Twice the reference's size, with room for a header: a right file is never larger.
        let cap = 2 * want.len * 8 + 4096;
        match read_npy(&sub, name, cap) {
            Err(e) => wrong.push(format!("{name}: {e}")),
            Ok(a) if a.dtype != want.dtype => wrong.push(format!(
                "{name}: dtype '{}', not the branch's type",
                a.dtype
            )),
            Ok(a) if a.len != want.len => wrong.push(format!(
                "{name}: shape ({},) is not the right length",
                a.len
            )),
            Ok(a) if a.blake3 != want.blake3 => wrong.push(format!(
                "{name}: the values differ (dtype and length are right)"
            )),
            Ok(_) => {}
        }
    }
    c.add(
        "arrays",
        wrong.is_empty(),
        format!("differences: {wrong:?}"),
        format!("the .npy files: {}", wrong.join("; ")),
    );
}

/// The branches the convert task asks for: every kind of column the 2020 layout has (jagged
/// float, int and bool vectors; float, int and unsigned scalars; MC information).
const CONVERT_BRANCHES: [&str; 8] = [
    "runNumber",
    "eventNumber",
    "trigP",
    "photon_n",
    "photon_pt",
    "photon_isTightID",
    "mcWeight",
    "scaleFactor_PHOTON",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_files_are_read_only_as_plain_files_and_never_through_links() {
        let d = tempfile::tempdir().unwrap();
        let npy = d.path().join("npy");
        std::fs::create_dir(&npy).unwrap();
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n";
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(npy.join("a.npy"), &bytes).unwrap();
        let a = read_npy(&npy, "a.npy", 1 << 20).unwrap();
        assert_eq!((a.dtype.as_str(), a.len), ("<f4", 2));
        // A link to a file, a linked directory, a path with a separator, a file too large.
        std::os::unix::fs::symlink(npy.join("a.npy"), npy.join("b.npy")).unwrap();
        assert_eq!(
            read_npy(&npy, "b.npy", 1 << 20).unwrap_err(),
            "a link, not a file"
        );
        let linked = d.path().join("linked");
        std::os::unix::fs::symlink(&npy, &linked).unwrap();
        assert_eq!(
            read_npy(&linked, "a.npy", 1 << 20).unwrap_err(),
            "a link, not a file"
        );
        assert!(read_npy(&npy, "../npy/a.npy", 1 << 20).is_err());
        assert!(read_npy(&npy, "a.npy", 16)
            .unwrap_err()
            .contains("larger than"));
        assert_eq!(read_npy(&npy, "c.npy", 1 << 20).unwrap_err(), "not written");
    }
}

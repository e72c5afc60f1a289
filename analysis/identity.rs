//! The implementation identities of the analysis's rules, shared by `build.rs` (which embeds
//! them) and `tests/tests/code_identity.rs` (which checks them): std and blake3 only.
//!
//! A rule's identity is a BLAKE3 over every source file whose code its job may run: the whole
//! analysis crate, the stage contract and the ROOT reader, except the files that only other
//! steps run ([`ONLY`]). A file is private to some steps only when nothing else names it,
//! which `tests/tests/code_identity.rs` checks; finer tracking (module by module) was not worth it, since
//! the crate's configuration and reference-stage types reach nearly every module. So editing a
//! plot reruns the plots only, editing a step's rule module reruns that step (and what reads
//! its output, when the bytes change), and editing anything else reruns every step: never a
//! stale result after a code change. Dependencies' versions (Cargo.lock) are not covered.

use std::path::{Path, PathBuf};

/// The steps, one per module of `src/rules/`: each rule's identity is its step's.
pub const STEPS: &[&str] = &[
    "inspect",
    "convert",
    "select",
    "histogram",
    "fit",
    "categorize",
    "results",
    "plots",
];

/// What the identities cover, relative to the analysis crate's folder.
pub const ROOTS: &[&str] = &["src", "assets", "../stage-api/src", "../vendor/oxyroot/src"];

/// Files (or folders) that only some steps run; every other step's identity leaves them out.
/// Besides these, `src/rules/STEP.rs` is its step's own.
pub const ONLY: &[(&str, &[&str])] = &[("src/plot.rs", &["plots"]), ("assets", &["plots"])];

/// Every source file under [`ROOTS`], relative to `dir` (`/`-separated), sorted.
pub fn sources(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, out: &mut Vec<PathBuf>) {
        if root.is_dir() {
            for e in std::fs::read_dir(root).expect("a source folder").flatten() {
                walk(&e.path(), out);
            }
        } else if root.is_file() {
            out.push(root.to_path_buf());
        }
    }
    let mut files = Vec::new();
    for r in ROOTS {
        walk(&dir.join(r), &mut files);
    }
    let mut rel: Vec<String> = files
        .iter()
        .map(|f| {
            let r = f.strip_prefix(dir).expect("under the crate");
            r.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    rel.sort();
    rel
}

/// The steps whose code may run `file` (a path from [`sources`]).
pub fn steps_of(file: &str) -> Vec<&'static str> {
    for (only, steps) in ONLY {
        if file == *only || file.starts_with(&format!("{only}/")) {
            return steps.to_vec();
        }
    }
    if let Some(step) = file
        .strip_prefix("src/rules/")
        .and_then(|f| f.strip_suffix(".rs"))
        .and_then(|f| STEPS.iter().find(|s| **s == f))
    {
        return vec![step];
    }
    STEPS.to_vec()
}

/// Each step's identity (`STEP-HASH16`), over the files `read` gives for [`sources`] of `dir`.
pub fn identities(dir: &Path, read: &dyn Fn(&str) -> Vec<u8>) -> Vec<(&'static str, String)> {
    let files = sources(dir);
    STEPS
        .iter()
        .map(|step| {
            let mut h = blake3::Hasher::new();
            for f in files.iter().filter(|f| steps_of(f).contains(step)) {
                h.update(f.as_bytes());
                h.update(&(f.len() as u64).to_le_bytes());
                let bytes = read(f);
                h.update(&(bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            (*step, format!("{step}-{}", &h.finalize().to_hex()[..16]))
        })
        .collect()
}

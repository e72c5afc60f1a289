//! Implementation identities for the workflow's rules: a BLAKE3 of the source files each
//! rule's code runs (its module, the reader where it reads ROOT files, the stage-api types it
//! writes), so a rule reruns when its own code changes and not on every commit. Exported as
//! `HGG_IMPL_<RULE>` environment variables for `workflow::identity`.

use std::path::{Path, PathBuf};

fn files(root: &Path, out: &mut Vec<PathBuf>) {
    if root.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
            .expect("a source folder")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            files(&e, out);
        }
    } else if root.is_file() {
        out.push(root.to_path_buf());
    }
}

fn main() {
    let reader: &[&str] = &["src/rootio", "src/events.rs", "../vendor/oxyroot/src"];
    let api = "../stage-api/src";
    let rules: &[(&str, &[&str])] = &[
        ("INSPECT", &[reader, &["src/workflow.rs"]].concat()),
        (
            "CONVERT",
            &[reader, &["src/convert.rs", "../stage-api/src/files.rs"]].concat(),
        ),
        (
            "SELECT",
            &[reader, &["src/select.rs", "src/stage.rs", api]].concat(),
        ),
        ("HISTOGRAM", &["src/histogram.rs", "src/stage.rs", api]),
        ("MERGE", &["src/histogram.rs", "src/workflow.rs", api]),
        ("FIT", &["src/fit", "src/stage.rs", api]),
        ("MEASURE", &["src/measure.rs", "src/stage.rs", api]),
        ("CLASSIFY", &["src/classify.rs", api]),
        (
            "CATEGORIZE",
            &[
                "src/categorize.rs",
                "src/classify.rs",
                "src/histogram.rs",
                api,
            ],
        ),
        (
            "FIT_CATEGORIES",
            &["src/fit", "src/categorize.rs", "src/histogram.rs", api],
        ),
        ("RESULTS", &["src/workflow.rs", api]),
        ("PLOTS", &["src/plot.rs", "assets"]),
    ];
    for (rule, roots) in rules {
        let mut list = Vec::new();
        for r in *roots {
            println!("cargo:rerun-if-changed={r}");
            files(Path::new(r), &mut list);
        }
        let mut h = blake3::Hasher::new();
        for f in &list {
            h.update(f.to_string_lossy().as_bytes());
            h.update(&std::fs::read(f).expect("a source file"));
        }
        println!(
            "cargo:rustc-env=HGG_IMPL_{rule}={}-{}",
            rule.to_lowercase(),
            &h.finalize().to_hex()[..16]
        );
    }
}

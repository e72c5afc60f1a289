//! The `xtask` binary as a user runs it: output, exit codes, and no panic messages on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn inspect_shows_the_2025_tree_and_its_types() {
    let f = fixture("data_2025_zstd.GamGam.root");
    let o = xtask(&["inspect", f.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("tree 'analysis': 20000 entries, 16 branches"),
        "{out}"
    );
    assert!(out.contains("ROOT::VecOps::RVec<float>"), "{out}");
    assert!(
        out.contains("ULong64_t") || out.contains("uint64_t"),
        "{out}"
    );
    assert!(out.contains("zstd-5"), "{out}");

    let o = xtask(&["inspect", "--json", f.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["trees"][0]["name"], "analysis");
    assert_eq!(v[0]["trees"][0]["entries"], 20000);
}

#[test]
fn inspect_of_a_truncated_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("data_2025_zstd.GamGam.root")).unwrap();
    let cut = dir.path().join("cut.root");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = xtask(&["inspect", cut.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cut.root"), "names the file: {err}");
    assert!(!err.contains("panicked"), "no panic: {err}");

    let o = xtask(&["inspect", "/nonexistent/file.root"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("/nonexistent/file.root") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn every_command_has_help() {
    for cmd in ["inspect", "generate", "fetch-data", "bench-read"] {
        let o = xtask(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help");
        assert!(text(&o).0.contains("Usage"), "{cmd}");
    }
}

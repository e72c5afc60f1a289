//! Shared helpers of the workspace integration tests in `tests/tests/`: where the fixtures are
//! and what ROOT computed on them.

use std::path::PathBuf;

/// `tests/fixtures/`: SYNTHETIC ntuples written by ROOT 6.40 (see its README).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Path of one fixture file.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// `reference.json`: what ROOT computed on every fixture, keyed by file name.
pub fn reference() -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(fixtures_dir().join("reference.json"))
        .expect("tests/fixtures/reference.json is part of the repository");
    serde_json::from_str(&text).expect("reference.json is valid JSON")
}

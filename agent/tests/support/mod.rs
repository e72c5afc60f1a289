//! Shared by the agent's integration tests: compiling stage code once the toolchain is warm.

#![allow(dead_code)]

use agent::stage_crate::{StageKind, Toolchain};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The stage toolchain, warmed up once per test binary (the first time on a machine this
/// compiles `analysis` into `target/agent-stages`).
pub fn toolchain() -> &'static Toolchain {
    static T: OnceLock<Toolchain> = OnceLock::new();
    T.get_or_init(|| {
        let t = Toolchain::default();
        t.warm_up().expect("stage toolchain warms up");
        t
    })
}

/// Compiles `code` as a stage of `kind`; panics with the diagnostics if it does not build.
/// Returns the crate (keep it alive) and the binary.
pub fn build(kind: StageKind, code: &str) -> (agent::stage_crate::StageCrate, PathBuf) {
    let c = toolchain().new_crate(kind).unwrap();
    c.write_code(code).unwrap();
    let b = c.build();
    assert!(
        b.ok,
        "{}",
        agent::stage_crate::condense(&b, c.path(), 10_000)
    );
    let bin = b.binary.clone().unwrap();
    (c, bin)
}

/// A histogram-stage source whose body is `body` (which must end by returning a Result).
pub fn histogram_stage(body: &str) -> String {
    format!(
        "use analysis::stage::{{MakeHistogram, Diphotons, Binning, Histogram, StageError}};\n\
         pub struct Stage;\n\
         impl MakeHistogram for Stage {{\n\
             fn histogram(&self, _d: &Diphotons, b: &Binning) -> Result<Histogram, StageError> {{\n\
                 {body}\n\
             }}\n\
         }}\n"
    )
}

/// A small valid histogram input document.
pub fn histogram_input() -> String {
    r#"{"diphotons": {"m_yy": [125.0, 110.5], "weight": [1.0, 2.0]},
        "binning": {"bins": 55, "lo": 105.0, "hi": 160.0}}"#
        .to_string()
}

/// A stage body whose every copy starts more copies of itself (same binary, same arguments).
pub const FORK_BOMB: &str = "let me = std::env::current_exe().unwrap();\n\
    let args: Vec<String> = std::env::args().skip(1).collect();\n\
    let mut kids = Vec::new();\n\
    loop { kids.push(std::process::Command::new(&me).args(&args).spawn().unwrap()); }";

/// Processes still running a binary from a sandbox run directory, after a moment's grace.
pub fn stage_processes_left() -> usize {
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path().join("exe")).ok())
        .filter(|exe| exe.to_string_lossy().contains("hep-stage-run-"))
        .count()
}

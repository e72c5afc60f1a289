//! Shared by the agent's integration tests: compiling stage code once the toolchain is warm.

#![allow(dead_code)]

use agent::stage_crate::Toolchain;
use stage_api::StageKind;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The stage toolchain, prepared once per test binary (the first time on a machine this
/// compiles `stage-api` and serde into `target/agent-stages/stage-api`).
pub fn toolchain() -> &'static Toolchain {
    static T: OnceLock<Toolchain> = OnceLock::new();
    T.get_or_init(|| {
        let t = Toolchain::default();
        t.prepare().expect("the stage toolchain is prepared");
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
        "use stage_api::{{MakeHistogram, Diphotons, Binning, Histogram, StageError}};\n\
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

/// Processes still alive under any run's uid (the per-run uid range), after a grace. Zombies
/// (dead, waiting for this machine's init to reap them) do not count.
pub fn run_uid_processes_left() -> Vec<String> {
    processes_left(0x5E00_0000..0x5E00_0000 + (1 << 24))
}

/// Processes still alive (not zombies) under a uid of `uids`, after a grace.
pub fn processes_left(uids: std::ops::Range<u32>) -> Vec<String> {
    let scan = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
            .filter(|s| {
                let field = |k: &str| s.lines().find_map(|l| l.strip_prefix(k)).unwrap_or("");
                let uid = field("Uid:")
                    .split_whitespace()
                    .next()
                    .and_then(|u| u.parse::<u32>().ok());
                uid.is_some_and(|u| uids.contains(&u))
                    && !field("State:").trim_start().starts_with('Z')
            })
            .map(|s| s.lines().next().unwrap_or("").to_string())
            .collect()
    };
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if scan().is_empty() {
            break;
        }
    }
    scan()
}

/// Runs a histogram stage with `body` in the sandbox: the report and the run directory.
pub fn run_stage(
    body: &str,
    limits: &sandbox::Limits,
) -> (agent::outcome::RunReport, sandbox::RunDir) {
    use sandbox::{self, RunDir};
    let (_krate, bin) = build(StageKind::Histogram, &histogram_stage(body));
    let dir = RunDir::new(
        &bin,
        &[("input.json", histogram_input().as_bytes())],
        limits,
    )
    .unwrap();
    let out = dir.out().join("output.json");
    let report = agent::outcome::run(&dir, &[dir.input("input.json"), out], limits);
    (report, dir)
}

/// This machine lacks `feature` (e.g. `cgroups`, `root`, `cpu_quota`), so a test cannot check
/// what it is about. It fails, saying so, unless the run declares the lack explicitly in
/// `HEP_TEST_LACKS` (a comma-separated list): a missing feature never passes for a checked one.
pub fn lacks(feature: &str, what_is_unchecked: &str) {
    let declared = std::env::var("HEP_TEST_LACKS").unwrap_or_default();
    assert!(
        declared.split(',').any(|f| f.trim() == feature),
        "this machine lacks {feature}, so {what_is_unchecked} is not checked here; declare it \
         with HEP_TEST_LACKS={feature} to run the other tests anyway"
    );
    eprintln!("declared lacking {feature}: {what_is_unchecked} NOT CHECKED");
}

/// `code` as the answer to trial `trial` of `task` with `variant`, through the path a model's
/// answer takes ([`agent::check::Checker`]: the screen, when `screen`, the confined build, the
/// sandboxed runs on the visible and held-out inputs, validation): the verdict and the
/// attempt's record.
pub fn check(
    task: &agent::task::Task,
    variant: &agent::task::Variant,
    trial: u32,
    code: &str,
    screen: bool,
) -> (agent::check::Verdict, agent::trajectory::Record) {
    let prepared = task
        .prepare(
            &toolchain().repo,
            true,
            variant,
            task.held_out_seed(b"tests", trial, variant),
        )
        .unwrap();
    let mut krate = toolchain().new_crate(task.stage).unwrap();
    krate.allow_crates(&task.crates).unwrap();
    let limits = sandbox::Limits::default();
    let checker = agent::check::Checker {
        task,
        krate: &krate,
        prepared: &prepared,
        limits: &limits,
        diagnostics_budget: 20_000,
        screen,
        cores: None,
    };
    let call = agent::trajectory::Call {
        prompt: String::new(),
        answer: String::new(),
        usage: None,
        latency_s: 0.0,
        requests: 1,
        cost_usd: None,
        abandoned: 0,
    };
    let mut a = agent::check::Attempt::new(1, call);
    let verdict = checker.check(Some(code.to_string()), &mut a, &mut |_| {});
    (verdict, a.take().expect("one record"))
}

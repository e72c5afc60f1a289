//! `cargo xtask agent` as a user runs it, against a scripted server on 127.0.0.1: a task is
//! solved and recorded, the recording replays with no server, and a user's own instruction is
//! run but reported as not validated.

use llm::mock::{MockReply, MockServer};
use std::process::{Command, Output};

const OK: &str = include_str!("../../agent/tests/answers/select_ok.rs");

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("xtask runs")
}

/// `cargo xtask agent --task select` against the server at `url`, writing into `out`, with
/// `extra`.
fn agent_select(url: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "agent",
        "--task",
        "select",
        "--model",
        "mock",
        "--endpoint",
        url,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    xtask(&args)
}

fn code_answer() -> MockReply {
    MockReply::answer(format!("```rust\n{OK}```"))
}

#[test]
fn agent_solves_records_and_replays_a_task() {
    // `--out` under a directory only its owner may enter: the sandbox never needs it.
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let (cassette, a, b) = (
        dir.path().join("c.jsonl"),
        dir.path().join("a"),
        dir.path().join("b"),
    );
    let server = MockServer::start(vec![MockReply::answer("plan"), code_answer()]).unwrap();
    let url = server.url();
    let o = agent_select(&server.url(), &a, &["--record", cassette.to_str().unwrap()]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(out.contains("API calls 2"), "{out}");
    assert!(
        err.contains("coder: attempt 1/5") && err.contains("validation passed"),
        "{err}"
    );
    drop(server);
    for f in [
        "trajectory.jsonl",
        "attempts/1.rs",
        "attempts/1.txt",
        "stage.rs",
        "timings.json",
        "outcome.json",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }

    let o = agent_select(&url, &b, &["--replay", cassette.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |d: &std::path::Path| std::fs::read_to_string(d.join("trajectory.jsonl")).unwrap();
    assert_eq!(read(&a), read(&b));
}

#[test]
fn a_users_own_instruction_runs_but_is_not_validated() {
    let server = MockServer::start(vec![MockReply::answer("plan"), code_answer()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = agent_select(
        &server.url(),
        dir.path(),
        &[
            "--instruction",
            "Select diphoton events with both photons above 30 GeV.",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("NOT VALIDATED"), "{out}");
    let plan_request = server.received()[0].body.to_string();
    assert!(
        plan_request.contains("above 30 GeV"),
        "the user's instruction reaches the supervisor"
    );
}

/// `cargo xtask agent` has a spending cap: once the models have spent the budget, the next call
/// is refused before it is made and the task ends as a spent budget.
#[test]
fn agent_stops_when_its_budget_is_spent() {
    // Each answer reports 150 tokens: the plan spends the budget of 100, so the coder's first
    // call is refused and only one request reaches the server.
    let server = MockServer::start(vec![MockReply::answer("plan"), code_answer()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = agent_select(&server.url(), dir.path(), &["--budget-tokens", "100"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(!o.status.success(), "{out}\n{err}");
    assert!(out.contains("the budget was spent"), "{out}\n{err}");
    assert!(
        out.contains("150 tokens of a budget of 100"),
        "{out}\n{err}"
    );
    assert_eq!(server.received().len(), 1);
    let outcome = std::fs::read_to_string(dir.path().join("outcome.json")).unwrap();
    assert!(outcome.contains("\"budget\""), "{outcome}");
}

#[test]
fn agent_errors_are_clear() {
    let o = xtask(&["agent", "--task", "nonsense", "--model", "m"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("task 'nonsense': not one of inspect, convert, preprocess, select"),
        "{err}"
    );
    // A remote endpoint without its key variable: named, before any request.
    let o = xtask(&[
        "agent",
        "--task",
        "select",
        "--model",
        "m",
        "--endpoint",
        "https://api.example.invalid/v1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let o = xtask(&["agent", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--instruction"));
}

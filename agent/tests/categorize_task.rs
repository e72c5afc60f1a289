//! The categorize task: a stage written against the contract (a greedy search, not the
//! reference's exact optimum, yet within the 98 % of its Z that the task asks) passes
//! validation; plausible wrong ones fail with a useful hint computed
//! by the harness from the boundaries: bin indices returned instead of score values, and a
//! single category.

mod support;

use agent::stage_crate::Toolchain;
use agent::stages::validate;
use agent::task::Task;
use sandbox::{self, Limits, RunDir};
use stage_api::StageKind;

const OK: &str = include_str!("answers/categorize_ok.rs");

fn run(code: &str, input: &str) -> String {
    let (_krate, bin) = support::build(StageKind::Categorize, code);
    let limits = Limits::default();
    let dir = RunDir::new(&bin, &[("input.json", input.as_bytes())], &limits).unwrap();
    let out = dir.out().join("output.json");
    let r = agent::outcome::run(&dir, &[dir.input("input.json"), out.clone()], &limits);
    assert_eq!(r.class, agent::outcome::RunClass::Ok, "{}", r.stderr_tail);
    sandbox::read_output(&out, 1 << 20).unwrap()
}

#[test]
fn a_correct_categorization_passes_and_equal_width_categories_fail_with_a_hint() {
    let task = Task::load("categorize").unwrap();
    let p = task
        .prepare(&Toolchain::default().repo, true, &Default::default(), 0)
        .unwrap();
    let reference = p.reference.clone().unwrap();

    let v = validate(
        task.stage,
        &run(OK, &p.input),
        None,
        Some(&reference),
        &task.tolerances,
    );
    assert!(v.passed && v.validated, "{}", v.details());

    // Bin indices instead of score values.
    let wrong = OK.replace("e as f64 / n as f64", "e as f64");
    assert_ne!(wrong, OK);
    let v = validate(
        task.stage,
        &run(&wrong, &p.input),
        None,
        Some(&reference),
        &task.tolerances,
    );
    assert!(!v.passed);
    let hints = v.hints();
    assert!(hints.contains("strictly inside (0, 1)"), "{hints}");

    // No boundaries at all: valid, but short of the reachable Z, and the hint says how far,
    // coarsely (a bucket of the shortfall, never a number to work the reference out from).
    let single = OK.replace(
        "while edges.len() - 1 < input.max_categories {",
        "while false {",
    );
    assert_ne!(single, OK);
    let v = validate(
        task.stage,
        &run(&single, &p.input),
        None,
        Some(&reference),
        &task.tolerances,
    );
    assert!(!v.passed, "{}", v.details());
    let hints = v.hints();
    assert!(
        hints.contains("fall short of the Z that is reachable")
            && hints.contains("× the tolerance")
            && !hints.contains("reference"),
        "{hints}"
    );
    // The hint never quotes the reference's boundaries.
    let first = reference["boundaries"][0].to_string();
    assert!(!hints.contains(&first), "{hints}");
}

//! The paper's steps 1–4 as agent tasks (inspect, convert, preprocess, separate): for each, a
//! stage written against the contract (not the reference's code) passes validation, and a
//! plausible wrong one fails with a hint that says what is wrong. Every stage goes the way a
//! model's answer goes ([`Checker`]): the code screen with the task's allowances, the confined
//! build with the task's crates, the sandboxed run with the task's input files, validation
//! by the harness (for convert, of the `.npy` files the stage wrote).

mod support;

use agent::check::Verdict;
use agent::task::Task;

/// The verdict on `code` for the built-in task `name`.
fn attempt(name: &str, code: &str) -> Verdict {
    attempt_screened(name, code, true)
}

/// The same, with the code screen on or off (off: what the OS and the harness hold alone).
fn attempt_screened(name: &str, code: &str, screen: bool) -> Verdict {
    let task = Task::load(name).unwrap();
    support::check(&task, &Default::default(), 0, code, screen).0
}

fn passes(name: &str, code: &str) {
    match attempt(name, code) {
        Verdict::Passed(v, _) => {
            assert!(v.validated, "{name}: not validated");
            for c in &v.checks {
                eprintln!("{name} passed {}: {}", c.name, c.detail);
            }
        }
        other => panic!("{name}: {other:?}"),
    }
}

/// The report the model would get (validation hints, or the run's failure).
fn fails(name: &str, code: &str) -> String {
    match attempt(name, code) {
        Verdict::Failed { report, .. } => {
            eprintln!("{name} failed:\n{report}");
            report
        }
        other => panic!("{name}: expected a failed validation, got {other:?}"),
    }
}

const INSPECT: &str = include_str!("answers/inspect_ok.rs");
const CONVERT: &str = include_str!("answers/convert_ok.rs");
const SEPARATE: &str = include_str!("answers/separate_ok.rs");
const SELECT: &str = include_str!("answers/select_ok.rs");

#[test]
fn inspect_a_correct_summary_passes_and_a_wrong_compression_name_fails() {
    passes("inspect", INSPECT);
    // The setting printed as a number ("zlib-101" for 101): a plausible misreading.
    let wrong = INSPECT.replace("format!(\"{algo}-{}\", s % 100)", "format!(\"{algo}-{s}\")");
    assert_ne!(wrong, INSPECT);
    let report = fails("inspect", &wrong);
    assert!(
        report.contains("`compression` of the file is not right"),
        "{report}"
    );
    assert!(report.contains("zlib-101"), "{report}");
    assert!(
        report.contains("Checks that passed:") && report.contains("trees"),
        "{report}"
    );
}

#[test]
fn inspect_needs_its_allowances_the_screen_and_the_build_refuse_them_elsewhere() {
    // The same code as a histogram stage's: `std::fs` is refused by the screen, and without
    // the task's crate the compiler cannot find `oxyroot`.
    assert!(!agent::policy::check(INSPECT).is_empty());
    let mut krate = support::toolchain()
        .new_crate(stage_api::StageKind::Inspect)
        .unwrap();
    krate.write_code(INSPECT).unwrap();
    let b = krate.build();
    assert!(!b.ok);
    assert!(
        b.errors().any(|d| d.message.contains("oxyroot")),
        "{:?}",
        b.diagnostics
    );
    assert!(krate.allow_crates(&["tokio".to_string()]).is_err());
}

#[test]
fn convert_correct_arrays_pass_and_offsets_without_the_leading_zero_fail() {
    passes("convert", CONVERT);
    // Offsets as entry ends only (n values instead of n + 1): what the manifest says is
    // unchanged, the files are not.
    let wrong = CONVERT.replace(
        "let mut offsets = vec![0i64];",
        "let mut offsets: Vec<i64> = Vec::new();",
    );
    assert_ne!(wrong, CONVERT);
    let report = fails("convert", &wrong);
    assert!(report.contains("photon_pt.offsets.npy: shape"), "{report}");
    assert!(report.contains("not the right length"), "{report}");
}

#[test]
fn a_convert_stage_cannot_plant_links_for_the_harness_to_follow() {
    // A hostile convert stage (the screen off: `std::os` would stop it there) writes one
    // column as a link to a host file, or makes its output directory a link to /etc: the
    // sandbox refuses to create the link (the harness, which reads the stage's files after
    // the run, would also refuse to follow one: `validate::tests`).
    let column = CONVERT.replace(
        "    let mut header = format!(",
        "    if path.ends_with(\"photon_pt.values.npy\") {\n\
             return std::os::unix::fs::symlink(\"/etc/hostname\", path).map_err(|e| e.to_string().into());\n\
         }\n\
         let mut header = format!(",
    );
    let directory = CONVERT.replace(
        "        std::fs::create_dir_all(&input.out_dir).map_err(|e| e.to_string())?;",
        "        std::os::unix::fs::symlink(\"/etc\", &input.out_dir).map_err(|e| e.to_string())?;",
    );
    for attack in [column, directory] {
        assert_ne!(attack, CONVERT);
        match attempt_screened("convert", &attack, false) {
            Verdict::Failed { report, .. } => {
                assert!(report.contains("Permission denied"), "{report}")
            }
            other => panic!("a planted link must fail: {other:?}"),
        }
    }
}

#[test]
fn preprocess_a_correct_selection_passes_and_unweighted_mc_fails() {
    passes("preprocess", SELECT);
    let wrong = SELECT.replace(
        " * mc.xsection_pb[i] as f64 * cuts.lumi_pb / mc.sum_weights[i] as f64",
        "",
    );
    assert_ne!(wrong, SELECT, "the weight formula moved in select_ok.rs");
    let report = fails("preprocess", &wrong);
    assert!(report.contains("weight"), "{report}");
}

#[test]
fn separate_a_trained_classifier_passes_and_reversed_scores_fail() {
    passes("separate", SEPARATE);
    let wrong = SEPARATE.replace(
        "let score = model.predict(&Matrix::new(&test, input.test.len(), cols), false);",
        "let score: Vec<f64> = model.predict(&Matrix::new(&test, input.test.len(), cols), false).iter().map(|z| -z).collect();",
    );
    assert_ne!(wrong, SEPARATE);
    let report = fails("separate", &wrong);
    assert!(
        report.contains("below 0.5: signal must score high"),
        "{report}"
    );
}

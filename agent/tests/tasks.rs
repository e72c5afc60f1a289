//! Every built-in task prepares its input and reference from the fixtures; the reference
//! validates against itself; a perturbed output fails with a hint that quotes no reference
//! number.

use agent::stage_crate::{StageKind, Toolchain};
use agent::task::{Task, BUILT_IN};
use agent::validate::validate;
use serde_json::Value;

fn perturb(kind: StageKind, v: &mut Value) -> String {
    match kind {
        StageKind::Select => {
            let x = &mut v["diphotons"]["m_yy"][0];
            *x = (x.as_f64().unwrap() * 1.001).into();
            "m_yy".into()
        }
        StageKind::Histogram => {
            let x = &mut v["sumw"][20];
            *x = (x.as_f64().unwrap() + 1.0).into();
            "sumw".into()
        }
        StageKind::Fit => {
            let x = &mut v["params"][2]["value"];
            *x = (x.as_f64().unwrap() + 0.1).into();
            "mean value".into()
        }
    }
}

#[test]
fn built_in_tasks_prepare_and_validate() {
    let repo = Toolchain::default().repo;
    for (name, _) in BUILT_IN {
        let task = Task::load(name).unwrap();
        assert_eq!(task.name, name);
        let p = task.prepare(&repo, true).unwrap();
        let reference = p.reference.clone().unwrap();
        let v = validate(
            task.stage,
            &reference.to_string(),
            Some(&reference),
            &task.tolerances,
        );
        assert!(v.passed && v.validated, "{name}: {:?}", v.details());

        let mut bad = reference.clone();
        let check = perturb(task.stage, &mut bad);
        let v = validate(
            task.stage,
            &bad.to_string(),
            Some(&reference),
            &task.tolerances,
        );
        assert!(!v.passed, "{name}: perturbation not caught");
        let failed = v.checks.iter().find(|c| !c.passed).unwrap();
        assert_eq!(failed.name, check, "{name}");
        // The hint may quote the stage's own number, never the reference's.
        let reference_number = match task.stage {
            StageKind::Select => reference["diphotons"]["m_yy"][0].to_string(),
            StageKind::Histogram => reference["sumw"][20].to_string(),
            StageKind::Fit => reference["params"][2]["value"].to_string(),
        };
        assert!(
            !v.hints().contains(&reference_number),
            "{name}: {}",
            v.hints()
        );

        // Without a reference only sanity checks run, and it says so.
        let v = validate(task.stage, &reference.to_string(), None, &task.tolerances);
        assert!(v.passed && !v.validated);
        let v = validate(task.stage, "{\"not\": 1}", None, &task.tolerances);
        assert!(!v.passed && v.checks[0].name == "output parses");
    }
}

#[test]
fn bad_task_files_are_clear_errors() {
    let e = Task::load("no-such-task").unwrap_err();
    assert!(e.contains("not one of select, histogram, fit"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.toml");
    std::fs::write(&f, "name = \"x\"\nstage = \"select\"\n").unwrap();
    let e = Task::load(f.to_str().unwrap()).unwrap_err();
    assert!(e.contains("missing field"), "{e}");
    std::fs::write(
        &f,
        Task::load("select")
            .map(|t| toml::to_string(&t).unwrap())
            .unwrap()
            .replace("mc_343981", "missing"),
    )
    .unwrap();
    let t = Task::load(f.to_str().unwrap()).unwrap();
    let e = t.prepare(&Toolchain::default().repo, true).unwrap_err();
    assert!(e.contains("missing"), "{e}");
}

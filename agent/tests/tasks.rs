//! Every built-in task prepares its input and reference from the fixtures; the reference
//! validates against itself; a perturbed output fails with a hint that quotes no reference
//! number.

use agent::stage_crate::Toolchain;
use agent::stages::validate;
use agent::task::{Task, BUILT_IN};
use serde_json::Value;
use stage_api::StageKind;

fn perturb(kind: StageKind, v: &mut Value) -> String {
    match kind {
        StageKind::Inspect => {
            let x = &mut v["trees"][0]["entries"];
            *x = (x.as_u64().unwrap() + 1).into();
            "trees".into()
        }
        StageKind::Convert => {
            v["columns"][0]["dtype"] = "<f8".into();
            "manifest columns".into()
        }
        StageKind::Separate => {
            // Reversed scores: background-like events score high.
            for x in v["score"].as_array_mut().unwrap() {
                *x = (1.0 - x.as_f64().unwrap()).into();
            }
            "separation".into()
        }
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
        StageKind::Categorize => {
            // One category instead of the optimised ones.
            v["boundaries"] = serde_json::json!([]);
            "significance".into()
        }
    }
}

#[test]
fn built_in_tasks_prepare_and_validate() {
    let repo = Toolchain::default().repo;
    for (name, _) in BUILT_IN {
        let task = Task::load(name).unwrap();
        assert_eq!(task.name, name);
        let p = task.prepare(&repo, true, &Default::default(), 0).unwrap();
        let reference = p.reference.clone().unwrap();
        // One held-out case, of other events: another input and another answer (its
        // reference passed its own validation in `prepare`); the seed picks it.
        assert_eq!(p.held_out.len(), 1, "{name}");
        let held_out = &p.held_out[0];
        assert_ne!(held_out.input, p.input, "{name}");
        assert_ne!(held_out.reference.as_ref(), Some(&reference), "{name}");
        let again = task.prepare(&repo, true, &Default::default(), 0).unwrap();
        assert_eq!(
            again.held_out[0].reference, held_out.reference,
            "{name}: not seeded"
        );
        if task.stage == StageKind::Select {
            // The selections' visible input is MC: so is the held-out one (weights checked).
            let doc: Value = serde_json::from_str(&held_out.input).unwrap();
            assert!(
                doc["events"]["mc"].is_object(),
                "{name}: no MC in the held-out input"
            );
        }
        let other = task.prepare(&repo, true, &Default::default(), 1).unwrap();
        assert_ne!(
            other.held_out[0].reference, held_out.reference,
            "{name}: trial"
        );
        let v = validate(
            task.stage,
            &reference.to_string(),
            None,
            Some(&reference),
            &task.tolerances,
        );
        assert!(v.passed && v.validated, "{name}: {:?}", v.details());

        let mut bad = reference.clone();
        let check = perturb(task.stage, &mut bad);
        let v = validate(
            task.stage,
            &bad.to_string(),
            None,
            Some(&reference),
            &task.tolerances,
        );
        assert!(!v.passed, "{name}: perturbation not caught");
        let failed = v.checks.iter().find(|c| !c.passed).unwrap();
        assert_eq!(failed.name, check, "{name}");
        // The hint may quote the stage's own number, never the reference's.
        let reference_number = match task.stage {
            StageKind::Inspect => reference["trees"][0]["entries"].to_string(),
            StageKind::Convert => reference["columns"][0]["dtype"].to_string(),
            StageKind::Separate => reference["score"][0].to_string(),
            StageKind::Select => reference["diphotons"]["m_yy"][0].to_string(),
            StageKind::Histogram => reference["sumw"][20].to_string(),
            StageKind::Fit => reference["params"][2]["value"].to_string(),
            StageKind::Categorize => reference["boundaries"][0].to_string(),
        };
        assert!(
            !v.hints().contains(&reference_number),
            "{name}: {}",
            v.hints()
        );

        // Without a reference only sanity checks run, and it says so.
        let v = validate(
            task.stage,
            &reference.to_string(),
            None,
            None,
            &task.tolerances,
        );
        assert!(v.passed && !v.validated);
        let v = validate(task.stage, "{\"not\": 1}", None, None, &task.tolerances);
        assert!(!v.passed && v.checks[0].name == "output parses");
    }
}

#[test]
fn held_out_seeds_need_the_machines_key() {
    let task = Task::load("fit").unwrap();
    let v = agent::task::Variant::default();
    let seed = |key: &[u8], trial| task.held_out_seed(key, trial, &v);
    assert_eq!(seed(b"one", 0), seed(b"one", 0));
    assert_ne!(seed(b"one", 0), seed(b"two", 0), "the key must matter");
    assert_ne!(seed(b"one", 0), seed(b"one", 1), "the trial must matter");
    let other = agent::task::Variant::from([("binning.bins".to_string(), 44.into())]);
    assert_ne!(seed(b"one", 0), task.held_out_seed(b"one", 0, &other));
    // The key is made once, 32 bytes, readable by its owner only.
    let dir = tempfile::tempdir().unwrap();
    let t = Toolchain::new(Toolchain::default().repo, dir.path().join("agent-stages"));
    let key = t.held_out_key().unwrap();
    assert_eq!((key.len(), t.held_out_key().unwrap()), (32, key.clone()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("agent-stages/held-out.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn bad_task_files_are_clear_errors() {
    let e = Task::load("no-such-task").unwrap_err().to_string();
    assert!(
        e.contains(
            "not one of inspect, convert, preprocess, select, histogram, fit, separate, categorize"
        ),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.toml");
    std::fs::write(&f, "name = \"x\"\nstage = \"select\"\n").unwrap();
    let e = Task::load(f.to_str().unwrap()).unwrap_err().to_string();
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
    let e = t
        .prepare(&Toolchain::default().repo, true, &Default::default(), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn a_variant_reaches_the_input_the_reference_and_the_instruction() {
    let repo = Toolchain::default().repo;
    let task = Task::load("histogram").unwrap();
    // Seeded: the same seed and trial give the same draw.
    assert_eq!(task.draw(7, 1), task.draw(7, 1));
    let drawn: std::collections::BTreeSet<String> = (0..12)
        .map(|t| task.draw(7, t)["binning.bins"].to_string())
        .collect();
    assert!(drawn.len() > 1, "twelve trials all drew {drawn:?}");

    let variant = agent::task::Variant::from([("binning.bins".to_string(), 44.into())]);
    let p = task.prepare(&repo, true, &variant, 0).unwrap();
    let input: Value = serde_json::from_str(&p.input).unwrap();
    assert_eq!(input["binning"]["bins"], 44);
    assert_eq!(p.reference.unwrap()["sumw"].as_array().unwrap().len(), 44);
    assert!(task
        .instruction_for(&variant)
        .contains("This run's parameters: binning.bins = 44."));

    // A key that names no parameter fails when the task loads, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    let (_, text) = agent::task::BUILT_IN
        .iter()
        .find(|(n, _)| *n == "histogram")
        .unwrap();
    let text = text.replace("\"binning.bins\"", "\"binning.nbins\"");
    std::fs::write(&path, text).unwrap();
    let e = Task::load(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(e.contains("binning.nbins"), "{e}");
}

//! A success means the model did the work. A stage that returns the visible input's right
//! answer as constants — what a model that saw this repository or an earlier run would
//! write — passes every check on the visible input and is still rejected in every trial: the
//! held-out input (a dataset generated per trial) needs another answer. The known-good stages
//! are accepted in the same trials. End to end: the agent's loop against a local mock model,
//! for `fit`, `categorize` and one event-level task (`histogram`).

mod support;

use agent::run::{run_task, Options, Outcome};
use agent::task::Task;
use agent::trajectory::{Record, Status, Trajectory};
use llm::http::HttpLlm;
use llm::mock::{MockReply, MockServer};
use llm::LlmConfig;
use serde_json::Value;

const SEED: u64 = 7;
const TRIALS: u32 = 3;

/// A Rust `f64` literal that reads back to `x` exactly.
fn lit(x: &Value) -> String {
    let x = x.as_f64().expect("a finite number");
    format!("{x:?}_f64")
}

fn list(v: &Value) -> String {
    let items: Vec<String> = v.as_array().unwrap().iter().map(lit).collect();
    format!("vec![{}]", items.join(", "))
}

/// The stage that answers `reference` whatever its input.
fn constants(task: &str, r: &Value) -> String {
    match task {
        "histogram" => format!(
            "use stage_api::{{Binning, Diphotons, Histogram, MakeHistogram, StageError}};\n\
             pub struct Stage;\n\
             impl MakeHistogram for Stage {{\n\
                 fn histogram(&self, _d: &Diphotons, b: &Binning) -> Result<Histogram, StageError> {{\n\
                     Ok(Histogram {{ binning: b.clone(), sumw: {}, sumw2: {}, underflow: {}, \
                        overflow: {}, entries: {} }})\n\
                 }}\n\
             }}\n",
            list(&r["sumw"]),
            list(&r["sumw2"]),
            lit(&r["underflow"]),
            lit(&r["overflow"]),
            r["entries"]
        ),
        "fit" => {
            let params: Vec<String> = r["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "FitParam {{ name: {}.to_string(), value: {}, error: {} }}",
                        p["name"],
                        lit(&p["value"]),
                        lit(&p["error"])
                    )
                })
                .collect();
            let rows: Vec<String> = r["covariance"].as_array().unwrap().iter().map(list).collect();
            let status = match r["status"].as_str().unwrap() {
                "ok" | "Ok" => "Ok",
                "at_bound" | "AtBound" => "AtBound",
                _ => "Failed",
            };
            format!(
                "use stage_api::{{Fit, FitModel, FitParam, FitResult, FitStatus, Histogram, StageError}};\n\
                 pub struct Stage;\n\
                 impl Fit for Stage {{\n\
                     fn fit(&self, model: &FitModel, _h: &Histogram) -> Result<FitResult, StageError> {{\n\
                         Ok(FitResult {{ model: model.clone(), params: vec![{}], covariance: vec![{}], \
                            nll: {}, edm: {}, status: FitStatus::{status}, q0: {}, z: {} }})\n\
                     }}\n\
                 }}\n",
                params.join(", "),
                rows.join(", "),
                lit(&r["nll"]),
                lit(&r["edm"]),
                lit(&r["q0"]),
                lit(&r["z"])
            )
        }
        "categorize" => format!(
            "use stage_api::{{Boundaries, Categorize, CategorizeInput, StageError}};\n\
             pub struct Stage;\n\
             impl Categorize for Stage {{\n\
                 fn categorize(&self, _i: &CategorizeInput) -> Result<Boundaries, StageError> {{\n\
                     Ok(Boundaries {{ boundaries: {} }})\n\
                 }}\n\
             }}\n",
            list(&r["boundaries"])
        ),
        _ => unreachable!(),
    }
}

/// Whether a request is the supervisor's (its system prompt).
fn is_supervisor(body: &Value) -> bool {
    body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.contains("You are the supervisor"))
}

/// Trial `trial` of `task` with a model that always answers `code` (and a supervisor that
/// always says retry), at most `cap` attempts.
fn run(task: &Task, trial: u32, code: &str, cap: u32) -> (Outcome, Vec<Record>) {
    let answer = format!("```rust\n{code}```\n");
    let server = MockServer::respond_with(move |body| {
        if is_supervisor(body) {
            MockReply::answer("DECISION: retry\nCompute every number from the input.")
        } else {
            MockReply::answer(answer.clone())
        }
    })
    .unwrap();
    let mut config = LlmConfig::new(server.url(), "mock");
    config.backoff_s = 0.01;
    let mut llm = HttpLlm::new(config).unwrap();
    let opts = Options {
        trial,
        variant: task.draw(SEED, trial),
        max_iterations: cap,
        ..Options::default()
    };
    let mut traj = Trajectory::create(None, vec![]).unwrap();
    let out = run_task(
        task,
        &mut llm,
        None,
        support::toolchain(),
        &opts,
        &mut traj,
        &mut |_| {},
    )
    .unwrap();
    (out, traj.records)
}

/// The visible reference of `task` in `trial`.
fn visible_answer(task: &Task, trial: u32) -> Value {
    let repo = &support::toolchain().repo;
    task.prepare(repo, true, &task.draw(SEED, trial), trial.into())
        .unwrap()
        .reference
        .unwrap()
}

fn memorised_answers_fail_and_the_work_passes(name: &str, good: &str) {
    let task = Task::load(name).unwrap();
    let mut answers = vec![];
    for trial in 0..TRIALS {
        let reference = visible_answer(&task, trial);
        let (out, records) = run(&task, trial, &constants(name, &reference), 2);
        assert_eq!(
            out.status,
            Status::IterationCap,
            "{name} trial {trial}: {out:?}"
        );
        // Every attempt passed on the visible input (the constants are its right answer) and
        // failed on the held-out one.
        let mut attempts = 0;
        for r in &records {
            if let Record::Attempt {
                validation,
                held_out,
                ..
            } = r
            {
                attempts += 1;
                let v = validation.as_ref().expect("validated");
                assert!(v.passed, "{name} trial {trial}: {}", v.details());
                let h = held_out.as_ref().expect("a held-out run");
                assert!(
                    h.validation.as_ref().is_none_or(|v| !v.passed),
                    "{name} trial {trial}: the constants passed the held-out input"
                );
            }
        }
        assert_eq!(attempts, 2, "{name} trial {trial}");
        answers.push(reference);

        let (out, _) = run(&task, trial, good, 2);
        assert_eq!(
            (out.status, out.iterations),
            (Status::Accepted, 1),
            "{name} trial {trial}, the known-good stage: {:?}",
            out.error
        );
    }
    // The visible answer itself moves between trials: a constant learnt in one is wrong in
    // another even before the held-out input.
    answers.dedup();
    assert!(
        answers.len() > 1,
        "{name}: every trial had the same visible answer"
    );
}

#[test]
fn histogram_constants_are_rejected_in_every_trial() {
    memorised_answers_fail_and_the_work_passes(
        "histogram",
        include_str!("answers/histogram_ok.rs"),
    );
}

#[test]
fn categorize_constants_are_rejected_in_every_trial() {
    memorised_answers_fail_and_the_work_passes(
        "categorize",
        include_str!("answers/categorize_ok.rs"),
    );
}

#[test]
fn fit_constants_are_rejected_in_every_trial() {
    memorised_answers_fail_and_the_work_passes("fit", include_str!("answers/fit_ok.rs"));
}

/// The fit's numbers of a reference document, by name (values, then errors, then z).
fn fit_numbers(r: &Value) -> Vec<(String, f64)> {
    let mut out = vec![];
    for p in r["params"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        out.push((format!("{name} value"), p["value"].as_f64().unwrap()));
        out.push((format!("{name} error"), p["error"].as_f64().unwrap()));
    }
    out.push(("significance".into(), r["z"].as_f64().unwrap()));
    out
}

/// The attack that once passed: a model that writes constants and refines them from the
/// hints alone. It starts from what it remembers (another trial's visible answer, as a model
/// that saw an earlier run would), reads each failed check's bucket from the feedback and moves
/// that number: a small step when "less than 10×", a large one otherwise, alternating sides.
/// Within the default cap it is not accepted, and no prompt it receives carries one of this
/// trial's reference numbers.
#[test]
fn a_model_that_refines_constants_from_the_hints_is_not_accepted() {
    use std::sync::Mutex;
    let task = Task::load("fit").unwrap();
    let trial = 0;
    let remembered = visible_answer(&task, 1);
    let reference = visible_answer(&task, trial);
    let state = Mutex::new((remembered.clone(), 0u32));
    let server = MockServer::respond_with(move |body| {
        if is_supervisor(body) {
            return MockReply::answer("DECISION: retry\nMove the numbers the checks name.");
        }
        let mut st = state.lock().unwrap();
        let (doc, round) = &mut *st;
        *round += 1;
        let feedback = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let sign = if *round % 2 == 0 { 1.0 } else { -1.0 };
        for line in feedback.lines() {
            let step = if line.contains("less than 10×") {
                0.001
            } else if line.contains("10× to 100×") || line.contains("100× to 1000×") {
                0.05
            } else if line.contains("more than 1000×") {
                0.5
            } else {
                continue;
            };
            for p in doc["params"].as_array_mut().unwrap() {
                let name = p["name"].as_str().unwrap().to_string();
                for (key, what) in [("value", "fitted"), ("error", "error of")] {
                    if line.contains(&format!("{what} {name} ")) {
                        let x = p[key].as_f64().unwrap();
                        p[key] = (x * (1.0 + sign * step)).into();
                    }
                }
            }
            if line.starts_with("- z ") {
                let z = doc["z"].as_f64().unwrap();
                doc["z"] = (z * (1.0 + sign * step)).into();
                doc["q0"] = (z * z).into();
            }
        }
        MockReply::answer(format!("```rust\n{}```\n", constants("fit", doc)))
    })
    .unwrap();
    let mut config = LlmConfig::new(server.url(), "mock");
    config.backoff_s = 0.01;
    let mut llm = HttpLlm::new(config).unwrap();
    let opts = Options {
        trial,
        variant: task.draw(SEED, trial),
        ..Options::default()
    };
    let mut traj = Trajectory::create(None, vec![]).unwrap();
    let out = run_task(
        &task,
        &mut llm,
        None,
        support::toolchain(),
        &opts,
        &mut traj,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (out.status, out.iterations),
        (Status::IterationCap, Options::default().max_iterations),
        "{out:?}"
    );
    // It did read hints (every attempt after the first had feedback with buckets in it) ...
    // What the harness wrote (not the model's own answers, which hold its constants).
    let prompts: Vec<String> = server
        .received()
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["role"] != "assistant")
        .map(|m| m["content"].to_string())
        .collect();
    assert!(
        prompts.iter().any(|p| p.contains("10×")),
        "no bucketed hint reached the model"
    );
    // ... and no reference number reached it, to the precision a hint once gave.
    for (what, x) in fit_numbers(&reference) {
        let shown = format!("{x:.4}");
        assert!(
            !prompts.iter().any(|p| p.contains(&shown)),
            "{what} = {shown} reached the model"
        );
    }
}

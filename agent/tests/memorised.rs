//! A success means the model did the work. A stage that returns the visible input's right
//! answer as constants — what a model that saw this repository or an earlier run would
//! write — passes every check on the visible input and is still rejected in every trial: the
//! held-out input (a dataset generated per trial) needs another answer. The known-good stages
//! are accepted in the same trials. End to end: the agent's loop against a local mock model,
//! for `fit`, `categorize` and one event-level task (`histogram`).

mod support;

use agent::llm::http::HttpLlm;
use agent::llm::LlmConfig;
use agent::mock::{MockReply, MockServer};
use agent::run::{run_task, Options, Outcome};
use agent::task::Task;
use agent::trajectory::{Record, Status, Trajectory};
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
    let mut config = LlmConfig::new(&server.url(), "mock");
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
    task.prepare(repo, true, &task.draw(SEED, trial), trial)
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

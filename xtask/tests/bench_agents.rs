//! `cargo xtask bench-agents` end to end against a local mock server playing three models
//! (answers decided by each request's content, so the order of concurrent requests does not
//! matter; 429s and 503s thrown in): every number of the report's deterministic part against
//! values worked out by hand, re-scoring byte for byte, replay from cassettes, and a SIGKILL
//! mid-run followed by --resume.

use llm::mock::{MockReply, MockServer};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SELECT_OK: &str = include_str!("../../agent/tests/answers/select_ok.rs");
const HISTOGRAM_OK: &str = include_str!("../../agent/tests/answers/histogram_ok.rs");

fn edit(code: &str, from: &str, to: &str) -> String {
    assert!(code.contains(from), "{from}");
    code.replacen(from, to, 1)
}

fn fenced(code: &str) -> String {
    format!("Here is the stage.\n\n```rust\n{code}```\n")
}

/// What each mock model writes for `task` ("select" or "histogram") at coder attempt
/// `attempt` (0-based), or answers as the supervisor.
fn coder(model: &str, task: &str, attempt: usize) -> String {
    let ok = if task == "select" {
        SELECT_OK
    } else {
        HISTOGRAM_OK
    };
    // A real type error (E0308) against the stage API.
    let type_error = if task == "select" {
        edit(ok, "out.m_yy.push(m);", "out.m_yy.push(m as f32);")
    } else {
        edit(
            ok,
            "sumw: vec![0.0; b.bins],",
            "sumw: vec![0.0f32; b.bins],",
        )
    };
    // Compiles, runs, and is wrong: a hard-coded cut; a bin index without the offset.
    let wrong = if task == "select" {
        edit(
            ok,
            "(p.pt[j] as f64) > cuts.pt_min",
            "(p.pt[j] as f64) > 20.0",
        )
    } else {
        edit(ok, "(x - b.lo)", "x")
    };
    fenced(&match (model, attempt) {
        ("steady", _) => ok.to_string(),
        ("learner", 0) => type_error,
        ("learner", _) => ok.to_string(),
        _ => wrong,
    })
}

/// Tokens per call (prompt, completion, cached prompt, reasoning), by model.
fn usage(model: &str) -> [u64; 4] {
    match model {
        "steady" => [1000, 100, 0, 0],
        "learner" => [2000, 300, 500, 100],
        _ => [1500, 200, 0, 0],
    }
}

/// The mock's answer to one request, from its content alone (plus, for the 429/503 thrown
/// in, whether this exact body was seen before).
fn answer(body: &Value, seen: &Mutex<HashMap<String, u32>>) -> MockReply {
    let n = {
        let mut s = seen.lock().unwrap();
        let k = body.to_string();
        let n = *s.get(&k).unwrap_or(&0);
        s.insert(k, n + 1);
        n
    };
    if n == 0 {
        // The first time a body arrives it is refused; the client's retry gets the answer.
        let status = if body.to_string().len().is_multiple_of(2) {
            429
        } else {
            503
        };
        return MockReply::Error {
            status,
            retry_after: Some("0".into()),
        };
    }
    let model = body["model"].as_str().unwrap_or("");
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let text = |m: &Value| m["content"].as_str().unwrap_or("").to_string();
    let all: String = msgs.iter().map(text).collect::<Vec<_>>().join("\n");
    let reply = |content: String| MockReply::Answer {
        content,
        usage: Some(usage(model)),
    };
    if msgs.len() == 1 && text(&msgs[0]) == bench::PREFLIGHT {
        return reply("OK".into());
    }
    let assistants = msgs.iter().filter(|m| m["role"] == "assistant").count();
    if text(&msgs[0]).starts_with("You are the supervisor") {
        return if assistants == 0 {
            let task = if all.contains("Write a Select stage") {
                "select"
            } else {
                "histogram"
            };
            reply(format!(
                "PLAN for {task}: implement the stage as instructed."
            ))
        } else {
            reply("DECISION: give_up\nThe coder keeps getting it wrong.".into())
        };
    }
    let task = if all.contains("PLAN for select") {
        "select"
    } else {
        "histogram"
    };
    reply(coder(model, task, assistants))
}

fn mock() -> MockServer {
    let seen = Mutex::new(HashMap::new());
    MockServer::respond_with(move |body| answer(body, &seen)).unwrap()
}

fn models_file(dir: &Path, url: &str) -> PathBuf {
    let text = format!(
        r#"
[[model]]
name = "steady"
endpoint = "{url}"
model = "steady"
price = [1.0, 10.0]

[[model]]
name = "learner"
endpoint = "{url}"
model = "learner"
price = [2.0, 8.0]
cached_price = 0.5

[[model]]
name = "stubborn"
endpoint = "{url}"
model = "stubborn"
price = [0.5, 1.5]
max_concurrent = 4
"#
    );
    let p = dir.join("models.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

fn ok(o: &Output) -> String {
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    out
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn without_clock(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("clock");
    v
}

fn close(v: &Value, want: f64, what: &str) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {v} is not a number"));
    assert!((got - want).abs() <= 1e-6, "{what}: {got} != {want}");
}

/// The values of the deterministic part, worked out by hand from the mock's behaviour:
/// steady: plan + right code = 2 calls, success at iteration 1;
/// learner: plan + E0308 + fixed code = 3 calls, success at iteration 2;
/// stubborn: plan + wrong code (validation fails) + the supervisor gives up = 3 calls.
/// Cost per call (USD per million tokens): steady 1000×1 + 100×10 = 0.002;
/// learner 1500×2 + 500×0.5 (cached) + 300×8 = 0.00565; stubborn 1500×0.5 + 200×1.5 = 0.00105.
/// Wilson 95 % (z² = 3.841459): 3/3 → [3/(3+z²), 1] = [0.438503, 1]; 0/3 → [0, z²/(3+z²)] =
/// [0, 0.561497]; 6/6 → [0.609666, 1]; 0/6 → [0, 0.390334]; 6/9 → [0.354202, 0.879416].
fn check_literals(r: &Value) {
    let m = &r["matrix"];
    assert_eq!(
        (
            m["planned"].as_u64(),
            m["finished"].as_u64(),
            m["scored"].as_u64()
        ),
        (Some(18), Some(18), Some(18))
    );
    assert_eq!(
        (m["harness_errors"].as_u64(), m["not_run"].as_u64()),
        (Some(0), Some(0))
    );

    // (model, task) → successes, rate, wilson low, wilson high, pass@k (k = 1..3),
    // mean API calls, cost, errors.
    type Row<'a> = (&'a str, &'a str, u64, f64, f64, f64, f64, f64, f64, &'a str);
    let want: [Row; 6] = [
        (
            "steady", "select", 3, 1.0, 0.438503, 1.0, 1.0, 2.0, 0.012, "{}",
        ),
        (
            "steady",
            "histogram",
            3,
            1.0,
            0.438503,
            1.0,
            1.0,
            2.0,
            0.012,
            "{}",
        ),
        (
            "learner", "select", 3, 1.0, 0.438503, 1.0, 1.0, 3.0, 0.05085, "{}",
        ),
        (
            "learner",
            "histogram",
            3,
            1.0,
            0.438503,
            1.0,
            1.0,
            3.0,
            0.05085,
            "{}",
        ),
        (
            "stubborn",
            "select",
            0,
            0.0,
            0.0,
            0.561497,
            0.0,
            3.0,
            0.00945,
            r#"{"gave_up":3}"#,
        ),
        (
            "stubborn",
            "histogram",
            0,
            0.0,
            0.0,
            0.561497,
            0.0,
            3.0,
            0.00945,
            r#"{"gave_up":3}"#,
        ),
    ];
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    for (i, (model, task, succ, rate, lo, hi, pass, calls, cost, errors)) in want.iter().enumerate()
    {
        let p = &results[i];
        let what = format!("{model}/{task}");
        assert_eq!(
            (p["model"].as_str(), p["task"].as_str()),
            (Some(*model), Some(*task))
        );
        assert_eq!(p["trials"].as_u64(), Some(3), "{what}");
        assert_eq!(p["successes"].as_u64(), Some(*succ), "{what}");
        close(&p["success_rate"], *rate, &what);
        close(&p["wilson95"][0], *lo, &what);
        close(&p["wilson95"][1], *hi, &what);
        for k in ["1", "2", "3"] {
            close(&p["pass_at_k"][k], *pass, &format!("{what} pass@{k}"));
            close(&p["pass_all_k"][k], *pass, &format!("{what} pass^{k}"));
        }
        close(&p["mean_api_calls"], *calls, &what);
        close(&p["cost_usd"], *cost, &what);
        assert_eq!(
            p["errors"],
            serde_json::from_str::<Value>(errors).unwrap(),
            "{what}"
        );
    }
    let details = |i: usize| results[i]["error_details"].clone();
    assert_eq!(
        details(4),
        serde_json::json!({"gave_up/validation/cut flow": 3})
    );
    assert_eq!(
        details(5),
        serde_json::json!({"gave_up/validation/sumw": 3})
    );
    assert_eq!(
        results[2]["attempt_errors"],
        serde_json::json!({"compile/type_mismatch": 3})
    );

    // Per model, over both tasks.
    let models = &r["models"];
    let per_model = [
        // successes, wilson low, high, API calls, cost, cost per success, iterations mean,
        // prompt, completion, cached, reasoning tokens, caught by the compiler, by validation
        (
            "steady",
            6,
            0.609666,
            1.0,
            12,
            0.024,
            Some(0.004),
            Some(1.0),
            [12000, 1200, 0, 0],
            0,
            0,
        ),
        (
            "learner",
            6,
            0.609666,
            1.0,
            18,
            0.1017,
            Some(0.01695),
            Some(2.0),
            [36000, 5400, 9000, 1800],
            6,
            0,
        ),
        (
            "stubborn",
            0,
            0.0,
            0.390334,
            18,
            0.0189,
            None,
            None,
            [27000, 3600, 0, 0],
            0,
            6,
        ),
    ];
    for (name, succ, lo, hi, calls, cost, per_success, iters, tokens, compiler, validation) in
        per_model
    {
        let s = &models[name];
        assert_eq!(s["trials"].as_u64(), Some(6), "{name}");
        assert_eq!(s["successes"].as_u64(), Some(succ), "{name}");
        close(&s["wilson95"][0], lo, name);
        close(&s["wilson95"][1], hi, name);
        assert_eq!(s["api_calls"].as_u64(), Some(calls), "{name}");
        close(&s["cost_usd"], cost, name);
        match per_success {
            Some(v) => close(&s["cost_per_success"], v, name),
            None => assert!(s["cost_per_success"].is_null(), "{name}"),
        }
        match iters {
            Some(v) => close(&s["iterations_to_success"]["mean"], v, name),
            None => assert!(s["iterations_to_success"].is_null(), "{name}"),
        }
        let t = [
            "prompt_tokens",
            "completion_tokens",
            "cached_prompt_tokens",
            "reasoning_tokens",
        ];
        for (k, v) in t.iter().zip(tokens) {
            assert_eq!(s[*k].as_u64(), Some(v), "{name} {k}");
        }
        assert_eq!(s["caught"]["compiler"].as_u64(), Some(compiler), "{name}");
        assert_eq!(
            s["caught"]["validation"].as_u64(),
            Some(validation),
            "{name}"
        );
    }
    close(&models["learner"]["caught_before_run"], 1.0, "learner");
    close(&models["stubborn"]["caught_before_run"], 0.0, "stubborn");
    assert!(models["steady"]["caught_before_run"].is_null());

    // Per task, over the three models: 6 of 9; pass@k the mean of 1, 1 and 0.
    for task in ["select", "histogram"] {
        let s = &r["tasks"][task];
        assert_eq!(
            (s["trials"].as_u64(), s["successes"].as_u64()),
            (Some(9), Some(6))
        );
        close(&s["success_rate"], 2.0 / 3.0, task);
        close(&s["wilson95"][0], 0.354202, task);
        close(&s["wilson95"][1], 0.879416, task);
        close(&s["pass_at_k"]["3"], 2.0 / 3.0, task);
    }

    // Every cell says which variant it ran, and the variant follows the task's [vary].
    let cells = r["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 18);
    for c in cells {
        let v = c["variant"].as_object().unwrap();
        let keys: Vec<&str> = v.keys().map(String::as_str).collect();
        let expected: &[&str] = if c["task"] == "select" {
            &["cuts.mass_window", "cuts.pt_min"]
        } else {
            &["binning.bins"]
        };
        assert_eq!(keys, expected, "{c}");
    }
}

#[test]
fn three_models_two_tasks_three_trials_scored_rescored_replayed_and_resumed_after_sigkill() {
    let server = mock();
    let tmp = tempfile::tempdir().unwrap();
    let models = models_file(tmp.path(), &server.url());
    let m = models.to_str().unwrap();
    let common = [
        "bench-agents",
        "--models",
        m,
        "--tasks",
        "select,histogram",
        "--trials",
        "3",
        "--max-iterations",
        "3",
    ];

    // 1. The whole matrix, four cells at a time.
    let a = tmp.path().join("a");
    let t = Instant::now();
    let out = ok(&xtask(
        &[
            &common[..],
            &["--out", a.to_str().unwrap(), "--concurrency", "4"],
        ]
        .concat(),
    ));
    eprintln!(
        "3 models x 2 tasks x 3 trials, --concurrency 4: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        out.contains("18 of 18 in the matrix have a result"),
        "{out}"
    );
    let ra = report(&a);
    check_literals(&ra);
    // The 429s and 503s were there and retried: more HTTP requests than calls.
    let requests: u64 = ra["clock"]["models"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["http_requests"].as_u64().unwrap())
        .sum();
    assert!(requests > 48, "{requests} HTTP requests for 48 calls");
    // Every saved document reads back into its type.
    let text = std::fs::read_to_string(a.join("report.json")).unwrap();
    serde_json::from_str::<bench::report::Report>(&text).unwrap();
    let dir = bench::Dir { root: a.clone() };
    assert_eq!(dir.load_results().unwrap().len(), 18);
    dir.load_config().unwrap();
    let csv = std::fs::read_to_string(a.join("cells.csv")).unwrap();
    assert_eq!(csv.lines().count(), 19);
    let md = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(md.contains("| stubborn | 0/3 = 0 % [0–56 %]"), "{md}");
    for plot in ["success", "errors", "cost", "pass_at_k"] {
        for ext in ["png", "svg"] {
            let p = a.join("plots").join(format!("{plot}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
    for model in ["steady", "learner", "stubborn"] {
        let cell = a.join("cells").join(model).join("select").join("trial-0");
        for f in [
            "trajectory.jsonl",
            "cassette.jsonl",
            "attempts/1.rs",
            "attempts/1.txt",
        ] {
            assert!(cell.join(f).is_file(), "{}", cell.join(f).display());
        }
        // Only an accepted answer is saved as the cell's stage (stubborn never gets there).
        assert_eq!(
            cell.join("stage.rs").is_file(),
            model != "stubborn",
            "{}",
            cell.display()
        );
    }

    // The same matrix one cell at a time: the same deterministic report.
    let e = tmp.path().join("e");
    let t = Instant::now();
    ok(&xtask(
        &[
            &common[..],
            &["--out", e.to_str().unwrap(), "--concurrency", "1"],
        ]
        .concat(),
    ));
    eprintln!(
        "3 models x 2 tasks x 3 trials, --concurrency 1: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(without_clock(report(&e)), without_clock(ra.clone()));

    // To look at the report and plots: HEP_BENCH_TEST_KEEP=DIR keeps a copy of the first run.
    if let Some(keep) = std::env::var_os("HEP_BENCH_TEST_KEEP") {
        let _ = Command::new("cp").arg("-r").arg(&a).arg(keep).status();
    }

    // 2. Re-scoring from the saved cells gives report.json byte for byte.
    let b = tmp.path().join("b");
    ok(&xtask(&[
        "bench-agents",
        "--rescore",
        a.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read(a.join("report.json")).unwrap(),
        std::fs::read(b.join("report.json")).unwrap()
    );

    // 3. Replaying from the cassettes, with the server gone for this part's requests:
    // every cell comes out the same.
    let requests_before = server.received().len();
    let c = tmp.path().join("c");
    let out = ok(&xtask(&[
        "bench-agents",
        "--replay",
        a.to_str().unwrap(),
        "--out",
        c.to_str().unwrap(),
        "--concurrency",
        "4",
    ]));
    assert!(out.contains("replay: 18 of 18 cells reproduced"), "{out}");
    assert_eq!(
        server.received().len(),
        requests_before,
        "a replay made a request"
    );
    assert_eq!(without_clock(report(&c)), without_clock(ra.clone()));

    // 4. SIGKILL mid-run, then --resume: every cell exactly once, the same report.
    let d = tmp.path().join("d");
    let args = [
        &common[..],
        &["--out", d.to_str().unwrap(), "--concurrency", "1"],
    ]
    .concat();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = d.join("results.jsonl");
    let lines = || {
        std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while lines() < 4 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // While it runs, a second run on the same directory is refused, naming the holder.
    let second = xtask(&[&args[..], &["--resume"]].concat());
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another run (pid"), "{err}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = lines();
    assert!(done < 18, "all cells finished before the kill");
    let out = ok(&xtask(&[&args[..], &["--resume"]].concat()));
    assert!(
        out.contains(&format!("{} cells ran now", 18 - done)),
        "{out}"
    );
    let cells = bench::Dir { root: d.clone() }.load_results().unwrap();
    let mut keys: Vec<_> = cells.iter().map(|c| (&c.model, &c.task, c.trial)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (cells.len(), keys.len()),
        (18, 18),
        "each cell exactly once"
    );
    assert_eq!(without_clock(report(&d)), without_clock(ra));
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let server = mock();
    let tmp = tempfile::tempdir().unwrap();
    let models = models_file(tmp.path(), &server.url());
    let good = std::fs::read_to_string(&models).unwrap();
    let out = tmp.path().join("out");
    let run = |models_text: &str, tasks: &str| {
        std::fs::write(&models, models_text).unwrap();
        let o = xtask(&[
            "bench-agents",
            "--models",
            models.to_str().unwrap(),
            "--tasks",
            tasks,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        assert!(!out.exists(), "something was written");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&good.replace("cached_price", "cache_price"), "select");
    assert!(
        e.contains("model 'learner' (line 8)") && e.contains("cache_price"),
        "{e}"
    );
    let e = run(&good.replacen("endpoint = ", "# endpoint = ", 1), "select");
    assert!(
        e.contains("model 'steady'") && e.contains("endpoint"),
        "{e}"
    );
    let remote = good.replacen(&server.url(), "https://api.example.com/v1", 1);
    let e = run(&remote, "select");
    assert!(
        e.contains("model 'steady'") && e.contains("api_key_env"),
        "{e}"
    );
    let e = run(&good, "select,nonesuch");
    assert!(e.contains("task 'nonesuch'"), "{e}");
    // An endpoint that does not answer at all (nothing listens on port 9).
    let e = run(
        &good.replacen(&server.url(), "http://127.0.0.1:9/v1", 1),
        "select",
    );
    assert!(
        e.contains("model 'steady'") && e.contains("does not answer"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn a_spent_budget_ends_a_cell_and_max_cost_stops_starting_cells() {
    let server = mock();
    let tmp = tempfile::tempdir().unwrap();
    let models = models_file(tmp.path(), &server.url());
    let m = models.to_str().unwrap();

    // 1000 tokens per cell: the plan (1100 tokens for steady) spends it, so the coder's call
    // is refused and the cell ends as `budget`, after exactly one API call.
    let a = tmp.path().join("a");
    ok(&xtask(&[
        "bench-agents",
        "--models",
        m,
        "--tasks",
        "histogram",
        "--trials",
        "2",
        "--cell-budget-tokens",
        "1000",
        "--out",
        a.to_str().unwrap(),
    ]));
    let r = report(&a);
    let steady = &r["results"][0];
    assert_eq!(steady["errors"], serde_json::json!({"budget": 2}));
    close(&steady["mean_api_calls"], 1.0, "steady");

    // --max-cost 0.01 with a cell budget of $0.004, one cell at a time: steady's cells cost
    // $0.004 each; the first two start (0 + 0.004, 0.004 + 0.004 ≤ 0.01), the third would
    // commit 0.008 + 0.004 > 0.01, so it and the three after it never start.
    let b = tmp.path().join("b");
    let out = ok(&xtask(&[
        "bench-agents",
        "--models",
        m,
        "--tasks",
        "histogram",
        "--trials",
        "2",
        "--cell-budget-usd",
        "0.004",
        "--max-cost",
        "0.01",
        "--out",
        b.to_str().unwrap(),
    ]));
    assert!(out.contains("(4 not started: --max-cost)"), "{out}");
    let r = report(&b);
    assert_eq!(
        (
            r["matrix"]["finished"].as_u64(),
            r["matrix"]["not_run"].as_u64()
        ),
        (Some(2), Some(4))
    );
    close(&r["models"]["steady"]["cost_usd"], 0.008, "spent");
    let md = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert!(md.contains("2 of 6 cells ran"), "{md}");
}

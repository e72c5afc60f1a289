//! The `xtask` binary as a user runs it: output, exit codes, and no panic messages on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

/// `analyze` of the 2020 data and signal-MC fixtures into `out`, with `extra`.
fn analyze_fixtures(out: &Path, extra: &[&str]) -> Output {
    let (data, mc) = (
        fixture("data_2020_zlib.GamGam.root"),
        fixture("mc_343981.ggH125_gamgam_2020_zlib.GamGam.root"),
    );
    let mut args = vec![
        "analyze",
        "--data",
        data.to_str().unwrap(),
        "--mc",
        mc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    xtask(&args)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn inspect_shows_the_2025_tree_and_its_types() {
    let f = fixture("data_2025_zstd.GamGam.root");
    let o = xtask(&["inspect", f.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("tree 'analysis': 20000 entries, 16 branches"),
        "{out}"
    );
    assert!(out.contains("ROOT::VecOps::RVec<float>"), "{out}");
    assert!(
        out.contains("ULong64_t") || out.contains("uint64_t"),
        "{out}"
    );
    assert!(out.contains("zstd-5"), "{out}");

    let o = xtask(&["inspect", "--json", f.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["trees"][0]["name"], "analysis");
    assert_eq!(v[0]["trees"][0]["entries"], 20000);
}

#[test]
fn inspect_of_a_truncated_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("data_2025_zstd.GamGam.root")).unwrap();
    let cut = dir.path().join("cut.root");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = xtask(&["inspect", cut.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cut.root"), "names the file: {err}");
    assert!(!err.contains("panicked"), "no panic: {err}");

    let o = xtask(&["inspect", "/nonexistent/file.root"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("/nonexistent/file.root") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "analyze",
        "inspect",
        "convert",
        "fit-toys",
        "generate",
        "fetch-data",
        "bench-read",
    ] {
        let o = xtask(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help");
        assert!(text(&o).0.contains("Usage"), "{cmd}");
    }
}

#[test]
fn analyze_on_fixtures_writes_results_plots_and_matches_root() {
    let dir = tempfile::tempdir().unwrap();
    let o = analyze_fixtures(dir.path(), &["--threads", "2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("μ    ="), "{out}");
    for f in [
        "results.json",
        "m_yy.png",
        "m_yy.svg",
        "cut_flow.png",
        "cut_flow.svg",
        "score.png",
        "roc.png",
        "z_categories.png",
        "m_yy_categories.png",
        "m_yy_categories.svg",
    ] {
        assert!(
            dir.path().join(f).metadata().unwrap().len() > 1000,
            "{f} written"
        );
    }
    assert!(!dir.path().join("results.json.tmp").exists());
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("reference.json")).unwrap()).unwrap();
    let want = &reference["data_2020_zlib.GamGam.root"];
    assert_eq!(r["cut_flow"], want["cut_flow"]);
    assert_eq!(r["fit"]["status"], "ok");
    let z = r["fit"]["z"].as_f64().unwrap();
    assert!((z / want["roofit"]["Z"].as_f64().unwrap() - 1.0).abs() < 0.01);
    let inputs = r["provenance"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0]["blake3"].as_str().unwrap().len(), 64);
    assert!(r["measurement"]["mu"].as_f64().unwrap().is_finite());
    // Every minimisation behind the categorized fit's numbers says how it ended.
    for fit in ["combined", "combined_inclusive"] {
        let records = r[fit]["fits"].as_array().unwrap();
        let names: Vec<&str> = records.iter().map(|f| f["fit"].as_str().unwrap()).collect();
        assert_eq!(
            names[..7],
            [
                "best",
                "fixed mass",
                "mu=0",
                "mu=0 at m_H",
                "mu=1",
                "asimov",
                "asimov mu=0"
            ],
            "{fit}"
        );
        assert!(
            names[7..].iter().all(|n| n.starts_with("impact ")),
            "{names:?}"
        );
        for f in records {
            assert!(
                f["status"].is_string() && f["edm"].as_f64().unwrap() >= 0.0,
                "{f}"
            );
        }
        assert_eq!(records[0]["status"], "ok", "{fit}");
        // Observed at the nominal mass (like the expected) and local, both there.
        for z in ["z", "z_local", "z_expected"] {
            assert!(r[fit][z].as_f64().unwrap() > 1.0, "{fit}: {z}");
        }
        // The nuisance parameters, with their pulls and their impacts on μ: the luminosity's
        // lowers μ when raised, by about its own 1.7 %.
        let params = r[fit]["parameters"].as_array().unwrap();
        let np: Vec<&serde_json::Value> = params.iter().filter(|p| p["pull"].is_array()).collect();
        let np_names: Vec<&str> = np.iter().map(|p| p["name"].as_str().unwrap()).collect();
        for name in ["photon_resolution", "photon_scale", "lumi"] {
            assert!(np_names.contains(&name), "{np_names:?}");
        }
        assert!(
            np_names.iter().any(|n| n.starts_with("spurious_")),
            "{np_names:?}"
        );
        let lumi = np.iter().find(|p| p["name"] == "lumi").unwrap();
        let mu = r[fit]["mu"].as_f64().unwrap();
        let up = lumi["impact"][0].as_f64().unwrap();
        assert!(up < 0.0 && (-up / mu - 0.017).abs() < 0.005, "{lumi}");
    }
    // The model as a pyhf workspace: a channel per category, the data observed in each.
    let ws: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("workspace.json")).unwrap()).unwrap();
    let channels = ws["channels"].as_array().unwrap();
    assert_eq!(
        channels.len(),
        r["categories"]["categories"].as_array().unwrap().len()
    );
    let samples: Vec<&str> = channels[0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(samples, ["signal", "spurious", "background"]);
    let observed: f64 = ws["observations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["data"].as_array().unwrap())
        .map(|v| v.as_f64().unwrap())
        .sum();
    let in_histogram: f64 = r["histogram"]["sumw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(observed, in_histogram);
    assert_eq!(ws["measurements"][0]["config"]["poi"], "mu");
}

/// `--background` and `--signal` reach every category of the categorized model: the signal
/// shape fitted to the MC, each category's background the function asked for.
#[test]
fn fit_toys_plots_the_pulls_and_says_why_toys_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (
        fixture("data_2020_zlib.GamGam.root"),
        dir.path().join("toys"),
    );
    let o = xtask(&[
        "fit-toys",
        "--data",
        data.to_str().unwrap(),
        "--toys",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{stdout}\n{err}");
    for p in ["nsig", "nbkg", "mean", "sigma", "slope"] {
        for ext in ["png", "svg"] {
            let f = out.join(format!("pull_{p}.{ext}"));
            assert!(
                f.metadata().unwrap().len() > 1000,
                "{} written",
                f.display()
            );
        }
    }
    // Failed toys are counted by reason: "N failed (K reason, ...)", or "0 failed".
    let summary = stdout.lines().next().unwrap_or_default();
    assert!(
        summary.contains(" 0 failed,") || summary.contains(" failed ("),
        "{summary}"
    );
}

#[test]
fn the_fit_model_options_reach_every_category() {
    let dir = tempfile::tempdir().unwrap();
    let results = |extra: &[&str]| -> (serde_json::Value, Output) {
        let out = dir.path().join(extra.join("_").replace(':', "-"));
        let o = analyze_fixtures(&out, extra);
        let r = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        (r, o)
    };
    let (exp, o) = results(&[]);
    assert!(o.status.success(), "{}", text(&o).1);
    // The fixtures' small categories press some Bernstein coefficient on its bound (0, where
    // the polynomial's positivity is no longer guaranteed): the run says so and fails.
    let (bern, o) = results(&["--background", "bernstein:2"]);
    let problems = bern["problems"].as_array().map_or(0, Vec::len);
    assert_eq!(o.status.success(), problems == 0, "{}", text(&o).1);
    if !o.status.success() {
        assert!(
            text(&o).1.contains("at a bound") && text(&o).1.contains("bern_"),
            "{}",
            text(&o).1
        );
    }
    // Without a continuum template every category fits the function asked for.
    for (r, want) in [
        (&exp, serde_json::json!("exp")),
        (&bern, serde_json::json!({ "bernstein": 2 })),
    ] {
        let functions = r["model"]["backgrounds"].as_array().unwrap();
        assert!(functions.len() >= 2, "{functions:?}");
        assert!(functions.iter().all(|f| f[1] == want), "{functions:?}");
        assert!(r["model"]["spurious_test"].is_null());
    }
    let names = |r: &serde_json::Value| -> Vec<String> {
        r["combined"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let n = bern["categories"]["categories"].as_array().unwrap().len();
    for k in 0..n {
        for p in [format!("bern_{k}_1"), format!("bern_{k}_2")] {
            assert!(names(&bern).contains(&p), "{p}: {:?}", names(&bern));
        }
        assert!(names(&exp).contains(&format!("slope_{k}")));
    }
    assert!(!names(&bern).iter().any(|p| p.starts_with("slope_")));
    let mu = |r: &serde_json::Value| r["combined"]["mu"].as_f64().unwrap();
    assert!(
        (mu(&bern) - mu(&exp)).abs() > 1e-3,
        "{} {}",
        mu(&bern),
        mu(&exp)
    );
    // The signal shape comes from a fit to the MC: near the generator's 125 GeV and 1.6 GeV.
    let s = &exp["model"]["signal"];
    assert_eq!(exp["model"]["signal_fit"]["status"], "ok");
    assert!((s["mass"].as_f64().unwrap() - 125.0).abs() < 0.3, "{s}");
    assert!((s["sigma"].as_f64().unwrap() - 1.6).abs() < 0.1, "{s}");
}

#[test]
fn analyze_rejects_bad_configuration_and_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let data = fixture("data_2020_zlib.GamGam.root");
    for (args, needle) in [
        (vec!["--background", "bernstein:0"], "Bernstein order"),
        (vec!["--signal", "lorentz"], "unknown signal shape"),
        (vec!["--data", "/nonexistent/x.root"], "/nonexistent/x.root"),
        (vec!["--data", "/nonexistent/*.root"], "no file matches"),
        (
            vec!["--data", data.to_str().unwrap(), "--bins", "0"],
            "0 < bins",
        ),
        // Five parameters cannot be fitted to one bin: refused before any file is read.
        (
            vec!["--data", data.to_str().unwrap(), "--bins", "1"],
            "1 bins cannot constrain a fit of 5 parameters",
        ),
        (
            vec!["--data", data.to_str().unwrap(), "--lumi=-1"],
            "--lumi must be positive",
        ),
    ] {
        let mut a = vec!["analyze", "--out", out];
        a.extend(args.iter().copied());
        let o = xtask(&a);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{args:?} fails");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !dir.path().join("results.json").exists(),
        "nothing half-written"
    );
}

#[test]
fn analyze_gives_the_same_result_for_any_thread_count() {
    let files = [
        fixture("data_2020_zlib_smallbaskets.GamGam.root"),
        fixture("data_2025_zstd.GamGam.root"),
    ];
    let run = |threads: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "analyze",
            "--out",
            dir.path().to_str().unwrap(),
            "--threads",
            threads,
            "--data",
        ];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let o = xtask(&args);
        assert!(o.status.success(), "{}", text(&o).1);
        std::fs::read(dir.path().join("results.json")).unwrap()
    };
    let one = run("1");
    let v: serde_json::Value = serde_json::from_slice(&one).unwrap();
    assert_eq!(
        v["provenance"]["inputs"].as_array().unwrap().len(),
        2,
        "both releases in one run"
    );
    assert!(
        one == run("2") && one == run("3"),
        "results.json is byte-identical"
    );
}

#[test]
fn a_stage_runs_as_its_own_process() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["stage", "histogram"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"diphotons": {"m_yy": [125.5, 170.0], "weight": [2.0, 1.0]}, "binning": {"bins": 55, "lo": 105, "hi": 160}}"#)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h["sumw"][20], 2.0);
    assert_eq!(h["overflow"], 1.0);
}

#[test]
fn a_second_run_on_the_same_output_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let held = dirlock::DirLock::acquire(&out).unwrap();
    let o = xtask(&["analyze", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use by another run"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!out.join("results.json").exists());
    drop(held);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `cargo xtask inspect ... | head -1` and `cargo xtask stage ... | head -1`: the reader
    // goes away after one line; the writer must end without a panic message.
    let inspect = format!(
        "'{}' inspect '{}' '{}'",
        env!("CARGO_BIN_EXE_xtask"),
        fixture("data_2020_zlib.GamGam.root").display(),
        fixture("data_2025_zstd.GamGam.root").display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.json");
    std::fs::write(
        &input,
        format!(
            r#"{{"file": "{}"}}"#,
            fixture("data_2020_zlib.GamGam.root").display()
        ),
    )
    .unwrap();
    let stage = format!(
        "'{}' stage inspect --input '{}'",
        env!("CARGO_BIN_EXE_xtask"),
        input.display()
    );
    for cmd in [inspect, stage] {
        // `set -o pipefail` would report the writer's SIGPIPE; the line that `head` printed
        // and an empty stderr are what the user sees.
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} | head -n 1"))
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(err.is_empty(), "{cmd}: {err}");
    }
}

/// A fit that is not trustworthy measures nothing: with six bins the fixture's fit has a
/// parameter at a bound, so results.json has no measurement and says why, and the run fails
/// with that sentence (the plots and the fit are still written, to look at).
#[test]
fn a_fit_at_a_bound_gives_no_measurement_and_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = analyze_fixtures(dir.path(), &["--bins", "6", "--categories", "none"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}\n{err}");
    assert!(
        err.contains("not a measurement") && err.contains("at a bound"),
        "{err}"
    );
    assert!(!out.contains("μ    ="), "{out}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(r["fit"]["status"], "at_bound");
    assert!(r["measurement"].is_null(), "{}", r["measurement"]);
    assert_eq!(r["problems"].as_array().map(Vec::len), Some(1));
    assert!(dir.path().join("m_yy.png").is_file());
}

//! A rule's implementation identity covers every source file whose code its job may run
//! (`analysis/identity.rs` says how): edit any source file and exactly the rules that may run
//! it rerun, the engine naming "implementation changed"; a file only some steps run (the
//! plots) is named by nothing else.

#[path = "../../analysis/identity.rs"]
mod identity;

use analysis::rules::{self, Chain, Identities, SelectImpl};
use analysis::stage::Reference;
use analysis::workflow::{AnalysisConfig, Categorization, Inputs};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analysis")
}

/// The identities with `edited`'s content changed (None: as the files are).
fn identities(edited: Option<&str>) -> Vec<(&'static str, String)> {
    let dir = crate_dir();
    identity::identities(&dir, &|f| {
        let mut bytes = std::fs::read(dir.join(f)).unwrap();
        if Some(f) == edited {
            bytes.extend_from_slice(b"\n// edited\n");
        }
        bytes
    })
}

fn leak(ids: &[(&'static str, String)]) -> Identities {
    let get = |step: &str| -> &'static str {
        let id = &ids.iter().find(|(s, _)| *s == step).unwrap().1;
        Box::leak(id.clone().into_boxed_str())
    };
    Identities {
        inspect: get("inspect"),
        convert: get("convert"),
        select: get("select"),
        histogram: get("histogram"),
        fit: get("fit"),
        categorize: get("categorize"),
        results: get("results"),
        plots: get("plots"),
    }
}

/// The identities computed here are the ones this build embedded (the sources did not
/// change under the test).
#[test]
fn the_built_identities_are_the_sources_identities() {
    assert_eq!(leak(&identities(None)), Identities::BUILT);
}

/// Every source file (the analysis crate, the contract, the reader) is in some step's
/// identity, and every step has files of its own beside the shared ones.
#[test]
fn every_source_file_contributes_to_an_identity() {
    let files = identity::sources(&crate_dir());
    assert!(files.len() > 50, "{files:?}");
    for dir in [
        "src/rules/",
        "src/fit/",
        "src/rootio/",
        "../stage-api/src/",
        "../vendor/",
    ] {
        assert!(files.iter().any(|f| f.starts_with(dir)), "{dir} is covered");
    }
    for f in &files {
        assert!(!identity::steps_of(f).is_empty(), "{f} is in no identity");
    }
    for step in identity::STEPS {
        assert!(
            files.contains(&format!("src/rules/{step}.rs")),
            "src/rules/{step}.rs"
        );
    }
}

/// A file that only some steps run is named by no code outside those steps' own files
/// (`crate::plot`, `plot::`, `super::plot`): were it called from elsewhere, an edit to it
/// would change what another step does without rerunning that step.
#[test]
fn a_private_file_is_named_only_by_its_steps() {
    let dir = crate_dir();
    let files = identity::sources(&dir);
    let mut private: Vec<(String, Vec<&str>)> = Vec::new();
    for (only, steps) in identity::ONLY {
        if let Some(module) = only
            .strip_prefix("src/")
            .and_then(|m| m.strip_suffix(".rs"))
        {
            private.push((module.to_string(), steps.to_vec()));
        }
    }
    for step in identity::STEPS {
        private.push((format!("rules/{step}"), vec![step]));
    }
    for (module, steps) in &private {
        let name = module.rsplit('/').next().unwrap();
        let in_rules = module.starts_with("rules/");
        for f in files.iter().filter(|f| f.ends_with(".rs")) {
            let theirs = identity::steps_of(f);
            if theirs.iter().all(|s| steps.contains(s)) || f == "src/lib.rs" {
                continue;
            }
            if in_rules && f == "src/rules/mod.rs" {
                continue; // the chain's composition, in every identity
            }
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                let names = if in_rules {
                    f.starts_with("src/rules/")
                        && (code.contains(&format!("super::{name}"))
                            || code.contains("super::{") && code.contains(&format!("{name},"))
                            || starts_path(code, name))
                } else {
                    code.contains(&format!("crate::{name}"))
                        || code.contains(&format!("super::{name}"))
                        || starts_path(code, name)
                };
                assert!(
                    !names,
                    "{f}:{}: names {module}, private to {steps:?}",
                    n + 1
                );
            }
        }
    }
}

/// `name::` at the start of a path (not `x::name::`, not `foo_name::`).
fn starts_path(code: &str, name: &str) -> bool {
    let pat = format!("{name}::");
    code.match_indices(&pat).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == ':')
    })
}

/// The Must-show: for each source file, an edit changes exactly the identities of the steps
/// that may run it; and run by the engine, exactly those steps' rules rerun, each with
/// "implementation changed".
#[test]
fn editing_any_source_file_reruns_the_rules_that_run_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset::ensure_default(
        tmp.path(),
        &dataset::synth::Config {
            seed: 5,
            data_events: 4000,
            mc_events: 1500,
            continuum_events: 0,
            ..Default::default()
        },
        || {},
    )
    .unwrap();
    let inputs = Inputs {
        data: vec![ds.data],
        mc: vec![ds.mc],
        continuum: vec![],
    };
    let cfg = AnalysisConfig {
        categorization: Some(Categorization::default()),
        ..AnalysisConfig::default()
    };
    let out = tmp.path().join("out");
    let chain = |ids: Identities| Chain {
        convert: true,
        select: SelectImpl {
            identity: ids.select.to_string(),
            stage: Arc::new(Reference),
        },
        identities: ids,
        ..Chain::reference(&out)
    };
    let dry_run = |ids: Identities| {
        let rules = rules::chain(&inputs, &cfg, &chain(ids), Arc::new(|_| {})).unwrap();
        let engine = flow::Flow::new(rules, out.join("provenance")).unwrap();
        let opts = flow::Options {
            dry_run: true,
            ..Default::default()
        };
        engine.run(&opts, &|_| {}).unwrap()
    };
    // Everything, once.
    let built = Identities::BUILT;
    let rules = rules::chain(&inputs, &cfg, &chain(built.clone()), Arc::new(|_| {})).unwrap();
    let kinds: Vec<(String, String)> = rules
        .iter()
        .map(|r| (r.name.clone(), r.implementation.clone()))
        .collect();
    for step in identity::STEPS {
        assert!(
            kinds
                .iter()
                .any(|(_, i)| i.starts_with(&format!("{step}-"))),
            "a rule of step {step} is in the chain"
        );
    }
    let engine = flow::Flow::new(rules, out.join("provenance")).unwrap();
    engine.run(&flow::Options::default(), &|_| {}).unwrap();
    assert!(dry_run(built.clone()).iter().all(|o| o.reasons.is_empty()));

    let base = identities(None);
    let files = identity::sources(&crate_dir());
    let mut rerun_by: Vec<(String, BTreeSet<String>)> = Vec::new();
    for f in &files {
        let edited = identities(Some(f));
        let changed: BTreeSet<&str> = base
            .iter()
            .zip(&edited)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect();
        let expected: BTreeSet<&str> = identity::steps_of(f).into_iter().collect();
        assert_eq!(changed, expected, "{f}: the identities that change");

        let outcomes = dry_run(leak(&edited));
        let mut rerun = BTreeSet::new();
        for o in &outcomes {
            let step = kinds.iter().find(|(n, _)| *n == o.rule).unwrap().1.clone();
            let step = step.split('-').next().unwrap().to_string();
            let named = o
                .reasons
                .iter()
                .any(|r| matches!(r, flow::Reason::Implementation { .. }));
            assert_eq!(
                named,
                changed.contains(step.as_str()),
                "{f}: rule {} ({step}): {:?}",
                o.rule,
                o.reasons
            );
            if named {
                assert!(
                    o.reasons
                        .iter()
                        .any(|r| r.to_string().contains("implementation changed")),
                    "{:?}",
                    o.reasons
                );
                rerun.insert(o.rule.clone());
            }
        }
        rerun_by.push((f.clone(), rerun));
    }
    // What a user sees, on known cases.
    let rerun = |f: &str| &rerun_by.iter().find(|(g, _)| g == f).unwrap().1;
    let select_data = format!(
        "select/data/{}",
        inputs.data[0].file_stem().unwrap().to_string_lossy()
    );
    for f in [
        "src/select.rs",
        "src/events.rs",
        "src/rules/mod.rs",
        "../stage-api/src/select.rs",
    ] {
        assert!(rerun(f).contains(&select_data), "{f}: {:?}", rerun(f));
    }
    assert!(rerun("src/rules/select.rs").contains(&select_data));
    assert_eq!(
        rerun("src/plot.rs"),
        &BTreeSet::from(["plots".to_string(), "plots/classifier".to_string()])
    );
    assert_eq!(
        rerun("src/rules/results.rs"),
        &BTreeSet::from(["results".to_string()])
    );
    assert!(!rerun("src/rules/fit.rs").contains(&select_data));
}

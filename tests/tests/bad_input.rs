//! Inputs that are well-formed ROOT but not what the analysis needs give errors that name the
//! file, the tree and the branch: a missing tree, a missing branch, a branch of another type,
//! an empty tree.

use analysis::events::EventFile;
use analysis::rootio::{Ntuple, ReadError};
use analysis::rules;
use analysis::workflow::{AnalysisConfig, Inputs, WorkflowError};
use tests::fixture;

#[test]
fn missing_tree() {
    let err = Ntuple::open(fixture("data_2025_zstd.GamGam.root"), &["mini"]).unwrap_err();
    assert!(matches!(err, ReadError::NoTree { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("data_2025_zstd.GamGam.root")
            && msg.contains("'mini'")
            && msg.contains("analysis"),
        "{msg}"
    );
}

#[test]
fn missing_branch_and_wrong_type() {
    let nt = Ntuple::open(fixture("data_2020_lz4.GamGam.root"), &["mini"]).unwrap();
    let msg = nt
        .read_scalar::<f32>("photon_energy", 0..10)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data_2020_lz4") && msg.contains("'mini'") && msg.contains("'photon_energy'"),
        "{msg}"
    );

    let err = nt.read_scalar::<f32>("photon_pt", 0..10).unwrap_err();
    assert!(matches!(err, ReadError::WrongType { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("'photon_pt'") && msg.contains("vector<float>"),
        "{msg}"
    );
    let msg = nt
        .read_jagged::<i32>("photon_pt", 0..10)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("expected a vector of I32"), "{msg}");
    let msg = nt
        .read_scalar::<f32>("photon_n", 0..nt.entries() + 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("'photon_n'"), "{msg}");
}

#[test]
fn empty_tree_reads_as_empty_and_the_analysis_refuses_it() {
    let path = fixture("empty_2020.GamGam.root");
    let f = EventFile::open(&path).unwrap();
    assert_eq!(f.entries(), 0);
    let out = tempfile::tempdir().unwrap();
    let inputs = Inputs {
        data: vec![path],
        ..Default::default()
    };
    let err = rules::run(&inputs, &AnalysisConfig::default(), out.path()).unwrap_err();
    // The file's first rule refuses it, before any event loop.
    let WorkflowError::Flow(flow::FlowError::Rule { rule, source }) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(rule, "inspect/data/empty_2020.GamGam");
    assert!(matches!(
        source.downcast_ref::<WorkflowError>(),
        Some(WorkflowError::EmptyTree { .. })
    ));
    assert!(!out.path().join("work/select").exists());
    let msg = err.to_string();
    assert!(
        msg.contains("empty_2020.GamGam.root")
            && msg.contains("'mini'")
            && msg.contains("no entries"),
        "{msg}"
    );
}

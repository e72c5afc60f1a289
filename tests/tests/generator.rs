//! The SYNTHETIC default-dataset generator: deterministic to the byte (ROOT files record their
//! own path, so at the same path), and its files read back
//! through the same reader as ROOT-written files, with the 2020 layout and MC bookkeeping.

use analysis::events::{EventFile, Release};
use dataset::synth::{Config, XSECTION_PB};

fn small() -> Config {
    Config {
        seed: 11,
        data_events: 3000,
        mc_events: 500,
        continuum_events: 1000,
        ..Config::default()
    }
}

#[test]
fn same_seed_same_bytes_and_the_files_read_back() {
    let a = tempfile::tempdir().unwrap();
    let da = dataset::ensure_default(a.path(), &small(), || {}).unwrap();
    let (data1, mc1) = (
        std::fs::read(&da.data).unwrap(),
        std::fs::read(&da.mc).unwrap(),
    );
    std::fs::remove_file(a.path().join("manifest.json")).unwrap();
    let db = dataset::ensure_default(a.path(), &small(), || {}).unwrap();
    assert_eq!(data1, std::fs::read(&db.data).unwrap());
    assert_eq!(mc1, std::fs::read(&db.mc).unwrap());
    assert!(da.synthetic && da.data.to_str().unwrap().contains("SYNTHETIC"));

    let data = EventFile::open(&da.data).unwrap();
    assert_eq!(data.release(), Release::Y2020);
    assert_eq!(data.entries(), 3000);
    let ev = data.read(0..3000).unwrap();
    assert!(
        ev.photons.offsets.windows(2).all(|w| w[1] - w[0] >= 2),
        "the skim keeps ≥ 2 photons"
    );
    assert!(
        ev.photons.pt.iter().all(|&pt| pt >= 20.0),
        "photons above 20 GeV, in GeV"
    );
    let tight =
        ev.photons.tight_id.iter().filter(|&&t| t).count() as f64 / ev.photons.pt.len() as f64;
    assert!(
        (0.6..0.95).contains(&tight),
        "most photons pass tight ID, fakes often fail: {tight}"
    );
    // Data carry no MC weights (as the real data files: zeros), but the branches exist.
    assert!(ev
        .mc
        .as_ref()
        .unwrap()
        .xsection_pb
        .iter()
        .all(|&x| x == 0.0));

    let mc = EventFile::open(&da.mc).unwrap();
    let ev = mc.read(0..500).unwrap();
    let info = ev.mc.unwrap();
    assert!(info
        .xsection_pb
        .iter()
        .all(|&x| (x as f64 - XSECTION_PB).abs() < 1e-6));
    let sumw = info.sum_weights[0] as f64;
    let kept: f64 = info.weight.iter().sum::<f64>() / (0.97 * 0.99);
    assert!(
        sumw > kept,
        "SumWeights counts the events the skim dropped: {sumw} vs {kept}"
    );
}

#[test]
fn a_present_dataset_is_reused_not_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    dataset::ensure_default(dir.path(), &small(), || {}).unwrap();
    let mut regenerated = false;
    dataset::ensure_default(dir.path(), &small(), || regenerated = true).unwrap();
    assert!(!regenerated);
    let other = Config {
        seed: 12,
        ..small()
    };
    dataset::ensure_default(dir.path(), &other, || regenerated = true).unwrap();
    assert!(regenerated, "another seed regenerates");
}

#[test]
fn a_synthetic_file_says_so_itself_whatever_its_name() {
    let a = tempfile::tempdir().unwrap();
    let ds = dataset::ensure_default(a.path(), &small(), || {}).unwrap();
    // Renamed to look like a real Open Data file: its tree title still says SYNTHETIC.
    let renamed = a.path().join("data_A.GamGam.root");
    std::fs::copy(&ds.data, &renamed).unwrap();
    let f = EventFile::open(&renamed).unwrap();
    assert!(
        f.ntuple().title().contains("SYNTHETIC"),
        "{}",
        f.ntuple().title()
    );
    assert!(analysis::workflow::is_synthetic(&f));
    let inputs = analysis::workflow::Inputs {
        data: vec![renamed],
        ..Default::default()
    };
    let out = a.path().join("out");
    let r = analysis::rules::run(&inputs, &Default::default(), &out).unwrap();
    assert!(r.synthetic_inputs && r.provenance.inputs[0].synthetic);
}

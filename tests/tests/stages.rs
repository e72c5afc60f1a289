//! Every stage runs from a JSON document and gives what the direct call gives, so each can run
//! as its own process; the convert stage writes `.npy` files numpy can read.

use analysis::events::EventFile;
use analysis::stage::*;
use serde_json::json;
use tests::fixture;

fn roundtrip(stage: &str, input: serde_json::Value) -> serde_json::Value {
    let out = run_json(&Reference, stage, &input.to_string()).unwrap();
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_chain_through_json_equals_the_direct_calls() {
    let path = fixture("data_2020_zlib.GamGam.root");
    let events = EventFile::open(&path).unwrap().read(0..20000).unwrap();
    let cuts = Cuts::default();

    let sel = roundtrip("select", json!({"events": events, "cuts": cuts}));
    let direct = Reference.select(&events, &cuts).unwrap();
    assert_eq!(sel, serde_json::to_value(&direct).unwrap());

    let binning = Binning::default();
    let h = roundtrip(
        "histogram",
        json!({"diphotons": direct.diphotons, "binning": binning}),
    );
    let hist = Reference.histogram(&direct.diphotons, &binning).unwrap();
    assert_eq!(h, serde_json::to_value(&hist).unwrap());

    let model = FitModel::default();
    let f = roundtrip("fit", json!({"model": model, "histogram": hist}));
    let fit = Reference.fit(&model, &hist).unwrap();
    assert_eq!(f, serde_json::to_value(&fit).unwrap());

    let input = MeasureInput {
        fit,
        signal_mc: analysis::measure::SignalMc {
            weighted_yield: 300.0,
            sumw2: 2.0,
            xsection_pb: 0.11,
        },
        lumi_pb: 10064.0,
    };
    let m = roundtrip("measure", serde_json::to_value(&input).unwrap());
    assert_eq!(
        m,
        serde_json::to_value(Reference.measure(&input).unwrap()).unwrap()
    );

    let i = roundtrip("inspect", json!({"file": path}));
    assert_eq!(i["trees"][0]["entries"], 20000);
}

#[test]
fn bad_stage_inputs_are_errors_that_say_why() {
    let e = run_json(&Reference, "fit", r#"{"model": {}, "histogram": 3}"#).unwrap_err();
    assert!(e.message.starts_with("fit input:"), "{e}");
    let e = run_json(
        &Reference,
        "histogram",
        r#"{"diphotons": {"m_yy": [], "weight": []}, "binning": {"bins": 0, "lo": 1, "hi": 2}}"#,
    )
    .unwrap_err();
    assert!(e.message.contains("0 < bins"), "{e}");
    let e = run_json(
        &Reference,
        "histogram",
        r#"{"diphotons": {"m_yy": [1], "weight": []}, "binning": {"bins": 5, "lo": 0, "hi": 2}}"#,
    )
    .unwrap_err();
    assert!(e.message.contains("1 masses but 0 weights"), "{e}");
    assert!(run_json(&Reference, "plot", "{}")
        .unwrap_err()
        .message
        .contains("unknown stage"));
    let e = run_json(&Reference, "select", r#"{"cuts": {}, "extra": 1}"#).unwrap_err();
    assert!(e.message.starts_with("select input:"), "{e}");
}

/// Reads a 1-D little-endian `.npy` written by `convert`: (descr, shape, data bytes).
fn read_npy(path: &std::path::Path) -> (String, usize, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let descr = header
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let shape: usize = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (descr, shape, b[10 + hl..].to_vec())
}

#[test]
fn convert_writes_npy_columns_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let m = Reference
        .convert(&ConvertInput {
            file: fixture("data_2025_zstd.GamGam.root"),
            branches: Some(vec![
                "photon_pt".into(),
                "eventNumber".into(),
                "photon_isTightID".into(),
            ]),
            out_dir: dir.path().to_path_buf(),
        })
        .unwrap();
    assert_eq!(
        (m.tree.as_str(), m.entries, m.columns.len()),
        ("analysis", 20000, 3)
    );
    let r = &tests::reference()["data_2025_zstd.GamGam.root"];

    let (descr, n, data) = read_npy(&dir.path().join("photon_pt.values.npy"));
    assert_eq!(
        (descr.as_str(), n as u64),
        ("<f4", r["sum_photon_n"].as_u64().unwrap())
    );
    let sum: f64 = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .sum();
    let want = r["sum_photon_pt"].as_f64().unwrap();
    assert!(((sum - want) / want).abs() < 1e-12);
    let (descr, n, data) = read_npy(&dir.path().join("photon_pt.offsets.npy"));
    assert_eq!((descr.as_str(), n), ("<i8", 20001));
    let last = i64::from_le_bytes(data[data.len() - 8..].try_into().unwrap());
    assert_eq!(last as u64, r["sum_photon_n"].as_u64().unwrap());
    let (descr, n, _) = read_npy(&dir.path().join("eventNumber.npy"));
    assert_eq!((descr.as_str(), n), ("<u8", 20000));
    let (descr, _, _) = read_npy(&dir.path().join("photon_isTightID.values.npy"));
    assert_eq!(descr, "|b1");
    let manifest: NpyManifest =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest, m);
}

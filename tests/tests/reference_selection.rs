//! The selection and histogram agree with ROOT (`reference.json`) on every fixture: cut flow and
//! histogram counts exactly, Σ m_γγ to 1e-6, the MC weighted yield to 1e-6.

use analysis::events::EventFile;
use analysis::histogram::{Binning, Histogram};
use analysis::select::{select, CutFlow, Cuts, Diphotons};
use serde_json::Value;
use tests::{fixture, reference};

fn run(name: &str, chunk: u64) -> (Diphotons, CutFlow) {
    let file = EventFile::open(fixture(name)).unwrap();
    let (mut all, mut flow) = (Diphotons::default(), CutFlow::default());
    for r in file.chunks(chunk).unwrap() {
        let (d, f) = select(&file.read(r).unwrap(), &Cuts::default());
        all.extend(&d);
        flow.add(&f);
    }
    (all, flow)
}

#[test]
fn cut_flow_histogram_and_sums_match_root_on_every_fixture() {
    for (name, r) in &reference() {
        for chunk in [u64::MAX, 1777] {
            let (d, flow) = run(name, chunk);
            let want: Vec<(String, u64, u64)> = r["cut_flow"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["cut"].as_str().unwrap().to_string(),
                        c["pass"].as_u64().unwrap(),
                        c["all"].as_u64().unwrap(),
                    )
                })
                .collect();
            let got: Vec<(String, u64, u64)> = flow
                .0
                .iter()
                .map(|c| (c.cut.clone(), c.pass, c.all))
                .collect();
            assert_eq!(got, want, "{name}: cut flow");
            assert_eq!(d.len() as u64, r["selected"].as_u64().unwrap(), "{name}");

            let mut h = Histogram::new(Binning::default());
            let mut hw = Histogram::new(Binning::default());
            for (&m, &w) in d.m_yy.iter().zip(&d.weight) {
                analysis::histogram::fill(&mut h, m, 1.0);
                analysis::histogram::fill(&mut hw, m, w);
            }
            let want_h: Vec<f64> = r["hist_m_yy_105_160_1GeV"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(h.sumw, want_h, "{name}: histogram");
            assert_eq!(
                h.underflow + h.overflow,
                0.0,
                "{name}: the mass window cut keeps all inside"
            );

            let sum_m: f64 = d.m_yy.iter().sum();
            let want_m = r["sum_m_yy_selected"].as_f64().unwrap();
            assert!(
                ((sum_m - want_m) / want_m).abs() < 1e-6,
                "{name}: Σm {sum_m} vs {want_m}"
            );
            let want_w = r["weighted_yield"].as_f64().unwrap();
            assert!(
                ((hw.integral() - want_w) / want_w).abs() < 1e-6,
                "{name}: yield {} vs {want_w}",
                hw.integral()
            );
        }
    }
}

#[test]
fn the_mc_fixture_is_weighted() {
    let r: &Value = &reference()["mc_343981.ggH125_gamgam_2020_zlib.GamGam.root"];
    let (d, _) = run("mc_343981.ggH125_gamgam_2020_zlib.GamGam.root", u64::MAX);
    assert!(
        d.weight.iter().all(|&w| w != 1.0),
        "MC events carry physics weights"
    );
    assert!(r["weighted_yield"].as_f64().unwrap() != r["selected"].as_f64().unwrap());
}

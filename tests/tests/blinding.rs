//! Blinding holds through the whole chain: with the signal window blinded, the results do not
//! depend on the data events in the window. The reference analysis runs beside chains whose
//! select stage removes the data's window events, or changes them (other masses in the window,
//! other kinematics), after the selection: every blinded result — classifier, scores, categories,
//! fits, histogram — is identical; unblinded, the same change moves the results (so the
//! comparison can fail).

use analysis::rules::{chain, Chain, SelectImpl};
use analysis::stage::{Cuts, PhotonEvents, Reference, Select, SelectOutput, StageError};
use analysis::workflow::{AnalysisConfig, Inputs};
use std::path::Path;
use std::sync::Arc;
use tests::fixture;

const WINDOW: (f64, f64) = (120.0, 130.0);

/// What happens to the data's selected events in the window.
#[derive(Clone, Copy)]
enum Window {
    Removed,
    Changed,
}

/// The reference selection, then the data's window events removed or changed (signal MC is
/// left alone: it is never blinded).
struct Tampered(Window);

fn in_window(m: f64) -> bool {
    m >= WINDOW.0 && m <= WINDOW.1
}

impl Select for Tampered {
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError> {
        let mut out = Reference.select(events, cuts)?;
        if events.mc.is_some() {
            return Ok(out);
        }
        let d = &mut out.diphotons;
        let window: Vec<bool> = d.m_yy.iter().map(|&m| in_window(m)).collect();
        match self.0 {
            Window::Removed => {
                let keep = |v: &mut Vec<f64>| {
                    let mut i = 0;
                    v.retain(|_| {
                        i += 1;
                        !window[i - 1]
                    });
                };
                keep(&mut d.m_yy);
                keep(&mut d.weight);
                for c in analysis::select::kinematics_mut(&mut d.kinematics) {
                    keep(c);
                }
            }
            Window::Changed => {
                for (i, _) in window.iter().enumerate().filter(|(_, w)| **w) {
                    // Mirrored in the window, harder and more central: another event.
                    d.m_yy[i] = WINDOW.0 + WINDOW.1 - d.m_yy[i];
                    d.kinematics.pt1[i] *= 1.7;
                    d.kinematics.pt_yy[i] *= 2.5;
                    d.kinematics.eta1[i] *= 0.3;
                    d.kinematics.track_iso1[i] = 0.0;
                }
            }
        }
        Ok(out)
    }
}

/// results.json of the chain with `select` into `dir`, without its provenance (which names
/// the select implementation).
fn results(dir: &Path, select: SelectImpl, blind: bool) -> serde_json::Value {
    let inputs = Inputs {
        data: vec![fixture("data_2020_zlib.GamGam.root")],
        mc: vec![fixture("mc_343981.ggH125_gamgam_2020_zlib.GamGam.root")],
        continuum: vec![],
    };
    let cfg = AnalysisConfig {
        categorization: Some(Default::default()),
        blind: blind.then_some(WINDOW),
        ..Default::default()
    };
    let c = Chain {
        select,
        ..Chain::reference(dir)
    };
    let rules = chain(&inputs, &cfg, &c, Arc::new(|_| {})).unwrap();
    flow::Flow::new(rules, dir.join("provenance"))
        .unwrap()
        .run(&flow::Options::default(), &|_| {})
        .unwrap();
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    r.as_object_mut().unwrap().remove("provenance");
    r
}

fn tampered(how: Window) -> SelectImpl {
    SelectImpl {
        identity: format!("tampered-{}", how as u8),
        stage: Arc::new(Tampered(how)),
    }
}

#[test]
fn blinded_results_do_not_depend_on_the_window_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let reference = results(&dir("reference"), SelectImpl::reference(), true);
    assert!(reference["classifier"]["auc"].as_f64().unwrap() > 0.5);
    assert!(
        reference["categories"]["categories"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    for how in [Window::Removed, Window::Changed] {
        let name = format!("tampered-{}", how as u8);
        let blinded = results(&dir(&name), tampered(how), true);
        assert_eq!(blinded, reference, "{name}: the blinded results changed");
    }

    // Unblinded, the window's events count: the same tampering moves the results.
    let open = results(&dir("open"), SelectImpl::reference(), false);
    // 55 bins on 105–160 GeV: bins 15..25 are the window.
    let in_window: f64 = open["histogram"]["sumw"].as_array().unwrap()[15..25]
        .iter()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!(
        in_window > 50.0,
        "too few window events to tamper with: {in_window}"
    );
    for how in [Window::Removed, Window::Changed] {
        let name = format!("open-tampered-{}", how as u8);
        let r = results(&dir(&name), tampered(how), false);
        assert_ne!(r["fit"], open["fit"], "{name}");
        assert_ne!(r["combined"], open["combined"], "{name}");
    }
}

//! Events → selected diphotons: the photon selection of ROOT's df104 tutorial, the diphoton
//! mass, MC event weights and the cut flow.
//!
//! Arithmetic follows what ROOT does in `reference.py`, so counts agree exactly: ratios are
//! taken in `float`, and m_γγ is computed in double precision then stored as `float` (ROOT's
//! `mYY` returns `float`), and every later cut and the histogram use that `float` value.

use crate::events::PhotonEvents;
use serde::{Deserialize, Serialize};

/// The selection's parameters (GeV). [`Cuts::default`] is the reference selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cuts {
    /// Minimum photon pT.
    pub pt_min: f64,
    /// Maximum photon |η|.
    pub eta_max: f64,
    /// The barrel–endcap crack excluded in |η|.
    pub crack: (f64, f64),
    /// Maximum track isolation ptcone / pT (both photons).
    pub track_iso_max: f64,
    /// Maximum calorimeter isolation etcone / pT (both photons).
    pub calo_iso_max: f64,
    /// Minimum leading pT / m_γγ.
    pub lead_pt_over_m: f64,
    /// Minimum subleading pT / m_γγ.
    pub sublead_pt_over_m: f64,
    /// The m_γγ window, exclusive at both ends.
    pub mass_window: (f64, f64),
    /// Integrated luminosity for MC weights, pb⁻¹.
    pub lumi_pb: f64,
}

impl Default for Cuts {
    fn default() -> Self {
        Self {
            pt_min: 25.0,
            eta_max: 2.37,
            crack: (1.37, 1.52),
            track_iso_max: 0.065,
            calo_iso_max: 0.065,
            lead_pt_over_m: 0.35,
            sublead_pt_over_m: 0.25,
            mass_window: (105.0, 160.0),
            lumi_pb: 10064.0,
        }
    }
}

/// Names of the cuts, in order, as ROOT's `RDataFrame::Report` prints them in `reference.json`.
pub const CUT_NAMES: [&str; 7] = [
    "trigger",
    "exactly two tight photons in acceptance",
    "track isolation",
    "calorimeter isolation",
    "leading pT/m",
    "subleading pT/m",
    "mass window",
];

/// One line of the cut flow: events that reached the cut (`all`) and passed it (`pass`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutCount {
    pub cut: String,
    pub pass: u64,
    pub all: u64,
}

/// Events passing each cut, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutFlow(pub Vec<CutCount>);

impl Default for CutFlow {
    fn default() -> Self {
        CutFlow(
            CUT_NAMES
                .iter()
                .map(|c| CutCount {
                    cut: c.to_string(),
                    pass: 0,
                    all: 0,
                })
                .collect(),
        )
    }
}

impl CutFlow {
    /// Adds another cut flow's counts (same cuts).
    pub fn add(&mut self, other: &CutFlow) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.pass += b.pass;
            a.all += b.all;
        }
    }
    /// Events passing every cut.
    pub fn selected(&self) -> u64 {
        self.0.last().map_or(0, |c| c.pass)
    }
}

/// Selected events: the diphoton mass and the event weight, in file order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diphotons {
    /// m_γγ in GeV (a `float` value, as ROOT stores it).
    pub m_yy: Vec<f64>,
    /// Event weight: 1 for data; for MC mcWeight × scale factors × σ × L / ΣW.
    pub weight: Vec<f64>,
}

impl Diphotons {
    pub fn len(&self) -> usize {
        self.m_yy.len()
    }
    pub fn is_empty(&self) -> bool {
        self.m_yy.is_empty()
    }
    pub fn extend(&mut self, other: &Diphotons) {
        self.m_yy.extend_from_slice(&other.m_yy);
        self.weight.extend_from_slice(&other.weight);
    }
}

/// Applies the selection to one batch of events.
pub fn select(ev: &PhotonEvents, cuts: &Cuts) -> (Diphotons, CutFlow) {
    let mut flow = CutFlow::default();
    let mut out = Diphotons::default();
    let p = &ev.photons;
    let mut count = |k: usize, pass: bool| {
        flow.0[k].all += 1;
        flow.0[k].pass += pass as u64;
        pass
    };
    for i in 0..ev.len() {
        if !count(0, ev.trigger[i]) {
            continue;
        }
        let mut good = [0usize; 2];
        let mut n_good = 0;
        for j in p.of_event(i) {
            let eta = (p.eta[j] as f64).abs();
            let ok = p.tight_id[j]
                && p.pt[j] as f64 > cuts.pt_min
                && eta < cuts.eta_max
                && (eta < cuts.crack.0 || eta > cuts.crack.1);
            if ok {
                if n_good < 2 {
                    good[n_good] = j;
                }
                n_good += 1;
            }
        }
        if !count(1, n_good == 2) {
            continue;
        }
        let iso_ok =
            |iso: &[f32], max: f64| good.iter().all(|&j| ((iso[j] / p.pt[j]) as f64) < max);
        if !count(2, iso_ok(&p.track_iso, cuts.track_iso_max)) {
            continue;
        }
        if !count(3, iso_ok(&p.calo_iso, cuts.calo_iso_max)) {
            continue;
        }
        let m = diphoton_mass(p, good[0], good[1]);
        if !count(4, p.pt[good[0]] as f64 / m > cuts.lead_pt_over_m) {
            continue;
        }
        if !count(5, p.pt[good[1]] as f64 / m > cuts.sublead_pt_over_m) {
            continue;
        }
        if !count(6, m > cuts.mass_window.0 && m < cuts.mass_window.1) {
            continue;
        }
        out.m_yy.push(m);
        out.weight.push(match &ev.mc {
            Some(mc) if mc.xsection_pb[i] > 0.0 => {
                mc.weight[i] * mc.xsection_pb[i] as f64 * cuts.lumi_pb / mc.sum_weights[i] as f64
            }
            _ => 1.0,
        });
    }
    (out, flow)
}

/// Invariant mass of photons `a` and `b` (from pT, η, φ, E), rounded to `float` as ROOT's
/// `mYY` does.
fn diphoton_mass(p: &crate::events::Photons, a: usize, b: usize) -> f64 {
    let four = |j: usize| {
        let (pt, eta, phi) = (p.pt[j] as f64, p.eta[j] as f64, p.phi[j] as f64);
        [
            pt * phi.cos(),
            pt * phi.sin(),
            pt * eta.sinh(),
            p.e[j] as f64,
        ]
    };
    let (x, y) = (four(a), four(b));
    let (px, py, pz, e) = (x[0] + y[0], x[1] + y[1], x[2] + y[2], x[3] + y[3]);
    let m2 = e * e - px * px - py * py - pz * pz;
    // ROOT's LorentzVector::M() returns −√(−m²) for a spacelike sum (E slightly below |p|).
    let m = if m2 >= 0.0 { m2.sqrt() } else { -(-m2).sqrt() };
    (m as f32) as f64
}

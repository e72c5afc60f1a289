//! The selection's parameters and results: cuts, cut flow, selected diphotons. The selection
//! itself is `analysis::select`.

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

/// The reference selection (df104's cuts, 10.064 fb⁻¹).
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

/// The seven cuts of [`CUT_NAMES`], in that order, with zero counts.
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
    /// m_γγ in GeV (a value ROOT stored as `float`, widened to f64: compute with it as f64).
    pub m_yy: Vec<f64>,
    /// Event weight: 1 for data; for MC mcWeight × scale factors × σ × L / ΣW.
    pub weight: Vec<f64>,
}

impl Diphotons {
    /// Number of masses (`m_yy.len()`; a valid value has as many weights).
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

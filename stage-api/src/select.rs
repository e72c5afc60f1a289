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
    /// Name of the cut, one of [`CUT_NAMES`].
    pub cut: String,
    /// Events that passed the cut.
    pub pass: u64,
    /// Events that reached the cut.
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

/// Selected events: the diphoton mass and the event weight, in file order, and the
/// kinematics the later steps (classification, categorization) need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diphotons {
    /// m_γγ in GeV (a value ROOT stored as `float`, widened to f64: compute with it as f64).
    pub m_yy: Vec<f64>,
    /// Event weight: 1 for data; for MC mcWeight × scale factors × σ × L / ΣW.
    pub weight: Vec<f64>,
    /// One entry per selected event in every column (empty when a step does not need them).
    #[serde(default)]
    pub kinematics: Kinematics,
}

/// The selected events' two photons (the diphoton's first photon in file order is photon 1)
/// and the diphoton: columns, one entry per selected event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Kinematics {
    /// pT of photon 1, GeV (pT and E in GeV, η and φ as below: the file's `float`s widened to
    /// f64).
    pub pt1: Vec<f64>,
    /// η of photon 1, dimensionless.
    pub eta1: Vec<f64>,
    /// φ of photon 1, radians.
    pub phi1: Vec<f64>,
    /// E of photon 1, GeV.
    pub e1: Vec<f64>,
    /// pT of photon 2, GeV.
    pub pt2: Vec<f64>,
    /// η of photon 2, dimensionless.
    pub eta2: Vec<f64>,
    /// φ of photon 2, radians.
    pub phi2: Vec<f64>,
    /// E of photon 2, GeV.
    pub e2: Vec<f64>,
    /// Transverse momentum of the two photons' sum, GeV, computed in f64 from the widened
    /// values: √((pT1 cos φ1 + pT2 cos φ2)² + (pT1 sin φ1 + pT2 sin φ2)²).
    pub pt_yy: Vec<f64>,
    /// Isolation ratios of each photon, divided in f32 (as the cuts do) and widened.
    pub track_iso1: Vec<f64>,
    /// Track isolation / pT of photon 2.
    pub track_iso2: Vec<f64>,
    /// Calorimeter isolation / pT of photon 1.
    pub calo_iso1: Vec<f64>,
    /// Calorimeter isolation / pT of photon 2.
    pub calo_iso2: Vec<f64>,
}

impl Kinematics {
    /// The columns with their names, in declaration order.
    pub fn columns(&self) -> [(&'static str, &Vec<f64>); 13] {
        [
            ("pt1", &self.pt1),
            ("eta1", &self.eta1),
            ("phi1", &self.phi1),
            ("e1", &self.e1),
            ("pt2", &self.pt2),
            ("eta2", &self.eta2),
            ("phi2", &self.phi2),
            ("e2", &self.e2),
            ("pt_yy", &self.pt_yy),
            ("track_iso1", &self.track_iso1),
            ("track_iso2", &self.track_iso2),
            ("calo_iso1", &self.calo_iso1),
            ("calo_iso2", &self.calo_iso2),
        ]
    }
    fn columns_mut(&mut self) -> [&mut Vec<f64>; 13] {
        [
            &mut self.pt1,
            &mut self.eta1,
            &mut self.phi1,
            &mut self.e1,
            &mut self.pt2,
            &mut self.eta2,
            &mut self.phi2,
            &mut self.e2,
            &mut self.pt_yy,
            &mut self.track_iso1,
            &mut self.track_iso2,
            &mut self.calo_iso1,
            &mut self.calo_iso2,
        ]
    }
    /// Appends each column of `other` to the same column of these.
    pub fn extend(&mut self, other: &Kinematics) {
        for (a, (_, b)) in self.columns_mut().into_iter().zip(other.columns()) {
            a.extend_from_slice(b);
        }
    }
}

impl Diphotons {
    /// Number of masses (`m_yy.len()`; a valid value has as many weights).
    pub fn len(&self) -> usize {
        self.m_yy.len()
    }
    /// Whether there are no selected events (`m_yy` is empty).
    pub fn is_empty(&self) -> bool {
        self.m_yy.is_empty()
    }
    /// Appends the events of `other` (masses, weights and kinematics) to these.
    pub fn extend(&mut self, other: &Diphotons) {
        self.m_yy.extend_from_slice(&other.m_yy);
        self.weight.extend_from_slice(&other.weight);
        self.kinematics.extend(&other.kinematics);
    }
}

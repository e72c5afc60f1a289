//! The photon event model: one columnar batch layout, in GeV, for both ATLAS Open Data
//! releases. Reading files into it is `analysis::events`.

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Which ATLAS Open Data release a file follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Release {
    /// 13 TeV 2020 release: tree `mini`, MeV, `std::vector` branches.
    Y2020,
    /// 13 TeV 2025 release: tree `analysis`, GeV, `ROOT::VecOps::RVec` branches.
    Y2025,
}

impl Release {
    /// Tree names of the releases, in the order files are searched for them.
    pub const TREES: [&'static str; 2] = ["mini", "analysis"];

    /// Stored energy units per GeV (values are divided by it, as ROOT's `pt / 1000.f` does).
    pub fn units_per_gev(self) -> f32 {
        match self {
            Release::Y2020 => 1000.0,
            Release::Y2025 => 1.0,
        }
    }
}

/// Photons of a batch of events, flat: photon `j` of event `i` is at index `offsets[i] + j`.
/// Energies and momenta in GeV, in file order (leading photon first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Photons {
    /// `n_events + 1` offsets, starting at 0.
    pub offsets: Vec<u32>,
    /// Transverse momentum per photon, GeV (flat, indexed by `offsets`).
    pub pt: Vec<f32>,
    /// Pseudorapidity η per photon, dimensionless (flat, indexed by `offsets`).
    pub eta: Vec<f32>,
    /// Azimuth φ per photon, radians (flat, indexed by `offsets`).
    pub phi: Vec<f32>,
    /// Energy per photon, GeV (flat, indexed by `offsets`).
    pub e: Vec<f32>,
    /// Tight identification flag per photon (`photon_isTightID`; flat, indexed by `offsets`).
    pub tight_id: Vec<bool>,
    /// Track isolation (2020 `ptcone30`, 2025 `ptcone20`), GeV.
    pub track_iso: Vec<f32>,
    /// Calorimeter isolation (2020 `etcone20`, 2025 `topoetcone40`), GeV.
    pub calo_iso: Vec<f32>,
}

impl Photons {
    /// Index range of the photons of event `i`.
    pub fn of_event(&self, i: usize) -> Range<usize> {
        self.offsets[i] as usize..self.offsets[i + 1] as usize
    }
}

/// MC bookkeeping per event; present when the file has the branches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct McInfo {
    /// Product of `mcWeight` and the scale factors, in double precision.
    pub weight: Vec<f64>,
    /// Cross-section in pb (2020 `XSection`).
    pub xsection_pb: Vec<f32>,
    /// Sum of MC weights of all generated events (2020 `SumWeights`).
    pub sum_weights: Vec<f32>,
}

/// A batch of events: entries `entries` of one file, columnar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotonEvents {
    /// The release the file follows.
    pub release: Release,
    /// Tree entries this batch holds.
    pub entries: Range<u64>,
    /// Per event: whether the photon trigger fired (`trigP`).
    pub trigger: Vec<bool>,
    /// Per event: the event number (`eventNumber`).
    pub event_number: Vec<u64>,
    /// The photons of the batch's events, flat (see [`Photons`]).
    pub photons: Photons,
    /// MC bookkeeping, one value per event in each column; `None` for data and for files
    /// without the MC branches.
    pub mc: Option<McInfo>,
}

impl PhotonEvents {
    /// Number of events in the batch (`trigger.len()`).
    pub fn len(&self) -> usize {
        self.trigger.len()
    }

    /// Whether the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.trigger.is_empty()
    }

    /// Checks the batch is consistent (every per-event column has one value per event, the
    /// photon offsets start at 0, never decrease and end at the photon columns' length), as
    /// a batch from a JSON document may not be.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.len();
        let p = &self.photons;
        let mut per_event = vec![("event_number", self.event_number.len())];
        if let Some(mc) = &self.mc {
            per_event.extend([
                ("mc.weight", mc.weight.len()),
                ("mc.xsection_pb", mc.xsection_pb.len()),
                ("mc.sum_weights", mc.sum_weights.len()),
            ]);
        }
        if let Some((name, len)) = per_event.iter().find(|(_, len)| *len != n) {
            return Err(format!("{name} has {len} values for {n} events"));
        }
        if p.offsets.len() != n + 1
            || p.offsets.first() != Some(&0)
            || p.offsets.windows(2).any(|w| w[1] < w[0])
        {
            return Err(format!(
                "photon offsets must be {} non-decreasing values starting at 0",
                n + 1
            ));
        }
        let np = p.offsets[n] as usize;
        let columns = [
            ("pt", p.pt.len()),
            ("eta", p.eta.len()),
            ("phi", p.phi.len()),
            ("e", p.e.len()),
            ("tight_id", p.tight_id.len()),
            ("track_iso", p.track_iso.len()),
            ("calo_iso", p.calo_iso.len()),
        ];
        if let Some((name, len)) = columns.iter().find(|(_, len)| *len != np) {
            return Err(format!(
                "photons.{name} has {len} values, the offsets say {np} photons"
            ));
        }
        Ok(())
    }
}

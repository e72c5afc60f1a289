//! Columns → the photon event model: one layout, in GeV, for both ATLAS Open Data releases.
//!
//! | release | tree       | units | photon vectors           | isolation branches                  |
//! |---------|------------|-------|--------------------------|-------------------------------------|
//! | 2020    | `mini`     | MeV   | `std::vector<float>`     | `photon_ptcone30`, `photon_etcone20` |
//! | 2025    | `analysis` | GeV   | `ROOT::VecOps::RVec<float>` | `photon_ptcone20`, `photon_topoetcone40` |
//!
//! The release is detected from the file (tree name), never from its name. Events come in
//! columnar batches ([`PhotonEvents`]): flat photon arrays plus per-event offsets, read over entry
//! ranges so memory stays bounded whatever the file size.

use crate::rootio::{Ntuple, ReadError};
use std::ops::Range;
use std::path::Path;

pub use stage_api::events::{McInfo, PhotonEvents, Photons, Release};

/// The release whose tree is called `name`.
fn release_of_tree(name: &str) -> Option<Release> {
    match name {
        "mini" => Some(Release::Y2020),
        "analysis" => Some(Release::Y2025),
        _ => None,
    }
}

/// Branch names of `release` for each field of the event model.
pub fn branches(release: Release) -> &'static Branches {
    match release {
        Release::Y2020 => &BRANCHES_2020,
        Release::Y2025 => &BRANCHES_2025,
    }
}

/// Branch names behind the event model's fields in one release.
#[derive(Debug)]
pub struct Branches {
    /// Branch of the photon trigger flag.
    pub trigger: &'static str,
    /// Branch of the event number.
    pub event_number: &'static str,
    /// Branch of the number of photons.
    pub photon_n: &'static str,
    /// Branch of the photon transverse momenta (MeV in 2020, GeV in 2025).
    pub pt: &'static str,
    /// Branch of the photon pseudorapidities.
    pub eta: &'static str,
    /// Branch of the photon azimuthal angles φ (radians).
    pub phi: &'static str,
    /// Branch of the photon energies (MeV in 2020, GeV in 2025).
    pub e: &'static str,
    /// Branch of the photon tight-identification flags.
    pub tight_id: &'static str,
    /// Branch of the photon track isolation (`ptcone`).
    pub track_iso: &'static str,
    /// Branch of the photon calorimeter isolation (`etcone` / `topoetcone`).
    pub calo_iso: &'static str,
    /// MC weight factors multiplied into the event weight (absent ones count as 1).
    pub weight_factors: &'static [&'static str],
    /// Branch of the MC cross-section in pb (`None`: the release has none).
    pub xsection: Option<&'static str>,
    /// Branch of the MC sum of weights (`None`: the release has none).
    pub sum_weights: Option<&'static str>,
}

impl Branches {
    /// The photon vector branches, in the order the event model reads them.
    pub fn photon_vectors(&self) -> [&'static str; 6] {
        [
            self.pt,
            self.eta,
            self.phi,
            self.e,
            self.track_iso,
            self.calo_iso,
        ]
    }
}

static BRANCHES_2020: Branches = Branches {
    trigger: "trigP",
    event_number: "eventNumber",
    photon_n: "photon_n",
    pt: "photon_pt",
    eta: "photon_eta",
    phi: "photon_phi",
    e: "photon_E",
    tight_id: "photon_isTightID",
    track_iso: "photon_ptcone30",
    calo_iso: "photon_etcone20",
    weight_factors: &[
        "mcWeight",
        "scaleFactor_PILEUP",
        "scaleFactor_PHOTON",
        "scaleFactor_PhotonTRIGGER",
    ],
    xsection: Some("XSection"),
    sum_weights: Some("SumWeights"),
};

static BRANCHES_2025: Branches = Branches {
    trigger: "trigP",
    event_number: "eventNumber",
    photon_n: "photon_n",
    pt: "photon_pt",
    eta: "photon_eta",
    phi: "photon_phi",
    e: "photon_e",
    tight_id: "photon_isTightID",
    track_iso: "photon_ptcone20",
    calo_iso: "photon_topoetcone40",
    weight_factors: &["mcWeight", "ScaleFactor_PILEUP", "ScaleFactor_PHOTON"],
    xsection: None,
    sum_weights: None,
};

/// A photon ntuple of either release, read in batches of events.
#[derive(Debug)]
pub struct EventFile {
    ntuple: Ntuple,
    release: Release,
    /// Whether MC weight columns are read (when the file has them).
    weights: bool,
}

impl EventFile {
    /// Opens `path` and detects its release from the tree it holds.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let ntuple = Ntuple::open(path, &Release::TREES)?;
        let release = release_of_tree(ntuple.tree_name())
            .expect("Ntuple::open only opens the trees of Release::TREES");
        Ok(Self {
            ntuple,
            release,
            weights: true,
        })
    }

    /// Reads the file as data: no MC weight columns (every event weighs 1), whatever
    /// branches it has — 2020 data files carry `mcWeight`, `XSection`, … filled with zeros,
    /// and the workflow gives every file passed as data weight 1.
    pub fn as_data(mut self) -> Self {
        self.weights = false;
        self
    }

    /// The branches [`EventFile::read`] reads, in file order.
    pub fn branches_read(&self) -> Vec<&str> {
        let b = branches(self.release);
        let mut wanted = vec![b.trigger, b.event_number, b.photon_n, b.tight_id];
        wanted.extend(b.photon_vectors());
        if self.reads_weights() {
            wanted.extend(
                b.weight_factors
                    .iter()
                    .filter(|f| self.ntuple.has_branch(f)),
            );
            wanted.extend(b.xsection.iter().chain(&b.sum_weights));
        }
        self.ntuple
            .branch_names()
            .filter(|n| wanted.contains(n))
            .collect()
    }

    /// Whether [`EventFile::read`] fills [`PhotonEvents::mc`].
    fn reads_weights(&self) -> bool {
        let b = branches(self.release);
        let (Some(xs), Some(sw)) = (b.xsection, b.sum_weights) else {
            return false;
        };
        self.weights && self.ntuple.has_branch(xs) && self.ntuple.has_branch(sw)
    }

    /// The file's release (detected from its tree name).
    pub fn release(&self) -> Release {
        self.release
    }
    /// Number of entries (events) in the tree.
    pub fn entries(&self) -> u64 {
        self.ntuple.entries()
    }
    /// The underlying ntuple.
    pub fn ntuple(&self) -> &Ntuple {
        &self.ntuple
    }

    /// Entry ranges of about `target` events, aligned to the file's baskets.
    pub fn chunks(&self, target: u64) -> Result<Vec<Range<u64>>, ReadError> {
        self.ntuple.chunks(&self.branches_read(), target)
    }

    /// Reads entries `range` into the event model. Checks that every photon vector has
    /// `photon_n` values in every event.
    pub fn read(&self, range: Range<u64>) -> Result<PhotonEvents, ReadError> {
        let mut events = empty_events(self.release);
        self.read_into(range, &mut events, &mut ReadBuffers::default())?;
        Ok(events)
    }

    /// [`EventFile::read`] into `events`, reusing its columns' memory and `buffers`' (the
    /// event loop keeps one of each per thread: no allocation from batch to batch). On an
    /// error `events` holds a partial batch.
    pub fn read_into(
        &self,
        range: Range<u64>,
        events: &mut PhotonEvents,
        buffers: &mut ReadBuffers,
    ) -> Result<(), ReadError> {
        let nt = &self.ntuple;
        let b = branches(self.release);
        let scale = self.release.units_per_gev();
        let read_f32 = |name: &str, gev: bool, values: &mut Vec<f32>, offsets: &mut Vec<u32>| {
            nt.read_jagged_into::<f32>(name, range.clone(), values, offsets)?;
            if gev && scale != 1.0 {
                values.iter_mut().for_each(|v| *v /= scale);
            }
            Ok::<_, ReadError>(())
        };
        events.release = self.release;
        events.entries = range.clone();
        let p = &mut events.photons;
        let [o_eta, o_phi, o_e, o_tight, o_track, o_calo] = &mut buffers.offsets;
        // The branches are read (inflated, decoded) in parallel: a batch of one file uses
        // every core there is. Errors are taken in branch order, so the message does not
        // depend on which thread finished first.
        let mut floats = [
            (b.pt, true, &mut p.pt, &mut p.offsets),
            (b.eta, false, &mut p.eta, o_eta),
            (b.phi, false, &mut p.phi, o_phi),
            (b.e, true, &mut p.e, o_e),
            (b.track_iso, true, &mut p.track_iso, o_track),
            (b.calo_iso, true, &mut p.calo_iso, o_calo),
        ];
        let ((trigger, event_number), ((photon_n, tight), (floats, mc))) = rayon::join(
            || {
                rayon::join(
                    || nt.read_scalar_into::<bool>(b.trigger, range.clone(), &mut events.trigger),
                    || nt.read_id_into(b.event_number, range.clone(), &mut events.event_number),
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || nt.read_count_into(b.photon_n, range.clone(), &mut buffers.counts),
                            || {
                                nt.read_jagged_into::<bool>(
                                    b.tight_id,
                                    range.clone(),
                                    &mut p.tight_id,
                                    o_tight,
                                )
                            },
                        )
                    },
                    || {
                        rayon::join(
                            || {
                                use rayon::prelude::*;
                                floats
                                    .par_iter_mut()
                                    .map(|(name, gev, values, offsets)| {
                                        read_f32(name, *gev, values, offsets)
                                    })
                                    .collect::<Vec<_>>()
                            },
                            || {
                                self.read_mc_into(
                                    range.clone(),
                                    &mut events.mc,
                                    &mut buffers.factor,
                                )
                            },
                        )
                    },
                )
            },
        );
        trigger?;
        event_number?;
        photon_n?;
        floats.into_iter().collect::<Result<(), _>>()?;
        let offsets = &events.photons.offsets;
        let check = |name: &str, o: &[u32]| -> Result<(), ReadError> {
            if o == offsets.as_slice() {
                return Ok(());
            }
            let i = o.iter().zip(offsets).position(|(a, b)| a != b).unwrap_or(0);
            Err(ReadError::Inconsistent {
                file: nt.path().to_path_buf(),
                tree: nt.tree_name().to_string(),
                reason: format!(
                    "entry {}: branch '{name}' has a different photon count than '{}'",
                    range.start + i.saturating_sub(1) as u64,
                    b.pt
                ),
            })
        };
        // photon_n as running offsets, in place: counts[i] becomes the end of event i.
        let counts = &mut buffers.counts;
        let mut total = 0u64;
        for n in counts.iter_mut() {
            total += *n as u64;
            *n = total.min(u32::MAX as u64) as u32;
        }
        counts.insert(0, 0);
        check(b.photon_n, counts)?;
        let [o_eta, o_phi, o_e, o_tight, o_track, o_calo] = &buffers.offsets;
        check(b.eta, o_eta)?;
        check(b.phi, o_phi)?;
        check(b.e, o_e)?;
        tight?;
        check(b.tight_id, o_tight)?;
        check(b.track_iso, o_track)?;
        check(b.calo_iso, o_calo)?;
        mc
    }

    /// The MC columns of `range` into `mc` (left `None` for data: no cross-section branches).
    fn read_mc_into(
        &self,
        range: Range<u64>,
        mc: &mut Option<McInfo>,
        factor: &mut Vec<f32>,
    ) -> Result<(), ReadError> {
        let nt = &self.ntuple;
        let b = branches(self.release);
        let (true, Some(xs), Some(sw)) = (self.reads_weights(), b.xsection, b.sum_weights) else {
            *mc = None;
            return Ok(());
        };
        let mc = mc.get_or_insert_with(McInfo::default);
        mc.weight.clear();
        mc.weight.resize((range.end - range.start) as usize, 1.0);
        for f in b.weight_factors.iter().filter(|f| nt.has_branch(f)) {
            nt.read_scalar_into::<f32>(f, range.clone(), factor)?;
            for (w, v) in mc.weight.iter_mut().zip(factor.iter()) {
                *w *= *v as f64;
            }
        }
        nt.read_scalar_into::<f32>(xs, range.clone(), &mut mc.xsection_pb)?;
        nt.read_scalar_into::<f32>(sw, range, &mut mc.sum_weights)
    }
}

/// A batch of no events, to be filled by [`EventFile::read_into`].
pub fn empty_events(release: Release) -> PhotonEvents {
    PhotonEvents {
        release,
        entries: 0..0,
        trigger: Vec::new(),
        event_number: Vec::new(),
        photons: Photons::default(),
        mc: None,
    }
}

/// Scratch memory of [`EventFile::read_into`] besides the events: each photon vector's
/// offsets (checked against `photon_pt`'s), the photon counts, one MC weight factor.
#[derive(Debug, Default)]
pub struct ReadBuffers {
    offsets: [Vec<u32>; 6],
    counts: Vec<u32>,
    factor: Vec<f32>,
}

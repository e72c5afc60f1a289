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

use crate::rootio::{Jagged, Ntuple, ReadError};
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
    pub trigger: &'static str,
    pub event_number: &'static str,
    pub photon_n: &'static str,
    pub pt: &'static str,
    pub eta: &'static str,
    pub phi: &'static str,
    pub e: &'static str,
    pub tight_id: &'static str,
    pub track_iso: &'static str,
    pub calo_iso: &'static str,
    /// MC weight factors multiplied into the event weight (absent ones count as 1).
    pub weight_factors: &'static [&'static str],
    pub xsection: Option<&'static str>,
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
}

impl EventFile {
    /// Opens `path` and detects its release from the tree it holds.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let ntuple = Ntuple::open(path, &Release::TREES)?;
        let release = release_of_tree(ntuple.tree_name())
            .expect("Ntuple::open only opens the trees of Release::TREES");
        Ok(Self { ntuple, release })
    }

    pub fn release(&self) -> Release {
        self.release
    }
    pub fn entries(&self) -> u64 {
        self.ntuple.entries()
    }
    pub fn ntuple(&self) -> &Ntuple {
        &self.ntuple
    }

    /// Entry ranges of about `target` events, aligned to the file's baskets.
    pub fn chunks(&self, target: u64) -> Result<Vec<Range<u64>>, ReadError> {
        let b = branches(self.release);
        let mut names = vec![b.trigger, b.photon_n, b.tight_id];
        names.extend(b.photon_vectors());
        self.ntuple.chunks(&names, target)
    }

    /// Reads entries `range` into the event model. Checks that every photon vector has
    /// `photon_n` values in every event.
    pub fn read(&self, range: Range<u64>) -> Result<PhotonEvents, ReadError> {
        let nt = &self.ntuple;
        let b = branches(self.release);
        let scale = self.release.units_per_gev();
        let read_f32 = |name: &str, gev: bool| -> Result<Jagged<f32>, ReadError> {
            let mut j = nt.read_jagged::<f32>(name, range.clone())?;
            if gev && scale != 1.0 {
                j.values.iter_mut().for_each(|v| *v /= scale);
            }
            Ok(j)
        };
        // The branches are read (inflated, decoded) in parallel: a batch of one file uses
        // every core there is. Errors are taken in branch order, so the message does not
        // depend on which thread finished first.
        use rayon::prelude::*;
        let floats = [
            (b.pt, true),
            (b.eta, false),
            (b.phi, false),
            (b.e, true),
            (b.track_iso, true),
            (b.calo_iso, true),
        ];
        let ((trigger, event_number), ((photon_n, tight), (floats, mc))) = rayon::join(
            || {
                rayon::join(
                    || nt.read_scalar::<bool>(b.trigger, range.clone()),
                    || nt.read_id(b.event_number, range.clone()),
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || nt.read_count(b.photon_n, range.clone()),
                            || nt.read_jagged::<bool>(b.tight_id, range.clone()),
                        )
                    },
                    || {
                        rayon::join(
                            || {
                                floats
                                    .par_iter()
                                    .map(|&(name, gev)| read_f32(name, gev))
                                    .collect::<Vec<_>>()
                            },
                            || self.read_mc(range.clone()),
                        )
                    },
                )
            },
        );
        let (trigger, event_number, photon_n) = (trigger?, event_number?, photon_n?);
        let mut floats = floats
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        let mut next = || floats.next().expect("six float branches");
        let (pt, eta, phi, e, track_iso, calo_iso) =
            (next(), next(), next(), next(), next(), next());
        let offsets = pt.offsets.clone();
        let check = |name: &str, o: &[u32]| -> Result<(), ReadError> {
            if o == offsets.as_slice() {
                return Ok(());
            }
            let i = o
                .iter()
                .zip(&offsets)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
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
        let mut counts = Vec::with_capacity(photon_n.len() + 1);
        counts.push(0u32);
        let mut total = 0u64;
        for n in &photon_n {
            total += *n as u64;
            counts.push(total.min(u32::MAX as u64) as u32);
        }
        check(b.photon_n, &counts)?;
        check(b.eta, &eta.offsets)?;
        check(b.phi, &phi.offsets)?;
        check(b.e, &e.offsets)?;
        let tight = tight?;
        check(b.tight_id, &tight.offsets)?;
        check(b.track_iso, &track_iso.offsets)?;
        check(b.calo_iso, &calo_iso.offsets)?;
        let mc = mc?;
        Ok(PhotonEvents {
            release: self.release,
            entries: range,
            trigger,
            event_number,
            photons: Photons {
                offsets,
                pt: pt.values,
                eta: eta.values,
                phi: phi.values,
                e: e.values,
                tight_id: tight.values,
                track_iso: track_iso.values,
                calo_iso: calo_iso.values,
            },
            mc,
        })
    }

    fn read_mc(&self, range: Range<u64>) -> Result<Option<McInfo>, ReadError> {
        let nt = &self.ntuple;
        let b = branches(self.release);
        let (Some(xs), Some(sw)) = (b.xsection, b.sum_weights) else {
            return Ok(None);
        };
        if !nt.has_branch(xs) || !nt.has_branch(sw) {
            return Ok(None);
        }
        let mut weight = vec![1.0f64; (range.end - range.start) as usize];
        for f in b.weight_factors.iter().filter(|f| nt.has_branch(f)) {
            for (w, v) in weight
                .iter_mut()
                .zip(nt.read_scalar::<f32>(f, range.clone())?)
            {
                *w *= v as f64;
            }
        }
        Ok(Some(McInfo {
            weight,
            xsection_pb: nt.read_scalar::<f32>(xs, range.clone())?,
            sum_weights: nt.read_scalar::<f32>(sw, range)?,
        }))
    }
}

//! The SYNTHETIC default dataset: diphoton events in the exact 2020 ATLAS Open Data GamGam
//! layout (tree `mini`, MeV), from a seeded generator, so `cargo xtask analyze` runs anywhere.
//!
//! These are **not real ATLAS data**. The physics follows `make_fixtures.py` (the generator of
//! the ROOT-written test fixtures): a falling m_γγ background (95 GeV + an exponential of 28 GeV
//! slope), a Higgs peak at 125 GeV with 1.6 GeV resolution, diphoton pT and rapidity spectra,
//! an isotropic decay boosted to the lab, extra fake photons that mostly fail tight ID and
//! isolation, and a ≥ 2 photon skim. The signal content is fixed by physics, not tuned: the data
//! file holds exactly `round(σ×B × L)` generated H→γγ events, so a correct analysis measures
//! μ ≈ 1 within its statistical error.

use analysis::rng::Rng;
use oxyroot::{RootFile, WriterTree};
use std::path::Path;

/// σ(gg→H) × BR(H→γγ) in pb at 13 TeV, m_H = 125 GeV (48.6 pb × 2.27e-3).
pub const XSECTION_PB: f64 = 0.110;
/// Integrated luminosity the synthetic data represents, pb⁻¹ (the 2020 release's 10.064 fb⁻¹).
pub const LUMI_PB: f64 = 10064.0;
/// Channel number of the real ggH125 γγ sample, reused for the synthetic one.
pub const GGH_CHANNEL: i32 = 343981;
/// Bumped whenever the generated events or the files' bytes change (4: branches record their
/// compression, no vector StreamerInfo; 5: fake photons' pT scales with the event's mass; 6: a
/// continuum file): a dataset made by another version is regenerated.
pub const GENERATOR_VERSION: u32 = 6;

/// Title written into every synthetic tree, so the label travels with the file.
pub const SYNTHETIC_TITLE: &str =
    "SYNTHETIC events in the ATLAS Open Data 2020 GamGam layout - NOT real ATLAS data";

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the generator (the MC file's is derived from it).
    pub seed: u64,
    /// Events in the data file after the ≥ 2 photon skim (about one real 2020 period: 430k).
    pub data_events: usize,
    /// Events in the signal MC file after the skim.
    pub mc_events: usize,
    /// Compression setting of the files (ROOT's algorithm × 100 + level; 101 = zlib-1).
    pub compression: i32,
    /// Signal in the data relative to the Standard Model's σ × B (1: the default; 0:
    /// background-only pseudo-data, for closure tests that inject signal).
    pub signal_strength: f64,
    /// Events in the continuum file: background only, from a seed of its own, in the data
    /// layout — the template of the spurious-signal test (0: no such file).
    pub continuum_events: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 20200,
            data_events: 430_000,
            mc_events: 100_000,
            compression: 101,
            signal_strength: 1.0,
            continuum_events: 430_000,
        }
    }
}

/// What was written, for the manifest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Written {
    /// Events in the data file (after the skim).
    pub data_events: usize,
    /// Generated H→γγ events hidden in the data (before the skim).
    pub data_signal_generated: usize,
    /// Events in the signal MC file (after the skim).
    pub mc_events: usize,
    /// MC events generated before the skim (`SumWeights` sums their weights).
    pub mc_generated: usize,
    /// Sum of the weights of all generated MC events (written as `SumWeights`).
    pub mc_sum_weights: f64,
    /// Events in the continuum file (0: none written).
    #[serde(default)]
    pub continuum_events: usize,
}

/// Errors writing the synthetic files.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {reason}")]
pub struct WriteError {
    /// The file or folder being written.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// One event's photons, in MeV, leading first.
#[derive(Default)]
struct Event {
    pt: Vec<f32>,
    eta: Vec<f32>,
    phi: Vec<f32>,
    e: Vec<f32>,
    ptcone30: Vec<f32>,
    etcone20: Vec<f32>,
    pt_syst: Vec<f32>,
    tight: Vec<bool>,
    trig_matched: Vec<bool>,
    truth_matched: Vec<bool>,
    conv_type: Vec<i32>,
    trigger: bool,
    weight: f32,
}

/// Generates one event before the skim; `signal` chooses H→γγ or background.
fn generate(rng: &mut Rng, signal: bool, mc: bool) -> Event {
    let m = if signal {
        rng.gaus(125.0, 1.6)
    } else {
        95.0 + rng.exp(28.0)
    };
    // As in nature: the Higgs is produced harder (gluon fusion's pT_γγ) and more central than
    // the diphoton continuum, whose decay angle is forward-peaked (t-channel qq̄ → γγ), and the
    // background has fakes (below). These are what a classifier can use; m_γγ itself is not.
    // pT_γγ/m has one distribution at every mass (the continuum scales with m, as the relative
    // pT/m cuts assume), so a classifier on pT/m ratios does not sculpt the background m_γγ.
    let ptyy = m * rng.exp(if signal { 50.0 / 125.0 } else { 20.0 / 125.0 });
    let y = rng.gaus(0.0, if signal { 1.0 } else { 1.5 });
    let phiyy = rng.range(-std::f64::consts::PI, std::f64::consts::PI);
    let mt = (m * m + ptyy * ptyy).sqrt();
    let (sx, sy, sz, se) = (
        ptyy * phiyy.cos(),
        ptyy * phiyy.sin(),
        mt * y.sinh(),
        mt * y.cosh(),
    );
    let (bx, by, bz) = (sx / se, sy / se, sz / se);
    let b2 = bx * bx + by * by + bz * bz;
    let g = 1.0 / (1.0 - b2).sqrt();
    let ct = if signal {
        // A scalar decays isotropically.
        rng.range(-1.0, 1.0)
    } else {
        // Density ∝ 1 / (1 − 0.8 cos²θ*), by rejection (its maximum is 5).
        loop {
            let c = rng.range(-1.0, 1.0);
            if rng.uniform() * 5.0 < 1.0 / (1.0 - 0.8 * c * c) {
                break c;
            }
        }
    };
    let st = (1.0 - ct * ct).sqrt();
    let ph = rng.range(-std::f64::consts::PI, std::f64::consts::PI);
    // (px, py, pz, E, real photon?)
    let mut cands: Vec<(f64, f64, f64, f64, bool)> = Vec::with_capacity(8);
    for s in [-1.0, 1.0] {
        let (ax, ay, az, ae) = (
            s * m / 2.0 * st * ph.cos(),
            s * m / 2.0 * st * ph.sin(),
            s * m / 2.0 * ct,
            m / 2.0,
        );
        let bp = bx * ax + by * ay + bz * az;
        let g2 = if b2 > 0.0 { (g - 1.0) / b2 } else { 0.0 };
        cands.push((
            ax + g2 * bp * bx + g * bx * ae,
            ay + g2 * bp * by + g * by * ae,
            az + g2 * bp * bz + g * bz * ae,
            g * (ae + bp),
            true,
        ));
    }
    // Extra fake photons (jets, π⁰s), their pT scaled with the event's mass like the
    // continuum's: whichever photons end up paired, pT/m has one distribution at every mass,
    // so nothing in the generator sculpts m_γγ through a pT/m-based classifier.
    for _ in 0..rng.poisson(0.3).min(6) {
        let (p, eta, f) = (
            (20.0 + rng.exp(12.0)) * m / 125.0,
            rng.range(-2.5, 2.5),
            rng.range(-std::f64::consts::PI, std::f64::consts::PI),
        );
        cands.push((
            p * f.cos(),
            p * f.sin(),
            p * eta.sinh(),
            p * eta.cosh(),
            false,
        ));
    }
    let pt_of = |c: &(f64, f64, f64, f64, bool)| (c.0 * c.0 + c.1 * c.1).sqrt();
    cands.sort_by(|a, b| pt_of(b).total_cmp(&pt_of(a)));
    let mut ev = Event::default();
    for c in &cands {
        let pt = pt_of(c);
        if pt < 20.0 {
            continue;
        }
        let p = (pt * pt + c.2 * c.2).sqrt();
        let eta = 0.5 * ((p + c.2) / (p - c.2)).ln();
        if !eta.is_finite() || eta.abs() > 2.5 {
            continue;
        }
        let prompt = c.4 && (signal || rng.uniform() < 0.75);
        let mev = 1000.0;
        ev.pt.push((pt * mev) as f32);
        ev.eta.push(eta as f32);
        ev.phi.push(c.1.atan2(c.0) as f32);
        ev.e.push((c.3 * mev) as f32);
        ev.tight
            .push(rng.uniform() < if prompt { 0.90 } else { 0.45 });
        let iso1 = if prompt {
            rng.exp(0.015)
        } else {
            rng.exp(0.08)
        };
        ev.ptcone30.push((iso1 * pt * mev) as f32);
        let iso2 = if prompt {
            rng.gaus(0.005, 0.025)
        } else {
            rng.gaus(0.06, 0.06)
        };
        ev.etcone20.push((iso2 * pt * mev) as f32);
        ev.pt_syst.push((0.01 * pt * mev) as f32);
        ev.trig_matched.push(rng.uniform() < 0.9);
        ev.truth_matched.push(mc && c.4);
        ev.conv_type.push(if rng.uniform() < 0.7 {
            0
        } else {
            1 + (rng.uniform() * 5.0) as i32
        });
    }
    ev.trigger = rng.uniform() < 0.96;
    ev.weight = if mc { rng.gaus(1.0, 0.2) as f32 } else { 0.0 };
    ev
}

/// The events of one file, generated one at a time as the tree writer asks for them: memory
/// holds one event, not the file (430k events took 385 MB when they were kept).
///
/// oxyroot's writer pulls entry `i` of every branch before entry `i + 1` of any (its
/// `WriterTree::write` loops over entries, then branches), so each branch's iterator asks for
/// the current event or the next one.
struct Stream {
    next: Box<dyn FnMut() -> Event>,
    /// Events in the file.
    len: usize,
    /// Events produced so far; `current` is the last of them.
    produced: usize,
    current: Event,
}

impl Stream {
    fn new(len: usize, next: impl FnMut() -> Event + 'static) -> Self {
        Self {
            next: Box::new(next),
            len,
            produced: 0,
            current: Event::default(),
        }
    }

    /// Event `i`, which must be the current one or the next (`None` past the end).
    fn get(&mut self, i: usize) -> Option<&Event> {
        if i >= self.len {
            return None;
        }
        if i == self.produced {
            self.current = (self.next)();
            self.produced += 1;
        }
        assert_eq!(
            i + 1,
            self.produced,
            "the tree writer asked for entry {i} out of order"
        );
        Some(&self.current)
    }
}

/// Writes `stream` as tree `mini` with the 2020 branch list and types.
fn write_tree(
    stream: Stream,
    path: &Path,
    compression: i32,
    mc: Option<(f32, f32)>,
) -> Result<(), WriteError> {
    let err = |reason: String| WriteError {
        path: path.display().to_string(),
        reason,
    };
    let mut file = RootFile::create(path).map_err(|e| err(e.to_string()))?;
    file.set_compression(compression);
    let mut tree = WriterTree::new("mini");
    tree.set_title(SYNTHETIC_TITLE);
    let n = stream.len;
    let (xsec, sumw) = mc.unwrap_or((0.0, 0.0));
    let is_mc = mc.is_some();
    let scalar_f32 = |v: f32| std::iter::repeat_n(v, n);
    tree.new_branch("runNumber", std::iter::repeat_n(284500i32, n));
    tree.new_branch("eventNumber", 0..n as i32);
    tree.new_branch(
        "channelNumber",
        std::iter::repeat_n(if is_mc { GGH_CHANNEL } else { 0 }, n),
    );
    let stream = std::rc::Rc::new(std::cell::RefCell::new(stream));
    macro_rules! column {
        ($name:expr, $f:expr) => {{
            let stream = stream.clone();
            let mut i = 0;
            tree.new_branch(
                $name,
                std::iter::from_fn(move || {
                    let v = stream.borrow_mut().get(i).map($f);
                    i += 1;
                    v
                }),
            );
        }};
    }
    column!("mcWeight", |e: &Event| e.weight);
    tree.new_branch(
        "scaleFactor_PILEUP",
        scalar_f32(if is_mc { 1.0 } else { 0.0 }),
    );
    tree.new_branch(
        "scaleFactor_PHOTON",
        scalar_f32(if is_mc { 0.97 } else { 0.0 }),
    );
    tree.new_branch(
        "scaleFactor_PhotonTRIGGER",
        scalar_f32(if is_mc { 0.99 } else { 0.0 }),
    );
    tree.new_branch("XSection", scalar_f32(xsec));
    tree.new_branch("SumWeights", scalar_f32(sumw));
    column!("trigP", |e: &Event| e.trigger);
    column!("photon_n", |e: &Event| e.pt.len() as u32);
    column!("photon_pt", |e: &Event| e.pt.clone());
    column!("photon_eta", |e: &Event| e.eta.clone());
    column!("photon_phi", |e: &Event| e.phi.clone());
    column!("photon_E", |e: &Event| e.e.clone());
    column!("photon_isTightID", |e: &Event| e.tight.clone());
    column!("photon_trigMatched", |e: &Event| e.trig_matched.clone());
    column!("photon_truthMatched", |e: &Event| e.truth_matched.clone());
    column!("photon_ptcone30", |e: &Event| e.ptcone30.clone());
    column!("photon_etcone20", |e: &Event| e.etcone20.clone());
    column!("photon_pt_syst", |e: &Event| e.pt_syst.clone());
    column!("photon_convType", |e: &Event| e.conv_type.clone());
    tree.write(&mut file).map_err(|e| err(e.to_string()))?;
    file.close().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// The next event of `rng`'s sequence that passes the ≥ 2 photon skim.
fn next_skimmed(rng: &mut Rng, signal: bool, mc: bool) -> Event {
    loop {
        let ev = generate(rng, signal, mc);
        if ev.pt.len() >= 2 {
            return ev;
        }
    }
}

/// Writes one data-layout file of `events` events holding `signal_generated` generated H→γγ
/// events (the skim's survivors) among background; returns the events written.
fn write_data(
    seed: u64,
    events: usize,
    signal_generated: usize,
    path: &Path,
    compression: i32,
) -> Result<usize, WriteError> {
    // Exactly `signal_generated` generated signal events, the skim survivors interleaved at
    // random positions among background events. The sequence: every signal event, then the
    // background until the file is full, then one uniform number per event for the order.
    let mut rng = Rng::new(seed);
    let signal_rng = rng.clone();
    let surviving = (0..signal_generated)
        .filter(|_| generate(&mut rng, true, false).pt.len() >= 2)
        .count();
    let n_signal = surviving.min(events);
    let n_background = events - n_signal;
    let background_rng = rng.clone();
    for _ in 0..n_background {
        next_skimmed(&mut rng, false, false);
    }
    let (mut order, mut signal, mut background) = (rng, signal_rng, background_rng);
    let (mut ns, mut nb) = (n_signal, n_background);
    let data = Stream::new(n_signal + n_background, move || {
        let take_signal = order.uniform() * ((ns + nb) as f64) < ns as f64;
        if take_signal {
            ns -= 1;
            next_skimmed(&mut signal, true, false)
        } else {
            nb -= 1;
            next_skimmed(&mut background, false, false)
        }
    });
    let n = data.len;
    write_tree(data, path, compression, None)?;
    Ok(n)
}

/// Writes the data file, the signal MC file and (with `continuum_events`) the continuum file.
/// Same config and paths, same bytes.
///
/// Nothing is kept but the event being written: a first pass runs the random sequence to
/// learn what the files need up front (how many signal events survive the skim, the MC's sum
/// of weights) and where each part of the sequence starts; the second pass generates the same
/// events again, one at a time, as the writer asks for them. The bytes are those of keeping
/// every event (generator version 6).
pub fn write_dataset(
    cfg: &Config,
    data_path: &Path,
    mc_path: &Path,
    continuum_path: &Path,
) -> Result<Written, WriteError> {
    let signal_generated = (cfg.signal_strength * XSECTION_PB * LUMI_PB).round() as usize;
    let data_events = write_data(
        cfg.seed,
        cfg.data_events,
        signal_generated,
        data_path,
        cfg.compression,
    )?;
    // The continuum: background only, its own sequence.
    let continuum_events = if cfg.continuum_events > 0 {
        write_data(
            cfg.seed ^ 0xC047_1A00,
            cfg.continuum_events,
            0,
            continuum_path,
            cfg.compression,
        )?
    } else {
        0
    };

    // MC: the skim's survivors in order; every entry carries the sum of weights of all the
    // generated events, so that is counted first.
    let seed = cfg.seed ^ 0x5151_5151;
    let (mut rng, mut mc_generated, mut mc_sum_weights) = (Rng::new(seed), 0, 0.0);
    for _ in 0..cfg.mc_events {
        loop {
            let ev = generate(&mut rng, true, true);
            mc_generated += 1;
            mc_sum_weights += ev.weight as f64;
            if ev.pt.len() >= 2 {
                break;
            }
        }
    }
    let mut rng = Rng::new(seed);
    let mc = Stream::new(cfg.mc_events, move || next_skimmed(&mut rng, true, true));
    write_tree(
        mc,
        mc_path,
        cfg.compression,
        Some((XSECTION_PB as f32, mc_sum_weights as f32)),
    )?;
    Ok(Written {
        data_events,
        data_signal_generated: signal_generated,
        mc_events: cfg.mc_events,
        mc_generated,
        mc_sum_weights,
        continuum_events,
    })
}

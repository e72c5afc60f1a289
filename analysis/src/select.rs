//! Events → selected diphotons: the photon selection of ROOT's df104 tutorial, the diphoton
//! mass, MC event weights and the cut flow.
//!
//! Arithmetic follows what ROOT does in `reference.py`, so counts agree exactly: ratios are
//! taken in `float`, and m_γγ is computed in double precision then stored as `float` (ROOT's
//! `mYY` returns `float`), and every later cut and the histogram use that `float` value.

use crate::events::PhotonEvents;
pub use stage_api::select::{CutCount, CutFlow, Cuts, Diphotons, Kinematics, CUT_NAMES};

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
        // Branch-free (whether a photon passes is data, which the predictor cannot learn):
        // each photon is stored in the next free slot and kept by counting it; slot 2
        // takes every photon after the first two good ones.
        let mut good = [0usize; 3];
        let mut n_good = 0;
        for j in p.of_event(i) {
            let eta = (p.eta[j] as f64).abs();
            let ok = p.tight_id[j]
                & (p.pt[j] as f64 > cuts.pt_min)
                & (eta < cuts.eta_max)
                & ((eta < cuts.crack.0) | (eta > cuts.crack.1));
            good[n_good.min(2)] = j;
            n_good += ok as usize;
        }
        if !count(1, n_good == 2) {
            continue;
        }
        let iso_ok =
            |iso: &[f32], max: f64| good[..2].iter().all(|&j| ((iso[j] / p.pt[j]) as f64) < max);
        if !count(2, iso_ok(&p.track_iso, cuts.track_iso_max)) {
            continue;
        }
        if !count(3, iso_ok(&p.calo_iso, cuts.calo_iso_max)) {
            continue;
        }
        let (m, pt_yy) = diphoton_mass(p, good[0], good[1]);
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
        push_kinematics(&mut out.kinematics, p, good[0], good[1], pt_yy);
    }
    (out, flow)
}

/// Appends the two photons' kinematics (`a` is photon 1) and the diphoton's pT.
fn push_kinematics(k: &mut Kinematics, p: &crate::events::Photons, a: usize, b: usize, pt_yy: f64) {
    let w = |x: f32| x as f64;
    k.pt1.push(w(p.pt[a]));
    k.eta1.push(w(p.eta[a]));
    k.phi1.push(w(p.phi[a]));
    k.e1.push(w(p.e[a]));
    k.pt2.push(w(p.pt[b]));
    k.eta2.push(w(p.eta[b]));
    k.phi2.push(w(p.phi[b]));
    k.e2.push(w(p.e[b]));
    k.pt_yy.push(pt_yy);
    k.track_iso1.push(w(p.track_iso[a] / p.pt[a]));
    k.track_iso2.push(w(p.track_iso[b] / p.pt[b]));
    k.calo_iso1.push(w(p.calo_iso[a] / p.pt[a]));
    k.calo_iso2.push(w(p.calo_iso[b] / p.pt[b]));
}

/// Invariant mass of photons `a` and `b` (from pT, η, φ, E), rounded to `float` as ROOT's
/// `mYY` does, and the diphoton's pT (from the same sums: the trigonometry is done once).
fn diphoton_mass(p: &crate::events::Photons, a: usize, b: usize) -> (f64, f64) {
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
    ((m as f32) as f64, (px * px + py * py).sqrt())
}

//! Events → selected diphotons: the photon selection of ROOT's df104 tutorial, the diphoton
//! mass, MC event weights and the cut flow.
//!
//! Arithmetic follows what ROOT does in `reference.py`, so counts agree exactly: ratios are
//! taken in `float`, and m_γγ is computed in double precision then stored as `float` (ROOT's
//! `mYY` returns `float`), and every later cut and the histogram use that `float` value.

use crate::events::PhotonEvents;
pub use stage_api::select::{CutCount, CutFlow, Cuts, Diphotons, Kinematics, CUT_NAMES};

/// Applies the selection to one batch of events.
///
/// In passes over the batch, each keeping the candidates that survive by advancing a cursor
/// rather than branching on the cut (whether an event passes is data, which the branch
/// predictor cannot learn: a mispredicted branch per cut and per photon loop cost as much
/// as decoding the event). The cut flow is the number of candidates before and after each
/// cut; the selected events come out in file order, as from an event-by-event loop.
pub fn select(ev: &PhotonEvents, cuts: &Cuts) -> (Diphotons, CutFlow) {
    let p = &ev.photons;
    let mut flow = CutFlow::default();
    let mut tally = |k: usize, all: usize, pass: usize| {
        flow.0[k].all += all as u64;
        flow.0[k].pass += pass as u64;
    };

    // Whether each photon is tight and in the acceptance, the whole batch at once (this
    // vectorises); padded so that an event's fixed window of WINDOW photons stays inside.
    const WINDOW: usize = 4;
    let mut accepted: Vec<bool> = (p.tight_id.iter().zip(&p.pt).zip(&p.eta))
        .map(|((&tight, &pt), &eta)| {
            let eta = (eta as f64).abs();
            tight
                & (pt as f64 > cuts.pt_min)
                & (eta < cuts.eta_max)
                & ((eta < cuts.crack.0) | (eta > cuts.crack.1))
        })
        .collect();
    accepted.extend([false; WINDOW]);

    // Cuts 0-1: the trigger, and exactly two good photons (their indices kept).
    let mut pairs = Vec::with_capacity(ev.len());
    let mut triggered = 0;
    for i in 0..ev.len() {
        // Each photon is stored in the next free slot (`first` while none is good, then
        // `second`) and kept by counting it. Events of up to WINDOW photons (nearly all)
        // take a loop of fixed length, masked: a loop as long as the event's photon count
        // mispredicted its exit on every event. (The slots are two variables, not an
        // indexed array: stores to a computed index then a load of both stalled.)
        let (mut first, mut second, mut n_good) = (0u32, 0u32, 0usize);
        let mut take = |j: usize, ok: bool| {
            first = if n_good == 0 { j as u32 } else { first };
            second = if n_good == 1 { j as u32 } else { second };
            n_good += ok as usize;
        };
        let photons = p.of_event(i);
        if photons.len() <= WINDOW {
            for k in 0..WINDOW {
                let j = photons.start + k;
                take(j, accepted[j] & (k < photons.len()));
            }
        } else {
            for j in photons {
                take(j, accepted[j]);
            }
        }
        triggered += ev.trigger[i] as usize;
        push_if(
            &mut pairs,
            (i as u32, first, second),
            ev.trigger[i] & (n_good == 2),
        );
    }
    tally(0, ev.len(), triggered);
    tally(1, triggered, pairs.len());

    // Cuts 2-3: track, then calorimeter isolation of both photons.
    let iso_ok = |iso: &[f32], max: f64, a: u32, b: u32| {
        let ok = |j: u32| ((iso[j as usize] / p.pt[j as usize]) as f64) < max;
        ok(a) & ok(b)
    };
    let mut isolated = Vec::with_capacity(pairs.len());
    let mut track_ok = 0;
    for &(i, a, b) in &pairs {
        let track = iso_ok(&p.track_iso, cuts.track_iso_max, a, b);
        let calo = iso_ok(&p.calo_iso, cuts.calo_iso_max, a, b);
        track_ok += track as usize;
        push_if(&mut isolated, (i, a, b), track & calo);
    }
    tally(2, pairs.len(), track_ok);
    tally(3, track_ok, isolated.len());

    // Cuts 4-6: pT/m of each photon, then the mass window.
    let mut selected = Vec::with_capacity(isolated.len());
    let (mut lead_ok, mut both_ok) = (0, 0);
    for &(i, a, b) in &isolated {
        let (m, pt_yy) = diphoton_mass(p, a as usize, b as usize);
        let lead = p.pt[a as usize] as f64 / m > cuts.lead_pt_over_m;
        let both = lead & (p.pt[b as usize] as f64 / m > cuts.sublead_pt_over_m);
        let window = m > cuts.mass_window.0 && m < cuts.mass_window.1;
        lead_ok += lead as usize;
        both_ok += both as usize;
        push_if(&mut selected, (i, a, b, m, pt_yy), both & window);
    }
    tally(4, isolated.len(), lead_ok);
    tally(5, lead_ok, both_ok);
    tally(6, both_ok, selected.len());

    let mut out = Diphotons::default();
    reserve(&mut out, selected.len(), true);
    for &(i, a, b, m, pt_yy) in &selected {
        let i = i as usize;
        out.m_yy.push(m);
        out.weight.push(match &ev.mc {
            Some(mc) if mc.xsection_pb[i] > 0.0 => {
                mc.weight[i] * mc.xsection_pb[i] as f64 * cuts.lumi_pb / mc.sum_weights[i] as f64
            }
            _ => 1.0,
        });
        push_kinematics(&mut out.kinematics, p, a as usize, b as usize, pt_yy);
    }
    (out, flow)
}

/// Room for `n` more events in every column of `d`, the kinematics too if `kinematics` (a
/// stage may leave them empty).
pub(crate) fn reserve(d: &mut Diphotons, n: usize, kinematics: bool) {
    d.m_yy.reserve(n);
    d.weight.reserve(n);
    if kinematics {
        kinematics_mut(&mut d.kinematics)
            .into_iter()
            .for_each(|c| c.reserve(n));
    }
}

/// The kinematics' 13 columns, in declaration order (`Kinematics::columns`, mutable; kept
/// here rather than in stage-api, whose public signatures are versioned).
pub fn kinematics_mut(k: &mut Kinematics) -> [&mut Vec<f64>; 13] {
    [
        &mut k.pt1,
        &mut k.eta1,
        &mut k.phi1,
        &mut k.e1,
        &mut k.pt2,
        &mut k.eta2,
        &mut k.phi2,
        &mut k.e2,
        &mut k.pt_yy,
        &mut k.track_iso1,
        &mut k.track_iso2,
        &mut k.calo_iso1,
        &mut k.calo_iso2,
    ]
}

/// Appends `item` to `v` if `keep`, without a branch on `keep`: the item is written to the
/// next free slot either way and the length advanced by `keep` (`v` must have room for
/// every item offered: its capacity is reserved for all of them).
#[inline(always)]
fn push_if<T: Copy>(v: &mut Vec<T>, item: T, keep: bool) {
    let len = v.len();
    v.spare_capacity_mut()
        .first_mut()
        .expect("capacity reserved for every candidate")
        .write(item);
    // SAFETY: slot `len` was written just above; `len + 1` only when `keep`.
    unsafe { v.set_len(len + keep as usize) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{PhotonEvents, Photons};
    use crate::rng::Rng;

    /// The selection written the plain way: event by event, photon by photon, each cut a
    /// branch. The pass-based [`select`] must give the same cut flow and the same events.
    fn select_event_by_event(ev: &PhotonEvents, cuts: &Cuts) -> (Diphotons, CutFlow) {
        let (mut out, mut flow) = (Diphotons::default(), CutFlow::default());
        let p = &ev.photons;
        'events: for i in 0..ev.len() {
            let good: Vec<usize> = p
                .of_event(i)
                .filter(|&j| {
                    let eta = (p.eta[j] as f64).abs();
                    p.tight_id[j]
                        && p.pt[j] as f64 > cuts.pt_min
                        && eta < cuts.eta_max
                        && (eta < cuts.crack.0 || eta > cuts.crack.1)
                })
                .collect();
            let iso = |v: &[f32], max: f64| good.iter().all(|&j| ((v[j] / p.pt[j]) as f64) < max);
            let mut m = (0.0, 0.0);
            for k in 0..7 {
                if k == 4 {
                    m = diphoton_mass(p, good[0], good[1]);
                }
                let pass = match k {
                    0 => ev.trigger[i],
                    1 => good.len() == 2,
                    2 => iso(&p.track_iso, cuts.track_iso_max),
                    3 => iso(&p.calo_iso, cuts.calo_iso_max),
                    4 => p.pt[good[0]] as f64 / m.0 > cuts.lead_pt_over_m,
                    5 => p.pt[good[1]] as f64 / m.0 > cuts.sublead_pt_over_m,
                    _ => m.0 > cuts.mass_window.0 && m.0 < cuts.mass_window.1,
                };
                flow.0[k].all += 1;
                flow.0[k].pass += pass as u64;
                if !pass {
                    continue 'events;
                }
            }
            out.m_yy.push(m.0);
            out.weight.push(1.0);
            push_kinematics(&mut out.kinematics, p, good[0], good[1], m.1);
        }
        (out, flow)
    }

    /// Random events with 0 to 7 photons (more than the fixed window of 4, exactly 4, none)
    /// and values spread across every cut's edge.
    fn random_events(seed: u64, n: usize) -> PhotonEvents {
        let mut r = Rng::new(seed);
        let mut ev = PhotonEvents {
            release: crate::events::Release::Y2020,
            entries: 0..n as u64,
            trigger: vec![],
            event_number: vec![],
            photons: Photons {
                offsets: vec![0],
                ..Default::default()
            },
            mc: None,
        };
        let p = &mut ev.photons;
        for i in 0..n {
            ev.trigger.push(r.uniform() < 0.9);
            ev.event_number.push(i as u64);
            let photons = (r.uniform() * 8.0) as usize;
            for _ in 0..photons {
                let pt = r.range(15.0, 90.0) as f32;
                p.pt.push(pt);
                p.eta.push(r.range(-2.6, 2.6) as f32);
                p.phi.push(r.range(-3.2, 3.2) as f32);
                p.e.push(pt * r.range(1.0, 3.0) as f32);
                p.tight_id.push(r.uniform() < 0.8);
                p.track_iso.push(pt * r.range(0.0, 0.09) as f32);
                p.calo_iso.push(pt * r.range(0.0, 0.09) as f32);
            }
            p.offsets.push(p.pt.len() as u32);
        }
        ev
    }

    #[test]
    fn passes_select_what_an_event_loop_selects() {
        let cuts = Cuts::default();
        for seed in 1..=5 {
            let ev = random_events(seed, 20_000);
            let (out, flow) = select(&ev, &cuts);
            let (want_out, want_flow) = select_event_by_event(&ev, &cuts);
            assert_eq!(flow, want_flow, "seed {seed}");
            assert_eq!(out, want_out, "seed {seed}");
            // The random events reach every cut, and some pass them all.
            assert!(
                flow.0.iter().all(|c| c.pass > 0 && c.pass < c.all),
                "{flow:?}"
            );
        }
    }
}

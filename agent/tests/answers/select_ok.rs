use stage_api::Photons;
use stage_api::{CutFlow, Cuts, Diphotons, PhotonEvents, Select, SelectOutput, StageError};

pub struct Stage;

/// Invariant mass of photons a and b, computed in f64 and rounded to f32.
fn mass(p: &Photons, a: usize, b: usize) -> f64 {
    let four = |j: usize| {
        let (pt, eta, phi) = (p.pt[j] as f64, p.eta[j] as f64, p.phi[j] as f64);
        [pt * phi.cos(), pt * phi.sin(), pt * eta.sinh(), p.e[j] as f64]
    };
    let (x, y) = (four(a), four(b));
    let s: Vec<f64> = (0..4).map(|k| x[k] + y[k]).collect();
    let m2 = s[3] * s[3] - s[0] * s[0] - s[1] * s[1] - s[2] * s[2];
    let m = if m2 >= 0.0 { m2.sqrt() } else { -(-m2).sqrt() };
    (m as f32) as f64
}

impl Select for Stage {
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError> {
        events.validate()?;
        let p = &events.photons;
        let mut flow = CutFlow::default();
        let mut out = Diphotons::default();
        for i in 0..events.len() {
            let mut step = 0;
            let mut pass = |ok: bool| {
                flow.0[step].all += 1;
                if ok {
                    flow.0[step].pass += 1;
                }
                step += 1;
                ok
            };
            if !pass(events.trigger[i]) {
                continue;
            }
            let good: Vec<usize> = p
                .of_event(i)
                .filter(|&j| {
                    let eta = (p.eta[j] as f64).abs();
                    p.tight_id[j]
                        && (p.pt[j] as f64) > cuts.pt_min
                        && eta < cuts.eta_max
                        && (eta < cuts.crack.0 || eta > cuts.crack.1)
                })
                .collect();
            if !pass(good.len() == 2) {
                continue;
            }
            let (a, b) = (good[0], good[1]);
            let iso = |v: &[f32], max: f64| [a, b].iter().all(|&j| ((v[j] / p.pt[j]) as f64) < max);
            if !pass(iso(&p.track_iso, cuts.track_iso_max)) {
                continue;
            }
            if !pass(iso(&p.calo_iso, cuts.calo_iso_max)) {
                continue;
            }
            let m = mass(p, a, b);
            if !pass(p.pt[a] as f64 / m > cuts.lead_pt_over_m) {
                continue;
            }
            if !pass(p.pt[b] as f64 / m > cuts.sublead_pt_over_m) {
                continue;
            }
            if !pass(m > cuts.mass_window.0 && m < cuts.mass_window.1) {
                continue;
            }
            out.m_yy.push(m);
            let w = match &events.mc {
                Some(mc) if mc.xsection_pb[i] > 0.0 => {
                    mc.weight[i] * mc.xsection_pb[i] as f64 * cuts.lumi_pb / mc.sum_weights[i] as f64
                }
                _ => 1.0,
            };
            out.weight.push(w);
            let k = &mut out.kinematics;
            k.pt1.push(p.pt[a] as f64);
            k.eta1.push(p.eta[a] as f64);
            k.phi1.push(p.phi[a] as f64);
            k.e1.push(p.e[a] as f64);
            k.pt2.push(p.pt[b] as f64);
            k.eta2.push(p.eta[b] as f64);
            k.phi2.push(p.phi[b] as f64);
            k.e2.push(p.e[b] as f64);
            let (px, py) = [a, b].iter().fold((0.0, 0.0), |(x, y), &j| {
                let (pt, phi) = (p.pt[j] as f64, p.phi[j] as f64);
                (x + pt * phi.cos(), y + pt * phi.sin())
            });
            k.pt_yy.push((px * px + py * py).sqrt());
            k.track_iso1.push((p.track_iso[a] / p.pt[a]) as f64);
            k.track_iso2.push((p.track_iso[b] / p.pt[b]) as f64);
            k.calo_iso1.push((p.calo_iso[a] / p.pt[a]) as f64);
            k.calo_iso2.push((p.calo_iso[b] / p.pt[b]) as f64);
        }
        Ok(SelectOutput { diphotons: out, cut_flow: flow })
    }
}

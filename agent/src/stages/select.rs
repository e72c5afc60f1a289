//! `select` (and the `preprocess` task): events + cuts → the selected diphotons and the cut flow.

use super::{to_json, Ctx, StageCase};
use crate::validate::*;
use analysis::stage::*;
use serde_json::Value;

/// See the module documentation.
pub(super) struct SelectStage;

impl StageCase for SelectStage {
    type Output = SelectOutput;

    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String> {
        let path = ctx.path;
        let cuts = ctx.params.cuts.clone();
        let events = ctx.read(path)?;
        let selected = Reference.select(&events, &cuts).map_err(|e| e.message)?;
        let i = SelectInput { events, cuts };
        Ok((
            to_json(&i),
            serde_json::to_value(&selected).expect("plain data"),
        ))
    }

    fn sanity(c: &mut Checks, out: &SelectOutput) {
        let flow = &out.cut_flow.0;
        let consistent =
            flow.iter().all(|l| l.pass <= l.all) && flow.windows(2).all(|w| w[1].all == w[0].pass);
        c.rule(
            "cut flow consistent",
            consistent,
            "every cut sees exactly the events that passed the one before, and passes no more than it sees",
        );
        let n = out.diphotons.m_yy.len();
        let selected = flow.last().map_or(0, |l| l.pass) as usize;
        let ok = n == out.diphotons.weight.len() && n == selected;
        let msg = format!(
            "{n} masses and {} weights for {selected} events passing the last cut",
            out.diphotons.weight.len()
        );
        c.add("one diphoton per selected event", ok, msg.clone(), msg);
        let finite = out
            .diphotons
            .m_yy
            .iter()
            .chain(&out.diphotons.weight)
            .all(|x| x.is_finite());
        c.rule("finite values", finite, "masses and weights are finite");
        let k = &out.diphotons.kinematics;
        let short: Vec<&str> = k
            .columns()
            .iter()
            .filter(|(_, v)| v.len() != n)
            .map(|(name, _)| *name)
            .collect();
        c.rule(
            "kinematics columns",
            short.is_empty(),
            &format!(
                "every kinematics column has one entry per selected event ({n}){}",
                if short.is_empty() {
                    String::new()
                } else {
                    format!("; these do not: {}", short.join(", "))
                }
            ),
        );
    }

    fn compare(c: &mut Checks, out: &SelectOutput, r: &SelectOutput, tol: &Tolerances) {
        let names =
            |f: &analysis::stage::CutFlow| f.0.iter().map(|l| l.cut.clone()).collect::<Vec<_>>();
        let same_names = names(&out.cut_flow) == names(&r.cut_flow);
        c.add(
            "cut names",
            same_names,
            format!(
                "stage {:?}, reference {:?}",
                names(&out.cut_flow),
                names(&r.cut_flow)
            ),
            "the cut flow must have the seven cuts of CutFlow::default(), in that order".into(),
        );
        if same_names {
            let first_bad = out
                .cut_flow
                .0
                .iter()
                .zip(&r.cut_flow.0)
                .position(|(a, b)| a != b);
            let (detail, hint) = match first_bad {
                Some(k) => {
                    let (a, b) = (&out.cut_flow.0[k], &r.cut_flow.0[k]);
                    (
                        format!("cut '{}': stage {}/{}, reference {}/{}", a.cut, a.pass, a.all, b.pass, b.all),
                        format!(
                            "the cut flow differs from the reference first at cut {} '{}' (your stage: {} of {} pass)",
                            k + 1, a.cut, a.pass, a.all
                        ),
                    )
                }
                None => (String::new(), String::new()),
            };
            c.add("cut flow", first_bad.is_none(), detail, hint);
        }
        let (n, rn) = (out.diphotons.len(), r.diphotons.len());
        c.add(
            "selected events",
            n == rn,
            format!("stage {n}, reference {rn}"),
            format!("the number of selected events differs from the reference (your stage: {n})"),
        );
        if n == rn && n > 0 {
            let (w, i) = worst(&out.diphotons.m_yy, &r.diphotons.m_yy);
            c.add(
                "m_yy",
                w <= tol.rel,
                format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
                format!("m_yy differs from the reference {} of {:.0e} relative (largest at selected event {i})", how_far(w / tol.rel), tol.rel),
            );
            let columns = out
                .diphotons
                .kinematics
                .columns()
                .into_iter()
                .zip(r.diphotons.kinematics.columns());
            for ((name, a), (_, b)) in columns {
                if a.len() != b.len() {
                    continue; // the sanity check names it
                }
                let (w, i) = worst(a, b);
                c.add(
                    &format!("kinematics {name}"),
                    w <= tol.rel,
                    format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
                    format!("kinematics.{name} differs from the reference {} of {:.0e} relative (largest at selected event {i})", how_far(w / tol.rel), tol.rel),
                );
            }
            let (w, i) = worst(&out.diphotons.weight, &r.diphotons.weight);
            c.add(
                "weights",
                w <= tol.rel,
                format!("largest relative difference {w:.2e} (event {i}), tolerance {:.0e}", tol.rel),
                format!("event weights differ from the reference {} of {:.0e} relative (largest at selected event {i})", how_far(w / tol.rel), tol.rel),
            );
        }
    }
}

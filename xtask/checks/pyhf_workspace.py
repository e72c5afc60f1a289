#!/usr/bin/env python3
"""Refits the categorized model that `cargo xtask analyze` exported (OUT/workspace.json) with
pyhf, and compares pyhf's best-fit μ, its error and the nuisance parameters with ours
(OUT/results.json, `combined`).

pyhf is not a test dependency; run this by hand:

    python3 -m venv /tmp/pyhf && /tmp/pyhf/bin/pip install pyhf iminuit
    cargo xtask analyze --out /tmp/hgg
    /tmp/pyhf/bin/python xtask/checks/pyhf_workspace.py /tmp/hgg

The workspace holds the shapes pyhf cannot express (the Higgs mass, each category's
background function) as binned templates at our fit's values, so pyhf's maximum-likelihood
fit of the rest must land on our minimum: μ within 1 % (exit status 1 otherwise). Its error
and q0 come out a little different: in pyhf those shapes are held, not profiled.
"""

import json
import sys

import pyhf


def main(out):
    spec = json.load(open(f"{out}/workspace.json"))
    ours = json.load(open(f"{out}/results.json"))["combined"]
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-6))
    best, errors = pyhf.infer.mle.fit(data, model, return_uncertainties=True).T
    names = model.config.par_order
    # Each θ is exported as θ' = θ − θ̂ with auxdata −θ̂ (see Model::workspace): θ = θ' − auxdata.
    aux = {p["name"]: p["auxdata"][0]
           for p in spec["measurements"][0]["config"]["parameters"]
           if "auxdata" in p and p["name"] != "lumi"}
    fitted = {}
    for name in names:
        sl = model.config.par_slice(name)
        fitted[name] = (best[sl][0] - aux.get(name, 0.0), errors[sl][0])
    mu, mu_err = fitted["mu"]
    print(f"{'parameter':<20} {'pyhf':>22} {'ours':>22}")
    ours_by_name = {p["name"]: p for p in ours["parameters"]}
    for name in names:
        v, e = fitted[name]
        o = ours_by_name.get(name)
        theirs = f"{o['value']:.5f} ± {o['error']:.5f}" if o else "(template)"
        print(f"{name:<20} {v:>10.5f} ± {e:<9.5f} {theirs:>22}")
    rel = abs(mu - ours["mu"]) / abs(ours["mu"])
    rel_err = abs(mu_err - ours["mu_error"]) / ours["mu_error"]
    print(f"\nμ: pyhf {mu:.5f} ± {mu_err:.5f}, ours {ours['mu']:.5f} ± {ours['mu_error']:.5f}:"
          f" Δμ/μ = {100 * rel:.3f} %, Δσ/σ = {100 * rel_err:.2f} %")
    # q0 at the nominal mass, as ours.
    q0 = pyhf.infer.test_statistics.q0(0.0, data, model, model.config.suggested_init(),
                                       model.config.suggested_bounds(), model.config.suggested_fixed())
    print(f"q0: pyhf {float(q0):.4f}, ours {ours['q0']:.4f}")
    ok = rel < 0.01
    print("OK" if ok else "FAIL: μ differs by more than 1 %")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/hgg"))

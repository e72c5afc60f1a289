#!/usr/bin/env python3
"""Rebuilds the categorized statistical model (OUT/work/fit_categories.json, `model`) in RooFit,
refits OUT's data with it, and compares μ, its error, every nuisance parameter and the observed
significance z = √q0 at the nominal mass with ours (OUT/results.json, `combined`).

The model, as analysis/src/fit/simultaneous.rs defines it, per category k and bin i:

    ν_ki = (lumi·μ·s_k + θ_spur,k·S_k) · S_i(m, σ) + nbkg_k · B_i(slope_k)
    m = mass·(1 + δ_scale·θ_scale),   σ = σ_MC·(1 + δ_res·θ_res)

with a Gaussian signal and an exponential background normalised on [lo, hi], Gaussian
constraints on the θ's (N(0, 1)) and on lumi (N(1, δ_lumi)). In RooFit: one extended
RooAddPdf(RooGaussian, RooExponential) per category in a RooSimultaneous over a RooCategory,
the constraints as ExternalConstraints, mass held at the nominal value; Minuit2 (strategy 2)
MIGRAD + HESSE + MINOS(μ), then the μ = 0 fit on the same NLL object for q0.

S_i and B_i are exact integrals over bin i: RooFit's `IntegrateBins`, i.e. each category's pdf
wrapped in a RooBinSamplingPdf. The wrapping is done here by hand because ROOT 6.40's default
("cpu") backend does not apply `IntegrateBins` to the categories of a RooSimultaneous (it logs
"only implemented for 1-D fits" and fits bin centres); the header line checks that the
hand-wrapped NLL equals `IntegrateBins` under the "legacy" backend. That fit must land on ours:
exit status 1 unless μ agrees to 0.5 % and its HESSE error to 2 %. The same model fitted with
densities at the bin centres × bin width (RooFit's default for binned data) is printed too, to
show what integrating over the bins changes. "ΔNLL at ours" is RooFit's NLL at our best-fit
point minus its own minimum: ~0 (to the EDM) when both minimise the same function.

ROOT is not a test dependency; run this by hand (tested with ROOT 6.40 from `pip install root`):

    cargo xtask analyze --data data/generated/SYNTHETIC_data_A.GamGam.root \
        --mc data/generated/SYNTHETIC_mc_343981.ggH125_gamgam.GamGam.root --out /tmp/hgg
    /tmp/rootenv/bin/python xtask/checks/roofit_categories.py /tmp/hgg

Only the Gaussian signal with the exponential background ("exp") is supported.
"""
import argparse
import json
import math
import sys
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the PyPI build's "alpha stage" notice
    import ROOT

R = ROOT.RooFit


def die(msg):
    sys.exit(f"roofit_categories: {msg}")


def build(model, precision):
    """The RooSimultaneous (each category's pdf integrated over the bins to `precision`, or at
    the bin centres if it is < 0), its binned data, the constraints and the parameters."""
    backgrounds = {json.dumps(c["background"]) for c in model["channels"]}
    if model["signal"]["shape"] != "gaussian" or backgrounds != {'"exp"'}:
        die(f"only a Gaussian signal with the 'exp' background in every category is supported, "
            f"not {model['signal']['shape']!r} + {sorted(backgrounds)} (run analyze without "
            f"--continuum, whose spurious-signal test may choose Bernstein polynomials)")
    if model.get("blind"):
        die("the model is blinded: there is no observed μ to compare")
    chans = model["channels"]
    binning = chans[0]["data"]["binning"]
    if any(c["data"]["binning"] != binning for c in chans):
        die("the categories' binnings differ (this check assumes one m_yy axis)")
    keep = []  # RooFit holds references only: its objects must outlive this function
    x = ROOT.RooRealVar("m_yy", "m_yy", binning["lo"], binning["hi"])
    x.setBins(binning["bins"])
    par = {}
    for p in model["parameters"]:
        par[p["name"]] = ROOT.RooRealVar(p["name"], p["name"], p["init"], p["lo"], p["hi"])
        par[p["name"]].setConstant(p["fixed"])
    par["mass"].setVal(model["signal"]["mass"])
    par["mass"].setConstant(True)  # the quoted fit: mass at the nominal value
    syst = model["systematics"]
    mean = ROOT.RooFormulaVar("mean", f"mass*(1+{syst['scale']!r}*photon_scale)",
                              [par["mass"], par["photon_scale"]])
    width = ROOT.RooFormulaVar("width", f"{model['signal']['sigma']!r}*"
                               f"(1+{syst['resolution']!r}*photon_resolution)",
                               [par["photon_resolution"]])
    cat = ROOT.RooCategory("category", "category")
    sim = ROOT.RooSimultaneous("sim", "sim", cat)
    keep += [x, mean, width, cat, sim]
    hists = {}
    for c in chans:
        k = c["name"]
        cat.defineType(k)
        sig = ROOT.RooGaussian(f"sig_{k}", "", x, mean, width)
        bkg = ROOT.RooExponential(f"bkg_{k}", "", x, par[f"slope_{k}"])
        nsig = ROOT.RooFormulaVar(
            f"nsig_{k}", f"lumi*mu*{c['signal_yield']!r} + spurious_{k}*{c['spurious']!r}",
            [par["lumi"], par["mu"], par[f"spurious_{k}"]])
        pdf = ROOT.RooAddPdf(f"pdf_{k}", "", [sig, bkg], [nsig, par[f"nbkg_{k}"]])
        pdf.fixCoefNormalization(ROOT.RooArgSet(x))  # else: a warning per bin sampling point
        keep += [sig, bkg, nsig, pdf]
        if precision >= 0:
            pdf = ROOT.RooBinSamplingPdf(f"pdf_{k}_binned", "", x, pdf, precision)
            keep.append(pdf)
        sim.addPdf(pdf, k)
        hists[k] = ROOT.TH1D(f"h_{k}", "", binning["bins"], binning["lo"], binning["hi"])
        for i, w in enumerate(c["data"]["sumw"]):
            hists[k].SetBinContent(i + 1, w)
    data = ROOT.RooDataHist("data", "data", [x], Index=cat, Import=hists)
    cons = ROOT.RooArgSet()
    for p in model["parameters"]:
        if p.get("constraint") and not p["fixed"]:
            c = p["constraint"]
            g = ROOT.RooGaussian(f"constraint_{p['name']}", "", par[p["name"]],
                                 R.RooConst(c["centre"]), R.RooConst(c["width"]))
            cons.add(g)
            keep.append(g)
    return sim, data, cons, par, keep + list(hists.values()) + list(par.values())


def same_as_integrate_bins(model, precision):
    """NLL of the hand-wrapped model − NLL with IntegrateBins (legacy backend), at the start."""
    wrapped, data, *keep = build(model, precision)
    plain, data2, *keep2 = build(model, -1.0)
    ours = wrapped.createNLL(data, R.Extended(True), R.IntegrateBins(-1)).getVal()
    try:
        theirs = plain.createNLL(data2, R.Extended(True), R.IntegrateBins(precision),
                                 R.EvalBackend("legacy")).getVal()
    except Exception as e:  # a ROOT without the legacy backend
        return f"n/a ({e})"
    return f"{ours - theirs:+.1e}"


def fit(model, ours, precision):
    """Fits the model (bins integrated to `precision`, or bin centres if < 0)."""
    sim, data, cons, par, keep = build(model, precision)
    t0 = time.time()
    nll = sim.createNLL(data, R.Extended(True), R.ExternalConstraints(cons),
                        R.IntegrateBins(-1), R.Offset("initial"))
    mini = ROOT.RooMinimizer(nll)
    mini.setMinimizerType("Minuit2")
    mini.setStrategy(2)
    mini.setEps(1e-4)  # EDM ~1e-9: μ to 1e-5 relative, well inside what is compared
    mini.setPrintLevel(-1)
    status = mini.migrad() + mini.hesse()
    best = nll.getVal()
    # Errors as √(covariance diagonal): the inverse Hessian, propagated linearly through
    # Minuit's bound transformation, as ours. (RooRealVar::getError() is Minuit's finite-step
    # Int2extError: for lumi, whose error is 0.2 of its half-range, 0.017·sin(0.2)/0.2 = 0.01689.)
    res = mini.save()
    cov, floating = res.covarianceMatrix(), res.floatParsFinal()
    hesse = {n: (v.getVal(), 0.0) for n, v in par.items()}
    for i in range(floating.getSize()):
        hesse[floating[i].GetName()] = (floating[i].getVal(), math.sqrt(max(cov[i][i], 0.0)))
    status += mini.minos(ROOT.RooArgSet(par["mu"]))
    minos = (par["mu"].getErrorLo(), par["mu"].getErrorHi())
    # Our minimum on RooFit's NLL, relative to RooFit's own.
    for p in ours["parameters"]:
        par[p["name"]].setVal(p["value"])
    at_ours = nll.getVal() - best
    # μ = 0, every other parameter profiled, from the best fit (same NLL object, same offset).
    for n, (v, _) in hesse.items():
        par[n].setVal(v)
    par["mu"].setVal(0.0)
    par["mu"].setConstant(True)
    status += mini.migrad()
    q0 = max(2.0 * (nll.getVal() - best), 0.0) if hesse["mu"][0] > 0 else 0.0
    seconds = time.time() - t0
    del mini, nll, keep
    return dict(par=hesse, minos=minos, z=math.sqrt(q0), at_ours=at_ours, edm=res.edm(),
                status=status, seconds=seconds)


def table(title, r, model, ours):
    """Prints RooFit's fit `r` next to ours; returns |Δμ/μ| and |Δσ_μ/σ_μ|."""
    mine = {p["name"]: p for p in ours["parameters"]}
    print(f"\n{title}: status {r['status']}, EDM {r['edm']:.1e}, {r['seconds']:.2f} s,"
          f" ΔNLL at ours {r['at_ours']:+.1e}")
    print(f"{'quantity':<22}{'RooFit':>13}{'ours':>13}{'rel. diff':>11}{'Δ/σ_ours':>10}")

    def row(name, theirs, ref, sigma=None):
        rel = (theirs - ref) / abs(ref) if ref else float("nan")
        pull = f"{(theirs - ref) / sigma:+10.3f}" if sigma else ""
        print(f"{name:<22}{theirs:>13.6g}{ref:>13.6g}{100 * rel:>+10.3f}%{pull}")
        return abs(rel)

    mu, mu_err = r["par"]["mu"]
    d_mu = row("mu", mu, ours["mu"], ours["mu_error"])
    d_err = row("mu error (HESSE)", mu_err, ours["mu_error"])
    row("mu error (MINOS -)", -r["minos"][0], ours["mu_error"])
    row("mu error (MINOS +)", r["minos"][1], ours["mu_error"])
    row("z = sqrt(q0)", r["z"], ours["z"])
    for p in model["parameters"]:
        if not (p["fixed"] or p["name"] in ("mu", "mass")):
            (v, e), o = r["par"][p["name"]], mine[p["name"]]
            row(p["name"], v, o["value"], o["error"])
            row("  error", e, o["error"])
    return d_mu, d_err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="/tmp/roofit_in", help="analysis output folder")
    ap.add_argument("--precision", type=float, default=1e-8,
                    help="bin integration's relative precision (RooBinSamplingPdf)")
    args = ap.parse_args()
    ROOT.gROOT.SetBatch(True)
    ROOT.TH1.AddDirectory(False)
    ROOT.RooMsgService.instance().setGlobalKillBelow(R.WARNING)
    model = json.load(open(f"{args.out}/work/fit_categories.json"))["model"]
    ours = json.load(open(f"{args.out}/results.json"))["combined"]
    if ours.get("blinded"):
        die("results.json is blinded: no observed μ to compare")
    print(f"{len(model['channels'])} categories × {model['channels'][0]['data']['binning']['bins']}"
          f" bins, mass fixed at {model['signal']['mass']:.4f} GeV, ROOT {ROOT.gROOT.GetVersion()};"
          f" hand-wrapped NLL − IntegrateBins NLL (legacy backend):"
          f" {same_as_integrate_bins(model, args.precision)}")
    d_mu, d_err = table(f"RooFit, bins integrated ({args.precision:g})",
                        fit(model, ours, args.precision), model, ours)
    table("RooFit, densities at bin centres", fit(model, ours, -1.0), model, ours)
    ok = d_mu < 0.005 and d_err < 0.02
    print(f"\nbins integrated: |Δμ/μ| = {100 * d_mu:.3f} % (< 0.5 %),"
          f" |Δσ_μ/σ_μ| = {100 * d_err:.3f} % (< 2 %): {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

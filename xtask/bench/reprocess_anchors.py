# The anchors of `cargo xtask bench-reprocess`: the same event loop (read the photon branches,
# select H->yy candidates, fill the 55-bin m_yy histogram) in uproot+awkward and in ROOT's
# RDataFrame, one thread, on the files listed in LIST. Each is timed inside this process,
# imports (and RDataFrame's declaration of its C++ helper) excluded; a warm-up run first, then
# the median of REPEATS (the statistic used for this project's runs). Prints one JSON object.
# usage: python reprocess_anchors.py LIST [REPEATS]
import json
import sys
import time

import awkward as ak
import numpy as np
import uproot

BRANCHES = ["trigP", "photon_pt", "photon_eta", "photon_phi", "photon_E", "photon_isTightID",
            "photon_ptcone30", "photon_etcone20"]


def uproot_loop(paths):
    """The selection of analysis/src/select.rs, vectorised; returns the histogram's entries."""
    hist = np.zeros(55)
    for path in paths:
        with uproot.open(path) as f:
            a = f["mini"].arrays(BRANCHES, library="ak")
        a = a[a.trigP]
        # The cuts' constants as double, as in C++ and this project: numpy would round a
        # plain Python float to the float32 of the column it is compared with.
        c = np.float64
        pt, eta = a.photon_pt / 1000.0, a.photon_eta
        aeta = abs(eta)
        good = a.photon_isTightID & (pt > c(25)) & (aeta < c(2.37)) & ((aeta < c(1.37)) | (aeta > c(1.52)))
        two = ak.sum(good, axis=1) == 2
        a, pt, good = a[two], pt[two], good[two]
        g = lambda x: x[good]
        pt = pt[good]
        iso_t = ak.all(g(a.photon_ptcone30) / g(a.photon_pt) < c(0.065), axis=1)
        iso_c = ak.all(g(a.photon_etcone20) / g(a.photon_pt) < c(0.065), axis=1)
        keep = iso_t & iso_c
        # The mass in double precision, rounded to float, as ROOT (and this project) has it:
        # in float, 5 events of 64 files fell on the other side of a cut.
        d = lambda x: ak.values_astype(x[keep], np.float64)
        pt, eta, phi, e = d(pt), d(g(a.photon_eta)), d(g(a.photon_phi)), d(g(a.photon_E) / 1000.0)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        s = lambda x: ak.to_numpy(ak.sum(x, axis=1))
        m2 = s(e) ** 2 - s(px) ** 2 - s(py) ** 2 - s(pz) ** 2
        m = (np.sqrt(np.abs(m2)) * np.sign(m2)).astype(np.float32).astype(np.float64)
        lead, sub = ak.to_numpy(pt[:, 0]), ak.to_numpy(pt[:, 1])
        sel = (lead / m > 0.35) & (sub / m > 0.25) & (m > 105) & (m < 160)
        hist += np.histogram(m[sel], bins=55, range=(105, 160))[0]
    return int(hist.sum())


def rdf_loop(paths):
    import ROOT
    df = ROOT.RDataFrame("mini", paths)
    h = (df.Filter("trigP")
         .Define("good", "photon_isTightID && photon_pt > 25000 && abs(photon_eta) < 2.37 && (abs(photon_eta) < 1.37 || abs(photon_eta) > 1.52)")
         .Filter("Sum(good) == 2")
         .Filter("Sum(photon_ptcone30[good] / photon_pt[good] < 0.065) == 2")
         .Filter("Sum(photon_etcone20[good] / photon_pt[good] < 0.065) == 2")
         .Define("m_yy", "hggMass(photon_pt[good], photon_eta[good], photon_phi[good], photon_E[good])")
         .Filter("photon_pt[good][0] / 1000.0 / m_yy > 0.35")
         .Filter("photon_pt[good][1] / 1000.0 / m_yy > 0.25")
         .Filter("m_yy > 105 && m_yy < 160")
         .Histo1D(("m", "m", 55, 105, 160), "m_yy"))
    return int(h.GetEntries())


def median_of(f, paths, repeats):
    """The median of `repeats` timed runs, after a warm-up: the statistic `bench-reprocess`
    reports for this project's runs too."""
    n = f(paths)  # warm-up (and, for RDataFrame, its JIT)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = f(paths)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], n


paths = [l.strip() for l in open(sys.argv[1]) if l.strip()]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
out = {"uproot": uproot.__version__, "awkward": ak.__version__}
out["uproot_s"], out["uproot_selected"] = median_of(uproot_loop, paths, repeats)
try:
    import ROOT
    ROOT.gErrorIgnoreLevel = ROOT.kError
    ROOT.gInterpreter.Declare(r'''
#include <Math/Vector4D.h>
float hggMass(const ROOT::RVecF& pt, const ROOT::RVecF& eta, const ROOT::RVecF& phi, const ROOT::RVecF& e) {
  ROOT::Math::PtEtaPhiEVector a(pt[0]/1000., eta[0], phi[0], e[0]/1000.), b(pt[1]/1000., eta[1], phi[1], e[1]/1000.);
  return (a+b).M(); }''')
    out["root"] = ROOT.gROOT.GetVersion()
    out["rdf_s"], out["rdf_selected"] = median_of(rdf_loop, paths, repeats)
except ImportError:
    pass
print(json.dumps(out))

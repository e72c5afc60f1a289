# Measures how long uproot + awkward take to read the photon branches of tree "mini" fully into
# awkward arrays (fresh uproot.open per repeat, best wall-clock of REPEATS after one warm-up).
# The Rust bench command `cargo xtask bench-read` calls this script when a Python with uproot is given.
# usage: python uproot_read.py FILE [REPEATS]   (pinning to one core is the caller's job)
import json
import sys
import time

import awkward as ak
import uproot

BRANCHES = ["photon_n", "trigP", "photon_pt", "photon_eta", "photon_phi", "photon_E",
            "photon_isTightID", "photon_ptcone30", "photon_etcone20"]


def read(path):
    with uproot.open(path) as f:
        return f["mini"].arrays(BRANCHES, library="ak")


path = sys.argv[1]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
arrays = read(path)  # warm-up
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    arrays = read(path)
    best = min(best, time.perf_counter() - t0)
n = len(arrays)
print(json.dumps({"tool": "uproot+awkward", "uproot": uproot.__version__, "awkward": ak.__version__,
                  "entries": n, "seconds": best, "events_per_s": n / best,
                  "sum_photon_pt": float(ak.sum(ak.values_astype(arrays["photon_pt"], "float64")))}))

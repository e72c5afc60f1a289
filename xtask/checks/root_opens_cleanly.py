"""Opens ROOT files the project wrote with real ROOT (PyPI `root`) and fails on any warning.

Every TTree is read entry by entry (every branch), its entry count checked, and each branch's
recorded compression setting printed next to what its baskets hold. Not part of the default
tests (it needs ROOT); run it after changing the writer or the generator:

    python -m venv venv && venv/bin/pip install root
    cargo xtask generate --out /tmp/gen --data-events 20000 --mc-events 2000
    venv/bin/python xtask/checks/root_opens_cleanly.py /tmp/gen/*.root

ROOT prints some warnings (e.g. "ReadStreamerInfo ... illegal uid") with printf, so each
file is opened in a child Python and its whole output is inspected.
"""
import subprocess
import sys

CHILD = r"""
import sys, ROOT
ROOT.gErrorIgnoreLevel = ROOT.kPrint
path = sys.argv[1]
f = ROOT.TFile.Open(path)
if not f or f.IsZombie():
    print("ERROR: cannot open", path); sys.exit(1)
print("FILE", path, "compression setting", f.GetCompressionSettings())
for key in f.GetListOfKeys():
    if key.GetClassName() != "TTree":
        continue
    t = f.Get(key.GetName())
    n = t.GetEntries()
    read = 0
    for i in range(n):
        if t.GetEntry(i) <= 0:
            print("ERROR: entry", i, "of", key.GetName(), "read no bytes"); sys.exit(1)
        read += 1
    print("TREE", key.GetName(), n, "entries,", read, "read")
    for b in t.GetListOfBranches():
        zipped = b.GetZipBytes() < b.GetTotBytes()
        print("  BRANCH %-28s compression %3d  zip %9d  tot %9d  %s" % (
            b.GetName(), b.GetCompressionSettings(), b.GetZipBytes(), b.GetTotBytes(),
            "baskets compressed" if zipped else "baskets stored"))
f.Close()
"""

NOISE = ("This distribution of ROOT is in alpha stage",)

def main(paths):
    bad = 0
    for path in paths:
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, path],
                             capture_output=True, text=True)
        lines = (out.stdout + out.stderr).splitlines()
        shown = [l for l in lines if l.strip() and not any(n in l for n in NOISE)]
        problems = [l for l in shown if not l.startswith(("FILE", "TREE", "  BRANCH"))]
        for l in shown:
            print(l)
        # A branch that says "no compression" while its baskets are compressed is mislabelled.
        mislabelled = [l for l in shown if l.startswith("  BRANCH") and " compression   0 " in l
                       and l.endswith("baskets compressed")]
        if out.returncode != 0 or problems or mislabelled:
            bad += 1
            print("NOT CLEAN:", path, "(exit %d)" % out.returncode)
            for l in problems + mislabelled:
                print("  >", l)
        else:
            print("clean:", path)
    return 1 if bad else 0

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))

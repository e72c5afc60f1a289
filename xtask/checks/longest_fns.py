#!/usr/bin/env python3
"""The longest functions of the workspace's own Rust sources (not vendor/, not tests' answer
files): `python3 xtask/checks/longest_fns.py [N]`. Lines from a `fn` line to its closing
brace, found by brace depth outside strings, chars and comments (good enough for a ranking)."""
import os, re, sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SKIP = {"target", "vendor", "fuzz", ".git", "answers"}
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+|async\s+|unsafe\s+|extern\s+\"C\"\s+)*fn\s+(\w+)")

def strip(line, state):
    """The line without strings, chars and comments; state: in a block comment."""
    out, i, n = [], 0, len(line)
    while i < n:
        if state["block"]:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out)
            state["block"], i = False, j + 2
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state["block"], i = True, i + 2
            continue
        if c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            continue
        if c == "'" and i + 2 < n and (line[i + 2] == "'" or line[i + 1] == "\\"):
            j = line.find("'", i + 2 if line[i + 1] != "\\" else i + 3)
            i = j + 1 if j > 0 else n
            continue
        out.append(c)
        i += 1
    return "".join(out)

def functions(path):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    state, found = {"block": False}, []
    stack = []  # (name, start, depth at start)
    depth = 0
    for k, raw in enumerate(lines):
        m = FN.match(raw)
        code = strip(raw, state)
        if m and "{" in code:
            stack.append((m.group(4), k, depth))
        elif m and not code.rstrip().endswith(";"):
            stack.append((m.group(4), k, depth))
        for ch in code:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                while stack and depth == stack[-1][2] and k >= stack[-1][1]:
                    name, start, _ = stack.pop()
                    found.append((k - start + 1, name, start + 1))
        if m and code.rstrip().endswith(";") and stack and stack[-1][1] == k:
            stack.pop()
    return found

rows = []
for dirpath, dirs, files in os.walk(ROOT):
    dirs[:] = [d for d in dirs if d not in SKIP]
    for f in files:
        if f.endswith(".rs"):
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, ROOT)
            rows += [(n, name, rel, line) for n, name, line in functions(p)]
rows.sort(reverse=True)
for n, name, rel, line in rows[: int(sys.argv[1]) if len(sys.argv) > 1 else 10]:
    print(f"{n:5}  {name}  {rel}:{line}")

#!/usr/bin/env bash
# Every crate's module graph: which top-level module imports which (`crate::` paths), test code
# left out (whatever follows `#[cfg(test)]` in a file, and test_util.rs files). Prints each
# crate's layer order (lowest first) and fails on any loop, and on the engine host
# (app/src/host) importing the UI crate: it talks to front ends through ltlab-types' protocol.
# Part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'EOF'
import pathlib, re, sys

CRATES = [("types", "types/src"), ("engine", "engine/src"), ("ui", "ui/src"), ("app", "app/src"), ("web", "web/src")]

def top_module(root, path):
    rel = path.relative_to(root).parts
    name = rel[0]
    return name[:-3] if name.endswith(".rs") else name

def graph(root):
    root = pathlib.Path(root)
    modules, edges = set(), {}
    for f in sorted(root.rglob("*.rs")):
        if f.name == "test_util.rs":
            continue
        m = top_module(root, f)
        if m in ("lib", "main"):
            continue
        modules.add(m)
        text = f.read_text()
        cut = text.find("#[cfg(test)]")
        if cut >= 0:
            text = text[:cut]
        for to in set(re.findall(r"crate::([a-z_][a-z0-9_]*)", text)):
            if to != m:
                edges.setdefault(m, set()).add(to)
    modules |= {t for ts in edges.values() for t in ts}
    return modules, edges

def layers(modules, edges):
    """Modules by layer: a module's layer is one above the highest it imports; None on a loop."""
    level, visiting = {}, set()
    def depth(m, path):
        if m in level:
            return level[m]
        if m in visiting:
            raise ValueError(" -> ".join(path[path.index(m):]))
        visiting.add(m)
        d = 1 + max((depth(t, path + [t]) for t in edges.get(m, ())), default=-1)
        visiting.discard(m)
        level[m] = d
        return d
    for m in sorted(modules):
        depth(m, [m])
    return level

status = 0
for crate, root in CRATES:
    modules, edges = graph(root)
    try:
        level = layers(modules, edges)
    except ValueError as loop:
        print(f"{crate}: loop {loop}", file=sys.stderr)
        for m in sorted(edges):
            print(f"  {m} -> {', '.join(sorted(edges[m]))}", file=sys.stderr)
        status = 1
        continue
    by = {}
    for m, d in level.items():
        by.setdefault(d, []).append(m)
    print(f"{crate}: " + " < ".join("{" + ", ".join(sorted(by[d])) + "}" for d in sorted(by)))
    for m in sorted(edges):
        print(f"  {m} -> {', '.join(sorted(edges[m]))}")
host_ui = [f"{f}:{i + 1}" for f in sorted(pathlib.Path("app/src/host").rglob("*.rs")) for i, line in enumerate(f.read_text().splitlines()) if "ltlab_ui" in line]
if host_ui:
    print("the engine host imports the UI crate: " + ", ".join(host_ui), file=sys.stderr)
    status = 1
sys.exit(status)
EOF

#!/usr/bin/env python3
"""Prints the import cycles between StreamX's top-level modules (src/<module>.rs or
src/<module>/): an edge A -> B for every `crate::B` named in A's production code (unit-test files
and trailing `#[cfg(test)] mod tests` blocks left out), then the strongly connected components with more than one module, and every elementary
cycle of length 2 (the pairs that import each other). Exit status 1 when there is a cycle.

    scripts/import-cycles.py [src]
"""
import os
import re
import sys
from collections import defaultdict


def modules(src):
    mods = {}
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            mods[entry[:-3]] = [path]
        elif os.path.isdir(path):
            mods[entry] = [os.path.join(dp, f) for dp, _, fs in os.walk(path) for f in fs
                           if f.endswith(".rs") and not is_test_file(f)]
    return mods


def is_test_file(name):
    """Unit-test files (`tests.rs`, `*_tests.rs`): a test may reach across modules."""
    return name == "tests.rs" or name.endswith("_tests.rs")


def strip_comments(text):
    # `#[cfg(test)] mod tests { ... }` at the end of a file: not production imports.
    text = text.split("#[cfg(test)]\nmod tests")[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def edges(mods):
    graph = defaultdict(set)
    names = set(mods)
    for mod, files in mods.items():
        for f in files:
            text = strip_comments(open(f, encoding="utf-8").read())
            # `use crate::{a, b::c}` groups and plain `crate::x` paths.
            for group in re.findall(r"crate::\{([^}]*)\}", text):
                for part in group.split(","):
                    head = part.strip().split("::")[0]
                    if head in names and head != mod:
                        graph[mod].add(head)
            for head in re.findall(r"crate::([a-z_][a-z0-9_]*)", text):
                if head in names and head != mod:
                    graph[mod].add(head)
    return graph


def sccs(graph, nodes):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    mods = modules(src)
    graph = edges(mods)
    comps = sccs(graph, mods)
    pairs = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, ())})
    print(f"{len(mods)} top-level modules, {sum(len(v) for v in graph.values())} import edges")
    print(f"{len(comps)} strongly connected component(s) with more than one module:")
    for c in comps:
        print("  " + " <-> ".join(c))
    print(f"{len(pairs)} pair(s) of modules that import each other:")
    for a, b in pairs:
        print(f"  {a} <-> {b}")
    sys.exit(1 if comps else 0)


if __name__ == "__main__":
    main()

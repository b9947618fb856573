#!/usr/bin/env python3
"""Reports include and call cycles between the source files of one program.

A file depends on another when it includes the other's header or calls (references) a
symbol the other defines, as nm shows it in the built objects. Every strongly connected
group of more than one file is a cycle. Usage:
    cycles.py SRCDIR OBJDIR [--allow REGEX] ...
Exit 1 when a cycle is found outside the allowed files (the CLI's command dispatch)."""
import os
import re
import subprocess
import sys


def objects(objdir):
    """{source stem: object path} for the objects automake built from <objdir>'s sources."""
    out = {}
    for name in os.listdir(objdir):
        if name.endswith(".o"):
            stem = name[:-2]
            stem = re.sub(r"^[a-z_]+-", "", stem) if "-" in stem else stem
            out[stem] = os.path.join(objdir, name)
    return out


def nm(path, flags):
    res = subprocess.run(["nm", *flags, path], capture_output=True, text=True, check=True)
    syms = set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            syms.add(parts[-1])
    return syms


def graph(srcdir, objdir):
    objs = objects(objdir)
    defined = {s: nm(p, ["-g", "--defined-only"]) for s, p in objs.items()}
    owner = {}
    for stem, syms in defined.items():
        for sym in syms:
            owner[sym] = stem
    edges = {s: set() for s in objs}
    why = {}
    for stem, path in objs.items():
        for sym in nm(path, ["-u"]):
            o = owner.get(sym)
            if o and o != stem:
                edges[stem].add(o)
                why.setdefault((stem, o), "calls " + sym)
        src = os.path.join(srcdir, stem + ".c")
        if os.path.exists(src):
            with open(src, encoding="utf-8") as f:
                for m in re.finditer(r'^#include "([a-z0-9_]+)\.h"', f.read(), re.M):
                    h = m.group(1)
                    if h in objs and h != stem:
                        edges[stem].add(h)
                        why.setdefault((stem, h), "includes " + h + ".h")
    return edges, why


def sccs(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    args = sys.argv[1:]
    allow = []
    while "--allow" in args:
        i = args.index("--allow")
        allow.append(re.compile(args[i + 1]))
        del args[i:i + 2]
    srcdir, objdir = args
    edges, why = graph(srcdir, objdir)
    bad = 0
    for comp in sccs(edges):
        if all(any(a.fullmatch(f) for a in allow) for f in comp):
            continue
        bad += 1
        print("cycle in %s: %s" % (objdir, " ".join(comp)))
        for a in comp:
            for b in comp:
                if b in edges[a]:
                    print("  %s -> %s (%s)" % (a, b, why[(a, b)]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

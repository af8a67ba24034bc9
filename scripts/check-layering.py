#!/usr/bin/env python3
"""Checks that the folders of include/sparq/ form layers and that README.md states them (issue 17, item 1).

    python3 scripts/check-layering.py [ROOT]     check the tree at ROOT (default: this repository)
    python3 scripts/check-layering.py --self-test
                                                 build small trees in a temporary directory, each with
                                                 one planted fault, and check that exactly that fault
                                                 is reported (and that a good tree passes)

Rules (LAYERS below is the only place the order is written down):
  1. Every `#include "sparq/<folder>/..."` (or <...>) in a header under include/sparq/ names a folder
     of the same layer or of a lower one. Folders on the same layer are siblings: a folder may include
     itself, but not its siblings. Headers directly in include/sparq/ (the umbrella sparq.hpp) form
     the top layer, "sparq.hpp"; an include of one of them counts as an include of that layer.
  2. Every folder of include/sparq/ appears in LAYERS (a new folder must be given its place).
  3. README.md states the same order, on the line after the marker LAYERS_MARKER: the layers from
     the bottom up as backquoted folders (`core/`) separated by arrows (→ or ->), siblings separated
     by commas, the umbrella as `sparq.hpp`.
  4. Every entry of EXCEPTIONS still matches an include (stale exceptions are reported too).
  5. No header under include/sparq/ uses dynamic_cast (outside comments): a LinearOp format describes
     itself to packing, files and exporters through its virtual methods and the format registry
     (docs/model.md#adding-a-weight-format), so no layer asks an op for its type (issue 17, item 5).
Fails with exit 1 and one "file:line: problem" line per finding; exit 2 on bad usage.
Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

# The layers of include/sparq/, bottom first. A header may include headers of its own folder and of
# every folder of a lower layer; folders on one line are siblings and do not include each other.
#   core      vocabulary with no SIMD: MatrixView, fp16/bf16, errors, statistics, file helpers
#   simd      target tags and the only place that touches intrinsics headers
#   kernels   hot loops over raw buffers, per-target dispatch tables
#   quant     quantizers, GPTQ, SmoothQuant/AWQ maths (generic: no model types)
#   prune, lowrank
#             siblings: pruning (whose SparseGPT sweep quantizes with quant/) and low-rank
#             factorization (whose stored factors are quantized with quant/); neither needs the other,
#             and a method that combines them belongs to joint/
#   model     the Llama runtime, its LinearOp formats, tokenizer, perplexity, the layer-wise driver
#             (which calls its callers back through model::LayerwiseCallbacks, an interface model/ owns)
#   joint     compression drivers: Compressor, stages, recipes, the JSQ search
#   io        file formats of everything below (llama2.c, GGUF, safetensors, packed models, loading)
#   sparq.hpp the umbrella header
LAYERS: list[list[str]] = [
    ["core"],
    ["simd"],
    ["kernels"],
    ["quant"],
    ["prune", "lowrank"],
    ["model"],
    ["joint"],
    ["io"],
    ["sparq.hpp"],
]

# Includes that break the order but are allowed for now: (including file relative to include/,
# included header as written, reason). Keep it empty or tiny; a stale entry fails the check.
EXCEPTIONS: list[tuple[str, str, str]] = [
]

LAYERS_MARKER = "<!-- layers: checked by scripts/check-layering.py -->"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*["<](sparq/[^">]+)[">]')
UMBRELLA = "sparq.hpp"
DYNAMIC_CAST_RE = re.compile(r"\bdynamic_cast\s*<")


def rank_of() -> dict[str, int]:
    ranks: dict[str, int] = {}
    for i, layer in enumerate(LAYERS):
        for folder in layer:
            if folder in ranks:
                raise SystemExit(f"check-layering: {folder} appears twice in LAYERS")
            ranks[folder] = i
    return ranks


def show(folder: str) -> str:
    return folder if folder == UMBRELLA else folder + "/"


def order_text() -> str:
    return " → ".join(", ".join(show(f) for f in layer) for layer in LAYERS)


def folder_of(rel: str) -> str:
    """'sparq/quant/detail/x.hpp' -> 'quant'; 'sparq/sparq.hpp' -> 'sparq.hpp' (the umbrella layer)."""
    parts = rel.split("/")
    return parts[1] if len(parts) > 2 else UMBRELLA


def check_includes(root: str, findings: list[str]) -> tuple[int, int]:
    ranks = rank_of()
    base = os.path.join(root, "include")
    top = os.path.join(base, "sparq")
    if not os.path.isdir(top):
        findings.append(f"include/sparq: not a directory under {root}")
        return 0, 0
    for entry in sorted(os.listdir(top)):
        if os.path.isdir(os.path.join(top, entry)) and entry not in ranks:
            findings.append(f"include/sparq/{entry}/: folder not in the layer order ({order_text()}); "
                            "give it a place in LAYERS of scripts/check-layering.py and in README.md")
    exceptions = {(f, inc): False for f, inc, _ in EXCEPTIONS}
    nfiles = nincludes = 0
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith((".hpp", ".h", ".hh", ".ipp", ".inl", ".cpp")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            src = folder_of(rel)
            nfiles += 1
            with open(path, encoding="utf-8", errors="replace") as fh:
                for lineno, line in enumerate(fh, 1):
                    if DYNAMIC_CAST_RE.search(line.split("//", 1)[0]):
                        findings.append(f"include/{rel}:{lineno}: dynamic_cast: ask the op through a virtual "
                                        "method of LinearOp instead (docs/model.md#adding-a-weight-format)")
                    m = INCLUDE_RE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    dst = folder_of(inc)
                    nincludes += 1
                    if src == dst:
                        continue
                    where = f"include/{rel}:{lineno}: #include \"{inc}\": "
                    if src not in ranks or dst not in ranks:
                        if dst not in ranks:
                            findings.append(where + f"{show(dst)} is not in the layer order ({order_text()})")
                        continue  # an unknown including folder is reported once, above
                    if ranks[dst] < ranks[src]:
                        continue
                    if (rel, inc) in exceptions:
                        exceptions[(rel, inc)] = True
                        continue
                    if ranks[dst] == ranks[src]:
                        findings.append(where + f"{show(src)} and {show(dst)} are siblings (one layer) and may "
                                        f"not include each other (order: {order_text()})")
                    else:
                        findings.append(where + f"{show(src)} (layer {ranks[src] + 1}) may not include "
                                        f"{show(dst)} (layer {ranks[dst] + 1}): a layer includes only itself "
                                        f"and the layers below it (order: {order_text()})")
    for (f, inc), used in exceptions.items():
        if not used:
            findings.append(f"scripts/check-layering.py: stale exception: include/{f} no longer includes "
                            f"\"{inc}\" upwards; remove it from EXCEPTIONS")
    return nfiles, nincludes


def parse_readme_order(text: str) -> list[list[str]]:
    parts = re.split(r"\s*(?:→|->)\s*", text.strip())
    layers = []
    for part in parts:
        names = re.findall(r"`([^`]+)`", part)
        layers.append([n[:-1] if n.endswith("/") else n for n in names])
    return layers


def check_readme(root: str, findings: list[str]) -> None:
    path = os.path.join(root, "README.md")
    if not os.path.isfile(path):
        findings.append("README.md: missing (it must state the layer order)")
        return
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == LAYERS_MARKER]
    if len(marks) != 1 or marks[0] + 1 >= len(lines):
        findings.append(f"README.md: expected the marker line {LAYERS_MARKER} exactly once, followed by "
                        f"the layer order ({order_text()}); found it {len(marks)} time(s)")
        return
    lineno = marks[0] + 2
    stated = parse_readme_order(lines[lineno - 1])
    if stated != LAYERS:
        said = " → ".join(", ".join(show(f) for f in layer) for layer in stated)
        findings.append(f"README.md:{lineno}: states the layers as \"{said}\", but scripts/check-layering.py "
                        f"uses \"{order_text()}\" (write `folder/` in backquotes, → between layers, "
                        "commas between siblings)")


def check_tree(root: str) -> int:
    findings: list[str] = []
    nfiles, nincludes = check_includes(root, findings)
    check_readme(root, findings)
    for f in findings:
        print(f)
    if findings:
        print(f"check-layering: {len(findings)} problem(s) in {root}")
        return 1
    extra = f", {len(EXCEPTIONS)} documented exception(s)" if EXCEPTIONS else ", no exceptions"
    print(f"check-layering: OK ({root}: {nincludes} sparq includes in {nfiles} files follow "
          f"{order_text()}{extra}; no dynamic_cast; README.md states the same order)")
    return 0


def self_test() -> int:
    fails = 0
    me = os.path.abspath(__file__)

    def run(root: str) -> tuple[int, list[str]]:
        p = subprocess.run([sys.executable, me, root], capture_output=True, text=True)
        lines = [line for line in p.stdout.splitlines() if not line.startswith("check-layering:")]
        return p.returncode, lines + [line for line in p.stderr.splitlines() if line]

    def write(root: str, rel: str, text: str) -> None:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)

    def good_tree(root: str) -> None:
        names = [f for layer in LAYERS for f in layer if f != UMBRELLA]
        for i, f in enumerate(names):
            below = "".join(f'#include "sparq/{g}/a.hpp"\n' for g in names[:i] if rank_of()[g] < rank_of()[f])
            write(root, f"include/sparq/{f}/a.hpp", f"#pragma once\n{below}#include \"sparq/{f}/detail/b.hpp\"\n")
            write(root, f"include/sparq/{f}/detail/b.hpp", "#pragma once\n// #include \"sparq/io/a.hpp\" in a comment\n")
        write(root, "include/sparq/sparq.hpp",
              "#pragma once\n" + "".join(f'#include <sparq/{f}/a.hpp>\n' for f in names))
        readme = "# fake\n\n## Layout\n\n" + LAYERS_MARKER + "\n" + \
            " → ".join(", ".join(f"`{show(f)}`" for f in layer) for layer in LAYERS) + "\n"
        write(root, "README.md", readme)

    # Each case: (what is planted, edit to the good tree, the one finding expected, as a regex).
    def plant_core_joint(root: str) -> None:
        write(root, "include/sparq/core/bad.hpp", "#pragma once\n\n#include \"sparq/core/a.hpp\"\n"
              "#include \"sparq/joint/a.hpp\"\n")

    def plant_siblings(root: str) -> None:
        write(root, "include/sparq/prune/sib.hpp", "#pragma once\n#include \"sparq/lowrank/a.hpp\"\n")

    def plant_umbrella(root: str) -> None:
        write(root, "include/sparq/io/all.hpp", "#pragma once\n#  include <sparq/sparq.hpp>\n")

    def plant_folder(root: str) -> None:
        write(root, "include/sparq/extra/x.hpp", "#pragma once\n")

    def plant_cast(root: str) -> None:
        write(root, "include/sparq/io/cast.hpp", "#pragma once\n// dynamic_cast<const X*> in a comment is fine\n"
              "inline bool f(const A* a) { return dynamic_cast<const B*>(a) != nullptr; }\n")

    def plant_readme(root: str) -> None:
        path = os.path.join(root, "README.md")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        write(root, "README.md", text.replace("`joint/` → `io/`", "`io/` → `joint/`"))

    cases = [
        ("core/ including joint/", plant_core_joint,
         r"^include/sparq/core/bad\.hpp:4: #include \"sparq/joint/a\.hpp\": core/ \(layer 1\) may not include "
         r"joint/ \(layer \d+\)"),
        ("prune/ including its sibling lowrank/", plant_siblings,
         r"^include/sparq/prune/sib\.hpp:2: #include \"sparq/lowrank/a\.hpp\": prune/ and lowrank/ are siblings"),
        ("io/ including the umbrella", plant_umbrella,
         r"^include/sparq/io/all\.hpp:2: #include \"sparq/sparq\.hpp\": io/ \(layer \d+\) may not include sparq\.hpp"),
        ("a folder with no layer", plant_folder, r"^include/sparq/extra/: folder not in the layer order"),
        ("README.md with joint/ and io/ swapped", plant_readme, r"^README\.md:6: states the layers as"),
        ("a dynamic_cast in io/", plant_cast, r"^include/sparq/io/cast\.hpp:3: dynamic_cast: ask the op"),
    ]
    with tempfile.TemporaryDirectory(prefix="sparq-layering-") as tmp:
        good = os.path.join(tmp, "good")
        good_tree(good)
        rc, out = run(good)
        if rc != 0 or out:
            print(f"self-test: the good tree failed (exit {rc}):", *out, sep="\n  ")
            fails += 1
        for what, plant, want in cases:
            root = os.path.join(tmp, re.sub(r"\W+", "_", what))
            shutil.copytree(good, root)
            plant(root)
            rc, out = run(root)
            print(f"[{what}]", *out, sep="\n  ")
            if rc != 1:
                print(f"self-test: {what}: expected exit 1, got {rc}")
                fails += 1
            if len(out) != 1 or not re.search(want, out[0]):
                print(f"self-test: {what}: expected exactly one finding matching /{want}/, got {len(out)}")
                fails += 1
        # A documented exception silences exactly its include; one that matches nothing is stale.
        global EXCEPTIONS
        saved = EXCEPTIONS
        EXCEPTIONS = [("sparq/core/bad.hpp", "sparq/joint/a.hpp", "self-test")]
        try:
            found: list[str] = []
            check_includes(os.path.join(tmp, "core_including_joint_"), found)
            if found:
                print("self-test: the exception did not silence its include:", *found, sep="\n  ")
                fails += 1
            found = []
            check_includes(good, found)
            if len(found) != 1 or "stale exception: include/sparq/core/bad.hpp" not in found[0]:
                print("self-test: a stale exception was not reported:", *found, sep="\n  ")
                fails += 1
        finally:
            EXCEPTIONS = saved
    if fails:
        print(f"check-layering self-test: FAILED ({fails})")
        return 1
    print(f"check-layering self-test: OK (a good tree passes; each of {len(cases)} planted faults is reported, "
          "and only it; an exception silences only its include, a stale one is reported)")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(f"usage: {argv[0]} [ROOT] | --self-test", file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if not os.path.isdir(root):
        print(f"check-layering: {root} is not a directory", file=sys.stderr)
        return 2
    return check_tree(os.path.realpath(root))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env bash
# Perplexity against stored bytes and against MACs for every row of the two compare settings
# (docs/results.md: 50 % + W8A8 and 60 % + W4A8 g64), as in Fig. 1 of the JSQ paper.
#
#   bash scripts/plot-results.sh                  # runs both compare settings, then plots
#   bash scripts/plot-results.sh r50.json r60.json  # plots rows already written by sparq-compress --json
#
# Output: docs/img/ppl_vs_size.png (override with PLOT_OUT=path). The tool is build/release's
# sparq-compress (built first if missing; SPARQ_COMPRESS=path to use another). Needs python3 and
# gnuplot (Debian: apt-get install gnuplot-nox).
# x of a row: its stored bytes (weight_bytes: the packed decoder linears; the theoretical bytes when
# the row has no packed form) and its MACs per token relative to dense; y: its perplexity (through
# the packed kernels when the row has them, else fake-quantized), log scale.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${PLOT_OUT:-docs/img/ppl_vs_size.png}"
command -v gnuplot >/dev/null || { echo "plot-results: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "plot-results: python3 not found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -eq 2 ]; then
  cp "$1" "$work/r50.json"
  cp "$2" "$work/r60.json"
elif [ $# -eq 0 ]; then
  tool="${SPARQ_COMPRESS:-build/release/examples/compress/sparq-compress}"
  if [ ! -x "$tool" ]; then
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build/release -j"${SPARQ_JOBS:-2}" --target sparq-compress
  fi
  "$tool" --no-progress --json "$work/r50.json" >/dev/null
  "$tool" --no-progress --sparsity 0.6 --wbits 4 --group 64 --json "$work/r60.json" >/dev/null
else
  echo "usage: bash scripts/plot-results.sh [r50.json r60.json]" >&2
  exit 2
fi

# One data file per (setting, method) and the gnuplot script: colour = setting, point type = method,
# with a legend of the methods (black) and of the settings (colour), so that no label overlaps another.
mkdir -p "$(dirname "$out")"
python3 - "$work" "$out" <<'EOF'
import json, sys, os
work, out = sys.argv[1], sys.argv[2]
settings = [("r50", "50 % + W8A8", "#1f77b4"), ("r60", "60 % + W4A8 g64", "#d62728")]
methods, series = [], []
for name, title, colour in settings:
    with open(os.path.join(work, name + ".json")) as f:
        doc = json.load(f)
    for r in doc["rows"]:
        m = r["method"]
        if m not in methods:
            methods.append(m)
        b = r["weight_bytes"] if r.get("weight_bytes") is not None else r["theoretical_weight_bytes"]
        path = os.path.join(work, "%s_%d.dat" % (name, methods.index(m)))
        with open(path, "w") as o:
            o.write("%s %s %s\n" % (b, r["macs_relative"], r["perplexity"]))
        series.append((path, methods.index(m), colour))
pts = [7, 5, 9, 11, 13, 15, 6, 4, 8, 10, 12, 14, 1, 2, 3, 18, 19, 20]  # gnuplot point types
def panel(xcol, key):
    parts = ['"%s" using %d:3 with points pt %d ps 1.6 lc rgb "%s" notitle' % (p, xcol, pts[i % len(pts)], c)
             for p, i, c in series]
    # sparq's own recipe (jsq+, issue 16): its points are also labelled, since the point types run out
    parts += ['"%s" using %d:3:("%s") with labels offset 0,-1.1 font ",8" textcolor rgb "%s" notitle'
              % (p, xcol, methods[i], c) for p, i, c in series if methods[i].startswith("jsq+")]
    if key:
        parts += ['NaN with points pt %d ps 1.6 lc rgb "black" title "%s"' % (pts[i % len(pts)], m)
                  for i, m in enumerate(methods)]
        parts += ['NaN with lines lw 6 lc rgb "%s" title "%s"' % (c, t) for _, t, c in settings]
    return "plot " + ", \\\n     ".join(parts) + "\n"
with open(os.path.join(work, "plot.gp"), "w") as g:
    g.write('set terminal pngcairo size 1600,640 font "Sans,10"\n')
    g.write('set output "%s"\n' % out)
    g.write('set multiplot layout 1,2 title "stories260K, 60,000 evaluation tokens (docs/results.md): perplexity '
            'against stored bytes and against MACs; colour = setting, shape = method"\n')
    g.write('set logscale y\nset yrange [3:150]\nset grid\nset ylabel "perplexity (log scale)"\n')
    g.write('set key outside right top vertical font ",9"\n')
    g.write('set xlabel "stored bytes of the decoder linears"\nset format x "%.0s%c"\nset xrange [0:950000]\n')
    g.write(panel(1, False))
    g.write('set xlabel "MACs per token relative to dense"\nset format x "%.1f"\nset xrange [0.35:1.05]\n')
    g.write(panel(2, True))
    g.write("unset multiplot\n")
EOF
gnuplot "$work/plot.gp"
echo "plot-results: wrote $out"

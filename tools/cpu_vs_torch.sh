#!/usr/bin/env bash
# cpu_vs_torch.sh: gc's cpu training step against an eager PyTorch port of the same
# network (tools/reference/torch_port.py, Debian's python3-torch), side by side in
# one run: for each configuration and thread count, gc and PyTorch alternate
# --rounds times and each keeps its best median (timings on a shared machine
# vary; the best of a few rounds is the least disturbed). Prints Markdown.
# Usage: tools/cpu_vs_torch.sh [--rounds N] [--steps N]   (defaults 3 and 10).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
steps=10
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: tools/cpu_vs_torch.sh [--rounds N] [--steps N]" >&2; exit 2 ;;
  esac
done
[ -x ./gc_train ] || { echo "build first: make" >&2; exit 1; }
py=/usr/bin/python3
$py -c "import torch" 2>/dev/null || { echo "needs Debian's python3-torch (apt-get install python3-torch)" >&2; exit 1; }
# Debian's torch takes its BLAS from the libblas.so.3 alternative: the reference BLAS
# (libblas3, what python3-torch pulls in alone) is ~6x slower than OpenBLAS on these GEMMs.
blas=$($py -c "import torch; print(next((l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l), 'none'))")
case $blas in
  *openblas*) echo "PyTorch's BLAS: $blas" >&2 ;;
  *) echo "PyTorch would run on $blas, not OpenBLAS (apt-get install libopenblas0-pthread)" >&2; exit 1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gc_ms() {  # gc_ms THREADS GRID MESH LATENT LAYERS: the median step of a cpu run
  OMP_NUM_THREADS=$1 ./gc_train --preset graphcast-small --grid "$2" --mesh "$3" --latent "$4" --layers "$5" \
    --in-channels 9 --out-channels 3 --rollout 1 --steps $((steps + 2)) --no-eval --quiet --overwrite \
    --out "$tmp/run" --report "$tmp/gc.json" >/dev/null 2>&1
  $py -c "import json; print(json.load(open('$tmp/gc.json'))['timing']['step_ms_median'])"
}
torch_ms() {  # torch_ms THREADS GRID MESH LATENT LAYERS (OpenBLAS single-threaded: its own
  # pthreads on top of PyTorch's intra-op threads made the 2-thread step 2.2x slower here)
  OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=1 $py tools/reference/torch_port.py --grid "$2" --mesh "$3" --latent "$4" --layers "$5" --threads "$1" \
    --steps "$steps" | $py -c "import json, sys; print(json.load(sys.stdin)['ms_median'])"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }

echo "| config | PyTorch, 1 thread | PyTorch, 2 threads | gc, 1 thread | gc, 2 threads | gc 2 threads / PyTorch's best | gc / PyTorch, 1 thread |"
echo "|---|---|---|---|---|---|---|"
for config in "5.625 3 64 4" "2.8125 4 128 8"; do
  read -r grid mesh latent layers <<<"$config"
  declare -A gc=() torch=()
  for threads in 1 2; do
    for ((r = 0; r < rounds; r++)); do
      gc[$threads]=$(min "${gc[$threads]:-}" "$(gc_ms "$threads" $config)")
      torch[$threads]=$(min "${torch[$threads]:-}" "$(torch_ms "$threads" $config)")
    done
  done
  best_torch=$(min "${torch[1]}" "${torch[2]}")
  printf '| %s deg, mesh %s, latent %s, %s layers | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %s | %s |\n' \
    "$grid" "$mesh" "$latent" "$layers" "${torch[1]}" "${torch[2]}" "${gc[1]}" "${gc[2]}" \
    "$(awk -v g="${gc[2]}" -v t="$best_torch" 'BEGIN { printf "%.2f", g / t }')" \
    "$(awk -v g="${gc[1]}" -v t="${torch[1]}" 'BEGIN { printf "%.2f", g / t }')"
done

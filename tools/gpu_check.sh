#!/usr/bin/env bash
# gpu_check.sh: the checks of the cuda backend that need a GPU, in one run
# (about 5 minutes on one H100; every step has its own time limit):
#   1. build everything (make -j16) and run ./gc_tests; the cuda tests must run, not skip;
#   2. train the demo on the GPU for a few hundred steps (the loss must fall);
#   3. time training steps of graphcast-small in bf16 with --remat none and with
#      --remat auto, and of graphcast (0.25 deg) in bf16 with --remat auto, both
#      planned for the card's memory less a margin for the CUDA context and cuBLAS;
#   4. check that each real run's peak_allocated and peak_reserved equal its meta dry
#      run to the byte, and print one table: configuration, ms/step, peak GB
#      measured vs predicted, achieved TFLOP/s (from the report's flops_per_step).
# Usage: tools/gpu_check.sh [--sim] [OUT_DIR]   (default runs/gpu_check). Exits non-zero
# when any step fails or any peak differs from its prediction, after printing the table.
#   --sim  the same steps on cudasim (tests/cudasim: the backend simulated on the CPU,
#          no GPU needed) with small models and few steps: checks this script's own
#          plumbing; its timings mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
sim=0
if [[ ${1:-} == --sim ]]; then
  sim=1
  shift
fi
out=${1:-runs/gpu_check}
mkdir -p "$out"
steps=5                        # timed steps per configuration
demo_steps=300
failures=0
# Room left on the card for what lives outside gc's allocator (CUDA context, cuBLAS handle).
context_margin=2000000000
train=./gc_train
tests=(./gc_tests --gtest_brief=1)
small=()                       # --sim: model flags that make every configuration small
small_grid=()                  # --sim: a coarse grid for the presets without data
if ((sim)); then
  train=./build-sim/gc_train
  tests=(./build-sim/gc_tests --gtest_brief=1 --gtest_filter='*Cuda*')
  small=(--latent 16 --layers 1 --mesh 2)
  small_grid=(--grid 10)
  steps=2
  demo_steps=8
fi

say() { printf '\n== %s (%ds elapsed)\n' "$*" "$SECONDS"; }
fail() { echo "gpu_check: FAILED: $*" >&2; failures=$((failures + 1)); }
die() { echo "gpu_check: $*" >&2; exit 1; }

# json FILE EXPR: a value of a report, EXPR a Python expression over r (the report).
json() { python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print($2)" "$1"; }
gb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }

command -v python3 >/dev/null || die "python3 is needed to read the reports"
if ((sim)); then
  gpu_bytes=${GCSIM_DEVICE_BYTES:-8589934592}
  echo "cudasim: a simulated device of $gpu_bytes bytes"
elif command -v nvidia-smi >/dev/null; then
  nvidia-smi -L
  gpu_bytes=$(($(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1) * 1048576))
else
  echo "nvidia-smi not found; assuming an 80 GB GPU"
  gpu_bytes=80000000000
fi

say "build (make -j16)"
targets=()
((sim)) && targets=(cudasim)
timeout 300 make -j16 "${targets[@]}" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; die "the build failed (log: $out/build.log)"; }
grep -in "warning" "$out/build.log" && fail "the build has warnings (log: $out/build.log)"

say "unit tests (${tests[*]})"
if ! timeout 300 "${tests[@]}" >"$out/tests.log" 2>&1; then
  tail -40 "$out/tests.log"
  fail "${tests[0]} failed (log: $out/tests.log)"
fi
if grep -q "no cuda device" "$out/tests.log"; then
  grep -m1 "no cuda device" "$out/tests.log"
  die "the cuda tests skipped: this machine's GPU is not usable by gc"
fi
tail -3 "$out/tests.log"

say "demo on the GPU ($demo_steps steps)"
if timeout 300 "$train" --device cuda --steps "$demo_steps" "${small[@]}" --no-eval --quiet --overwrite --out "$out/demo" \
    --report "$out/demo.json" >"$out/demo.log" 2>&1; then
  first=$(json "$out/demo.json" 'r["train"]["loss_first"]')
  last=$(json "$out/demo.json" 'r["train"]["loss_last"]')
  echo "loss $first -> $last, $(json "$out/demo.json" 'round(r["timing"]["step_ms_median"], 2)') ms/step"
  python3 -c "import math, sys; f, l = map(float, sys.argv[1:]); sys.exit(0 if math.isfinite(l) and l < f else 1)" \
    "$first" "$last" || fail "the demo's loss did not fall ($first -> $last)"
else
  tail -20 "$out/demo.log"
  fail "the demo failed on the GPU (log: $out/demo.log)"
fi

rows=()
# train_on DEVICE FLAGS...: one gc_train run of configuration $name (set by measure)
# into $out/$name.DEVICE{,.json,.log}; shows the log's end when it fails.
train_on() {
  local device=$1
  shift
  timeout 300 "$train" "$@" --device "$device" --overwrite --out "$out/$name.$device" --report "$out/$name.$device.json" \
    >"$out/$name.$device.log" 2>&1 && return 0
  tail -20 "$out/$name.$device.log"
  return 1
}

# measure NAME PRESET REMAT: meta dry run, then the real run, same flags; one table row.
# --remat auto plans for the card's memory less the context margin.
measure() {
  local name=$1 preset=$2 remat=$3
  local flags=(--preset "$preset" "${small[@]}" "${small_grid[@]}" --precision bf16 --remat "$remat" --steps "$steps" --no-eval --quiet)
  [[ $remat == auto ]] && flags+=(--mem-budget "$((gpu_bytes - context_margin))")
  say "$name: dry run on meta"
  if ! train_on meta "${flags[@]}"; then
    fail "$name: the dry run failed (log: $out/$name.meta.log)"
    rows+=("$name|dry run failed||||||")
    return
  fi
  local predicted_allocated predicted_reserved
  predicted_allocated=$(json "$out/$name.meta.json" 'r["memory"]["peak_allocated"]')
  predicted_reserved=$(json "$out/$name.meta.json" 'r["memory"]["peak_reserved"]')
  if ((predicted_reserved + context_margin > gpu_bytes)); then
    echo "$name: predicted peak reserved $predicted_reserved B does not fit in $gpu_bytes B; skipped"
    rows+=("$name|skipped: does not fit||$(gb "$predicted_allocated") / $(gb "$predicted_reserved")|||")
    return
  fi
  say "$name: $steps steps on the GPU"
  if ! train_on cuda "${flags[@]}"; then
    fail "$name: the run failed on the GPU (log: $out/$name.cuda.log)"
    rows+=("$name|failed||||||")
    return
  fi
  local r=$out/$name.cuda.json measured_allocated measured_reserved ms tflops verdict
  measured_allocated=$(json "$r" 'r["memory"]["peak_allocated"]')
  measured_reserved=$(json "$r" 'r["memory"]["peak_reserved"]')
  ms=$(json "$r" "format(r['timing']['step_ms_median'], '.1f')")
  # FLOPs counted by the trainer (the report's flops_per_step), not 6 x params x rows.
  tflops=$(json "$r" "format(r['timing']['flops_per_step'] / (r['timing']['step_ms_median'] * 1e-3) / 1e12, '.1f')
           if r['timing'].get('flops_per_step') and r['timing']['step_ms_median'] > 0 else 'n/a'")
  if [[ $measured_allocated == "$predicted_allocated" && $measured_reserved == "$predicted_reserved" ]]; then
    verdict="equal"
  else
    verdict="DIFFER: allocated $((measured_allocated - predicted_allocated)) B, reserved $((measured_reserved - predicted_reserved)) B"
    fail "$name: measured peaks differ from the dry run ($verdict)"
  fi
  outside=$(json "$r" 'r["memory"].get("outside_allocator", 0)')
  rows+=("$name|$ms|$(gb "$measured_allocated") / $(gb "$measured_reserved")|$(gb "$predicted_allocated") / $(gb "$predicted_reserved")|$(gb "$outside")|$tflops|$verdict")
}

measure graphcast-small.bf16.remat-none graphcast-small none
measure graphcast-small.bf16.remat-auto graphcast-small auto
measure graphcast.bf16.remat-auto graphcast auto

say "summary"
{
  echo "configuration|ms/step|peak GB measured (alloc / reserved)|peak GB predicted (alloc / reserved)|GB not gc's|TFLOP/s|measured vs predicted"
  for row in "${rows[@]}"; do echo "$row"; done
} | python3 -c '
import sys
rows = [line.rstrip("\n").split("|") for line in sys.stdin]
widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
'
echo
((sim)) && echo "cudasim: small models (${small[*]}) on the simulated device; timings mean nothing"
echo "GPU: $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -1 || echo unknown);" \
  "bf16, $steps steps each, median step time; GB = 1e9 bytes; not gc's: the GPU's bytes in use minus gc's reserved (CUDA context, cuBLAS); reports and logs in $out"
if ((failures > 0)); then
  echo "gpu_check: $failures check(s) failed" >&2
  exit 1
fi
echo "gpu_check: all checks passed"

#!/usr/bin/env bash
# multi_gpu_check.sh: data parallel over every GPU of one machine (mpirun, NCCL), the
# checks that need several GPUs, in one unattended run (about 5 minutes):
#   1. build gc_train (with CUDA, NCCL and Open MPI);
#   2. the demo on P = number of GPUs ranks (--batch P, one sample each) against the same
#      --batch P on one GPU: the loss curves must agree within f32 rounding (1e-5 relative);
#   3. graphcast-small (1 deg) in bf16 on P ranks: each rank's measured peaks against the
#      dry run of P ranks (`--device meta --ranks P`, standing for cuda) to the byte;
#   4. one table: configuration, rank, ms/step, peak GB measured vs predicted, seconds in the
#      collectives and bytes sent per rank (the step's compute/communication split).
# Model parallel (one sample sharded over the GPUs) is not in gc yet; this script checks
# data parallel only. Usage: tools/multi_gpu_check.sh [OUT_DIR] (default runs/multi_gpu_check).
# Exits non-zero when a step fails or a peak differs from its prediction, after the table.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/multi_gpu_check}
mkdir -p "$out"
failures=0
say() { printf '\n== %s (%ds elapsed)\n' "$*" "$SECONDS"; }
fail() { echo "multi_gpu_check: FAILED: $*" >&2; failures=$((failures + 1)); }
json() { python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print($2)" "$1"; }

gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
if ((gpus < 2)); then
  echo "multi_gpu_check: needs two GPUs or more (found ${gpus}); tools/gpu_check.sh checks one" >&2
  exit 1
fi
mpirun=(mpirun -np "$gpus" -x OMP_NUM_THREADS=4)
[[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)

say "build"
make -j"$(nproc)" gc_train > "$out/build.log" 2>&1 || { tail -20 "$out/build.log"; echo "multi_gpu_check: build failed" >&2; exit 1; }
[[ -f build/comm-mpi1-nccl1.stamp ]] || fail "this build has no MPI or no NCCL (see $out/build.log)"

rows=()
row() { rows+=("$(printf '%-34s %4s %9s %12s %12s %9s %13s' "$@")"); }

# 2. the demo: P ranks against one GPU with the same --batch.
say "demo: $gpus ranks against one GPU, --batch $gpus"
demo=(--device cuda --steps 50 --batch "$gpus" --no-eval --quiet --overwrite)
timeout 300 ./gc_train "${demo[@]}" --out "$out/demo_one" --report "$out/demo_one.json" 2> "$out/demo_one.err" \
  || fail "the demo on one GPU (see $out/demo_one.err)"
timeout 300 "${mpirun[@]}" ./gc_train "${demo[@]}" --out "$out/demo_ranks" --report "$out/demo_ranks.json" \
  2> "$out/demo_ranks.err" || fail "the demo on $gpus ranks (see $out/demo_ranks.err)"
if [[ -f $out/demo_one.json && -f $out/demo_ranks.json ]]; then
  a=$(json "$out/demo_one.json" "r['train']['loss_last']")
  b=$(json "$out/demo_ranks.json" "r['train']['loss_last']")
  python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * abs(a))" "$a" "$b" \
    || fail "the demo's last loss: one GPU $a, $gpus ranks $b"
  echo "last loss: one GPU $a, $gpus ranks $b"
fi

# 3. graphcast-small in bf16: each rank's peaks against the dry run of the ranks.
say "graphcast-small bf16 on $gpus ranks against its dry run"
small=(--preset graphcast-small --precision bf16 --batch "$gpus" --steps 5 --no-eval --quiet --overwrite)
timeout 300 ./gc_train "${small[@]}" --device meta --meta-target cuda --ranks "$gpus" --report "$out/small_dry.json" \
  > "$out/small_dry.out" 2> "$out/small_dry.err" || fail "the dry run of $gpus ranks (see $out/small_dry.err)"
timeout 400 "${mpirun[@]}" ./gc_train "${small[@]}" --device cuda --out "$out/small" --report "$out/small.json" \
  2> "$out/small.err" || fail "graphcast-small on $gpus ranks (see $out/small.err)"

for config in demo_ranks small; do
  report=$out/$config.json
  [[ -f $report ]] || continue
  ms=$(json "$report" "round(r['timing']['step_ms_median'], 1)")
  for ((k = 0; k < gpus; k++)); do
    measured=$(json "$report" "r['memory']['ranks'][$k]['peak_allocated']")
    predicted=-
    if [[ $config == small && -f $out/small_dry.json ]]; then
      predicted=$(json "$out/small_dry.json" "r['memory']['ranks'][$k]['peak_allocated']")
      [[ $measured == "$predicted" ]] || fail "$config rank $k: peak $measured B, dry run $predicted B"
      for key in peak_reserved; do
        m=$(json "$report" "r['memory']['ranks'][$k]['$key']")
        p=$(json "$out/small_dry.json" "r['memory']['ranks'][$k]['$key']")
        [[ $m == "$p" ]] || fail "$config rank $k: $key $m B, dry run $p B"
      done
      predicted=$(awk -v b="$predicted" 'BEGIN { printf "%.3f", b / 1e9 }')
    fi
    comm=$(json "$report" "round(r['memory']['ranks'][$k]['communication_s'], 3)")
    sent=$(json "$report" "r['memory']['ranks'][$k]['bytes_sent']")
    row "$config" "$k" "$ms" "$(awk -v b="$measured" 'BEGIN { printf "%.3f", b / 1e9 }')" "$predicted" "$comm" "$sent"
  done
done

say "summary"
printf '%-34s %4s %9s %12s %12s %9s %13s\n' configuration rank ms/step "peak GB" "predicted" "comm s" "bytes sent"
printf '%s\n' "${rows[@]}"
if ((failures)); then
  echo "multi_gpu_check: $failures check(s) failed; outputs in $out/" >&2
  exit 1
fi
echo "multi_gpu_check: all checks passed; outputs in $out/"

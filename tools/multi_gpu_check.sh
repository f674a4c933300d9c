#!/usr/bin/env bash
# multi_gpu_check.sh: data and model parallel over every GPU of one machine (mpirun,
# NCCL), the checks that need several GPUs, in one unattended run (about 10 minutes):
#   1. build gc_train and the multi-process tests (with CUDA, NCCL and Open MPI), and run
#      the NCCL tests (tests/mpi/test_nccl.cpp) on every GPU: they must run, not skip;
#   2. the demo on P = number of GPUs ranks, data parallel (--batch P, one sample each) and
#      model parallel (--model-parallel P, one sample sharded), each against the same
#      --batch on one GPU: the loss curves must agree within f32 rounding (1e-5 relative);
#   3. graphcast-small (1 deg) in bf16 on P ranks, data parallel and model parallel, and the
#      0.25 deg graphcast in bf16 sharded over the P GPUs with --remat auto for the card:
#      each rank's measured peaks against the dry run of the P ranks (`--device meta
#      --ranks P [--model-parallel P]`, standing for cuda) to the byte;
#   4. one table: configuration, rank, ms/step, peak GB measured vs predicted, and per step
#      the milliseconds in the communicator and the bytes sent (the compute/communication split).
# Usage: tools/multi_gpu_check.sh [OUT_DIR] (default runs/multi_gpu_check).
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
make -j"$(nproc)" gc_train build/gc_mpi_tests > "$out/build.log" 2>&1 || { tail -20 "$out/build.log"; echo "multi_gpu_check: build failed" >&2; exit 1; }
[[ -f build/comm-mpi1-nccl1.stamp ]] || fail "this build has no MPI or no NCCL (see $out/build.log)"

say "NCCL tests on $gpus GPUs"
if timeout 300 "${mpirun[@]}" build/gc_mpi_tests --gtest_filter='Nccl*' > "$out/nccl.log" 2>&1; then
  grep -q SKIPPED "$out/nccl.log" && fail "the NCCL tests skipped (see $out/nccl.log)"
else
  fail "the NCCL tests (see $out/nccl.log)"
fi

rows=()
row() { rows+=("$(printf '%-34s %4s %9s %12s %12s %9s %13s' "$@")"); }

# 2. the demo: P ranks against one GPU with the same --batch, data then model parallel.
demo_check() {  # demo_check NAME BATCH [FLAGS...]
  local name=$1 batch=$2; shift 2
  say "demo, $name: $gpus ranks against one GPU, --batch $batch"
  local demo=(--device cuda --steps 50 --batch "$batch" --no-eval --quiet --overwrite)
  timeout 300 ./gc_train "${demo[@]}" --out "$out/${name}_one" --report "$out/${name}_one.json" 2> "$out/${name}_one.err" \
    || fail "the demo on one GPU (see $out/${name}_one.err)"
  timeout 300 "${mpirun[@]}" ./gc_train "${demo[@]}" "$@" --out "$out/$name" --report "$out/$name.json" \
    2> "$out/$name.err" || fail "the demo on $gpus ranks, $name (see $out/$name.err)"
  if [[ -f $out/${name}_one.json && -f $out/$name.json ]]; then
    local a b
    a=$(json "$out/${name}_one.json" "r['train']['loss_last']")
    b=$(json "$out/$name.json" "r['train']['loss_last']")
    python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * abs(a))" "$a" "$b" \
      || fail "the demo's last loss, $name: one GPU $a, $gpus ranks $b"
    echo "last loss: one GPU $a, $gpus ranks $b"
  fi
}
demo_check demo_data_parallel "$gpus"
demo_check demo_model_parallel 1 --model-parallel "$gpus"

# 3. each rank's peaks against the dry run of the ranks.
dry_check() {  # dry_check NAME SECONDS FLAGS...: the dry run, then the real run
  local name=$1 seconds=$2; shift 2
  say "$name on $gpus ranks against its dry run"
  timeout "$seconds" ./gc_train "$@" --device meta --meta-target cuda --ranks "$gpus" --report "$out/${name}_dry.json" \
    > "$out/${name}_dry.out" 2> "$out/${name}_dry.err" || fail "the dry run of $gpus ranks, $name (see $out/${name}_dry.err)"
  timeout "$seconds" "${mpirun[@]}" ./gc_train "$@" --device cuda --out "$out/$name" --report "$out/$name.json" \
    2> "$out/$name.err" || fail "$name on $gpus ranks (see $out/$name.err)"
}
small=(--preset graphcast-small --precision bf16 --steps 5 --no-eval --quiet --overwrite)
dry_check small_data_parallel 400 "${small[@]}" --batch "$gpus"
dry_check small_model_parallel 400 "${small[@]}" --batch 1 --model-parallel "$gpus"
gpu_bytes=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
budget=$(( gpu_bytes * 1048576 - 2000000000 ))  # the card less the CUDA-context margin
dry_check graphcast_model_parallel 600 --preset graphcast --precision bf16 --remat auto --mem-budget "$budget" \
  --steps 3 --no-eval --quiet --overwrite --batch 1 --model-parallel "$gpus"

for config in demo_data_parallel demo_model_parallel small_data_parallel small_model_parallel graphcast_model_parallel; do
  report=$out/$config.json
  [[ -f $report ]] || continue
  ms=$(json "$report" "round(r['timing']['step_ms_median'], 1)")
  for ((k = 0; k < gpus; k++)); do
    measured=$(json "$report" "r['memory']['ranks'][$k]['peak_allocated']")
    predicted=-
    if [[ -f $out/${config}_dry.json ]]; then
      predicted=$(json "$out/${config}_dry.json" "r['memory']['ranks'][$k]['peak_allocated']")
      [[ $measured == "$predicted" ]] || fail "$config rank $k: peak $measured B, dry run $predicted B"
      for key in peak_reserved; do
        m=$(json "$report" "r['memory']['ranks'][$k]['$key']")
        p=$(json "$out/${config}_dry.json" "r['memory']['ranks'][$k]['$key']")
        [[ $m == "$p" ]] || fail "$config rank $k: $key $m B, dry run $p B"
      done
      predicted=$(awk -v b="$predicted" 'BEGIN { printf "%.3f", b / 1e9 }')
    fi
    comm=$(json "$report" "round(r['memory']['ranks'][$k]['communication_ms_per_step'], 2)")
    sent=$(json "$report" "int(r['memory']['ranks'][$k]['bytes_sent_per_step'])")
    row "$config" "$k" "$ms" "$(awk -v b="$measured" 'BEGIN { printf "%.3f", b / 1e9 }')" "$predicted" "$comm" "$sent"
  done
done

say "summary"
printf '%-34s %4s %9s %12s %12s %9s %13s\n' configuration rank ms/step "peak GB" "predicted" "comm ms" "sent/step"
printf '%s\n' "${rows[@]}"
if ((failures)); then
  echo "multi_gpu_check: $failures check(s) failed; outputs in $out/" >&2
  exit 1
fi
echo "multi_gpu_check: all checks passed; outputs in $out/"

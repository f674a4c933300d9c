#!/usr/bin/env bash
# gpu_check.sh: the checks of the cuda backend that need a GPU, in one unattended
# run of at most 8 minutes on one H100 or H200 (every step has its own time limit,
# and steps that would start past the budget are skipped and say so):
#   1. the device as gc sees it (gc_bench device: name, total memory from
#      cudaMemGetInfo, the matching --card);
#   2. build only what runs (gc_train, gc_bench, gc_tests; make -j16), without warnings,
#      and run the cuda unit tests (*Cuda*): they must run, not skip;
#   3. a bf16 add and cast over 2^31 + 1 elements (gc_bench large: 64-bit indexing);
#   4. time training steps of graphcast-small in bf16 with --remat none and of graphcast
#      (0.25 deg) in bf16 with --remat auto, planned for the card's memory less a margin
#      for the CUDA context and cuBLAS; each real run's peak_allocated and peak_reserved
#      must equal its meta dry run to the byte, and its step time is set beside the dry
#      run's modelled roofline for the card;
#   5. graphcast-small's and graphcast's (0.25 deg, planned as in 4) steps op by op
#      (gc_bench step --ops: each op's time beside its modelled cost and roofline,
#      ops.txt, ops_graphcast.txt); the bf16 products of the 0.25 deg model's
#      first and last layers at their widths (477 inputs, 227 outputs) and padded to
#      multiples of 8 (480, 232), each product's rate ratio (gc_bench gemm --linear,
#      gemm_widths.json); an nsys profile of two 0.25 deg steps, when nsys is installed;
#   6. train the demo on the GPU for 200 steps (the loss must fall); NCCL's single-GPU
#      path (tests/mpi/test_nccl.cpp under mpirun -np 1: the all-reduce and the
#      model-parallel network on cuda against the cpu; they must run, not skip); and time
#      graphcast-small with --remat auto as in 4;
#   7. one summary: the checks (ok / FAILED / skipped) and the configurations (ms/step,
#      roofline ms and the ratio, modelled GB / launches / host syncs, peak GB measured
#      vs predicted, TFLOP/s), printed whatever failed before, even on Ctrl-C.
# Usage: tools/gpu_check.sh [--sim] [--prebuilt DIR] [OUT_DIR]   (default runs/gpu_check).
# Every output (logs, reports, the nsys profile, summary.txt) lands in OUT_DIR. Exits
# non-zero when any check fails or any peak differs from its prediction, after printing
# the summary.
#   --prebuilt DIR  run the programs in DIR (gc_train, gc_bench, gc_tests, and
#          gc_mpi_tests when there is one) instead of building them: for a GPU node with
#          no compiler or GoogleTest, the programs built on another x86-64 machine with
#          the same CUDA major version, e.g.
#            make BUILD=build-gpu MPI=0 NCCL=0 OPT="-O3 -march=x86-64-v3" gc_train gc_bench gc_tests
#          (-march=native would tie them to the building machine's processor). The build
#          check then says whether each program finds its libraries (ldd).
#   --sim  the same steps on cudasim (tests/cudasim: the backend simulated on the CPU,
#          no GPU needed) with small models and few steps: checks this script's own
#          plumbing; its timings mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
sim=0
prebuilt=
while [[ ${1:-} == --* ]]; do
  case $1 in
    --sim) sim=1; shift ;;
    --prebuilt)
      [[ -n ${2:-} && -d $2 ]] || { echo "gpu_check: --prebuilt needs a folder holding gc_train, gc_bench and gc_tests" >&2; exit 2; }
      prebuilt=${2%/}; shift 2 ;;
    --help|-h) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (tools/gpu_check.sh --help)" >&2; exit 2 ;;
  esac
done
out=${1:-runs/gpu_check}
mkdir -p "$out" || exit 1
budget_s=480                   # the whole run, on one H100/H200
steps=3                        # timed steps per configuration (one more warms up inside the median)
demo_steps=200
large_elements=2147483649      # 2^31 + 1
failures=0
context_margin=2000000000      # room for what lives outside gc's allocator (CUDA context, cuBLAS)
slow=1                         # time limits of the steps are multiplied by this (cudasim is slow)
bin=.
build_targets=(gc_train gc_bench gc_tests)
small=()                       # --sim: model flags that make every configuration small
small_grid=()                  # --sim: a coarse grid for the presets without data
demo_flags=()                  # --sim: the few steps start at the full learning rate
if ((sim)); then
  bin=./build-sim
  build_targets=(build-sim/gc_train build-sim/gc_bench build-sim/gc_tests)
  small=(--latent 16 --layers 1 --mesh 2)
  small_grid=(--grid 10)
  steps=2
  demo_steps=8
  demo_flags=(--warmup 0)      # 8 steps of a 100-step warm-up barely move the weights
  large_elements=100003
  budget_s=3600
  slow=6
fi
[[ -n $prebuilt ]] && bin=$prebuilt
train=$bin/gc_train
bench=$bin/gc_bench

checks=()                      # "name|verdict|detail"
rows=()                        # configuration rows of the summary
say() { printf '\n== %s (%ds elapsed)\n' "$*" "$SECONDS"; }
check() { checks+=("$1|$2|${3:-}"); [[ $2 == FAILED ]] && failures=$((failures + 1)); return 0; }
# time_left SECONDS: true when a step of about that length still fits the budget.
time_left() { ((SECONDS + $1 * slow <= budget_s)); }
# json FILE EXPR: a value of a JSON file, EXPR a Python expression over r; "" when absent.
json() { python3 -c "import json, sys
try:
    r = json.load(open(sys.argv[1])); v = ($2)
    print('' if v is None else v)
except Exception:
    print('')" "$1" 2>/dev/null; }
gb() { [[ -n ${1:-} ]] && awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }
# run_step NAME NEED LIMIT LOG COMMAND...: COMMAND into $out/LOG within LIMIT seconds
# (times slow) when a step of NEED seconds still fits the budget. True when it ran
# and exited 0 (the caller then judges it and records the verdict); otherwise the
# verdict is recorded here (skipped for the budget; FAILED, the log's end shown).
run_step() {
  local name=$1 need=$2 limit=$3 log=$4
  shift 4
  if ! time_left "$need"; then
    check "$name" skipped "time budget"
    return 1
  fi
  timeout $((limit * slow)) "$@" >"$out/$log" 2>&1 && return 0
  tail -30 "$out/$log"
  check "$name" FAILED "$log"
  return 1
}

summary() {
  trap - EXIT INT TERM
  say "summary"
  {
    echo "check|result|detail"
    for c in "${checks[@]}"; do echo "$c"; done
    echo
    echo "configuration|ms/step|roofline ms|measured/roofline|modelled GB, launches, syncs|peak GB measured (alloc / reserved)|peak GB predicted|GB not gc's|TFLOP/s|measured vs predicted"
    for row in "${rows[@]}"; do echo "$row"; done
  } | python3 -c '
import sys
blocks, block = [], []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        blocks.append(block); block = []
    else:
        block.append(line.split("|"))
blocks.append(block)
for rows in blocks:
    if len(rows) < 2: continue
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    print()
' | tee "$out/summary.txt"
  ((sim)) && echo "cudasim: small models (${small[*]}) on the simulated device; timings mean nothing"
  echo "GPU: ${gpu_name:-unknown} (${gpu_bytes:-?} bytes, --card ${card:-none}); bf16, $steps steps each, median" \
    "step time; roofline: the dry run's traffic.roofline_ms; GB = 1e9 bytes; outputs in $out"
  if ((failures > 0)); then
    echo "gpu_check: $failures check(s) failed" >&2
    exit 1
  fi
  echo "gpu_check: all checks passed"
  exit 0
}
trap summary EXIT
trap 'check interrupted FAILED "signal after ${SECONDS}s"; exit 130' INT TERM

command -v python3 >/dev/null || { echo "gpu_check: python3 is needed to read the reports" >&2; exit 1; }

if [[ -n $prebuilt ]]; then
  say "prebuilt programs in $prebuilt"
  missing=()
  for program in gc_train gc_bench gc_tests; do
    if [[ ! -x $prebuilt/$program ]]; then
      missing+=("$program (absent)")
    elif ldd "$prebuilt/$program" 2>&1 | grep -q "not found"; then
      missing+=("$program ($(ldd "$prebuilt/$program" 2>&1 | awk '/not found/ { printf "%s ", $1 }')not found)")
    fi
  done
  ldd "$prebuilt/gc_train" >"$out/build.log" 2>&1
  if ((${#missing[@]} > 0)); then
    check build FAILED "prebuilt: ${missing[*]}"
    exit 1
  fi
  check build ok "prebuilt in $prebuilt"
else
say "build (make -j16 ${build_targets[*]})"
if timeout $((300 * slow)) make -j16 "${build_targets[@]}" >"$out/build.log" 2>&1; then
  if grep -in "warning" "$out/build.log" >"$out/build_warnings.txt"; then
    check build FAILED "warnings (build_warnings.txt)"
  else
    check build ok "${build_targets[*]}"
  fi
else
  tail -30 "$out/build.log"
  check build FAILED "make failed (build.log)"
  exit 1
fi
fi

say "device"
if "$bench" device --json >"$out/device.json" 2>"$out/device.log"; then
  gpu_name=$(json "$out/device.json" 'r["name"]')
  gpu_bytes=$(json "$out/device.json" 'r["total_bytes"]')
  card=$(json "$out/device.json" 'r["card"]')
  check device ok "$gpu_name, $gpu_bytes bytes (cudaMemGetInfo), card ${card:-none}"
else
  cat "$out/device.log"
  check device FAILED "no usable cuda device (device.log)"
  exit 1
fi
((sim)) && gpu_bytes=$(json "$out/device.json" 'r["total_bytes"]') && card=H100-80GB  # a card for the roofline column
card_flags=()
[[ -n $card ]] && card_flags=(--card "$card")

say "cuda unit tests"
if run_step "cuda tests" 60 240 tests.log "$bin/gc_tests" --gtest_brief=1 --gtest_filter='*Cuda*'; then
  if grep -q "no cuda device" "$out/tests.log"; then
    check "cuda tests" FAILED "skipped: $(grep -m1 -o 'no cuda device.*' "$out/tests.log")"
  else
    check "cuda tests" ok "$(grep -o '[0-9]* tests\? from [0-9]* test suites\? ran' "$out/tests.log" | tail -1)"
  fi
fi

say "bf16 add and cast over $large_elements elements"
if run_step "bf16 add + cast, $large_elements elements" 30 120 large.log "$bench" large --elements "$large_elements"; then
  check "bf16 add + cast, $large_elements elements" ok "$(sed 's/^large: //' "$out/large.log" | tail -1)"
fi

# train_on DEVICE FLAGS...: one gc_train run of configuration $name into
# $out/$name.DEVICE{,.json,.log}; shows the log's end when it fails.
train_on() {
  local device=$1
  shift
  timeout $((240 * slow)) "$train" "$@" --device "$device" --overwrite --out "$out/$name.$device" \
    --report "$out/$name.$device.json" >"$out/$name.$device.log" 2>&1 && return 0
  tail -20 "$out/$name.$device.log"
  return 1
}

# measure NAME PRESET REMAT SECONDS: meta dry run (with the modelled cost for the card),
# then the real run, same flags; one row. SECONDS: what the pair may take.
measure() {
  local name=$1 preset=$2 remat=$3 need=$4
  local flags=(--preset "$preset" "${small[@]}" "${small_grid[@]}" --precision bf16 --remat "$remat" --steps "$steps"
    --no-eval --quiet)
  [[ $remat == auto ]] && flags+=(--mem-budget "$((gpu_bytes - context_margin))")
  if ! time_left "$need"; then
    check "$name" skipped "time budget"
    rows+=("$name|skipped: time budget|||||||")
    return
  fi
  say "$name: dry run on meta"
  if ! train_on meta "${flags[@]}" "${card_flags[@]}"; then
    check "$name" FAILED "the dry run failed ($name.meta.log)"
    rows+=("$name|dry run failed|||||||")
    return
  fi
  local m=$out/$name.meta.json
  local predicted_allocated predicted_reserved roofline traffic
  predicted_allocated=$(json "$m" 'r["memory"]["peak_allocated"]')
  predicted_reserved=$(json "$m" 'r["memory"]["peak_reserved"]')
  roofline=$(json "$m" "format(r['traffic']['roofline_ms'], '.4g')")
  traffic=$(json "$m" "'%.4g GB, %d, %d' % (r['traffic']['bytes'] / 1e9, r['traffic']['launches'], r['traffic']['host_syncs'])")
  if [[ -z $predicted_reserved ]] || ((predicted_reserved + context_margin > gpu_bytes)); then
    check "$name" skipped "predicted peak reserved ${predicted_reserved:-?} B does not fit in $gpu_bytes B"
    rows+=("$name|skipped: does not fit|$roofline||$traffic||$(gb "$predicted_allocated") / $(gb "$predicted_reserved")|||")
    return
  fi
  say "$name: $steps steps on the GPU"
  if ! train_on cuda "${flags[@]}" "${card_flags[@]}"; then
    check "$name" FAILED "the run failed on the GPU ($name.cuda.log)"
    rows+=("$name|failed|$roofline||$traffic||$(gb "$predicted_allocated") / $(gb "$predicted_reserved")|||")
    return
  fi
  local r=$out/$name.cuda.json measured_allocated measured_reserved ms tflops verdict ratio outside
  measured_allocated=$(json "$r" 'r["memory"]["peak_allocated"]')
  measured_reserved=$(json "$r" 'r["memory"]["peak_reserved"]')
  ms=$(json "$r" "format(r['timing']['step_ms_median'], '.1f')")
  ratio=$(python3 -c "import sys; print(format(float(sys.argv[1]) / float(sys.argv[2]), '.3g'))" "$ms" "$roofline" 2>/dev/null)
  # FLOPs counted by the trainer (the report's flops_per_step), not 6 x params x rows.
  tflops=$(json "$r" "format(r['timing']['flops_per_step'] / (r['timing']['step_ms_median'] * 1e-3) / 1e12, '.1f')
           if r['timing'].get('flops_per_step') and r['timing']['step_ms_median'] > 0 else 'n/a'")
  if [[ -n $measured_allocated && $measured_allocated == "$predicted_allocated" && $measured_reserved == "$predicted_reserved" ]]; then
    verdict="equal"
    check "$name" ok "$ms ms/step (roofline $roofline ms), peaks equal the dry run"
  else
    verdict="DIFFER: allocated $((${measured_allocated:-0} - predicted_allocated)) B, reserved $((${measured_reserved:-0} - predicted_reserved)) B"
    check "$name" FAILED "measured peaks differ from the dry run ($verdict)"
  fi
  outside=$(json "$r" 'r["memory"].get("outside_allocator", 0)')
  rows+=("$name|$ms|$roofline|${ratio:-n/a}|$traffic|$(gb "$measured_allocated") / $(gb "$measured_reserved")|$(gb "$predicted_allocated") / $(gb "$predicted_reserved")|$(gb "$outside")|$tflops|$verdict")
}

# The most telling first: a later step may be skipped when the budget runs out.
measure graphcast-small.bf16.remat-none graphcast-small none 45
measure graphcast.bf16.remat-auto graphcast auto 120

say "op by op: graphcast-small in bf16 (gc_bench step --ops)"
if run_step "op by op" 40 90 ops.txt "$bench" step --ops --preset graphcast-small "${small[@]}" "${small_grid[@]}" \
    --precision bf16 --remat none --device cuda "${card_flags[@]}" --warmup 1 --repeat 2; then
  check "op by op" ok "ops.txt ($(grep -m1 -o '^time on cuda: [0-9.]* ms a step' "$out/ops.txt"))"
fi

say "op by op: graphcast (0.25 deg) in bf16, planned as above (gc_bench step --ops)"
# Where the full model's step falls short of its roofline, kernel by kernel: the
# graph kernels, LayerNorm and the bias-gradient folds at their real sizes.
if run_step "op by op, 0.25 deg" 90 180 ops_graphcast.txt "$bench" step --ops --preset graphcast "${small[@]}" \
    "${small_grid[@]}" --precision bf16 --remat auto --mem-budget "$((gpu_bytes - context_margin))" --device cuda \
    "${card_flags[@]}" --warmup 1 --repeat 1; then
  check "op by op, 0.25 deg" ok "ops_graphcast.txt ($(grep -m1 -o '^time on cuda: [0-9.]* ms a step' "$out/ops_graphcast.txt"))"
fi

say "GEMMs at the encoder's and decoder's widths (gc_bench gemm --linear)"
# The 0.25 deg model's first and last layers: 477 inputs (474 + 3 structural) and 227
# outputs, not multiples of 8, beside 480 and 232: what padding the widths would buy.
gemm_rows=1038240
((sim)) && gemm_rows=64
if run_step "GEMM widths" 20 60 gemm_widths.json "$bench" gemm --device cuda --dtype bf16 --repeats 3 --json \
    --linear "$gemm_rows,477,512" --linear "$gemm_rows,480,512" --linear "$gemm_rows,512,227" --linear "$gemm_rows,512,232"; then
  # Each product's rate at the padded width over its rate at the model's.
  widths=$(python3 -c '
import json, sys
rate = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rate[(r["op"], r["m"], r["k"], r["n"])] = r["gflops"]
def ratio(op, a, b):
    return "%s %.2fx" % (op, rate[b] / rate[a]) if a in rate and b in rate else op + " ?"
m = int(sys.argv[2])
inputs = [ratio("forward", ("forward", m, 477, 512), ("forward", m, 480, 512)),
          ratio("grad_W", ("grad_W", 477, m, 512), ("grad_W", 480, m, 512))]
outputs = [ratio("forward", ("forward", m, 512, 227), ("forward", m, 512, 232)),
           ratio("grad_x", ("grad_x", m, 227, 512), ("grad_x", m, 232, 512)),
           ratio("grad_W", ("grad_W", 512, m, 227), ("grad_W", 512, m, 232))]
print("rate at 480/477 inputs: " + ", ".join(inputs) + "; at 232/227 outputs: " + ", ".join(outputs))
' "$out/gemm_widths.json" "$gemm_rows" 2>/dev/null)
  check "GEMM widths" ok "gemm_widths.json (${widths:-unreadable})"
fi

say "nsys profile of two 0.25 deg steps"
if ! command -v nsys >/dev/null; then
  check "nsys profile" skipped "nsys is not installed"
elif ! time_left 90; then
  check "nsys profile" skipped "time budget"
else
  name=graphcast.bf16.remat-auto
  plan_flags=(--preset graphcast "${small[@]}" "${small_grid[@]}" --precision bf16 --remat auto
    --mem-budget "$((gpu_bytes - context_margin))" --steps 2 --no-eval --quiet --overwrite --out "$out/nsys-run")
  if timeout $((180 * slow)) nsys profile --force-overwrite true --trace cuda,nvtx,osrt --output "$out/graphcast-2-steps" \
      "$train" "${plan_flags[@]}" --device cuda >"$out/nsys.log" 2>&1; then
    check "nsys profile" ok "$(ls "$out"/graphcast-2-steps.* 2>/dev/null | head -1)"
  else
    tail -20 "$out/nsys.log"
    check "nsys profile" FAILED "nsys.log"
  fi
fi
say "demo on the GPU ($demo_steps steps)"
if run_step demo 60 120 demo.log "$train" --device cuda --steps "$demo_steps" "${small[@]}" "${demo_flags[@]}" --no-eval \
    --quiet --overwrite --out "$out/demo" --report "$out/demo.json"; then
  first=$(json "$out/demo.json" 'r["train"]["loss_first"]')
  last=$(json "$out/demo.json" 'r["train"]["loss_last"]')
  if python3 -c "import math, sys; f, l = map(float, sys.argv[1:]); sys.exit(0 if math.isfinite(l) and l < f else 1)" \
      "$first" "$last" 2>/dev/null; then
    check demo ok "loss $first -> $last, $(json "$out/demo.json" 'round(r["timing"]["step_ms_median"], 2)') ms/step"
  else
    check demo FAILED "the loss did not fall ($first -> $last)"
  fi
fi

say "NCCL on one GPU (tests/mpi/test_nccl.cpp under mpirun -np 1)"
if ((sim)); then
  check "NCCL single GPU" skipped "cudasim has no NCCL"
elif [[ -n $prebuilt && ! -x $prebuilt/gc_mpi_tests ]]; then
  check "NCCL single GPU" skipped "no gc_mpi_tests in $prebuilt"
elif [[ -z $prebuilt && ! -f build/comm-mpi1-nccl1.stamp ]]; then
  check "NCCL single GPU" skipped "this build has no MPI or no NCCL (build/comm-*.stamp)"
elif ! time_left 60; then
  check "NCCL single GPU" skipped "time budget"
else
  mpirun_one=(mpirun -np 1)
  [[ $(id -u) == 0 ]] && mpirun_one+=(--allow-run-as-root)
  mpi_tests=build/gc_mpi_tests
  [[ -n $prebuilt ]] && mpi_tests=$prebuilt/gc_mpi_tests
  if { [[ -n $prebuilt ]] || timeout $((240 * slow)) make -j16 build/gc_mpi_tests >"$out/nccl_build.log" 2>&1; } &&
      timeout 120 "${mpirun_one[@]}" "$mpi_tests" --gtest_filter='Nccl*' >"$out/nccl.log" 2>&1; then
    if grep -q SKIPPED "$out/nccl.log"; then
      check "NCCL single GPU" FAILED "the tests skipped (nccl.log)"
    else
      check "NCCL single GPU" ok "$(grep -c '\[       OK \]' "$out/nccl.log") tests"
    fi
  else
    tail -20 "$out/nccl.log" "$out/nccl_build.log" 2>/dev/null
    check "NCCL single GPU" FAILED "nccl.log"
  fi
fi

measure graphcast-small.bf16.remat-auto graphcast-small auto 60

# The EXIT trap prints the summary and sets the exit status.

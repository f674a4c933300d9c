#!/bin/sh
# tests/cudasim/train_check.sh: gc_train end to end on the simulated GPU (run by
# `make test` after the unit tests). For each configuration below, a small model
# trains on the demo data (or the weather fixture) with --device cuda in build-sim/gc_train, and
#   - its report's peak_allocated and peak_reserved must equal those of the
#     --device meta dry run of the same configuration (to the byte);
#   - its report must say that no device byte lies outside gc's allocator;
#   - its first loss must match the cpu run's within 1e-3 relative (f32
#     reductions and GEMMs in other orders; the demo's first loss is ~10).
# Usage: tests/cudasim/train_check.sh [OUT_DIR]   (default build-sim/train_check)
set -eu
cd "$(dirname "$0")/../.."
out=${1:-build-sim/train_check}
mkdir -p "$out"
small="--latent 16 --layers 1 --mesh 2 --no-eval --quiet"
failures=0

# field FILE NAME: the number after "NAME": in a report.
field() { grep -o "\"$2\": *[-0-9.e+]*" "$1" | head -1 | sed 's/.*: *//'; }

check() {
  name=$1
  shift
  for device in cuda meta cpu; do
    program=./build-sim/gc_train
    if ! $program --device "$device" "$@" $small --overwrite --out "$out/$name-$device" --report "$out/$name-$device.json" \
        >"$out/$name-$device.log" 2>&1; then
      tail -20 "$out/$name-$device.log"
      echo "train_check: $name on $device failed (log: $out/$name-$device.log)"
      failures=$((failures + 1))
      return
    fi
  done
  for key in peak_allocated peak_reserved; do
    got=$(field "$out/$name-cuda.json" $key)
    want=$(field "$out/$name-meta.json" $key)
    if [ "$got" != "$want" ]; then
      echo "train_check: $name: $key on the simulated GPU $got, dry run $want"
      failures=$((failures + 1))
    fi
  done
  # Every byte of the simulated device is one of gc's segments (no context, no cuBLAS memory).
  outside=$(field "$out/$name-cuda.json" outside_allocator)
  if [ "$outside" != 0 ]; then
    echo "train_check: $name: the report says ${outside:-nothing} bytes of the device lie outside gc's allocator"
    failures=$((failures + 1))
  fi
  gpu_loss=$(field "$out/$name-cuda.json" loss_first)
  cpu_loss=$(field "$out/$name-cpu.json" loss_first)
  if ! awk -v g="$gpu_loss" -v c="$cpu_loss" 'BEGIN { d = g - c; if (d < 0) d = -d; exit !(d <= 1e-3 * (c < 0 ? -c : c)) }'; then
    echo "train_check: $name: first loss $gpu_loss on the simulated GPU, $cpu_loss on the cpu"
    failures=$((failures + 1))
  fi
  echo "train_check: $name: peak $(field "$out/$name-cuda.json" peak_allocated) B allocated," \
       "$(field "$out/$name-cuda.json" peak_reserved) B reserved (= dry run); first loss $gpu_loss (cpu $cpu_loss)"
}

check fp32 --steps 2
check bf16-remat-all --steps 1 --precision bf16 --remat all
check fp16-batch-accum-rollout-chunks --steps 1 --precision fp16 --batch 2 --accum 2 --rollout 2 --edge-chunks 2 \
  --remat every:1 --concat-trick off
# GraphCast's task on weather data (tests/data/weather): forcings and statics fed at each roll-out step.
check weather-rollout --steps 2 --data tests/data/weather --rollout 2 --batch 2

[ "$failures" = 0 ] || { echo "train_check: $failures failure(s)"; exit 1; }

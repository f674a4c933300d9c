#!/usr/bin/env bash
# model_parallel_table.sh: the per-rank table of docs/MEMORY.md ("Split the model
# over several GPUs"): the full training step of a preset (default graphcast:
# 0.25 deg, mesh 6, latent 512, 16 layers, batch 1) sharded over P ranks with
# gc_train --model-parallel P on meta (every rank's dry run, standing for cuda),
# in fp32 and bf16, without remat and with every stage checkpointed. Each cell
# is the highest rank's peak reserved (the allocator's bytes the card must
# hold); a card fits when that peak plus the 2 GB CUDA-context margin
# (tools/memory/cards.h) is at most its memory.
# Usage: tools/model_parallel_table.sh [preset]. Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-graphcast}
[ -x ./gc_train ] || { echo "build first: make" >&2; exit 1; }
shards="1 2 4 8 16"
margin=2000000000
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }

# peak P ARGS...: the highest rank's peak reserved bytes (and allocated, after a space)
peak() {
  local p=$1; shift
  local out report
  report=$(mktemp)
  out=$(./gc_train --preset "$preset" --device meta --steps 1 --quiet --model-parallel "$p" --report "$report" "$@" 2>&1) || {
    echo "gc_train failed: --model-parallel $p $*" >&2; echo "$out" >&2; exit 1; }
  if [ "$p" = 1 ]; then  # one process: the report's figures
    echo "$(grep -m1 '"peak_reserved":' "$report" | grep -oE '[0-9]+') $(grep -m1 '"peak_allocated":' "$report" | grep -oE '[0-9]+')"
  else
    echo "$out" | sed -nE 's/^rank [0-9]+: peak ([0-9]+) B allocated, ([0-9]+) B reserved/\2 \1/p' | sort -n | tail -1
  fi
  rm -f "$report"
}

declare -A reserved allocated
for precision in fp32 bf16; do
  for remat in none all; do
    for p in $shards; do
      read -r r a < <(peak "$p" --precision "$precision" --remat "$remat")
      reserved[$precision,$remat,$p]=$r
      allocated[$precision,$remat,$p]=$a
    done
  done
done

echo "| P ranks | fp32 | fp32, remat all | bf16 | bf16, remat all |"
echo "|---|---|---|---|---|"
for p in $shards; do
  row="| $p |"
  for cfg in "fp32,none" "fp32,all" "bf16,none" "bf16,all"; do
    row="$row $(gib "${reserved[$cfg,$p]}") GiB |"
  done
  echo "$row"
done
echo
echo "Smallest P whose every rank fits a card (peak reserved + 2 GB margin):"
echo
echo "| card | fp32 | fp32, remat all | bf16 | bf16, remat all |"
echo "|---|---|---|---|---|"
for card in "40 GiB:42949672960" "80 GiB:85899345920"; do
  name=${card%%:*}; bytes=${card##*:}
  row="| $name |"
  for cfg in "fp32,none" "fp32,all" "bf16,none" "bf16,all"; do
    best="more than 16"
    for p in $shards; do
      if [ $(( ${reserved[$cfg,$p]} + margin )) -le "$bytes" ]; then best=$p; break; fi
    done
    row="$row $best |"
  done
  echo "$row"
done

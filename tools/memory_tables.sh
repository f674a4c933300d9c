#!/usr/bin/env bash
# memory_tables.sh: the dry-run tables of docs/MEMORY.md, measured with
# ./gc_train --device meta (no data; the allocator figures of the real run).
# Usage: tools/memory_tables.sh [preset]   (default graphcast). Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-graphcast}
[ -x ./gc_train ] || { echo "build first: make" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

field() {  # field FILE KEY: the first integer/number value of "KEY": in a report
  grep -m1 "\"$2\":" "$1" | sed -E 's/.*: *([-0-9.e+]+).*/\1/'
}
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }

run() {  # run NAME ARGS...: dry run, report in $tmp/NAME.json; prints nothing
  local name=$1; shift
  if ! ./gc_train --preset "$preset" --device meta --steps 1 --quiet --report "$tmp/$name.json" "$@" \
      >"$tmp/$name.out" 2>"$tmp/$name.err"; then
    echo "FAILED" >"$tmp/$name.fail"
  fi
}

echo "### Peak memory of one training step by latent width and processor layers ($preset, fp32, no remat)"
echo
echo "| latent \\ layers | 4 | 8 | 16 |"
echo "|---|---|---|---|"
for latent in 32 128 256 512; do
  row="| $latent |"
  for layers in 4 8 16; do
    run "l${latent}_${layers}" --latent "$latent" --layers "$layers"
    row="$row $(gib "$(field "$tmp/l${latent}_${layers}.json" peak_allocated)") GiB |"
  done
  echo "$row"
done
echo
echo "### Policies and precisions ($preset, latent 512, 16 layers): peak allocated / reserved"
echo
echo "| remat | fp32 | bf16 |"
echo "|---|---|---|"
for remat in none every:3 all; do
  row="| $remat |"
  for precision in fp32 bf16; do
    run "p_${remat/:/_}_$precision" --remat "$remat" --precision "$precision"
    f="$tmp/p_${remat/:/_}_$precision.json"
    row="$row $(gib "$(field "$f" peak_allocated)") / $(gib "$(field "$f" peak_reserved)") GiB |"
  done
  echo "$row"
done
for chunks in 8 32; do
  row="| all + --edge-chunks $chunks |"
  for precision in fp32 bf16; do
    run "c${chunks}_$precision" --remat all --edge-chunks "$chunks" --precision "$precision"
    f="$tmp/c${chunks}_$precision.json"
    row="$row $(gib "$(field "$f" peak_allocated)") / $(gib "$(field "$f" peak_reserved)") GiB |"
  done
  echo "$row"
done

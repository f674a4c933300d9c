#!/usr/bin/env bash
# policy_table.sh: peak memory and ms/step of the demo for each rematerialization
# policy and precision, measured on the cpu (60 steps each, no evaluation).
# Usage: tools/policy_table.sh [steps]. Prints Markdown. Needs the demo data
# (generated and cached on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-60}
[ -x ./gc_train ] || { echo "build first: make" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { grep -m1 "\"$2\":" "$1" | sed -E 's/.*: *([-0-9.e+]+).*/\1/'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "| policy | precision | peak allocated | peak reserved | ms/step (median) | edge chunks | plan |"
echo "|---|---|---|---|---|---|---|"
for policy in none all "auto --mem-budget 48MiB"; do
  for precision in fp32 bf16; do
    name=$(echo "$policy-$precision" | tr -c 'a-z0-9-' '_')
    # shellcheck disable=SC2086
    ./gc_train --steps "$steps" --no-eval --quiet --out "$tmp/$name" --precision "$precision" --remat $policy \
      --report "$tmp/$name.json" >/dev/null 2>"$tmp/$name.err" || { echo "| $policy | $precision | failed: $(tail -1 "$tmp/$name.err") | | | | |"; continue; }
    f="$tmp/$name.json"
    plan=$(grep -m1 '"description":' "$f" | sed -E 's/.*: *"(.*)",?/\1/' || true)
    echo "| $policy | $precision | $(mib "$(field "$f" peak_allocated)") MiB | $(mib "$(field "$f" peak_reserved)") MiB | $(field "$f" step_ms_median | awk '{printf "%.1f", $1}') | $(field "$f" edge_chunks) | ${plan:--} |"
  done
done

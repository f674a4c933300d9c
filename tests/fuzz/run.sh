#!/bin/sh
# run.sh BUILD TARGET RUNS SEED MAX_LEN [libFuzzer flags...]: one reproducible run
# of BUILD/fuzz_TARGET (`make fuzz` calls it per target). The seeds in
# tests/fuzz/corpus/TARGET are read, never written; what the run learns goes to
# BUILD/corpus/TARGET (emptied first, so that a run depends on the seed only),
# a crashing input to BUILD/artifacts/. Exits non-zero on any crash, leak,
# sanitizer report or timeout, after printing the end of the log.
set -u
build=$1 target=$2 runs=$3 seed=$4 max_len=$5
shift 5
log=$build/fuzz_$target.log
rm -rf "$build/corpus/$target"
mkdir -p "$build/corpus/$target" "$build/artifacts"
echo "fuzz_$target: -runs=$runs -seed=$seed -max_len=$max_len $*"
start=$(date +%s.%N)
if ! "./$build/fuzz_$target" -runs="$runs" -seed="$seed" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" "$@" \
    "$build/corpus/$target" "tests/fuzz/corpus/$target" 2> "$log"; then
  tail -n 60 "$log"
  echo "fuzz_$target FAILED (log: $log)"
  exit 1
fi
end=$(date +%s.%N)
executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
echo "  $executions executions in $(awk "BEGIN { printf \"%.1f\", $end - $start }") s;" \
  "corpus learnt: $(ls "$build/corpus/$target" | wc -l) files, $(cat "$build/corpus/$target"/* 2>/dev/null | wc -c) bytes"

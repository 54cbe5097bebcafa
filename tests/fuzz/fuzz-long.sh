#!/bin/sh
# fuzz-long.sh BUILD_DIR TARGET SECONDS
#
# A long fuzzing run by hand (docs/RELIABILITY.md, "Fuzzing"): runs the
# libFuzzer binary BUILD_DIR/tests/fuzz/fuzz-TARGET (a build configured with
# CC=clang-14 -Dsanitize=true -Dfuzz=true) for SECONDS of wall time at the
# lowest priority, starting from the committed seeds and from what earlier
# long runs found (BUILD_DIR/fuzz-long/TARGET/corpus, never the source
# tree). Crash reproducers land in BUILD_DIR/fuzz-long/TARGET/. At the end
# it prints one line for the table: CPU seconds used, executions, coverage
# (libFuzzer's cov and ft), corpus files, reproducers written.
#
# Every target:  for t in $(ls tests/fuzz/corpus); do tests/fuzz/fuzz-long.sh BUILD_DIR $t 900; done
# (docs/RELIABILITY.md, "Fuzzing", has the figures of the runs made so).
set -eu
build=$(cd "$1" && pwd) target=$2 seconds=$3
src=$(cd "$(dirname "$0")" && pwd)
bin=${FUZZ_BIN:-$build/tests/fuzz/fuzz-$target} # FUZZ_BIN: another build of it
dir=$build/fuzz-long/$target
mkdir -p "$dir/corpus"
cd "$dir"
log=$dir/run-$(date +%Y%m%d-%H%M%S).log
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
/usr/bin/time -f "%U %S" -o "$dir/time" nice -n 19 "$bin" -max_total_time="$seconds" \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 \
	"$dir/corpus" "$src/corpus/$target" >"$log" 2>&1 || status=$?
cpu=$(awk '{printf "%.0f", $1 + $2}' "$dir/time")
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
covft=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p')
files=$(ls "$dir/corpus" | wc -l)
crashes=$(ls "$dir" | grep -cE '^(crash|leak|timeout|oom)-' || true)
echo "$target: cpu ${cpu}s execs ${execs:-?} ${covft:-cov ? ft ?} corpus $files reproducers $crashes exit $status log $log"

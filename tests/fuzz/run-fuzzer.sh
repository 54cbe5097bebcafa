#!/bin/sh
# run-fuzzer.sh BINARY SEED_CORPUS WORK_CORPUS SECONDS
# Runs one libFuzzer target for a bounded time. New inputs go to WORK_CORPUS (in
# the build folder), never into the source tree. A crash fails the test and
# leaves the reproducer in WORK_CORPUS/../crash-*. libFuzzer's own exit code
# for a crash is 77, which meson reads as "skipped": -error_exitcode=1 makes
# it a failure.
set -eu
bin=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work"
cd "$(dirname "$work")"
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 \
	-print_final_stats=1 "$work" "$seeds"

#!/bin/sh
# fuzz-run.sh [FUZZER [SECONDS]]: run the libFuzzer harness of the script
# parser and the softmm backend (default build/fuzz/fuzz_script, built by
# `make fuzz-build`) for SECONDS (default 60) on the seed corpus
# tests/fuzz/corpus with the dictionary tests/fuzz/script.dict. New inputs
# go to build/fuzz/corpus, crashes, leaks and slow inputs to
# build/fuzz/findings/; the repository's corpus is only read. Exits
# non-zero on any crash, leak, sanitizer report or input slower than 10 s.
# Extra libFuzzer flags: FUZZ_FLAGS (e.g. FUZZ_FLAGS=-use_value_profile=1).
set -eu
cd "$(dirname "$0")/.."
fuzzer=${1:-build/fuzz/fuzz_script}
secs=${2:-60}
work=build/fuzz
mkdir -p "$work/corpus" "$work/findings"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
echo "fuzz-run: $fuzzer for ${secs}s (findings: $work/findings/)"
# shellcheck disable=SC2086
exec "$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-max_len=4096 -dict=tests/fuzz/script.dict -print_final_stats=1 \
	-artifact_prefix="$work/findings/" ${FUZZ_FLAGS:-} \
	"$work/corpus" tests/fuzz/corpus

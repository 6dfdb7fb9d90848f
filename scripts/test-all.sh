#!/bin/bash
# Runs every test of `make test` and ends with one line "N passed, N failed".
# Steps: the cmocka unit tests in the release build and in the ASan+UBSan
# debug build; the script regression tests (tests/scripts/*.smm against their
# .out, and tests/oracle/*.smm against the kernel's recorded output); the
# random oracle; the torture (and proof that it catches a planted bug); the
# README's embedding example.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0; failed=()
log=build/test-logs; mkdir -p "$log"

step() {	# step NAME COMMAND...: run one test, keep its output in a log
	local name=$1; shift
	local f="$log/$(echo "$name" | tr '/ ' '__').log"
	local t0=$SECONDS
	if "$@" >"$f" 2>&1; then
		pass=$((pass + 1)); printf '  ok    %-44s %3ds\n' "$name" $((SECONDS - t0))
	else
		fail=$((fail + 1)); failed+=("$name")
		printf '  FAIL  %-44s %3ds (log: %s)\n' "$name" $((SECONDS - t0)) "$f"
		tail -n 30 "$f" | sed 's/^/        /'
	fi
}

for dir in build build/asan; do
	echo "unit tests ($dir):"
	for t in "$dir"/tests/test_*; do
		[ -x "$t" ] || continue
		step "$dir/$(basename "$t")" "$t"
	done
done

echo "script tests:"
for s in tests/scripts/*.smm; do
	[ -e "$s" ] || continue
	step "script $(basename "$s")" scripts/check-script.sh build/asan/softmm "$s" "${s%.smm}.out"
done
for s in tests/oracle/*.smm; do
	[ -e "$s" ] || continue
	step "oracle-regress $(basename "$s")" scripts/check-script.sh build/softmm "$s" "${s%.smm}.out"
done
if [ -x scripts/oracle-tests.sh ]; then
	echo "random oracle:"
	step "oracle random" scripts/oracle-tests.sh build/softmm
fi

echo "torture (ASan+UBSan, debug build with race-window yields):"
step "torture 2 threads seed 1" build/asan/softmm torture --threads 2 --seconds 15 --seed 1
step "torture 4 threads seed 2" build/asan/softmm torture --threads 4 --seconds 20 --seed 2
step "torture 8 threads 3 mms seed 3" build/asan/softmm torture --threads 8 --mms 3 --seconds 20 --seed 3
step "torture mmap_lock only seed 4" build/asan/softmm torture --threads 4 --seconds 10 --seed 4 --no-vma-lock
step "torture catches the missing VMA recheck" scripts/expect-torture-failure.sh build/bug/softmm

echo "embedding example:"
step "readme-example" scripts/readme-example.sh

echo
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { printf 'failed: %s\n' "${failed[@]}"; exit 1; }

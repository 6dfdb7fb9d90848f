#!/bin/sh
# expect-torture-failure.sh TOOL: TOOL is softmm built with a bug put in on
# purpose (build/bug: the recheck after taking the VMA read lock removed).
# The torture must notice within its time: a violation (exit 1) or a
# library BUG/sanitizer abort. Passing means the torture caught the bug.
tool=$1
for seed in 11 12 13; do
	out=$("$tool" torture --threads 4 --seconds 30 --seed $seed 2>&1)
	rc=$?
	echo "$out" | tail -n 5
	if [ $rc -eq 0 ]; then
		echo "seed $seed: the torture did NOT catch the planted bug"
		exit 1
	fi
	echo "$out" | grep -Eq "VIOLATION|BUG at|AddressSanitizer" || {
		echo "seed $seed: failed without a violation report (exit $rc)"; exit 1; }
	echo "seed $seed: caught (exit $rc)"
done

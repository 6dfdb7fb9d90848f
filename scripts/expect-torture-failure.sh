#!/bin/sh
# expect-torture-failure.sh TOOL [SECONDS [TORTURE-ARGS...]]: TOOL is softmm
# built with a bug put in on purpose (build/bug: the recheck after taking
# the VMA read lock removed; build/bug2: refcount's walker without
# pte_try_get() and pmd-rwsem's free without the write side, each run with
# its --scheme; build/bug3: page_mkclean() skipping one page-table entry,
# run with --files, whose msync check then finds the host file stale;
# build/bug4: fork sharing a pinned page with the child, run with --fork,
# whose child then sees the device's writes through the pin).
# TORTURE-ARGS come after the defaults (--threads 4 --seconds SECONDS
# --seed N) and may add options or override them. On three seeds, the
# torture must notice within SECONDS (default 30): a violation (exit 1) or
# a library BUG/sanitizer abort.
# Passing means the torture caught the bug every time.
tool=$1
secs=${2:-30}
[ $# -ge 2 ] && shift 2 || shift $#
for seed in 11 12 13; do
	t0=$(date +%s.%N)
	out=$("$tool" torture --threads 4 --seconds "$secs" --seed $seed "$@" 2>&1)
	rc=$?
	t1=$(date +%s.%N)
	echo "$out" | tail -n 5
	if [ $rc -eq 0 ]; then
		echo "seed $seed: the torture did NOT catch the planted bug"
		exit 1
	fi
	echo "$out" | grep -Eq "VIOLATION|BUG at|AddressSanitizer|use after free|corrupt" || {
		echo "seed $seed: failed without a violation report (exit $rc)"; exit 1; }
	echo "seed $seed: caught (exit $rc) after $(echo "$t1 - $t0" | bc) s"
done

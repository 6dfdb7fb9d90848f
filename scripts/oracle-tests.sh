#!/bin/sh
# oracle-tests.sh TOOL: the random kernel oracle of `make test`. Runs
# `TOOL oracle` on a few seeds (in parallel, one per core), each random
# scripts compared line by line against the Linux kernel, about a fifth of
# their operations on files and shared memory, with fork, mm N and mremap
# (1,400 scripts of 200 operations in all; about 40 s on 2 cores):
#  - under pt-reclaim, which models this kernel (6.18, CONFIG_PT_RECLAIM),
#    every line: seeds 1 2 3, 200 scripts of 200 operations each;
#  - under each other scheme the tool knows (none, eager, refcount,
#    pmd-rwsem; a name the library does not know yet is skipped) with
#    --mask-pt, every line but the results of `pt`: two seeds each (its
#    own), 100 scripts of 200 operations.
# Exits non-zero if any run diverges; the minimal script is left in
# build/oracle-fail-SCHEME-SEED.smm. SEQS, OPS, SEEDS and SCHEME override
# the full run; MASK_SEQS and MASK_SCHEMES the masked ones.
#
# AVOID=CLASS,... passes --avoid to every run (the classes: `softmm oracle
# --help`); by default nothing is avoided, fork, mm N and mremap included.
set -u
avoid=${AVOID-}
tool=${1:-build/softmm}
seqs=${SEQS:-200}
ops=${OPS:-200}
seeds=${SEEDS:-"1 2 3"}
scheme=${SCHEME:-pt-reclaim}
mask_seqs=${MASK_SEQS:-100}
mask_schemes=${MASK_SCHEMES:-"none eager refcount pmd-rwsem"}
jobs=$(nproc 2>/dev/null || echo 2)
outdir=build
mkdir -p "$outdir"
rc=0
pids=""
logs=""
running=0

# run SCHEME SEED SEQS [--mask-pt]: one oracle run in the background; at
# most $jobs at a time.
run() {
	if [ "$running" -ge "$jobs" ]; then
		drain
	fi
	log=$outdir/oracle-$1-seed-$2.log
	"$tool" oracle --sequences "$3" --ops "$ops" --seed "$2" \
		--scheme "$1" --out "$outdir/oracle-fail-$1-$2.smm" ${4:-} \
		${avoid:+--avoid "$avoid"} \
		> "$log" 2>&1 &
	pids="$pids $!"
	logs="$logs $log"
	running=$((running + 1))
}

# drain: wait for the running batch, print its logs.
drain() {
	for p in $pids; do
		wait "$p" || rc=1
	done
	for l in $logs; do
		cat "$l"
	done
	pids=""
	logs=""
	running=0
}

# The masked runs: SCHEME:SEED, two seeds per scheme, which stay the same
# whether the schemes before it are known or not.
masked=""
seed=2
for m in $mask_schemes; do
	seed=$((seed + 2))
	[ "$m" = "$scheme" ] && continue
	if ! "$tool" script --scheme "$m" /dev/null >/dev/null 2>&1; then
		echo "oracle: scheme $m not in this library, skipped"
		continue
	fi
	masked="$masked $m:$seed $m:$((seed + 1))"
done
for s in $seeds; do
	run "$scheme" "$s" "$seqs"
done
for ms in $masked; do
	run "${ms%:*}" "${ms#*:}" "$mask_seqs" --mask-pt
done
drain
exit $rc

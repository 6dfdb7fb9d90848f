#!/bin/sh
# oracle-tests.sh TOOL: the random kernel oracle of `make test`. Runs
# `TOOL oracle` on a few seeds (in parallel, one per core), each 200 random
# scripts of 200 operations compared line by line against the Linux kernel.
# Exits non-zero on the first divergence of any seed; the minimal script is
# left in build/oracle-fail-SEED.smm. SEQS, OPS and SEEDS override the sizes.
set -u
tool=${1:-build/softmm}
seqs=${SEQS:-200}
ops=${OPS:-200}
seeds=${SEEDS:-"1 2 3"}
# pt-reclaim models the kernel here (6.18, CONFIG_PT_RECLAIM); `none` runs
# too, with whole-table DONTNEEDs left out by the generator.
scheme=${SCHEME:-pt-reclaim}
outdir=build
mkdir -p "$outdir"
pids=""
for s in $seeds; do
	"$tool" oracle --sequences "$seqs" --ops "$ops" --seed "$s" \
		--scheme "$scheme" --out "$outdir/oracle-fail-$s.smm" \
		> "$outdir/oracle-seed-$s.log" 2>&1 &
	pids="$pids $!"
done
rc=0
for p in $pids; do
	wait "$p" || rc=1
done
for s in $seeds; do
	cat "$outdir/oracle-seed-$s.log"
done
exit $rc

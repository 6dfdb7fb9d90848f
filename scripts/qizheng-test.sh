#!/bin/sh
# qizheng-test.sh TOOL [CHUNKS]: Qi Zheng's test of empty page-table reclaim
# as a softmm script: map 50 GiB with MAP_NORESERVE, then 25,600 times touch
# 2 MiB and MADV_DONTNEED it; once with chunks aligned to 2 MiB, once with
# chunks one page off. Runs the script on the kernel and on softmm under
# every scheme, and checks the page-table bytes left (the `pt` line):
#   none        >= 100 MiB both ways (Linux before 6.14 frees nothing)
#   pt-reclaim  exactly the kernel's VmPTE growth (~240 KiB aligned,
#               ~100 MiB unaligned: Linux 6.14+ reclaims aligned only)
#   eager, refcount, pmd-rwsem  <= 256 KiB both ways
# The scripts are generated into build/ (51,000 lines each).
set -eu
tool=${1:-build/softmm}
chunks=${2:-25600}
mkdir -p build
for variant in aligned unaligned; do
	f=build/qizheng-$variant.smm
	off=0
	[ $variant = unaligned ] && off=4096
	awk -v n="$chunks" -v off="$off" 'BEGIN {
		base = 35184372088832	# 0x200000000000
		printf "# Qi Zheng test, %s chunks, offset %d\n", n, off
		printf "mmap 0x200000000000 %dM rw private,anon,fixed,noreserve\n", n * 2 + 2
		for (i = 0; i < n; i++) {
			a = base + off + i * 2097152
			printf "touch %.0f 2M\nmadvise %.0f 2M dontneed\n", a, a
		}
		print "pt"
	}' > "$f"
	kernel=$("$tool" script --backend kernel "$f" | tail -n 1)
	echo "$variant: kernel pt $kernel"
	for scheme in none pt-reclaim eager refcount pmd-rwsem; do
		got=$("$tool" script --scheme $scheme "$f" | tail -n 1)
		echo "$variant: $scheme pt $got"
		case $scheme in
		none)	[ "$got" -ge $((chunks * 4096)) ] || { echo "FAIL: none freed tables"; exit 1; };;
		pt-reclaim) [ "$got" = "$kernel" ] || { echo "FAIL: pt-reclaim differs from the kernel"; exit 1; };;
		*)	[ "$got" -le $((256 * 1024)) ] || { echo "FAIL: $scheme left more than 256 KiB"; exit 1; };;
		esac
	done
done

#!/bin/sh
# sparse-test.sh TOOL: page tables of a sparse region after one DONTNEED of
# all of it, as a softmm script: map 1 TiB with MAP_NORESERVE at
# 0x200000000000, load one byte per 2 MiB (524,288 zero-page faults, each in
# a PTE table of its own: 2 GiB of tables), MADV_DONTNEED the whole 1 TiB,
# print `pt`. Runs it on the kernel and on softmm under every scheme the
# tool knows, prints each figure, and checks the page-table bytes left:
#   none        >= 2 GiB (nothing is freed before munmap)
#   pt-reclaim  exactly the kernel's VmPTE growth (its PTE tables go, ~4 MiB
#               of PMD tables stay)
#   eager, pmd-rwsem  <= 16 KiB
#   refcount    printed, not checked (it frees PTE tables only)
# The script is generated into build/ (524,292 lines).
set -eu
tool=${1:-build/softmm}
f=build/sparse.smm
mkdir -p build
awk 'BEGIN {
	base = 35184372088832	# 0x200000000000
	print "# sparse test: 1 TiB, one load per 2 MiB, one DONTNEED"
	print "mmap 0x200000000000 1T rw private,anon,fixed,noreserve"
	for (i = 0; i < 524288; i++)
		printf "read %.0f 1\n", base + i * 2097152
	print "madvise 0x200000000000 1T dontneed"
	print "pt"
}' > "$f"
kernel=$("$tool" script --backend kernel "$f" | tail -n 1)
echo "sparse: kernel pt $kernel"
fail=0
for scheme in none pt-reclaim eager refcount pmd-rwsem; do
	if ! "$tool" script --scheme $scheme /dev/null >/dev/null 2>&1; then
		echo "sparse: $scheme not in this library, skipped"
		continue
	fi
	got=$("$tool" script --scheme $scheme "$f" | tail -n 1)
	echo "sparse: $scheme pt $got"
	case $scheme in
	none)	[ "$got" -ge $((2 << 30)) ] ||
			{ echo "FAIL: none freed tables"; fail=1; };;
	pt-reclaim) [ "$got" = "$kernel" ] ||
			{ echo "FAIL: pt-reclaim differs from the kernel"; fail=1; };;
	eager|pmd-rwsem) [ "$got" -le 16384 ] ||
			{ echo "FAIL: $scheme left more than 16 KiB"; fail=1; };;
	esac
done
exit $fail

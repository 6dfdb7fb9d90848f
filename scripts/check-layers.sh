#!/bin/bash
# check-layers.sh OBJDIR - the layering rules of docs/ARCHITECTURE.md:
#  1. no include cycle among src/ files;
#  2. no call cycle among src/ objects (a function of a.o calling one of
#     b.o is an edge a -> b; data references do not count);
#  3. page-table entries are stored only through the setters of pgtable.h
#     (which assert their lock), but for unlink_table() and the hardware
#     walk's accessed/dirty cmpxchg (docs/LOCKING.md).
# Prints each broken rule and exits 1; prints the two graphs' sizes and
# exits 0 when all hold.
set -u
cd "$(dirname "$0")/.."
objdir=${1:-build/obj}
fail=0

# cycle EDGES-FILE: print one cycle of the directed graph "a b" per line, if any
cycle() {
	awk '
	{ n[$1] = n[$1] " " $2; node[$1]; node[$2] }
	function dfs(v,   i, k, a) {
		state[v] = 1; stack[++depth] = v
		k = split(n[v], a, " ")
		for (i = 1; i <= k; i++) {
			if (state[a[i]] == 1) {
				for (j = 1; j <= depth && stack[j] != a[i]; j++) ;
				for (; j <= depth; j++) printf "%s -> ", stack[j]
				print a[i]; found = 1; return
			}
			if (!state[a[i]]) { dfs(a[i]); if (found) return }
		}
		state[v] = 2; depth--
	}
	END { for (v in node) if (!state[v] && !found) dfs(v); exit found }' "$1"
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 1. includes: "file header" for each #include "x.h" of a header in src/
for f in src/*.[ch]; do
	sed -n 's/^#include "\([a-z_0-9]*\.h\)".*/\1/p' "$f" | while read -r h; do
		[ -e "src/$h" ] && echo "$(basename "$f") $h"
	done
done > "$tmp/inc"
if ! c=$(cycle "$tmp/inc"); then
	echo "include cycle: $c"; fail=1
fi

# 2. calls: who defines each function, who uses it
ls "$objdir"/*.o >/dev/null 2>&1 || { echo "no objects in $objdir"; exit 1; }
for o in "$objdir"/*.o; do
	m=$(basename "$o" .o)
	nm "$o" | awk -v m="$m" '$2 == "T" { print "D", $3, m } $1 == "U" { print "U", $2, m }'
done > "$tmp/syms"
awk '$1 == "D" { def[$2] = $3 } $1 == "U" { use[++k] = $2 " " $3 }
     END { for (i = 1; i <= k; i++) { split(use[i], a, " ");
	   if ((a[1] in def) && def[a[1]] != a[2]) print a[2], def[a[1]] } }' \
	"$tmp/syms" | sort -u > "$tmp/call"
if ! c=$(cycle "$tmp/call"); then
	echo "call cycle: $c"; fail=1
fi

# 3. raw entry stores outside the setters (compiler.h: the counter build
# wraps the builtins, it stores nothing; uffd_wait.c's CAS is on a
# waiter's state word, not an entry)
bad=$(grep -n '__pte_write\|__pte_xchg\|__atomic_compare_exchange_n\|__atomic_store_n(ptep\|pgd\[[^]]*\] *= ' src/*.c src/*.h |
      grep -v '^src/pgtable\.h:' |
      grep -v '^src/compiler\.h:' |
      grep -v '^src/pgtable\.c:.*e = __pte_xchg(entryp, 0);' |
      grep -v '^src/uaccess\.c:.*__atomic_compare_exchange_n($' |
      grep -v '^src/uffd_wait\.c:.*__atomic_compare_exchange_n(&w->state,')
if [ -n "$bad" ]; then
	echo "entry stores outside the setters of pgtable.h:"; echo "$bad"; fail=1
fi

[ "$fail" = 0 ] && echo "layers: $(wc -l < "$tmp/inc") include edges, $(wc -l < "$tmp/call") call edges, no cycle; entry stores through the setters"
exit "$fail"

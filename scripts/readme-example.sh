#!/bin/sh
# Extracts the embedding examples from README.md (the first ```c block
# after the "Embedding" heading, and the ones after "Direct access (access
# sections)", "Files and shared memory", "Fork and mremap", "Demand paging
# (userfaultfd)" and "Multi-size THP"), builds each against
# build/libsoftmm.a and runs it.
set -e
cd "$(dirname "$0")/.."
d=build/readme-example; mkdir -p $d
for sec in "Embedding" "Direct access (access sections)" \
	"Files and shared memory" "Fork and mremap" \
	"Demand paging (userfaultfd)" "Multi-size THP"; do
	n=$(echo "$sec" | tr ' A-Z' '-a-z' | tr -d '()')
	awk -v h="## $sec" '$0==h{e=1} e&&/^```c/{c=1;next} c&&/^```/{exit} c{print}' \
		README.md > $d/$n.c
	test -s $d/$n.c
	${CC:-gcc} -std=gnu11 -Wall -Wextra -Werror -Iinclude $d/$n.c \
		build/libsoftmm.a -lurcu-memb -lurcu-common -pthread -o $d/$n
	$d/$n
done

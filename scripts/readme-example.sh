#!/bin/sh
# Extracts the embedding example from README.md (the ```c block after the
# "Embedding" heading), builds it against build/libsoftmm.a and runs it.
set -e
cd "$(dirname "$0")/.."
d=build/readme-example; mkdir -p $d
awk '/^## Embedding/{e=1} e&&/^```c/{c=1;next} c&&/^```/{exit} c{print}' README.md > $d/example.c
test -s $d/example.c
${CC:-gcc} -std=gnu11 -Wall -Wextra -Werror -Iinclude $d/example.c build/libsoftmm.a \
	-lurcu-memb -lurcu-common -pthread -o $d/example
$d/example

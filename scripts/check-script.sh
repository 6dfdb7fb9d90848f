#!/bin/sh
# check-script.sh TOOL SCRIPT EXPECTED: run SCRIPT through `TOOL script`
# (softmm backend) and diff its output against EXPECTED. Scripts under
# tests/oracle/ also run through the kernel backend, which must agree too.
set -e
tool=$1; script=$2; expected=$3
scheme=$(sed -n 's/^# *scheme: *//p' "$script" | head -n 1)
# Scripts checked against the kernel run under the scheme that models it.
case "$script" in tests/oracle/*) scheme=${scheme:-pt-reclaim};; esac
"$tool" script ${scheme:+--scheme "$scheme"} "$script" > "$expected.got"
diff -u "$expected" "$expected.got"
case "$script" in
tests/oracle/*)
	"$tool" script --backend kernel "$script" > "$expected.kgot"
	diff -u "$expected" "$expected.kgot"
	rm -f "$expected.kgot";;
esac
rm -f "$expected.got"

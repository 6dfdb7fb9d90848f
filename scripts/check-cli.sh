#!/bin/bash
# check-cli.sh [TOOL]: the command-line conventions of the softmm tool
# (default build/softmm): the script reader's errors (NUL bytes, a
# directory, read errors, long lines, binary garbage quoted), exit statuses
# and messages. Every case fails before any real work, or is a run of a
# few milliseconds; the whole takes a few seconds.
set -u
tool=${1:-build/softmm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

bad() {
	fail=$((fail + 1))
	echo "FAIL: $1"
	echo "  command: ${cmd[*]}"
	echo "  exit status $rc; stdout:"
	head -c 2000 "$tmp/out" | sed 's/^/    /'
	echo "  stderr:"
	head -c 2000 "$tmp/err" | sed 's/^/    /'
}

run() {	# run CMD...: run it, output in $tmp/out and $tmp/err, status in rc
	cmd=("$@")
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
}

# fails RC TEXT CMD...: CMD exits with status RC, prints nothing on stdout
# and prints a line containing TEXT (a fixed string) on stderr.
fails() {
	local want=$1 text=$2
	shift 2
	run "$@"
	if [ "$rc" -ne "$want" ]; then
		bad "exit status $rc, expected $want"
	elif [ -s "$tmp/out" ]; then
		bad "output on stdout"
	elif ! grep -qF -- "$text" "$tmp/err"; then
		bad "stderr does not say: $text"
	else
		pass=$((pass + 1))
	fi
}

# works TEXT CMD...: CMD exits 0, prints nothing on stderr, and prints a
# line containing TEXT on stdout.
works() {
	local text=$1
	shift
	run "$@"
	if [ "$rc" -ne 0 ]; then
		bad "exit status $rc, expected 0"
	elif [ -s "$tmp/err" ]; then
		bad "output on stderr"
	elif ! grep -qF -- "$text" "$tmp/out"; then
		bad "stdout does not say: $text"
	else
		pass=$((pass + 1))
	fi
}

# stderr_printable: the last command's stderr is printable ASCII lines.
stderr_printable() {
	if LC_ALL=C grep -q '[^[:print:]]' "$tmp/err"; then
		bad "raw bytes on stderr"
	else
		pass=$((pass + 1))
	fi
}

# ---- the script reader ----
printf 'maps\npt \0 pt\nmaps\n' >"$tmp/nul.smm"
fails 2 "$tmp/nul.smm:2: NUL byte in the script" "$tool" script "$tmp/nul.smm"
printf 'maps\n# a comment \0 with a NUL\n' >"$tmp/nul2.smm"
fails 2 "$tmp/nul2.smm:2: NUL byte in the script" "$tool" script "$tmp/nul2.smm"
fails 2 "-:1: NUL byte in the script" \
	sh -c "printf 'pt\0' | \"\$0\" script -" "$tool"
mkdir "$tmp/dir.smm"
fails 2 "softmm script: cannot read '$tmp/dir.smm': Is a directory" \
	"$tool" script "$tmp/dir.smm"
fails 2 "softmm script: cannot read '/proc/self/mem': Input/output error" \
	"$tool" script /proc/self/mem
fails 2 "softmm script: cannot open '$tmp/none.smm': No such file" \
	"$tool" script "$tmp/none.smm"

# A comment may be any length; the operation before it at most 1,023.
{
	echo "maps"
	printf '#%05000d\n' 0
	printf 'pt%1021s# %03000d\n' "" 0
} >"$tmp/long.smm"
works "-" "$tool" script "$tmp/long.smm"
[ "$(cat "$tmp/out")" = "$(printf -- '-\n0')" ] && pass=$((pass + 1)) ||
	bad "long comments: wrong output"
printf 'pt%1022s# comment\n' "" >"$tmp/long2.smm"
fails 2 "$tmp/long2.smm:1: line too long (more than 1023 characters before any '#')" \
	"$tool" script "$tmp/long2.smm"

# Binary garbage is quoted, never echoed raw; long text is cut short.
printf 'maps\n\x01\xfe\x80zz\x1b[31m\\ 1 2\n' >"$tmp/bin.smm"
fails 2 "$tmp/bin.smm:2: unknown operation '\\x01\\xfe\\x80zz\\x1b[31m\\\\'" \
	"$tool" script "$tmp/bin.smm"
stderr_printable
head -c 3000 /dev/urandom | tr -d '\000\n #' | head -c 1000 >"$tmp/rand.smm"
echo >>"$tmp/rand.smm"
fails 2 "$tmp/rand.smm:1: " "$tool" script "$tmp/rand.smm"
stderr_printable
printf 'A%.0s' $(seq 300) >"$tmp/As.smm"
fails 2 "unknown operation 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...'" \
	"$tool" script "$tmp/As.smm"

echo "check-cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

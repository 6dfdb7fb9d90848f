#!/bin/bash
# check-cli.sh [TOOL]: the command-line conventions of the softmm tool
# (default build/softmm), exit statuses and messages: the script reader's
# errors (NUL bytes, a directory, read errors, long lines, binary garbage
# quoted); --help on stdout with status 0 for every subcommand, and usages
# that show defaults and every workload; number options checked whole with
# their limits named; stray arguments; --scheme with the kernel backend;
# --only with an unknown workload; --race in a release build; torture
# --file-pages without --files; compare's
# --out. Every case fails before any real work, or is a run of a few
# milliseconds (the tiniest comparison: ~0.3 s); the whole takes ~1 s.
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

# The file operations' arguments.
echo "mmap 0x200000000000 4K rw shared,anon,fixed 0 0" >"$tmp/f1.smm"
fails 2 "$tmp/f1.smm:1: a file mapping is not anon" "$tool" script "$tmp/f1.smm"
echo "file 8 4K" >"$tmp/f2.smm"
fails 2 "$tmp/f2.smm:1: bad file number N (0-7): usage: file N SIZE" \
	"$tool" script "$tmp/f2.smm"
echo "pread 0 0 2M" >"$tmp/f3.smm"
fails 2 "$tmp/f3.smm:1: bad LEN (at most 1M): usage: pread N OFF LEN" \
	"$tool" script "$tmp/f3.smm"
echo "ftruncate 0 0x8000000000000000" >"$tmp/f4.smm"
fails 2 "$tmp/f4.smm:1: bad SIZE (0 to 2^63-1)" "$tool" script "$tmp/f4.smm"
echo "msync 0x200000000000 4K sync," >"$tmp/f5.smm"
fails 2 "$tmp/f5.smm:1: bad FLAGS (sync, async, invalidate or a number)" \
	"$tool" script "$tmp/f5.smm"

# ---- command-line conventions ----
# --help and -h: the usage on stdout, exit status 0, for every subcommand.
works "usage: softmm COMMAND" "$tool" --help
works "usage: softmm COMMAND" "$tool" help
for c in script oracle bench compare torture; do
	works "usage: softmm $c [" "$tool" $c --help
	works "usage: softmm $c [" "$tool" $c -h
	works "usage: softmm $c [" "$tool" help $c
	fails 2 "usage: softmm $c [" "$tool" $c --no-such-option
done
fails 2 "usage: softmm COMMAND" "$tool"
fails 2 "softmm: unknown command 'nope'" "$tool" nope
# The top-level usage shows each subcommand's synopsis, as its --help does.
for c in script oracle bench compare torture; do
	run "$tool" $c --help
	syn=$(sed -n '1s/^usage: softmm [a-z]* //p' "$tmp/out")
	run "$tool" --help
	grep -qF -- "$syn" "$tmp/out" && pass=$((pass + 1)) ||
		bad "softmm --help does not show: $syn"
done
# Defaults are shown, optional arguments in brackets.
works "[--threads N (4)]" "$tool" torture --help
works "[--sequences N (200)]" "$tool" oracle --help
works "[--reps N (5)]" "$tool" bench --help
works "[--out PATH (compare.svg)]" "$tool" compare --help
works "[--backend softmm|kernel (softmm)]" "$tool" script --help
# The bench usage lists every workload bench.c knows.
for w in fault-anon fault-anon-64k fault-zero memset-4k dontneed-aligned \
	dontneed-unaligned \
	dontneed-refault mmap-munmap mmap-many-1k mmap-many-10k mmap-many-60k \
	access-hit access-read gup-fast gup-slow fault-threads memset-threads \
	fault-shared-pte \
	fault-shared-pmd alloc-dontneed sparse-dontneed page-fault2 page-fault3 \
	read-fault-file msync-128m fault-vs-mmap fault-vs-mmap-mmaplock \
	fault-threads-mmaplock uffd-missing uffd-missing-callback; do
	works " $w" "$tool" bench --help
done

# Number options: whole numbers in range, else the option and its limits.
fails 2 "softmm oracle: --ops must be 1..100000 (got '99999999999999999999')" \
	"$tool" oracle --ops 99999999999999999999
fails 2 "softmm oracle: --sequences must be 1..1000000 (got '-5')" \
	"$tool" oracle --sequences -5
fails 2 "softmm oracle: --sequences must be 1..1000000 (got 'x')" \
	"$tool" oracle --sequences x
fails 2 "softmm oracle: --sequences must be 1..1000000 (got '10x')" \
	"$tool" oracle --sequences 10x
fails 2 "softmm oracle: --sequences must be 1..1000000 (got ' 10')" \
	"$tool" oracle --sequences " 10"
fails 2 "softmm oracle: --seed must be 0..18446744073709551615 (got '+1')" \
	"$tool" oracle --seed +1
fails 2 "softmm oracle: --seed must be 0..18446744073709551615 (got '0x')" \
	"$tool" oracle --seed 0x
fails 2 "softmm oracle: --ops must be 1..100000 (got '')" \
	"$tool" oracle --ops ""
fails 2 "softmm torture: --threads must be 1..64 (got '1000')" \
	"$tool" torture --threads 1000
fails 2 "softmm torture: --threads must be 1..64 (got '0')" \
	"$tool" torture --threads 0
fails 2 "softmm torture: --seconds must be 0..86400 (got '-1')" \
	"$tool" torture --seconds -1
fails 2 "softmm torture: --mms must be 1..8 (got '9')" "$tool" torture --mms 9
fails 2 "softmm torture: --gup must be 0..8 (got '2.5')" "$tool" torture --gup 2.5
fails 2 "softmm torture: --race must be 0..1000 (got '1001')" \
	"$tool" torture --race 1001
fails 2 "softmm torture: --seed must be 0..18446744073709551615 (got '18446744073709551616')" \
	"$tool" torture --seed 18446744073709551616
fails 2 "softmm torture: --file-pages must be 1..4096 (got '0')" \
	"$tool" torture --files --file-pages 0
fails 2 "softmm torture: --file-pages needs --files" \
	"$tool" torture --file-pages 8
fails 2 "softmm bench: --reps must be 1..64 (got '0')" "$tool" bench --reps 0
# --atomics counts only in the counter build (build/count/softmm).
fails 2 "softmm bench: --atomics counts only in the counter build" \
	"$tool" bench --atomics
fails 2 "softmm compare: --atomics is for \`softmm bench\`" \
	"$tool" compare --atomics
fails 2 "softmm compare: --reps must be 1..64 (got '65')" "$tool" compare --reps 65

# Stray arguments, unknown names (quoted).
fails 2 "softmm oracle: unexpected argument 'foo'" "$tool" oracle foo
fails 2 "softmm torture: unexpected argument 'foo'" "$tool" torture foo
fails 2 "softmm bench: unexpected argument 'foo'" "$tool" bench foo
fails 2 "softmm compare: unexpected argument 'foo'" "$tool" compare foo
fails 2 "softmm script: unexpected argument 'b'" "$tool" script a b
fails 2 "softmm script: no FILE given" "$tool" script
fails 2 "softmm script: unknown backend 'x\x01'" "$tool" script --backend $'x\001' -
fails 2 "softmm script: unknown scheme 'x'" "$tool" script --scheme x -
fails 2 "softmm torture: unknown scheme 'x'" "$tool" torture --scheme x
fails 2 "softmm oracle: unknown --avoid class 'x'" "$tool" oracle --avoid x

# --scheme means nothing to the kernel backend.
echo pt >"$tmp/pt.smm"
fails 2 "softmm script: --scheme is for the softmm backend" \
	"$tool" script --backend kernel --scheme eager "$tmp/pt.smm"
fails 2 "softmm script: --scheme is for the softmm backend" \
	"$tool" script --scheme pt-reclaim --backend kernel "$tmp/pt.smm"
works "0" "$tool" script --scheme pt-reclaim "$tmp/pt.smm"

# --only names workloads.
for c in bench compare; do
	fails 2 "softmm $c: unknown workload 'bogus' in --only" \
		"$tool" $c --only fault-anon,bogus
	grep -qF "fault-vs-mmap-mmaplock" "$tmp/err" && pass=$((pass + 1)) ||
		bad "--only bogus does not list the workloads"
	fails 2 "softmm $c: unknown workload '' in --only" "$tool" $c --only fault-anon,
	fails 2 "softmm $c: unknown workload 'dont' in --only" "$tool" $c --only dont
done
fails 2 "softmm bench: --out is for \`softmm compare\`" "$tool" bench --out x.svg

# --race: a release build warns that it does nothing there.
run "$tool" torture --race 5 --seconds 0 --threads 1 --gup 0 --mms 1
case "$tool" in
*/asan/* | */tsan/* | */bug/*) want=0 ;; # debug builds mark race windows
*) want=1 ;;
esac
got=0
grep -qF "softmm torture: --race does nothing in a release build" "$tmp/err" && got=1
[ "$rc" -eq 0 ] && [ "$got" -eq "$want" ] && pass=$((pass + 1)) ||
	bad "--race warning: expected $want, got $got"

# compare --out: an unwritable path fails before any benchmark runs.
fails 2 "softmm compare: cannot write the chart to '/nonexistent/c.svg': No such file or directory" \
	"$tool" compare --out /nonexistent/c.svg
fails 2 "softmm compare: cannot write the chart to '$tmp': Is a directory" \
	"$tool" compare --out "$tmp"

# The tiniest comparison (one workload, one scheme, one repetition; about
# 0.3 s in a release build): the table shows the spread of the
# repetitions; the chart goes where --out says, with a legend for its y=1
# line and error bars; the temporary files are gone; a failed write is an
# error naming the path.
if [ "$want" = 1 ] && command -v gnuplot >/dev/null; then
	mkdir "$tmp/run" "$tmp/t"
	tiny="compare --only access-hit --scheme eager --reps 1"
	abs=$(cd "$(dirname "$tool")" && pwd)/$(basename "$tool")
	(cd "$tmp/run" && TMPDIR="$tmp/t" "$abs" $tiny --out ../c.svg \
		>"$tmp/cout" 2>"$tmp/cerr")
	rc=$?
	cmd=(cd "$tmp/run" "&&" "$tool" $tiny --out ../c.svg)
	cp "$tmp/cout" "$tmp/out"
	cp "$tmp/cerr" "$tmp/err"
	if [ "$rc" -ne 0 ] || ! grep -qx "chart: ../c.svg" "$tmp/out"; then
		bad "compare --out: no chart written"
	elif ! grep -q "<svg" "$tmp/c.svg"; then
		bad "compare --out: $tmp/c.svg is no SVG"
	elif ! grep -qE '^access-hit +load +[0-9.]+ \([0-9.]+\.\.[0-9.]+\) +[0-9.]+ \([0-9.]+\.\.[0-9.]+\) +[0-9.]+x' "$tmp/out"; then
		bad "compare: the table shows no spread (MEDIAN (MIN..MAX))"
	elif ! grep -qF "Linux = 1 (same speed)" "$tmp/c.svg" ||
		! grep -qF "whiskers: lowest and highest ratio" "$tmp/c.svg"; then
		bad "compare: the chart has no legend for y=1 or no error bars"
	elif [ -n "$(find "$tmp/run" "$tmp/t" -mindepth 1)" ] ||
		[ -n "$(find "$tmp" -name '*.dat' -o -name '*.gp')" ]; then
		bad "compare left files behind: $(find "$tmp" -mindepth 1)"
	else
		pass=$((pass + 1))
	fi
	# bench --json keeps its fields, min and max among them.
	run "$tool" bench --only access-hit --scheme eager --reps 1 --json
	if [ "$rc" -ne 0 ] || [ "$(grep -c '"ns_per_op": .*"ns_per_op_min": .*"ns_per_op_max": ' "$tmp/out")" != 2 ]; then
		bad "bench --json: no ns_per_op, ns_per_op_min, ns_per_op_max"
	else
		pass=$((pass + 1))
	fi
	run "$tool" $tiny --out /dev/full
	if [ "$rc" -ne 1 ] ||
		! grep -qF "softmm compare: cannot write the chart to '/dev/full': No space left on device" "$tmp/err"; then
		bad "compare --out /dev/full: the failed write is not reported"
	else
		pass=$((pass + 1))
	fi
fi

echo "check-cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/bin/sh
# Installs the Debian packages softmm needs when they are missing: the
# compiler and make, liburcu (RCU), cmocka (unit tests), pkg-config and
# gnuplot-nox (charts in `softmm compare`), libtsan2 (gcc's ThreadSanitizer
# runtime, for build/tsan), clang-format (`make format-check`), clang and
# libclang-rt-14-dev (libFuzzer and the sanitizer runtimes, for `make fuzz`).
# Does nothing when all are there.
set -e
need=""
for p in gcc make liburcu-dev libcmocka-dev pkg-config gnuplot-nox libtsan2 clang-format \
	clang libclang-rt-14-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "install-deps: installing$need"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $need >/dev/null

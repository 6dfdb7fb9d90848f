#!/bin/sh
# tsan-run.sh COMMAND...: run a ThreadSanitizer build (build/tsan/) with
# softmm's TSan options: the suppressions of tests/tsan.supp, stop at the
# first report and exit 66. Options already in $TSAN_OPTIONS come last and
# win (e.g. TSAN_OPTIONS=halt_on_error=0 to see every report).
# die_after_fork=0: tests fork children that must report a rule broken
# (test_lockdep, test_misuse), and softmm's fork hooks (src/rcu.c) start a
# new call_rcu worker thread in every child, which TSan refuses by default.
# See docs/THREADSANITIZER.md.
root=$(cd "$(dirname "$0")/.." && pwd)
TSAN_OPTIONS="suppressions=$root/tests/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 die_after_fork=0 ${TSAN_OPTIONS:-}"
export TSAN_OPTIONS
exec "$@"

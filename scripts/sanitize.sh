#!/usr/bin/env bash
# Builds the suite with a sanitizer and runs the C++ tests (unit, PostgreSQL, end-to-end,
# fleet) under it. Every process the tests start (services, agents) inherits the options
# and writes its reports to build-KIND/sanitizer-logs/; any report there fails the run,
# after the suppressions in tests/sanitizers/ (each names its reason).
#
#   scripts/sanitize.sh asan    AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer
#   scripts/sanitize.sh tsan    ThreadSanitizer (see tests/sanitizers/tsan.supp)
# Extra arguments go to ctest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
KIND=${1:?asan or tsan}; shift
case "$KIND" in asan|tsan) ;; *) echo "unknown sanitizer $KIND" >&2; exit 2 ;; esac
B=$ROOT/build-$KIND
[ -f "$B/build.ninja" ] || cmake --preset "$KIND" >/dev/null
cmake --build "$B" --parallel "$(nproc)"

LOGS=$B/sanitizer-logs
rm -rf "$LOGS"; mkdir -p "$LOGS"
S=$ROOT/tests/sanitizers
if [ "$KIND" = asan ]; then
  export ASAN_OPTIONS="log_path=$LOGS/asan:log_exe_name=1:fast_unwind_on_malloc=0:malloc_context_size=40:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1"
  export LSAN_OPTIONS="suppressions=$S/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$LOGS/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$S/ubsan.supp"
  # ASan slows the services several-fold: a smaller fleet keeps the test inside its timeout.
  export REDFLAG_FLEET_TEST_AGENTS=${REDFLAG_FLEET_TEST_AGENTS:-100}
else
  export TSAN_OPTIONS="log_path=$LOGS/tsan:suppressions=$S/tsan.supp:print_suppressions=0:second_deadlock_stack=1:history_size=4"
  export REDFLAG_FLEET_TEST_AGENTS=${REDFLAG_FLEET_TEST_AGENTS:-50}
fi

status=0
# Tests of non-C++ artefacts (chart, dashboards, rules, units, the dev-up script) gain nothing
# from a sanitizer.
(cd "$B" && ctest --output-on-failure --timeout 1200 -j "$(nproc)" \
  -E '^(helm_chart|grafana_dashboard|systemd_units|prometheus_rules|dev_up|architecture_doc)$' "$@") || status=$?

reports=$(find "$LOGS" -type f -size +0 | sort)
if [ -n "$reports" ]; then
  echo "== $KIND reports from tests and the processes they started:"
  for r in $reports; do echo "--- $r"; head -c 20000 "$r"; done
  echo "== $(echo "$reports" | wc -l) process(es) reported under $KIND"
  status=1
else
  echo "== $KIND: no reports from any test or child process"
fi
exit $status

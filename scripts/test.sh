#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest; then builds
# the suite again with AddressSanitizer + UndefinedBehaviorSanitizer and runs its C++ tests
# under them (scripts/sanitize.sh asan), failing on any report from a test or from any
# process a test started. The suite starts its own PostgreSQL (as a non-root user, in
# build*/test-fixture) and stops it afterwards. Last, every libFuzzer target runs from its
# seed corpus for a bounded count (scripts/fuzz.sh). REDFLAG_SKIP_SANITIZERS=1 skips the
# sanitizer and fuzzing passes (for a quick local run; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
status=0
(cd build && ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@") || status=$?
if [ "${REDFLAG_SKIP_SANITIZERS:-0}" != 1 ]; then
  bash scripts/sanitize.sh asan || status=$?
  bash scripts/fuzz.sh 200000 || status=$?
fi
exit $status

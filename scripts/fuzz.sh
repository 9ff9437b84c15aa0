#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined; build-fuzz/) and
# runs each from its committed seed corpus (tests/fuzz/corpus/<target>/) for a bounded count:
#   scripts/fuzz.sh [RUNS]            (default 20000 executions per target; CI)
#   scripts/fuzz.sh --seconds N       (each target for N seconds; e.g. 3600 locally)
# New inputs go to a scratch copy of the corpus, never into the committed one. A crash, leak
# or sanitizer report fails the run and leaves the reproducer in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=(-runs="${1:-20000}")
if [ "${1:-}" = --seconds ]; then budget=(-max_total_time="$2"); fi
[ -f build-fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
targets=(jwt version instruction agent_files fingerprint delivery_report publish_header)
cmake --build build-fuzz --parallel "$(nproc)" --target "${targets[@]/%/_fuzz}"
mkdir -p build-fuzz/artifacts
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp tests/fuzz/corpus/"$t"/* "$work"/
  echo "== fuzz $t"
  build-fuzz/fuzz/"$t"_fuzz "${budget[@]}" -max_len=65536 -timeout=10 \
    -artifact_prefix=build-fuzz/artifacts/"$t"- -print_final_stats=1 "$work" 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)|Done [0-9]+ runs" || true
  status=${PIPESTATUS[0]}
  rm -rf "$work"
  if [ "$status" != 0 ]; then
    echo "fuzz $t failed (exit $status); reproducer in build-fuzz/artifacts/" >&2
    exit 1
  fi
done
echo "== fuzz: every target ran clean"

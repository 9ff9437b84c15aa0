#!/usr/bin/env bash
# Groups the ThreadSanitizer reports of the last `scripts/sanitize.sh tsan` run
# (build-tsan/sanitizer-logs/tsan.*) by kind and by the first frame of RedFlag's own code in
# each of the report's two stacks ("-" when a stack has none: it is entirely inside an
# uninstrumented library). Prints one line per distinct signature with its count, most
# frequent first; the suppressions in tests/sanitizers/tsan.supp explain each one kept.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGS=${1:-$ROOT/build-tsan/sanitizer-logs}
shopt -s nullglob
files=("$LOGS"/tsan.*)
[ ${#files[@]} -gt 0 ] || { echo "no TSan reports in $LOGS"; exit 0; }
awk -v root="$ROOT/" '
  function flush() {
    if (kind != "") {
      sig = kind " | " (first[1] == "" ? "-" : first[1]) " | " (first[2] == "" ? "-" : first[2])
      count[sig]++
    }
    kind = ""; stack = 0; first[1] = ""; first[2] = ""
  }
  /^WARNING: ThreadSanitizer:/ { flush(); kind = $0; sub(/^WARNING: ThreadSanitizer: /, "", kind); sub(/ \(pid=.*/, "", kind); next }
  /^  (Write|Read|Atomic|Previous|Mutex|Location)/ { if (stack < 2) stack++; next }
  /^    #[0-9]+ / {
    if (kind != "" && stack >= 1 && stack <= 2 && first[stack] == "" && index($0, root) > 0) {
      fn = $0; sub(/^    #[0-9]+ /, "", fn); sub(/ \/.*$/, "", fn); sub(/^0x[0-9a-f]+ in /, "", fn)
      loc = $0; sub(/^.* \//, "/", loc); sub(root, "", loc)
      first[stack] = fn " (" loc ")"
    }
    next
  }
  /^SUMMARY:/ { flush() }
  END { flush(); for (s in count) printf "%6d  %s\n", count[s], s }
' "${files[@]}" | sort -rn
echo "$(cat "${files[@]}" | grep -c '^WARNING: ThreadSanitizer') report(s) in ${#files[@]} process log(s)"

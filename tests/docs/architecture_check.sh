#!/usr/bin/env bash
# Keeps docs/ARCHITECTURE.md true to the code: every repository path it names in backticks
# exists, every test file it cites exists under tests/, and every quoted test name in its
# threat table is a TEST_CASE in the suite.
set -euo pipefail
ROOT=$(cd "$1" && pwd)
DOC=$ROOT/docs/ARCHITECTURE.md
bad=0
# Paths: backticked tokens with a slash (services/gateway/, common/security_events.{h,cc}).
while read -r p; do
  for f in $(eval echo "$ROOT/$p"); do  # expands {h,cc}
    [ -e "$f" ] || { echo "ARCHITECTURE.md names $p, which does not exist" >&2; bad=1; }
  done
done < <(grep -o '`[a-z_./{},-]*/[a-z_./{},-]*`' "$DOC" | tr -d '`' | sort -u)
# Test files cited by name.
while read -r f; do
  [ -n "$(find "$ROOT/tests" -name "$f" -print -quit)" ] ||
    { echo "ARCHITECTURE.md cites $f, which is not under tests/" >&2; bad=1; }
done < <(grep -o '`[a-z_]*_\(test\|pgtest\|e2e_test\)\.cc`' "$DOC" | tr -d '`' | sort -u)
# Test names quoted in the threat table (its third column).
while read -r name; do
  grep -rqF "TEST_CASE(\"$name" "$ROOT/tests" ||
    { echo "ARCHITECTURE.md cites the test \"$name\", which the suite does not have" >&2; bad=1; }
done < <(sed -n '/^## Threat/,/^## Scale/p' "$DOC" | grep '^|' | awk -F'|' '{print $4}' |
         grep -o '"[^"]*"' | tr -d '"' | sort -u)
[ "$bad" = 0 ] && echo "ARCHITECTURE.md: every path, test file and test name it cites exists"
exit "$bad"

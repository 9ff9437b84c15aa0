#!/usr/bin/env bash
# The Grafana dashboard parses, has the guide's panels, and queries only metrics that a
# service in this repository registers.
set -euo pipefail
SRC=$1
node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const titles = d.panels.map(p => p.title);
for (const t of ["Failed Updates", "Machine Binding Violations", "Authentication Failures",
                 "Connected Agents", "Check-ins per second", "Rollouts by state",
                 "Rollout progress per stage"]) {
  if (!titles.some(x => x.startsWith(t))) { console.error("missing panel " + t); process.exit(1); }
}
for (const p of d.panels) for (const t of p.targets)
  for (const m of t.expr.match(/redflag_[a-z_]+/g)) console.log(m.replace(/_(bucket|sum|count)$/, ""));
' "$SRC/deploy/grafana/redflag-security.json" | sort -u | while read -r metric; do
  grep -rqs --include='*.cc' "\"$metric\"" "$SRC/common" "$SRC/services" ||
    { echo "dashboard queries $metric, which no service registers" >&2; exit 1; }
done
echo "dashboard OK"

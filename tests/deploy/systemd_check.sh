#!/usr/bin/env bash
# The systemd units verify (with ExecStart pointed at the built binaries), services score
# at most 4.0 on systemd's exposure scale and the agent at most 7.0 (it must read root-only
# machine identity), and deploy/install.sh lays out the guide's permissions.
#   systemd_check.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
SRC=$1; BUILD=$2; WORK=$3
rm -rf "$WORK"; mkdir -p "$WORK/units"
UNITS=(auth agents updates gateway agent migrate)
for s in "${UNITS[@]}"; do
  bin=$BUILD/services/$s/redflag-$s; [ $s = agent ] && bin=$BUILD/agent/redflag-agent
  [ $s = migrate ] && bin=$BUILD/tools/redflag-migrate
  sed "s|/usr/local/bin/redflag-$s|$bin|" "$SRC/deploy/systemd/redflag-$s.service" > "$WORK/units/redflag-$s.service"
done
# Verified together (the services require redflag-migrate.service); verify exits 0 on
# settings it ignores, so any complaint fails the check.
out=$(cd "$WORK/units" && SYSTEMD_UNIT_PATH="$WORK/units:" systemd-analyze verify --man=no ./*.service 2>&1) ||
  { echo "$out" >&2; exit 1; }
[ -z "$out" ] || { echo "$out" >&2; exit 1; }
for s in "${UNITS[@]}"; do
  unit=$WORK/units/redflag-$s.service
  limit=40; [ $s = agent ] && limit=70
  systemd-analyze security --offline=true --threshold=$limit "$unit" >/dev/null ||
    { systemd-analyze security --offline=true "$unit" | tail -1; echo "$s exposure above $limit" >&2; exit 1; }
done
bash "$SRC/deploy/install.sh" "$BUILD" "$WORK/root" >/dev/null
check() { [ "$(stat -c %a "$WORK/root/$1")" = "$2" ] || { echo "$1 is $(stat -c %a "$WORK/root/$1"), want $2" >&2; exit 1; }; }
check etc/redflag 751
check var/lib/redflag 750
check var/log/redflag 750
for s in auth agents updates gateway migrate; do check etc/redflag/$s.env 600; done
check usr/local/bin/redflag-gateway 755
echo "systemd units and install layout OK"

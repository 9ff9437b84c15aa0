#!/usr/bin/env bash
# Stops what scripts/dev-up.sh started: the agent, the four services and PostgreSQL.
# Keeps .dev/ (data, keys, agent state); delete it to start from scratch. REDFLAG_DEV_DIR
# names another tree, as for dev-up.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=$(realpath -m "${REDFLAG_DEV_DIR:-.dev}")
for name in agent gateway updates agents auth; do
  f=$DEV/run/$name.pid
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name"
  fi
  rm -f "$f"
done
bash scripts/pg.sh stop "$DEV/pg"

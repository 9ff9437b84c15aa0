#!/usr/bin/env bash
# Stops what scripts/dev-up.sh started: the agent, the four services and PostgreSQL.
# Keeps .dev/ (data, keys, agent state); delete it to start from scratch.
set -uo pipefail
cd "$(dirname "$0")/.."
for name in agent gateway updates agents auth; do
  f=.dev/run/$name.pid
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
bash scripts/pg.sh stop .dev/pg

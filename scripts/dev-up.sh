#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local RedFlag: PostgreSQL (as a
# non-root user, data in .dev/pg), dev PKI and keys (.dev/pki), the four services and one
# enrolled agent. Stop everything with scripts/dev-down.sh.
#
# Every port is a variable (defaults in brackets): REDFLAG_DEV_PG_PORT [55432],
# REDFLAG_DEV_GATEWAY_PORT [8443], REDFLAG_DEV_{AUTH,AGENTS,UPDATES}_PORT [9101-9103],
# REDFLAG_DEV_{GATEWAY,AUTH,AGENTS,UPDATES}_METRICS_PORT [9200-9203]. REDFLAG_DEV_DIR [.dev]
# moves the whole tree; REDFLAG_DEV_NO_BUILD=1 skips the build and REDFLAG_DEV_BUILD_DIR [build]
# names the build to run. Before anything starts, every port it needs is checked: one held by
# another program stops the script at once, naming the port and its holder. If a part fails
# to start, whatever this run started is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEV=$(realpath -m "${REDFLAG_DEV_DIR:-$ROOT/.dev}")
PGPORT=${REDFLAG_DEV_PG_PORT:-55432}
declare -A PORT=(
  [gateway]=${REDFLAG_DEV_GATEWAY_PORT:-8443}
  [auth]=${REDFLAG_DEV_AUTH_PORT:-9101}
  [agents]=${REDFLAG_DEV_AGENTS_PORT:-9102}
  [updates]=${REDFLAG_DEV_UPDATES_PORT:-9103})
declare -A MPORT=(
  [gateway]=${REDFLAG_DEV_GATEWAY_METRICS_PORT:-9200}
  [auth]=${REDFLAG_DEV_AUTH_METRICS_PORT:-9201}
  [agents]=${REDFLAG_DEV_AGENTS_METRICS_PORT:-9202}
  [updates]=${REDFLAG_DEV_UPDATES_METRICS_PORT:-9203})
declare -A VAR_OF=([gateway]=GATEWAY [auth]=AUTH [agents]=AGENTS [updates]=UPDATES)

running() {  # name: whether this dev tree's process of that name is alive
  [ -f "$DEV/run/$1.pid" ] && kill -0 "$(cat "$DEV/run/$1.pid")" 2>/dev/null
}

holder() {  # port: who listens on it ("" when nobody)
  local line
  line=$(ss -Htlnp "sport = :$1" 2>/dev/null | head -n 1)
  [ -n "$line" ] || return 0
  if [[ $line =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
    echo "${BASH_REMATCH[1]} (pid ${BASH_REMATCH[2]})"
  else
    echo "a process this user cannot see"
  fi
}

# Pre-flight, before installing, building or starting anything.
command -v ss >/dev/null || { echo "dev-up needs ss (Debian package iproute2)" >&2; exit 1; }
taken=0
check_port() {  # port what variable
  local who; who=$(holder "$1")
  if [ -n "$who" ]; then
    echo "port $1 ($2) is taken by $who: stop it, or choose another port with $3=<port>" >&2
    taken=1
  fi
}
for name in auth agents updates gateway; do
  running "$name" && continue
  check_port "${PORT[$name]}" "$name" "REDFLAG_DEV_${VAR_OF[$name]}_PORT"
  check_port "${MPORT[$name]}" "$name metrics" "REDFLAG_DEV_${VAR_OF[$name]}_METRICS_PORT"
done
PG_RUNNING=0
[ -f "$DEV/pg/data/postmaster.pid" ] && kill -0 "$(head -n 1 "$DEV/pg/data/postmaster.pid")" \
  2>/dev/null && PG_RUNNING=1
[ "$PG_RUNNING" = 1 ] || check_port "$PGPORT" "PostgreSQL" REDFLAG_DEV_PG_PORT
[ "$taken" = 0 ] || { echo "nothing was started" >&2; exit 1; }

bash scripts/install-deps.sh
[ "${REDFLAG_DEV_NO_BUILD:-0}" = 1 ] || bash scripts/build.sh
mkdir -p "$DEV/logs" "$DEV/run"
[ -f "$DEV/pki/redflag.env" ] || bash scripts/dev-pki.sh "$DEV/pki" >/dev/null
set -a; . "$DEV/pki/redflag.env"; set +a

# What this run started, stopped again if the run fails.
STARTED=()
PG_STARTED=0
cleanup() {
  local status=$?
  [ "$status" = 0 ] && return
  for name in "${STARTED[@]}"; do
    pid=$(cat "$DEV/run/$name.pid" 2>/dev/null) || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DEV/run/$name.pid"
    echo "stopped $name (started by this run)" >&2
  done
  [ "$PG_STARTED" = 1 ] && bash scripts/pg.sh stop "$DEV/pg" >/dev/null 2>&1 &&
    echo "stopped PostgreSQL (started by this run)" >&2
  exit "$status"
}
trap cleanup EXIT

[ "$PG_RUNNING" = 1 ] || PG_STARTED=1
bash scripts/pg.sh start "$DEV/pg" "$PGPORT" "$DEV/pki/redflag.env"
export REDFLAG_DB_HOST=127.0.0.1 REDFLAG_DB_PORT=$PGPORT REDFLAG_DB_NAME=redflag REDFLAG_DB_SSLMODE=disable
export REDFLAG_CHECK_IN_INTERVAL_SECONDS=${REDFLAG_CHECK_IN_INTERVAL_SECONDS:-10}
export REDFLAG_AUTH_ADDR=localhost:${PORT[auth]} REDFLAG_AGENTS_ADDR=localhost:${PORT[agents]}
export REDFLAG_UPDATES_ADDR=localhost:${PORT[updates]}
B=$(realpath -m "${REDFLAG_DEV_BUILD_DIR:-$ROOT/build}")

# Started means: our process is alive and it is the one listening on the port.
wait_port() {  # port name pid
  for _ in $(seq 1 100); do
    kill -0 "$3" 2>/dev/null || break
    ss -Htlnp "sport = :$1" 2>/dev/null | grep -q "pid=$3," && return 0
    sleep 0.1
  done
  echo "$2 did not start; see $DEV/logs/$2.log" >&2; tail -5 "$DEV/logs/$2.log" >&2; exit 1
}

start() {  # name binary [args...]
  local name=$1 bin=$2; shift 2
  if running "$name"; then echo "$name already running"; return; fi
  nohup "$bin" --listen "127.0.0.1:${PORT[$name]}" --metrics "127.0.0.1:${MPORT[$name]}" "$@" \
    >"$DEV/logs/$name.log" 2>&1 &
  echo $! >"$DEV/run/$name.pid"
  STARTED+=("$name")
  wait_port "${PORT[$name]}" "$name" "$!"
}

# Migrations and grants as the owner role; then each service as its own role.
REDFLAG_DB_USER=redflag_owner REDFLAG_DB_PASSWORD=$REDFLAG_DB_OWNER_PASSWORD "$B/tools/redflag-migrate"
for name in auth agents updates; do
  pw=REDFLAG_DB_${name^^}_PASSWORD
  REDFLAG_TLS_CA_FILE=$DEV/pki/internal-ca.crt REDFLAG_TLS_CERT_FILE=$DEV/pki/$name.crt \
  REDFLAG_TLS_KEY_FILE=$DEV/pki/$name.key REDFLAG_DB_USER=redflag_$name REDFLAG_DB_PASSWORD=${!pw} \
    start "$name" "$B/services/$name/redflag-$name"
done
REDFLAG_TLS_CERT_FILE=$DEV/pki/gateway-public.crt REDFLAG_TLS_KEY_FILE=$DEV/pki/gateway-public.key \
REDFLAG_INTERNAL_TLS_CA_FILE=$DEV/pki/internal-ca.crt REDFLAG_INTERNAL_TLS_CERT_FILE=$DEV/pki/gateway.crt \
REDFLAG_INTERNAL_TLS_KEY_FILE=$DEV/pki/gateway.key \
  start gateway "$B/services/gateway/redflag-gateway"

GW=localhost:${PORT[gateway]}
CTL=("$B/tools/redflagctl" --server "$GW" --ca_file "$DEV/pki/public-ca.crt")
if [ ! -f "$DEV/agent/state.pb" ]; then
  TOKEN=$("${CTL[@]}" login)
  SECRET=$(REDFLAG_TOKEN=$TOKEN "${CTL[@]}" create-token 5 dev-up)
else
  SECRET=
fi
if ! running agent; then
  REDFLAG_REGISTRATION_TOKEN=$SECRET nohup "$B/agent/redflag-agent" --server "$GW" \
    --ca_file "$DEV/pki/public-ca.crt" --state_dir "$DEV/agent" >"$DEV/logs/agent.log" 2>&1 &
  echo $! >"$DEV/run/agent.pid"
  STARTED+=(agent)
fi
for _ in $(seq 1 50); do grep -q "acknowledged" "$DEV/logs/agent.log" 2>/dev/null && break; sleep 0.2; done
grep -q "acknowledged" "$DEV/logs/agent.log" || { echo "agent did not check in; see $DEV/logs/agent.log" >&2; tail -5 "$DEV/logs/agent.log" >&2; exit 1; }

cat <<MSG

RedFlag is running:
  gateway   $GW (TLS, CA $DEV/pki/public-ca.crt)  metrics http://127.0.0.1:${MPORT[gateway]}/metrics
  auth      127.0.0.1:${PORT[auth]} (mTLS)  metrics http://127.0.0.1:${MPORT[auth]}/metrics
  agents    127.0.0.1:${PORT[agents]} (mTLS)  metrics http://127.0.0.1:${MPORT[agents]}/metrics
  updates   127.0.0.1:${PORT[updates]} (mTLS)  metrics http://127.0.0.1:${MPORT[updates]}/metrics
  postgres  127.0.0.1:$PGPORT (data $DEV/pg)
  agent     enrolled, state in $DEV/agent, checking in every ${REDFLAG_CHECK_IN_INTERVAL_SECONDS}s
Logs: $DEV/logs/*.log   Admin password and secrets: $DEV/pki/redflag.env

Query it:
  export REDFLAG_TOKEN=\$(set -a; . $DEV/pki/redflag.env; build/tools/redflagctl --server $GW login)
  build/tools/redflagctl --server $GW list-agents
  grpcurl -cacert $DEV/pki/public-ca.crt -H "authorization: Bearer \$REDFLAG_TOKEN" \\
    $GW redflag.v1.OperatorService/ListAgents
Stop: scripts/dev-down.sh
MSG

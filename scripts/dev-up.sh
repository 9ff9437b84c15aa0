#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local RedFlag: PostgreSQL (as a
# non-root user, data in .dev/pg), dev PKI and keys (.dev/pki), the four services and one
# enrolled agent. Stop everything with scripts/dev-down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash scripts/install-deps.sh
bash scripts/build.sh
DEV=$ROOT/.dev
mkdir -p "$DEV/logs" "$DEV/run"
[ -f "$DEV/pki/redflag.env" ] || bash scripts/dev-pki.sh "$DEV/pki" >/dev/null
set -a; . "$DEV/pki/redflag.env"; set +a
PGPORT=${REDFLAG_DEV_PG_PORT:-55432}
bash scripts/pg.sh start "$DEV/pg" "$PGPORT" "$DEV/pki/redflag.env"
export REDFLAG_DB_HOST=127.0.0.1 REDFLAG_DB_PORT=$PGPORT REDFLAG_DB_NAME=redflag REDFLAG_DB_SSLMODE=disable
export REDFLAG_CHECK_IN_INTERVAL_SECONDS=${REDFLAG_CHECK_IN_INTERVAL_SECONDS:-10}
B=$ROOT/build

wait_port() {  # port name
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; see $DEV/logs/$2.log" >&2; tail -5 "$DEV/logs/$2.log" >&2; exit 1
}

start() {  # name port metrics-port binary [args...]
  local name=$1 port=$2 mport=$3 bin=$4; shift 4
  if [ -f "$DEV/run/$name.pid" ] && kill -0 "$(cat "$DEV/run/$name.pid")" 2>/dev/null; then
    echo "$name already running"; return
  fi
  nohup "$bin" --listen "127.0.0.1:$port" --metrics "127.0.0.1:$mport" "$@" \
    >"$DEV/logs/$name.log" 2>&1 &
  echo $! >"$DEV/run/$name.pid"
  wait_port "$port" "$name"
}

# Migrations and grants as the owner role; then each service as its own role.
REDFLAG_DB_USER=redflag_owner REDFLAG_DB_PASSWORD=$REDFLAG_DB_OWNER_PASSWORD "$B/tools/redflag-migrate"
for svc in auth:9101:9201 agents:9102:9202 updates:9103:9203; do
  IFS=: read -r name port mport <<<"$svc"
  pw=REDFLAG_DB_${name^^}_PASSWORD
  REDFLAG_TLS_CA_FILE=$DEV/pki/internal-ca.crt REDFLAG_TLS_CERT_FILE=$DEV/pki/$name.crt \
  REDFLAG_TLS_KEY_FILE=$DEV/pki/$name.key REDFLAG_DB_USER=redflag_$name REDFLAG_DB_PASSWORD=${!pw} \
    start "$name" "$port" "$mport" "$B/services/$name/redflag-$name"
done
REDFLAG_TLS_CERT_FILE=$DEV/pki/gateway-public.crt REDFLAG_TLS_KEY_FILE=$DEV/pki/gateway-public.key \
REDFLAG_INTERNAL_TLS_CA_FILE=$DEV/pki/internal-ca.crt REDFLAG_INTERNAL_TLS_CERT_FILE=$DEV/pki/gateway.crt \
REDFLAG_INTERNAL_TLS_KEY_FILE=$DEV/pki/gateway.key \
  start gateway 8443 9200 "$B/services/gateway/redflag-gateway"

CTL=("$B/tools/redflagctl" --server localhost:8443 --ca_file "$DEV/pki/public-ca.crt")
if [ ! -f "$DEV/agent/state.pb" ]; then
  TOKEN=$("${CTL[@]}" login)
  SECRET=$(REDFLAG_TOKEN=$TOKEN "${CTL[@]}" create-token 5 dev-up)
else
  SECRET=
fi
if ! { [ -f "$DEV/run/agent.pid" ] && kill -0 "$(cat "$DEV/run/agent.pid")" 2>/dev/null; }; then
  REDFLAG_REGISTRATION_TOKEN=$SECRET nohup "$B/agent/redflag-agent" --server localhost:8443 \
    --ca_file "$DEV/pki/public-ca.crt" --state_dir "$DEV/agent" >"$DEV/logs/agent.log" 2>&1 &
  echo $! >"$DEV/run/agent.pid"
fi
for _ in $(seq 1 50); do grep -q "acknowledged" "$DEV/logs/agent.log" 2>/dev/null && break; sleep 0.2; done
grep -q "acknowledged" "$DEV/logs/agent.log" || { echo "agent did not check in; see $DEV/logs/agent.log" >&2; tail -5 "$DEV/logs/agent.log" >&2; exit 1; }

cat <<MSG

RedFlag is running:
  gateway   localhost:8443 (TLS, CA .dev/pki/public-ca.crt)  metrics http://127.0.0.1:9200/metrics
  auth      127.0.0.1:9101 (mTLS)                              metrics http://127.0.0.1:9201/metrics
  agents    127.0.0.1:9102 (mTLS)                              metrics http://127.0.0.1:9202/metrics
  updates   127.0.0.1:9103 (mTLS)                              metrics http://127.0.0.1:9203/metrics
  postgres  127.0.0.1:$PGPORT (data .dev/pg)
  agent     enrolled, state in .dev/agent, checking in every ${REDFLAG_CHECK_IN_INTERVAL_SECONDS}s
Logs: .dev/logs/*.log   Admin password and secrets: .dev/pki/redflag.env

Query it:
  export REDFLAG_TOKEN=\$(set -a; . .dev/pki/redflag.env; build/tools/redflagctl login)
  build/tools/redflagctl list-agents
  grpcurl -cacert .dev/pki/public-ca.crt -H "authorization: Bearer \$REDFLAG_TOKEN" \\
    localhost:8443 redflag.v1.OperatorService/ListAgents
Stop: scripts/dev-down.sh
MSG

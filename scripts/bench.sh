#!/usr/bin/env bash
# The fleet benchmark. Starts a local RedFlag (its own PostgreSQL, free ports and dev PKI
# under build/bench-run, like the test fixture), runs the chosen scenarios with
# build/tools/redflag-fleet, stops everything and leaves JSON results in bench/results/.
#
#   scripts/bench.sh [--agents N] [--replicas 1|2] [--minutes M] [--ramp S] [scenario ...]
#
# Scenarios: hold fanout storm rate sign soak (default: all). --replicas 2 starts two
# gateways and splits the fleet between them. Everything runs on this machine: the
# numbers include the load generator and PostgreSQL competing for the same cores.
# BENCH_GATEWAY_WRAPPER runs the gateway under a profiler, e.g.
#   BENCH_GATEWAY_WRAPPER="valgrind --tool=massif --massif-out-file=/tmp/gw.massif"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
AGENTS=1000; REPLICAS=1; MINUTES=2; RAMP=10; SCENARIOS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) AGENTS=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --ramp) RAMP=$2; shift 2 ;;  # seconds over which the agents connect
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) SCENARIOS+=("$1"); shift ;;
  esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(hold fanout storm rate sign soak)

bash scripts/install-deps.sh
bash scripts/build.sh
B=$ROOT/build
RUN=$B/bench-run
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"
ulimit -n "$(ulimit -Hn)"   # one socket per simulated agent, on both sides

bash tests/fixture.sh setup "$RUN" "$B/tools/redflag-keygen" >/dev/null
set -a; . "$RUN/test.env"; set +a
PKI=$RUN/pki
mkdir -p "$RUN/logs"

# Limits that would stop a benchmark from one address are raised; everything else is as
# shipped. The check-in interval is short so a few minutes see many check-ins.
export REDFLAG_CHECK_IN_INTERVAL_SECONDS=5 REDFLAG_MAX_TOKENS=100000 REDFLAG_MAX_SEATS=100000 \
  REDFLAG_RATE_LIMIT_REGISTRATION=100000:100000 REDFLAG_RATE_LIMIT_LOGIN=1000:1000 \
  REDFLAG_RATE_LIMIT_CHECK_IN=100000:100000 REDFLAG_RATE_LIMIT_OPERATOR_WRITES=10000:10000 \
  REDFLAG_BAD_TOKEN_THRESHOLD=100000 REDFLAG_LOGIN_SOURCE_THRESHOLD=100000

free_port() {
  local p
  for p in $(shuf -i 20000-32000 -n 100); do  # below the ephemeral range
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  return 1
}
wait_port() {
  local i
  for i in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1; see $RUN/logs" >&2; return 1
}

declare -A PORT
start_service() {  # name
  local svc=$1
  local pw=REDFLAG_DB_${svc^^}_PASSWORD  # each service as its own database role
  PORT[$svc]=$(free_port)
  REDFLAG_TLS_CA_FILE=$PKI/internal-ca.crt REDFLAG_TLS_CERT_FILE=$PKI/$svc.crt \
  REDFLAG_TLS_KEY_FILE=$PKI/$svc.key REDFLAG_DB_USER=redflag_$svc REDFLAG_DB_PASSWORD=${!pw} \
    "$B/services/$svc/redflag-$svc" --listen="127.0.0.1:${PORT[$svc]}" \
    --metrics="127.0.0.1:$(free_port)" >>"$RUN/logs/$svc.log" 2>&1 &
  echo $! > "$RUN/$svc.pid"
}
start_gateway() {  # index port
  REDFLAG_TLS_CERT_FILE=$PKI/gateway-public.crt REDFLAG_TLS_KEY_FILE=$PKI/gateway-public.key \
  REDFLAG_INTERNAL_TLS_CA_FILE=$PKI/internal-ca.crt REDFLAG_INTERNAL_TLS_CERT_FILE=$PKI/gateway.crt \
  REDFLAG_INTERNAL_TLS_KEY_FILE=$PKI/gateway.key \
  REDFLAG_AUTH_ADDR=localhost:${PORT[auth]} REDFLAG_AGENTS_ADDR=localhost:${PORT[agents]} \
  REDFLAG_UPDATES_ADDR=localhost:${PORT[updates]} \
    ${BENCH_GATEWAY_WRAPPER:-} "$B/services/gateway/redflag-gateway" --listen="127.0.0.1:$2" \
    --metrics="127.0.0.1:$(free_port)" >>"$RUN/logs/gateway$1.log" 2>&1 &
  echo $! > "$RUN/gateway$1.pid"
}

stop_all() {
  local f
  for f in "$RUN"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  for _ in $(seq 1 100); do  # services drain for up to 5 s
    local alive=0
    for f in "$RUN"/*.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for f in "$RUN"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; done
  bash tests/fixture.sh cleanup "$RUN" >/dev/null 2>&1 || true
}
trap stop_all EXIT

"$B/tools/redflag-migrate" >>"$RUN/logs/migrate.log" 2>&1  # as the owner (test.env)
for svc in auth agents updates; do start_service "$svc"; done
for svc in auth agents updates; do wait_port "${PORT[$svc]}"; done
TARGETS=()
for i in $(seq 1 "$REPLICAS"); do
  PORT[gateway$i]=$(free_port); start_gateway "$i" "${PORT[gateway$i]}"
  wait_port "${PORT[gateway$i]}"; TARGETS+=("localhost:${PORT[gateway$i]}")
done

# storm: kill -9 the first gateway and start it again on the same port.
cat > "$RUN/restart-gateway.sh" <<RESTART
#!/usr/bin/env bash
set -e
kill -9 \$(cat "$RUN/gateway1.pid"); while kill -0 \$(cat "$RUN/gateway1.pid") 2>/dev/null; do sleep 0.01; done
$(declare -f start_gateway free_port wait_port)
$(declare -p PORT PKI B RUN)
start_gateway 1 ${PORT[gateway1]}
wait_port ${PORT[gateway1]}
RESTART
chmod +x "$RUN/restart-gateway.sh"

MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(. /etc/os-release; echo "$PRETTY_NAME")"
PG_PID=$(head -1 "$RUN/pg/data/postmaster.pid" 2>/dev/null || echo 0)
status=0
for s in "${SCENARIOS[@]}"; do
  pids="gateway=$(cat "$RUN/gateway1.pid"),auth=$(cat "$RUN/auth.pid"),agents=$(cat "$RUN/agents.pid"),updates=$(cat "$RUN/updates.pid"),postgres=$PG_PID"
  echo "== $s: $AGENTS agents, $REPLICAS gateway(s)"
  "$B/tools/redflag-fleet" --scenario="$s" --agents="$AGENTS" --minutes="$MINUTES" \
    --ramp_seconds="$RAMP" \
    --target="$(IFS=,; echo "${TARGETS[*]}")" --ca_file="$PKI/public-ca.crt" \
    --seats_per_token=1000 --pids="$pids" --restart_cmd="$RUN/restart-gateway.sh" \
    --results_dir="$RESULTS" --machine="$MACHINE" \
    --echo_cert_file="$PKI/gateway-public.crt" --echo_key_file="$PKI/gateway-public.key" \
    --updates_addr="localhost:${PORT[updates]}" --internal_ca_file="$PKI/internal-ca.crt" \
    --internal_cert_file="$PKI/gateway.crt" --internal_key_file="$PKI/gateway.key" || status=$?
done
echo "results in $RESULTS; service logs in $RUN/logs"
exit $status

#!/usr/bin/env bash
# scripts/dev-up.sh as a newcomer meets it, on ports of its own (REDFLAG_DEV_*_PORT) in a
# scratch tree (REDFLAG_DEV_DIR), using the build that exists (REDFLAG_DEV_NO_BUILD=1):
#   1. a port it needs is held by another program: it stops at once, naming the port, the
#      holder and the variable that moves it, and starts nothing;
#   2. a part fails to start (the gateway refuses its configuration): what the run had
#      started (PostgreSQL, three services) is stopped again;
#   3. all ports free: everything starts and the agent checks in; dev-down stops it all.
# Usage: dev_up_check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
ROOT=$(cd "$1" && pwd)
export REDFLAG_DEV_BUILD_DIR=$2
WORK=$(mktemp -d /tmp/redflag-devup.XXXXXX)  # postgres must reach it: not under /root
chmod 755 "$WORK"
BLOCKER=
finish() {
  [ -n "$BLOCKER" ] && kill "$BLOCKER" 2>/dev/null
  REDFLAG_DEV_DIR=$WORK/dev bash "$ROOT/scripts/dev-down.sh" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap finish EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
export REDFLAG_DEV_DIR=$WORK/dev REDFLAG_DEV_NO_BUILD=1 XDG_CONFIG_HOME=$WORK/config
PORT_VARS=()
for v in PG GATEWAY AUTH AGENTS UPDATES GATEWAY_METRICS AUTH_METRICS AGENTS_METRICS \
         UPDATES_METRICS; do
  export "REDFLAG_DEV_${v}_PORT=$(free_port)"
  PORT_VARS+=("REDFLAG_DEV_${v}_PORT")
done
listeners() {  # how many of the dev ports have a listener
  local n=0 var
  for var in "${PORT_VARS[@]}"; do
    ss -Htln "sport = :${!var}" | grep -q . && n=$((n + 1))
  done
  echo "$n"
}

# 1. The gateway's port is taken.
python3 -c "import socket, time
s = socket.socket(); s.bind(('127.0.0.1', $REDFLAG_DEV_GATEWAY_PORT)); s.listen(); time.sleep(600)" &
BLOCKER=$!
for _ in $(seq 1 50); do ss -Htln "sport = :$REDFLAG_DEV_GATEWAY_PORT" | grep -q . && break; sleep 0.1; done
t0=$(date +%s)
if out=$(bash "$ROOT/scripts/dev-up.sh" 2>&1); then fail "dev-up succeeded with its port taken"; fi
took=$(($(date +%s) - t0))
echo "$out"
echo "$out" | grep -qF "port $REDFLAG_DEV_GATEWAY_PORT (gateway) is taken by python3 (pid $BLOCKER)" ||
  fail "the message does not name the port and its holder"
echo "$out" | grep -qF "REDFLAG_DEV_GATEWAY_PORT=<port>" || fail "the message does not name the variable"
[ "$took" -le 10 ] || fail "took ${took} s to refuse"
[ "$(listeners)" = 1 ] || fail "something was started: $(listeners) dev ports have listeners"
kill "$BLOCKER"; wait "$BLOCKER" 2>/dev/null || true; BLOCKER=
echo "1. port taken: refused in ${took} s, nothing started"

# 2. The gateway fails to start after the others did.
# (REDFLAG_BAD_TOKEN_THRESHOLD is read by the gateway alone; 0 is out of its range.)
if out=$(REDFLAG_BAD_TOKEN_THRESHOLD=0 bash "$ROOT/scripts/dev-up.sh" 2>&1); then
  fail "dev-up succeeded although the gateway could not start"
fi
echo "$out" | tail -n 12
echo "$out" | grep -q "gateway did not start" || fail "the failing part is not named"
for part in auth agents updates PostgreSQL; do
  echo "$out" | grep -q "stopped $part (started by this run)" || fail "$part was not stopped"
done
sleep 1
[ "$(listeners)" = 0 ] || fail "$(listeners) dev ports still have listeners after the failed run"
echo "2. gateway failed: the run stopped what it had started"

# 3. Everything free: it starts, the agent checks in, dev-down stops it all.
bash "$ROOT/scripts/dev-up.sh" > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; fail "dev-up failed"; }
grep -q "RedFlag is running" "$WORK/up.log" || fail "no summary"
grep -q "acknowledged" "$WORK/dev/logs/agent.log" || fail "the agent did not check in"
[ "$(listeners)" = 9 ] || fail "$(listeners) of 9 dev ports listening"
REDFLAG_DEV_DIR=$WORK/dev bash "$ROOT/scripts/dev-down.sh"
sleep 1
[ "$(listeners)" = 0 ] || fail "$(listeners) dev ports still listening after dev-down"
echo "3. all free: started, agent checked in, dev-down stopped everything"

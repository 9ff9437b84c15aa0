#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in a directory of the project, run as a non-root user
# (PostgreSQL refuses root).
#   scripts/pg.sh start DIR PORT SECRETS    initdb if needed (superuser "postgres"), start, and
#                                           make the roles and database "redflag" with
#                                           deploy/postgres/bootstrap.sql; SECRETS is the env file
#                                           with REDFLAG_DB_{SUPERUSER,OWNER,AUTH,AGENTS,UPDATES}_PASSWORD
#   scripts/pg.sh stop DIR                  fast shutdown (no-op when not running)
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
cmd=$1; DIR=$(realpath -m "$2")
HERE=$(cd "$(dirname "$0")" && pwd)

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    PORT=$3
    SECRETS=$4
    secret() {
      local v; v=$(sed -n "s/^$1=//p" "$SECRETS" | tail -n 1)
      [ -n "$v" ] || { echo "$SECRETS has no $1 (scripts/dev-pki.sh adds it)" >&2; return 1; }
      printf '%s' "$v"
    }
    SUPER=$(secret REDFLAG_DB_SUPERUSER_PASSWORD)
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$DIR"
      # postgres must be able to reach DIR through every parent directory.
      p=$(dirname "$DIR"); while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
    fi
    if [ -f "$DIR/data/PG_VERSION" ] && [ ! -f "$DIR/data/redflag-roles" ]; then
      echo "$DIR holds a cluster from before per-service roles (its services ran as a superuser);" \
        "remove it (scripts/dev-down.sh; rm -rf $DIR) or move its schemas to redflag_owner" >&2
      exit 1
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      pwfile=$(mktemp); printf '%s\n' "$SUPER" > "$pwfile"; chmod 644 "$pwfile"
      as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --pwfile="$pwfile" -A scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log"; rm -f "$pwfile"; exit 1; }
      rm -f "$pwfile"
    fi
    if as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      echo "PostgreSQL already running in $DIR"; exit 0
    fi
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off ${REDFLAG_PG_OPTIONS:-}" start >/dev/null
    PGPASSWORD=$SUPER "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qAt \
      -v dbname=redflag -v owner_password="$(secret REDFLAG_DB_OWNER_PASSWORD)" \
      -v auth_password="$(secret REDFLAG_DB_AUTH_PASSWORD)" \
      -v agents_password="$(secret REDFLAG_DB_AGENTS_PASSWORD)" \
      -v updates_password="$(secret REDFLAG_DB_UPDATES_PASSWORD)" \
      -f "$HERE/../deploy/postgres/bootstrap.sql" >/dev/null
    as_pg touch "$DIR/data/redflag-roles"
    echo "PostgreSQL listening on 127.0.0.1:$PORT (data in $DIR/data)"
    ;;
  stop)
    if [ -f "$DIR/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
      echo "PostgreSQL in $DIR stopped"
    fi
    ;;
  *) echo "usage: $0 start DIR PORT SECRETS_FILE | stop DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in a directory of the project, run as a non-root user
# (PostgreSQL refuses root).
#   scripts/pg.sh start DIR PORT PASSWORD   initdb if needed, start, create role+db "redflag"
#   scripts/pg.sh stop DIR                  fast shutdown (no-op when not running)
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
cmd=$1; DIR=$(realpath -m "$2")

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    PORT=$3; PASSWORD=$4
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$DIR"
      # postgres must be able to reach DIR through every parent directory.
      p=$(dirname "$DIR"); while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      pwfile=$(mktemp); printf '%s\n' "$PASSWORD" > "$pwfile"; chmod 644 "$pwfile"
      as_pg "$BIN/initdb" -D "$DIR/data" -U redflag --pwfile="$pwfile" -A scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log"; rm -f "$pwfile"; exit 1; }
      rm -f "$pwfile"
    fi
    if as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      echo "PostgreSQL already running in $DIR"; exit 0
    fi
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
    PGPASSWORD=$PASSWORD "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U redflag -d postgres -qAtc \
      "SELECT 1 FROM pg_database WHERE datname = 'redflag'" | grep -q 1 ||
      PGPASSWORD=$PASSWORD "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U redflag redflag
    echo "PostgreSQL listening on 127.0.0.1:$PORT (data in $DIR/data)"
    ;;
  stop)
    if [ -f "$DIR/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
      echo "PostgreSQL in $DIR stopped"
    fi
    ;;
  *) echo "usage: $0 start DIR PORT PASSWORD | stop DIR" >&2; exit 2 ;;
esac

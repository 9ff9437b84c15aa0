#!/usr/bin/env bash
# ctest fixtures: `fixture.sh setup DIR KEYGEN` makes dev PKI and starts PostgreSQL on a free port,
# writing DIR/test.env for the tests; `fixture.sh cleanup DIR` stops PostgreSQL.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=$1; DIR=$2
case "$cmd" in
  setup)
    bash "$ROOT/scripts/pg.sh" stop "$DIR/pg" >/dev/null 2>&1 || true
    rm -rf "$DIR"; mkdir -p "$DIR"
    bash "$ROOT/scripts/dev-pki.sh" "$DIR/pki" "$3" >/dev/null
    . "$DIR/pki/redflag.env"
    PORT=
    for p in $(shuf -i 15000-19999 -n 50); do  # below the ephemeral range and the tests' FreePort()
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { PORT=$p; break; }
    done
    bash "$ROOT/scripts/pg.sh" start "$DIR/pg" "$PORT" "$DIR/pki/redflag.env"
    # REDFLAG_DB_USER/PASSWORD here are the owner's (PostgreSQL tests, redflag-migrate); the
    # test cluster starts each service as its own role.
    { cat "$DIR/pki/redflag.env"
      echo "REDFLAG_DB_HOST=127.0.0.1"; echo "REDFLAG_DB_PORT=$PORT"
      echo "REDFLAG_DB_NAME=redflag"; echo "REDFLAG_DB_SSLMODE=disable"
      echo "REDFLAG_DB_USER=redflag_owner"; echo "REDFLAG_DB_PASSWORD=$REDFLAG_DB_OWNER_PASSWORD"
      echo "REDFLAG_TEST_PKI=$DIR/pki"; echo "REDFLAG_TEST_ROOT=$DIR"
    } > "$DIR/test.env"
    ;;
  cleanup)
    bash "$ROOT/scripts/pg.sh" stop "$DIR/pg"
    ;;
esac

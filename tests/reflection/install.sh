#!/usr/bin/env bash
# ctest fixture: installs the pinned reflection client into DIR (npm ci, lockfile-exact).
set -euo pipefail
SRC=$(cd "$(dirname "$0")" && pwd); DIR=$1
mkdir -p "$DIR"
if ! cmp -s "$SRC/package-lock.json" "$DIR/package-lock.json" || [ ! -d "$DIR/node_modules" ]; then
  cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
  (cd "$DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
cp "$SRC/reflect.js" "$DIR/"

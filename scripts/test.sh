#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest. The suite
# starts its own PostgreSQL (as a non-root user, in build/) and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"

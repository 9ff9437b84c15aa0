#!/usr/bin/env bash
# Installs the Debian 12 packages RedFlag builds and tests with, only those missing.
#   scripts/install-deps.sh         what the build, the tests and dev-up need
#   scripts/install-deps.sh --dev   also the developer tools: clang-format, clang-tidy, git
# Installing postgresql and prometheus also installs their system services, which a machine
# running systemd would start (PostgreSQL on 5432, Prometheus on 9090). RedFlag only needs
# their programs (initdb/pg_ctl, promtool), so when this script installed them it stops and
# disables those services again and says so.
set -euo pipefail
PKGS=(build-essential cmake ninja-build ccache pkg-config openssl libssl-dev
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
      libsodium-dev libpq-dev prometheus-cpp-dev catch2 grpc-proto postgresql
      prometheus systemd golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
      clang libclang-rt-14-dev)
# prometheus: promtool; systemd: systemd-analyze; Go + sprig + yaml.v3: the offline chart render
# test; clang + its runtime: the libFuzzer targets (scripts/fuzz.sh)
[ "${1:-}" = --dev ] && PKGS+=(clang-format clang-tidy git)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the third-party reflection client in the tests.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Stop the system services these packages just started (only those installed now).
  if [ -d /run/systemd/system ]; then
    for pkg_unit in postgresql:postgresql.service prometheus:prometheus.service; do
      pkg=${pkg_unit%%:*}; unit=${pkg_unit#*:}
      [[ " ${missing[*]} " == *" $pkg "* ]] || continue
      $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 &&
        echo "stopped and disabled the system $unit that $pkg installs (RedFlag runs its own)"
    done
  fi
fi


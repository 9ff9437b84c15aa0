#!/usr/bin/env bash
# Bare-metal install from a build tree: binaries to /usr/local/bin, units to
# /etc/systemd/system, and the layout with the permissions SECURITY-HARDENING.txt lists.
#   deploy/install.sh [BUILD_DIR] [ROOT]      (ROOT, default /, lets tests install into a tree)
set -euo pipefail
BUILD=$(realpath "${1:-build}")
ROOT=${2:-/}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$ROOT" = / ] && ! id redflag >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/redflag --shell /usr/sbin/nologin redflag
fi
install -d -m 0755 "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
install -d -m 0751 "$ROOT/etc/redflag"
install -d -m 0750 "$ROOT/var/lib/redflag" "$ROOT/var/log/redflag"
for b in services/auth/redflag-auth services/agents/redflag-agents services/updates/redflag-updates \
         services/gateway/redflag-gateway agent/redflag-agent tools/redflag-keygen tools/redflagctl \
         tools/redflag-migrate; do
  install -m 0755 "$BUILD/$b" "$ROOT/usr/local/bin/"
done
install -m 0644 "$HERE"/systemd/*.service "$ROOT/etc/systemd/system/"
for svc in auth agents updates gateway migrate; do
  # Secrets go here (see README "Configuration"); never world-readable.
  [ -f "$ROOT/etc/redflag/$svc.env" ] || install -m 0600 /dev/null "$ROOT/etc/redflag/$svc.env"
done
if [ "$ROOT" = / ]; then
  chown root:root /usr/local/bin/redflag-*
  chown redflag:redflag /var/lib/redflag /var/log/redflag
  chown root:redflag /etc/redflag/*.env && chmod 0640 /etc/redflag/*.env
  systemctl daemon-reload 2>/dev/null || true
fi
echo "installed into $ROOT; make the PostgreSQL roles once (deploy/postgres/bootstrap.sql), fill" \
  "/etc/redflag/*.env (redflag-keygen makes keys; migrate.env holds the owner role's credentials," \
  "each service's its own role's), then enable the units"

#!/usr/bin/env bash
# Creates throwaway development PKI and secrets in DIR (default .dev/pki), using
# KEYGEN (default build/tools/redflag-keygen) for the Ed25519 signing key and JWT secret:
#   internal-ca.{crt,key}       CA for service-to-service mTLS
#   <svc>.{crt,key}             per-service certificates, identity URI spiffe://redflag.internal/<svc>
#   public-ca.crt, gateway-public.{crt,key}   the gateway's agent/operator-facing certificate
#   rogue-ca.crt, rogue-gateway.{crt,key}     a look-alike from another CA (for tests)
#   redflag.env                 JWT secret, Ed25519 signing seed (64 hex), admin and DB
#                               passwords, audit-trail key
# Never use these outside development: the keys sit unencrypted on disk.
set -euo pipefail
DIR=${1:-.dev/pki}
KEYGEN=$(realpath "${2:-$(dirname "$0")/../build/tools/redflag-keygen}")
[ -x "$KEYGEN" ] || { echo "dev-pki: $KEYGEN not built; run scripts/build.sh first" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
umask 077

ca() {  # name subject
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

leaf() {  # name ca san
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca internal-ca "RedFlag internal CA (dev)"
for svc in auth agents updates gateway; do
  leaf "$svc" internal-ca "URI:spiffe://redflag.internal/$svc,DNS:$svc,DNS:redflag-$svc,DNS:localhost,IP:127.0.0.1"
done
ca public-ca "RedFlag public CA (dev)"
leaf gateway-public public-ca "DNS:localhost,DNS:redflag-gateway,IP:127.0.0.1"
ca rogue-ca "Rogue CA (tests only)"
leaf rogue-gateway rogue-ca "URI:spiffe://redflag.internal/gateway,DNS:localhost,IP:127.0.0.1"
rm -f ./*.srl

if [ ! -f redflag.env ]; then
  {
    "$KEYGEN" jwt-secret
    "$KEYGEN" signing-key | grep -v '^#'
    echo "REDFLAG_ADMIN_PASSWORD=$(openssl rand -base64 18 | tr -d '/+=')"
    "$KEYGEN" audit-key
  } > redflag.env
fi
# Trees made before the audit trail was keyed lack its key: add one.
grep -q '^REDFLAG_AUDIT_KEY=' redflag.env || "$KEYGEN" audit-key >> redflag.env
# One PostgreSQL password per role (README "Database roles"); SUPERUSER only bootstraps the
# local cluster (scripts/pg.sh). Trees made before per-service roles gain them here.
for role in SUPERUSER OWNER AUTH AGENTS UPDATES; do
  grep -q "^REDFLAG_DB_${role}_PASSWORD=" redflag.env ||
    echo "REDFLAG_DB_${role}_PASSWORD=$(openssl rand -hex 16)" >> redflag.env
done
chmod 600 ./*.key redflag.env
chmod 644 ./*.crt
echo "dev PKI and secrets written to $(pwd)"

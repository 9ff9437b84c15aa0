#!/usr/bin/env bash
# Renders charts/redflag offline (tests/helm/render: text/template + sprig + Helm's
# additions) for the default values and for values-all.yaml (every option), validates the
# documents (check.mjs), and checks that missing secrets stop the render.
#   check.sh SOURCE_DIR WORK_DIR
set -euo pipefail
SRC=$1; WORK=$2
mkdir -p "$WORK"
# GOPATH mode with Debian's packaged sources: build from inside the package directory.
(cd "$SRC/tests/helm/render" &&
  GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$WORK/gocache" go build -o "$WORK/render" .)
if ! cmp -s "$SRC/tests/helm/package-lock.json" "$WORK/package-lock.json" || [ ! -d "$WORK/node_modules" ]; then
  cp "$SRC/tests/helm/package.json" "$SRC/tests/helm/package-lock.json" "$WORK/"
  (cd "$WORK" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
cp "$SRC/tests/helm/check.mjs" "$WORK/"
CHART=$SRC/charts/redflag
"$WORK/render" "$CHART" rel ns "" > "$WORK/default.yaml"
# With the defaults, the secrets and TLS material are user-provided by name.
(cd "$WORK" && node check.mjs \
  redflag-secrets,rel-redflag-auth-tls,rel-redflag-agents-tls,rel-redflag-updates-tls,rel-redflag-gateway-tls,rel-redflag-gateway-public-tls \
  < default.yaml)
"$WORK/render" "$CHART" rel ns "monitoring.coreos.com/v1" "$CHART/values-all.yaml" > "$WORK/all.yaml"
(cd "$WORK" && node check.mjs "" < all.yaml)
for kind in Certificate PrometheusRule ServiceMonitor HorizontalPodAutoscaler Secret; do
  grep -q "^kind: $kind$" "$WORK/all.yaml" || { echo "values-all.yaml renders no $kind" >&2; exit 1; }
done
# Without the Prometheus operator's API, no ServiceMonitor even when enabled.
"$WORK/render" "$CHART" rel ns "" "$CHART/values-all.yaml" | grep -q "^kind: ServiceMonitor$" &&
  { echo "ServiceMonitor rendered without monitoring.coreos.com/v1" >&2; exit 1; }
# A chart-made Secret with no values must not render.
printf 'secrets:\n  existingSecret: ""\n' > "$WORK/no-secrets.yaml"
if "$WORK/render" "$CHART" rel ns "" "$WORK/no-secrets.yaml" > /dev/null 2> "$WORK/err.txt"; then
  echo "rendered without secrets" >&2; exit 1
fi
grep -q "secrets.create.signingPrivateKey" "$WORK/err.txt"
echo "chart OK"

#!/usr/bin/env bash
# Measures the idle memory of a real sidecar (`tessera proxy` with a control-plane identity, one inbound and one
# outbound listener and the Workload API) and of `tessera injector`, as the kubelet would account them: VmRSS from
# /proc/PID/status after start-up has settled. The sidecar's and the injector's memory requests in deploy/k8s and
# control-plane/src/injector/injector-config.ts are set from these figures (docs/kubernetes.md, "Resources").
#
#   npm run build && deploy/k8s/measure-idle-rss.sh [SETTLE_SECONDS (default 20)]
#
# Needs Linux (/proc), curl and openssl; runs everything on 127.0.0.1 in a temporary directory.
set -euo pipefail

SETTLE=${1:-20}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NODE=${NODE:-"$ROOT/node_modules/.bin/node"}
[ -x "$NODE" ] || NODE=node
CLI=("$NODE" "$ROOT/dist/cli/tessera.js")
[ -f "$ROOT/dist/cli/tessera.js" ] || { echo "build first: npm run build" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_line() { # file, text
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

cd "$WORK"
mkdir -p policies
cat > cp.yaml <<EOF
trustDomain: example.org
dataDir: ./data
listen: 127.0.0.1:0
adminListen: 127.0.0.1:0
policies: { dir: ./policies }
logLevel: warn
EOF
"${CLI[@]}" control-plane --config cp.yaml > cp.out 2> cp.err &
PIDS+=($!)
wait_line cp.out 'tessera control-plane: ready'
GRPC=$(sed -n 's/.*grpc \([^ ]*\) admin.*/\1/p' cp.out | head -1)
TOKEN=$("${CLI[@]}" token create --data-dir ./data --spiffe-id spiffe://example.org/ns/default/sa/web)

cat > proxy.yaml <<EOF
identity:
  controlPlane: { address: $GRPC, bundleFile: ./data/bundle.pem, joinToken: $TOKEN }
inbound:
  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:18080, protocol: http }
outbound:
  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:25006, spiffeId: spiffe://example.org/ns/default/sa/api, protocol: http }
admin: { listen: 127.0.0.1:0 }
workloadApi: { socket: ./workload/workload.sock }
EOF
"${CLI[@]}" proxy --config proxy.yaml > proxy.out 2> proxy.err &
PROXY=$!
PIDS+=($PROXY)
wait_line proxy.out 'tessera proxy: ready'

# The injector, alone: a webhook certificate and the control plane's bundle.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=tessera-injector.tessera-system.svc \
  -addext subjectAltName=DNS:tessera-injector.tessera-system.svc -keyout tls.key -out tls.crt 2>/dev/null
cat > injector.yaml <<EOF
listen: 127.0.0.1:0
certFile: tls.crt
keyFile: tls.key
bundleFile: ./data/bundle.pem
proxyImage: tessera:0.1.0
controlPlaneAddress: tessera-control-plane.tessera-system.svc:8443
EOF
"${CLI[@]}" injector --config injector.yaml > injector.out 2> injector.err &
INJECTOR=$!
PIDS+=($INJECTOR)
wait_line injector.out 'tessera injector: ready'

sleep "$SETTLE"
printf 'node %s\n' "$("$NODE" -v)"
printf 'sidecar  (tessera proxy, 1 inbound + 1 outbound + Workload API, attested): VmRSS %s kB (%.1f MiB), peak VmHWM %s kB\n' "$(rss $PROXY)" "$(echo "$(rss $PROXY) / 1024" | bc -l)" "$(hwm $PROXY)"
printf 'injector (tessera injector, idle):                                        VmRSS %s kB (%.1f MiB), peak VmHWM %s kB\n' "$(rss $INJECTOR)" "$(echo "$(rss $INJECTOR) / 1024" | bc -l)" "$(hwm $INJECTOR)"

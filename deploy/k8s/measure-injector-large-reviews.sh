#!/usr/bin/env bash
# Peak memory of a real `tessera injector` (the image's V8 flags and the Deployment's NODE_OPTIONS heap cap) under
# reviews near its body bound (~6 MiB: 200,000 one-line containers, each answered "denied, too large" after
# parsing) mixed with ordinary small reviews, as docs/kubernetes.md ("The injector under abuse") reports them:
# VmHWM from /proc/PID/status, and the HTTP statuses the clients got.
#
#   npm run build && deploy/k8s/measure-injector-large-reviews.sh [LARGE (20)] [SMALL (150)] [ROUNDS (3)] [PORT (9443)]
#
# Needs Linux (/proc), curl and openssl; runs everything on 127.0.0.1 in a temporary directory.
set -euo pipefail

LARGE=${1:-20}
SMALL=${2:-150}
ROUNDS=${3:-3}
PORT=${4:-9443}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NODE=${NODE:-"$ROOT/node_modules/.bin/node"}
[ -x "$NODE" ] || NODE=node
[ -f "$ROOT/dist/cli/tessera.js" ] || { echo "build first: npm run build" >&2; exit 1; }
WORK=$(mktemp -d)
INJECTOR=""
cleanup() {
  [ -n "$INJECTOR" ] && kill "$INJECTOR" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.crt -subj /CN=injector \
  -addext "subjectAltName=DNS:injector.test" -days 1 2>/dev/null
chmod 600 tls.key
cp tls.crt bundle.pem
cat > injector.yaml <<EOF
listen: 127.0.0.1:$PORT
certFile: tls.crt
keyFile: tls.key
bundleFile: bundle.pem
proxyImage: registry.example/tessera:0.1.0
controlPlaneAddress: tessera-control-plane.tessera-system.svc:8443
logLevel: error
EOF
for spec in large:200000 small:1; do
  "$NODE" -e '
    const n = Number(process.argv[1]);
    const containers = Array.from({ length: n }, (_, i) => ({ name: `c${i}`, image: "i" }));
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "shop" }, spec: { containers } };
    const request = { uid: "u", kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, namespace: "shop", operation: "CREATE", userInfo: {}, object: pod };
    process.stdout.write(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request }));
  ' "${spec#*:}" > "${spec%%:*}.json"
done

NODE_OPTIONS=--max-old-space-size=128 "$NODE" --max-semi-space-size=8 "$ROOT/dist/cli/tessera.js" injector --config injector.yaml > out.log 2> err.log &
INJECTOR=$!
for _ in $(seq 1 100); do grep -q ready out.log && break; sleep 0.1; done
grep -q ready out.log || { cat err.log >&2; exit 1; }
sleep 2
echo "idle: $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$INJECTOR/status); large review: $(wc -c < large.json) bytes"

post() { curl -sk --resolve "injector.test:$PORT:127.0.0.1" -H 'content-type: application/json' --data-binary "@$1" -o /dev/null -w '%{http_code}\n' "https://injector.test:$PORT/inject" || true; }
for _ in $(seq 1 "$ROUNDS"); do
  pids=()
  for _ in $(seq 1 "$SMALL"); do post small.json >> small.status & pids+=($!); done
  for _ in $(seq 1 "$LARGE"); do post large.json >> large.status & pids+=($!); done
  wait "${pids[@]}"
done
echo "$ROUNDS round(s) of $LARGE large and $SMALL small reviews at once: peak $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' /proc/$INJECTOR/status)"
# 000: no answer; 100: the body was still being read at the 10 s request deadline (curl sends Expect: 100-continue).
for f in small large; do [ -f $f.status ] && echo "$f: $(sort $f.status | uniq -c | awk '{printf "%s x %s  ", $1, $2}')"; done

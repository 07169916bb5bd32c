#!/usr/bin/env bash
# Creates or renews the injector webhook's private CA and serving certificate in webhook-tls/ (read by the
# kustomization here). Needs only openssl. Private keys are written 0600 and are git-ignored.
#
#   gen-webhook-tls.sh               first install: new CA (5 years) + serving certificate (1 year);
#                                    later runs: renew the serving certificate under the same CA
#   gen-webhook-tls.sh --rotate-ca   new CA; ca.crt holds the new and the previous CA, so the API server
#                                    trusts both the old and the new serving certificate during the rollout
#   gen-webhook-tls.sh --drop-old-ca once every injector pod (deploy/tessera-injector) serves the new certificate: ca.crt = new CA
#
# Environment: OUT (default: webhook-tls beside this script), SERVICE (tessera-injector),
# NAMESPACE (tessera-system), CA_DAYS (1825), CERT_DAYS (365).
set -euo pipefail

OUT=${OUT:-"$(cd "$(dirname "$0")" && pwd)/webhook-tls"}
SERVICE=${SERVICE:-tessera-injector}
NAMESPACE=${NAMESPACE:-tessera-system}
CA_DAYS=${CA_DAYS:-1825}
CERT_DAYS=${CERT_DAYS:-365}
MODE=${1:-renew}
case "$MODE" in
  renew | --rotate-ca | --drop-old-ca) ;;
  -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--rotate-ca | --drop-old-ca]" >&2; exit 2 ;;
esac

umask 077
mkdir -p "$OUT"
cd "$OUT"
HOST="$SERVICE.$NAMESPACE.svc"

new_ca() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key.new 2>/dev/null
  openssl req -x509 -new -key ca.key.new -sha256 -days "$CA_DAYS" \
    -subj "/O=Tessera/CN=Tessera injector webhook CA $(date -u +%Y%m%d%H%M%S)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out ca.pem.new
  mv ca.key.new ca.key
  mv ca.pem.new ca.pem
}

if [ "$MODE" = "--drop-old-ca" ]; then
  [ -f ca.pem ] || { echo "no CA in $OUT" >&2; exit 1; }
  cp ca.pem ca.crt
  rm -f previous-ca.pem
  echo "ca.crt now holds only the current CA; apply the kustomization again"
  exit 0
fi

if [ "$MODE" = "--rotate-ca" ]; then
  [ -f ca.pem ] || { echo "no CA to rotate in $OUT: run without arguments first" >&2; exit 1; }
  cp ca.pem previous-ca.pem
  new_ca
elif [ ! -f ca.key ] || [ ! -f ca.pem ]; then
  new_ca
fi

# Serving certificate for the Service DNS names the API server dials.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tls.key.new 2>/dev/null
openssl req -new -key tls.key.new -subj "/O=Tessera/CN=$HOST" -out tls.csr 2>/dev/null
cat > tls.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$HOST,DNS:$HOST.cluster.local,DNS:$SERVICE.$NAMESPACE
EXT
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$CERT_DAYS" \
  -extfile tls.ext -out tls.crt.new 2>/dev/null
rm -f tls.csr tls.ext ca.srl
mv tls.key.new tls.key
mv tls.crt.new tls.crt

# What the API server trusts: the current CA, plus the previous one while a CA rotation rolls out.
if [ -f previous-ca.pem ]; then cat ca.pem previous-ca.pem > ca.crt; else cp ca.pem ca.crt; fi
chmod 0644 ca.crt ca.pem tls.crt
openssl verify -CAfile ca.pem tls.crt >/dev/null
echo "webhook TLS in $OUT: tls.crt for $HOST (until $(openssl x509 -noout -enddate -in tls.crt | cut -d= -f2)); apply the kustomization"

#!/usr/bin/env bash
# Makes a self-signed TLS certificate for 127.0.0.1/localhost, unless one is already there.
#   scripts/make-cert.sh [CERT_FILE] [KEY_FILE]   (default cert/certificate.pem cert/private_key.pem)
# Put your own certificate (full chain) and key at those paths and this does nothing.
set -euo pipefail

cert="${1:-cert/certificate.pem}"
key="${2:-cert/private_key.pem}"
hosts="${CERT_HOSTS:-localhost}"
ips="${CERT_IPS:-127.0.0.1,::1}"

if [[ -e "$cert" && -e "$key" ]]; then
  echo "certificate $cert exists"
  exit 0
fi
if [[ -e "$cert" || -e "$key" ]]; then
  echo "only one of $cert / $key exists: put both, or remove it to generate a self-signed pair" >&2
  exit 1
fi

mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
san=""
IFS=',' read -ra names <<<"$hosts"
for n in "${names[@]}"; do san+="DNS:$n,"; done
IFS=',' read -ra addrs <<<"$ips"
for a in "${addrs[@]}"; do san+="IP:$a,"; done

# Written beside the targets and renamed, so a concurrent reader never sees half a pair.
tmp="$(mktemp -d "$(dirname "$cert")/.make-cert.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj "/CN=${names[0]}" \
  -addext "subjectAltName=${san%,}" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
chmod 600 "$tmp/key.pem"
chmod 644 "$tmp/cert.pem"
mv "$tmp/key.pem" "$key"
mv "$tmp/cert.pem" "$cert"
echo "created self-signed certificate $cert for $hosts, $ips"

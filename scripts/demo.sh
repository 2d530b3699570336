#!/usr/bin/env bash
# The main job on a local default: starts a loopback SCEP server (micromdm
# scepserver) and a software TPM (swtpm), enrolls a certificate whose key is
# born in the TPM, and shows what was installed.
#
#   scripts/demo.sh              # key in the (software) TPM
#   scripts/demo.sh --software   # software key instead
#
# Everything lives under ./demo/ (git-ignored); run it again to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

key_storage=tpm
[ "${1:-}" = "--software" ] && key_storage=software

scripts/install-deps.sh
swift build --product enroll-agent
agent="$root/.build/debug/enroll-agent"

demo="$root/demo"
rm -rf "$demo"
mkdir -p "$demo"
chmod 700 "$demo"

cleanup() {
  [ -n "${scep_pid:-}" ] && kill "$scep_pid" 2>/dev/null || true
  [ -n "${tpm_pid:-}" ] && kill "$tpm_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# 1. A throwaway CA and a SCEP server on 127.0.0.1 with a one-time-style challenge.
scepserver ca -init -depot "$demo/depot" -keySize 2048 -organization "enroll-agent demo CA" -years 1 >/dev/null
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$demo/challenge"
chmod 600 "$demo/challenge"
for _ in $(seq 1 20); do
  port=$(( 20000 + RANDOM % 30000 ))
  # The challenge goes through the environment, never argv (ps would show it).
  SCEP_CHALLENGE_PASSWORD=$(cat "$demo/challenge") scepserver -depot "$demo/depot" -port "$port" -allowrenew 0 \
    >"$demo/scepserver.log" 2>&1 &
  scep_pid=$!
  for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/scep?operation=GetCACaps" >/dev/null 2>&1 && break 2
    kill -0 "$scep_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$scep_pid" 2>/dev/null || true
  scep_pid=
done
[ -n "${scep_pid:-}" ] || { echo "could not start scepserver; see $demo/scepserver.log" >&2; exit 1; }

# 2. A software TPM on a unix socket.
tcti="device:/dev/tpmrm0"
if [ "$key_storage" = tpm ]; then
  mkdir -p "$demo/tpm"
  swtpm socket --tpm2 --tpmstate dir="$demo/tpm" \
    --server type=unixio,path="$demo/tpm/tpm.sock" --ctrl type=unixio,path="$demo/tpm/tpm.sock.ctrl" \
    --flags not-need-init,startup-clear >"$demo/swtpm.log" 2>&1 &
  tpm_pid=$!
  for _ in $(seq 1 50); do [ -S "$demo/tpm/tpm.sock" ] && break; sleep 0.1; done
  tcti="swtpm:path=$demo/tpm/tpm.sock"
fi

# 3. The agent's configuration.
cat > "$demo/config.toml" <<TOML
state_dir = "$demo/state"

[[profile]]
name = "device"
scep_url = "http://127.0.0.1:$port/scep"
ca_pin_file = "$demo/depot/ca.pem"
subject = "CN={{UserPrincipalName}},O=Example"
san_upn = ["{{UserPrincipalName}}"]
san_dns = ["{{Hostname}}.example.com"]
key_storage = "$key_storage"
tcti = "$tcti"
extended_key_usage = ["clientAuth"]

[profile.challenge]
source = "file"
file = "$demo/challenge"

[profile.variables]
UserPrincipalName = "host01@example.com"
TOML

echo "== enroll-agent check-config"
"$agent" check-config --config "$demo/config.toml"
echo
echo "== enroll-agent enroll"
"$agent" enroll --config "$demo/config.toml"
echo
echo "== enroll-agent status"
"$agent" status --config "$demo/config.toml"
echo
live="$demo/state/device/live"
echo "== openssl verify (against the demo CA)"
openssl verify -CAfile "$demo/depot/ca.pem" "$live/cert.pem"
echo
echo "== installed files"
ls -l "$live/"
if [ "$key_storage" = tpm ]; then
  echo
  echo "== the TPM key, read by the OpenSSL tpm2 provider: its public key matches the certificate's"
  kill "$scep_pid"; wait "$scep_pid" 2>/dev/null || true; scep_pid=
  if cmp -s <(TPM2OPENSSL_TCTI="$tcti" openssl pkey -provider tpm2 -provider default -in "$live/key.pem" -pubout) \
            <(openssl x509 -in "$live/cert.pem" -noout -pubkey); then
    echo "public keys match"
  else
    echo "public keys DIFFER" >&2; exit 1
  fi
fi

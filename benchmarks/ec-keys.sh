#!/usr/bin/env bash
# EC keys beside RSA: one-shot `enroll-agent enroll` with RSA-2048, EC P-256 and EC P-384
# keys, in software and in swtpm, alternating run by run (the order rotates every round)
# so load drift hits all alike.
#
#   benchmarks/ec-keys.sh [N]      # N rounds (default 10)
#
# The server is our test SCEP server as a process (benchmarks/SCEPTestServerTool, a debug
# build): micromdm scepserver cannot issue EC certificates (it signs with the CSR's
# signature algorithm, which its RSA CA key refuses), so every row, RSA included, runs
# against the same server. The same server work per request, whatever the key.
#
# Environment: see lib.sh (BENCH_SCRATCH_PATH, AGENT_BIN, BENCH_NO_NETNS), and
#   SCEP_TEST_SERVER_BIN   a built SCEPTestServerTool (else built in $BENCH_SCRATCH_PATH, debug)
#
# What each run includes (a fresh process, state directory and key): read the config,
# the key (RSA-2048: OpenSSL/BoringSSL keygen, or TPM2_Create in swtpm; EC: the same on
# the curve), for EC also the temporary RSA-2048 envelope key (software), GetCACaps,
# GetCACert, PKCSReq, CertRep verification, install. TPM rows also load the key for every
# signature and decryption (CSR, pkiMessage or the envelope key, reply).
# Prints medians of wall and CPU time and peak RSS, and each EC row's ratio to RSA-2048
# in the same storage (below 1: EC is cheaper).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-10}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 64; }
bench_require swtpm swift openssl
bench_build_agent
if [[ -z "${SCEP_TEST_SERVER_BIN:-}" ]]; then
  echo "building SCEPTestServerTool (debug, scratch $BENCH_SCRATCH_PATH)..." >&2
  (cd "$BENCH_ROOT" && swift build --scratch-path "$BENCH_SCRATCH_PATH" --product SCEPTestServerTool >&2) || bench_die "build failed"
  SCEP_TEST_SERVER_BIN=$BENCH_SCRATCH_PATH/debug/SCEPTestServerTool
  export SCEP_TEST_SERVER_BIN
fi
bench_enter_netns "$@"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ec-bench.XXXXXX")
SERVER_PID="" SWTPM_PID=""
cleanup() {
  for pid in "$SERVER_PID" "$SWTPM_PID"; do
    [[ -n "$pid" ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$SCEP_TEST_SERVER_BIN" "$WORK/ca.pem" >"$WORK/server.url" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/server.url" ]] && break; sleep 0.1; done
URL=$(head -1 "$WORK/server.url")
[[ "$URL" == http://* ]] || bench_die "the test server did not start: $(cat "$WORK/server.log")"

mkdir -m 0700 "$WORK/tpm"
swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" --server type=unixio,path="$WORK/tpm/sock" \
  --ctrl type=unixio,path="$WORK/tpm/sock.ctrl" --flags not-need-init,startup-clear >"$WORK/swtpm.log" 2>&1 &
SWTPM_PID=$!
for _ in $(seq 1 50); do [[ -S "$WORK/tpm/sock" ]] && break; sleep 0.1; done
TCTI="swtpm:path=$WORK/tpm/sock"
printf 'bench-challenge\n' >"$WORK/challenge"
chmod 0600 "$WORK/challenge"

# config FILE STATE STORAGE KEYLINES
config() {
  cat >"$1" <<TOML
state_dir = "$2"

[[profile]]
name = "bench"
scep_url = "$URL"
ca_pin_file = "$WORK/ca.pem"
subject = "CN=ec-bench,O=enroll-agent bench"
key_storage = "$3"
tcti = "$TCTI"
$4

[profile.challenge]
source = "file"
file = "$WORK/challenge"
TOML
}

LABELS=(rsa-software ec256-software ec384-software rsa-tpm ec256-tpm ec384-tpm)
key_lines() {
  case "$1" in
    rsa-*) echo 'key_type = "rsa"' ;;
    ec256-*) printf 'key_type = "ec"\nec_curve = "P-256"' ;;
    ec384-*) printf 'key_type = "ec"\nec_curve = "P-384"' ;;
  esac
}

R=$WORK/runs.txt
: >"$R"
LOAD_BEFORE=$(bench_loadavg)
for round in $(seq "$N"); do
  for offset in "${!LABELS[@]}"; do
    label=${LABELS[$(( (offset + round) % ${#LABELS[@]} ))]}
    dir="$WORK/run-$round-$label"
    mkdir -p "$dir"
    config "$dir/config.toml" "$dir/state" "${label#*-}" "$(key_lines "$label")"
    bench_measure "$R" "$label" "$AGENT" enroll --config "$dir/config.toml"
    [[ -s "$dir/state/bench/live/cert.pem" ]] || bench_die "$label round $round installed no certificate"
  done
done

echo "EC keys beside RSA-2048: enroll-agent enroll against the test SCEP server, $N rounds each"
bench_machine
echo "load:    $LOAD_BEFORE before, $(bench_loadavg) after"
echo
printf '%-16s %9s %9s %9s %10s %10s\n' "key" "wall ms" "CPU ms" "RSS KiB" "wall/RSA" "CPU/RSA"
for label in "${LABELS[@]}"; do
  storage=${label#*-}
  wall=$(bench_median "$R" "$label" $BENCH_WALL)
  cpu=$(bench_median "$R" "$label" $BENCH_CPU)
  rss=$(bench_median "$R" "$label" $BENCH_RSS)
  printf '%-16s %9s %9s %9s %10s %10s\n' "$label" "$wall" "$cpu" "$rss" \
    "$(bench_ratio "$wall" "$(bench_median "$R" "rsa-$storage" $BENCH_WALL)")" \
    "$(bench_ratio "$cpu" "$(bench_median "$R" "rsa-$storage" $BENCH_CPU)")"
done

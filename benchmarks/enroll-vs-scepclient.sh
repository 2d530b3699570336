#!/usr/bin/env bash
# One-shot enrollment with a software RSA-2048 key: `enroll-agent enroll` against
# micromdm `scepclient`, on the same local scepserver, alternating run by run
# (the order flips every round) so load drift hits both alike.
#
#   benchmarks/enroll-vs-scepclient.sh [N]      # N rounds (default 30, about 1 minute)
#
# Environment: see lib.sh (BENCH_SCRATCH_PATH, AGENT_BIN, BENCH_NO_NETNS).
#
# What each run includes (each a fresh process, fresh directory, fresh key):
#   agent      enroll-agent enroll --config C: read and check the config, read the
#              challenge file, RSA-2048 keygen (OpenSSL), GetCACaps, GetCACert,
#              PKCSReq (AES-128 envelope, SHA-256), CertRep verification against
#              the pinned CA, install into a new store (every file fsynced).
#   scepclient scepclient -server-url U -challenge S -private-key k.key
#              -certificate c.pem -cn NAME: RSA-2048 keygen (Go), GetCACaps,
#              GetCACert, PKCSReq (3DES envelope), key and certificate written.
# Startup rows: `enroll-agent --version` and `scepclient -version` (process
# start, dynamic linking, runtime initialisation, argument parsing; no work).
# Untimed: writing the config, checking that each run produced a certificate.
#
# Prints medians of wall time, CPU time (user+sys, all threads) and peak RSS,
# with agent/scepclient ratios (below 1: the agent uses less).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-30}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 64; }
bench_require scepserver scepclient curl openssl swift
bench_build_agent
bench_enter_netns "$@"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/enroll-bench.XXXXXX")
cleanup() { bench_scep_stop; rm -rf "$WORK"; }
trap cleanup EXIT
bench_scep_start "$WORK/server"
LOAD_BEFORE=$(bench_loadavg)

R=$WORK/runs.txt
: >"$R"

run_agent() {  # $1 = run id; $2 = label ("" = warm-up, not recorded)
  local dir=$WORK/agent-$1 out=$WORK/warmup label=warmup
  if [[ -n "$2" ]]; then out=$R; label=$2; fi
  mkdir -p "$dir"
  bench_write_config "$dir/config.toml" "$dir/state" 1 "agent-$1"
  bench_measure "$out" "$label" "$AGENT" enroll --config "$dir/config.toml"
  [[ -s "$dir/state/p1/live/cert.pem" ]] || bench_die "agent run $1 installed no certificate"
  rm -rf "$dir"
}

run_scepclient() {
  local dir=$WORK/scepclient-$1 challenge out=$WORK/warmup label=warmup
  if [[ -n "$2" ]]; then out=$R; label=$2; fi
  mkdir -p "$dir"
  challenge=$(cat "$SCEP_CHALLENGE_FILE")
  # scepclient takes the challenge only in argv; it is a throwaway secret of this
  # benchmark's private server.
  (cd "$dir" && bench_measure "$out" "$label" \
    scepclient -server-url "$SCEP_URL" -challenge "$challenge" -private-key k.key -certificate c.pem -cn "scepclient-$1")
  [[ -s "$dir/c.pem" ]] || bench_die "scepclient run $1 wrote no certificate"
  rm -rf "$dir"
}

echo "warm-up, then $N alternating rounds against $SCEP_URL ..." >&2
run_agent w ""; run_scepclient w ""
for i in $(seq "$N"); do
  if (( i % 2 )); then run_agent "$i" agent; run_scepclient "$i" scepclient
  else run_scepclient "$i" scepclient; run_agent "$i" agent; fi
  if (( i % 2 )); then
    bench_measure "$R" agent-version "$AGENT" --version
    bench_measure "$R" scepclient-version scepclient -version
  else
    bench_measure "$R" scepclient-version scepclient -version
    bench_measure "$R" agent-version "$AGENT" --version
  fi
  # Reference: OpenSSL's RSA-2048 keygen alone, the part of the agent's CPU that is
  # a prime search (its spread is wide by nature).
  bench_measure "$R" openssl-keygen openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out /dev/null
  printf '.' >&2
done
echo >&2
LOAD_AFTER=$(bench_loadavg)

row() {  # row NAME AGENT_LABEL PEER_LABEL COLUMN UNIT
  local a b
  a=$(bench_median "$R" "$2" "$4"); b=$(bench_median "$R" "$3" "$4")
  printf '%-28s %12s %12s %8s\n' "$1 ($5)" "$a" "$b" "$(bench_ratio "$a" "$b")"
}
spread() {  # spread LABEL: quartiles of wall and CPU
  printf '  %-19s wall %s–%s ms, CPU %s–%s ms, RSS %s–%s KiB\n' "$1" \
    "$(bench_median "$R" "$1" $BENCH_WALL 0.25)" "$(bench_median "$R" "$1" $BENCH_WALL 0.75)" \
    "$(bench_median "$R" "$1" $BENCH_CPU 0.25)" "$(bench_median "$R" "$1" $BENCH_CPU 0.75)" \
    "$(bench_median "$R" "$1" $BENCH_RSS 0.25)" "$(bench_median "$R" "$1" $BENCH_RSS 0.75)"
}

echo "== enroll-agent enroll vs scepclient: one-shot enrollment, software RSA-2048 key"
bench_machine
echo "load:    $LOAD_BEFORE before, $LOAD_AFTER after (1/5/15-min averages)"
echo "runs:    $N alternating rounds (+1 warm-up each, discarded), micromdm scepserver on 127.0.0.1"
echo
printf '%-28s %12s %12s %8s\n' "median" "agent" "scepclient" "ratio"
row "enroll wall" agent scepclient $BENCH_WALL ms
row "enroll CPU user+sys" agent scepclient $BENCH_CPU ms
row "  of which user" agent scepclient $BENCH_USER ms
row "  of which sys" agent scepclient $BENCH_SYS ms
row "enroll peak RSS" agent scepclient $BENCH_RSS KiB
row "enroll voluntary ctx sw" agent scepclient $BENCH_VCS n
row "startup wall" agent-version scepclient-version $BENCH_WALL ms
row "startup CPU user+sys" agent-version scepclient-version $BENCH_CPU ms
row "startup peak RSS" agent-version scepclient-version $BENCH_RSS KiB
echo
echo "interquartile ranges:"
spread agent; spread scepclient; spread agent-version; spread scepclient-version
echo
echo "reference, openssl genpkey RSA-2048 alone (median): wall $(bench_median "$R" openssl-keygen $BENCH_WALL) ms," \
     "CPU $(bench_median "$R" openssl-keygen $BENCH_CPU) ms, RSS $(bench_median "$R" openssl-keygen $BENCH_RSS) KiB"
echo "ratio = agent / scepclient (below 1: the agent uses less). CPU = user+sys of all threads;"
echo "peak RSS = ru_maxrss. Startup = '--version' (agent) / '-version' (scepclient)."

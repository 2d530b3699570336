#!/usr/bin/env bash
# How the agent's cost grows with the number of profiles: `status`,
# `status --json`, `renew` when nothing is due and `renew --force` with 1, 10
# and 100 software-key profiles enrolled against a local scepserver.
#
#   benchmarks/profiles-scaling.sh [N]     # N rounds of the cheap commands (default 9, ~2-3 minutes)
#
# Environment: PROFILE_COUNTS (default "1 10 100"); BENCH_RENEWAL_MODE writes
# `renewal_mode = ...` into every profile (default: unset, i.e. "auto", which is
# RenewalReq against scepserver; "pkcsreq" renews with a fresh PKCSReq); and see
# lib.sh (BENCH_SCRATCH_PATH, AGENT_BIN, BENCH_NO_NETNS).
#
# Per profile count P (a fresh store and config each):
#   enroll        one run of `enroll` for all P profiles (the setup, timed once)
#   status        `status`: config, then each profile's live certificate parsed,
#                 its SHA-256, state.json, the renewal decision
#   status-json   the same as one JSON document
#   renew         `renew` with nothing due: config, then per profile lock,
#                 state.json, live certificate, renewal decision; no network
#   renew-force   `renew --force`: per profile a new RSA-2048 key, RenewalReq
#                 signed with the current certificate and key (PKCSReq with the
#                 challenge under BENCH_RENEWAL_MODE=pkcsreq), CertRep verified,
#                 new generation installed (fsynced)
# The cheap commands run N rounds, rotating their order each round; renew-force
# runs N times at P=1, ceil(N/3) at P<=10, once at P>=100 (one run there is
# already the sum of 100 renewals). One untimed warm-up of each command first.
#
# No scepclient command does this, so the peer columns are references built from
# public tools doing the same work per profile in a shell loop:
#   status, renew  vs  P x `openssl x509 -checkend 0 -noout -in live/cert.pem`
#   renew-force    vs  P x `scepclient` fresh enrollment (new key, PKCSReq)
# Their peak RSS is the largest single process (ru_maxrss of the children).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-9}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 64; }
PROFILE_COUNTS=${PROFILE_COUNTS:-"1 10 100"}
bench_require scepserver scepclient curl openssl swift
bench_build_agent
bench_enter_netns "$@"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/profiles-bench.XXXXXX")
cleanup() { bench_scep_stop; rm -rf "$WORK"; }
trap cleanup EXIT
bench_scep_start "$WORK/server"
LOAD_BEFORE=$(bench_loadavg)
R=$WORK/runs.txt
W=$WORK/warmup.txt
: >"$R"; : >"$W"

force_rounds() {  # P -> rounds of renew-force
  if (( $1 <= 1 )); then echo "$N"; elif (( $1 <= 10 )); then echo $(( (N + 2) / 3 )); else echo 1; fi
}

# The references, each one bash process so it is timed as one run (GNU time
# execs its command: a shell function would not do).
CHECKEND_LOOP='for i in $(seq "$2"); do openssl x509 -checkend 0 -noout -in "$1/p$i/live/cert.pem" >/dev/null || exit 1; done'
# scepclient takes the challenge only in argv: a throwaway secret of this private server.
SCEPCLIENT_LOOP='cd "$1" && for i in $(seq "$2"); do
  mkdir "r$3-$i" && (cd "r$3-$i" && scepclient -server-url "$4" -challenge "$(cat "$5")" -private-key k.key -certificate c.pem -cn "ref-$i") || exit 1
done'
scepclient_loop() {  # FILE LABEL DIR P ROUND
  bench_measure "$1" "$2" bash -c "$SCEPCLIENT_LOOP" bash "$3" "$4" "$5" "$SCEP_URL" "$SCEP_CHALLENGE_FILE"
}

run_cheap() {  # FILE P CONFIG STATE COMMAND
  local file=$1 p=$2 config=$3 state=$4
  case $5 in
    status)      bench_measure "$file" "status-$p" "$AGENT" status --config "$config" ;;
    status-json) bench_measure "$file" "status-json-$p" "$AGENT" status --json --config "$config" ;;
    renew)       bench_measure "$file" "renew-$p" "$AGENT" renew --config "$config" ;;
    checkend)    bench_measure "$file" "checkend-$p" bash -c "$CHECKEND_LOOP" bash "$state" "$p" ;;
  esac
}

for P in $PROFILE_COUNTS; do
  dir=$WORK/p$P
  mkdir -p "$dir/ref"
  bench_write_config "$dir/config.toml" "$dir/state" "$P" "scale$P"
  echo "P=$P: enroll, $N rounds of status/status --json/renew/openssl, $(force_rounds "$P") of renew --force/scepclient ..." >&2
  bench_measure "$R" "enroll-$P" "$AGENT" enroll --config "$dir/config.toml"
  [[ $(ls -d "$dir"/state/p*/live 2>/dev/null | wc -l) -eq $P ]] || bench_die "P=$P: not every profile was enrolled"

  commands=(status status-json renew checkend)
  for c in "${commands[@]}"; do run_cheap "$W" "$P" "$dir/config.toml" "$dir/state" "$c"; done
  for i in $(seq "$N"); do
    for k in 0 1 2 3; do
      run_cheap "$R" "$P" "$dir/config.toml" "$dir/state" "${commands[(i + k) % 4]}"
    done
    printf '.' >&2
  done

  bench_measure "$W" "renew-force-$P" "$AGENT" renew --force --config "$dir/config.toml"
  scepclient_loop "$W" "scepclient-$P" "$dir/ref" "$P" w
  for i in $(seq "$(force_rounds "$P")"); do
    if (( i % 2 )); then
      bench_measure "$R" "renew-force-$P" "$AGENT" renew --force --config "$dir/config.toml"
      scepclient_loop "$R" "scepclient-$P" "$dir/ref" "$P" "$i"
    else
      scepclient_loop "$R" "scepclient-$P" "$dir/ref" "$P" "$i"
      bench_measure "$R" "renew-force-$P" "$AGENT" renew --force --config "$dir/config.toml"
    fi
    printf '+' >&2
  done
  echo >&2
  # Each forced renewal installed a new generation: check the last one per profile is live.
  [[ $(ls -d "$dir"/state/p*/previous 2>/dev/null | wc -l) -eq $P ]] || bench_die "P=$P: renew --force did not install new generations"
  rm -rf "$dir/ref"
done
LOAD_AFTER=$(bench_loadavg)

echo "== profiles scaling: status, renew (nothing due), renew --force with 1..100 software-key profiles"
bench_machine
echo "load:    $LOAD_BEFORE before, $LOAD_AFTER after (1/5/15-min averages)"
echo "renewal: renewal_mode = ${BENCH_RENEWAL_MODE:-auto (RenewalReq)}"
echo "runs:    $N rounds of the cheap commands (order rotated), renew --force $(for P in $PROFILE_COUNTS; do printf '%s@P=%s ' "$(force_rounds "$P")" "$P"; done)"
echo
first=${PROFILE_COUNTS%% *}
table() {  # COMMAND REFERENCE REFERENCE_NAME
  local cmd=$1 ref=$2 P wall cpu rss rwall rcpu rrss base
  base=$(bench_median "$R" "$cmd-$first" $BENCH_WALL)
  printf '%s (medians)            reference: %s\n' "$cmd" "$3"
  printf '  %5s %10s %10s %10s %11s %9s | %10s %10s %10s | %6s %6s %6s\n' \
    P "wall ms" "CPU ms" "RSS KiB" "wall/prof" "wall/P=$first" "ref wall" "ref CPU" "ref RSS" "wall" "CPU" "RSS"
  for P in $PROFILE_COUNTS; do
    wall=$(bench_median "$R" "$cmd-$P" $BENCH_WALL); cpu=$(bench_median "$R" "$cmd-$P" $BENCH_CPU); rss=$(bench_median "$R" "$cmd-$P" $BENCH_RSS)
    rwall=$(bench_median "$R" "$ref-$P" $BENCH_WALL); rcpu=$(bench_median "$R" "$ref-$P" $BENCH_CPU); rrss=$(bench_median "$R" "$ref-$P" $BENCH_RSS)
    printf '  %5s %10s %10s %10s %11s %9s | %10s %10s %10s | %6s %6s %6s\n' "$P" "$wall" "$cpu" "$rss" \
      "$(awk -v w="$wall" -v p="$P" 'BEGIN { printf "%.1f", w / p }')" "$(bench_ratio "$wall" "$base")" \
      "$rwall" "$rcpu" "$rrss" "$(bench_ratio "$wall" "$rwall")" "$(bench_ratio "$cpu" "$rcpu")" "$(bench_ratio "$rss" "$rrss")"
  done
  echo
}
echo "columns: agent figures | the reference's | ratios agent/reference (below 1: the agent uses less)"
echo
table status checkend "P x openssl x509 -checkend"
table status-json checkend "P x openssl x509 -checkend"
table renew checkend "P x openssl x509 -checkend"
table renew-force scepclient "P x scepclient enrollment"
printf 'enroll (setup, one run): '
for P in $PROFILE_COUNTS; do
  printf 'P=%s %s ms wall, %s ms CPU, %s KiB;  ' "$P" "$(bench_median "$R" "enroll-$P" $BENCH_WALL)" \
    "$(bench_median "$R" "enroll-$P" $BENCH_CPU)" "$(bench_median "$R" "enroll-$P" $BENCH_RSS)"
done
echo

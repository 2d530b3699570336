# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# Shared helpers for the benchmark scripts in this folder (sourced, not run).
#
#   bench_build_agent          release build of enroll-agent into $BENCH_SCRATCH_PATH; sets AGENT
#   bench_enter_netns "$@"     as root: re-run the calling script in a private network namespace
#   bench_scep_start DIR       CA + challenge file + micromdm scepserver on 127.0.0.1; sets SCEP_*
#   bench_write_config ...     an agent config with N software-key profiles
#   bench_measure FILE LABEL CMD...   one timed run appended to FILE
#   bench_median FILE LABEL COLUMN    median of one column of one label's runs
#   bench_ratio A B            A / B with two decimals
#   bench_machine              one paragraph: date, machine, load, versions
#
# Environment:
#   BENCH_SCRATCH_PATH  SwiftPM scratch dir for the release build (default <repo>/.build-bench,
#                       git-ignored; never the lead's .build)
#   AGENT_BIN           use this enroll-agent binary instead of building one
#   BENCH_NO_NETNS=1    do not enter a private network namespace even as root
#
# Measurement: each run is `time /usr/bin/time -f '%M %w %c' CMD` — bash's `time`
# keyword gives wall, user and system time to the millisecond (getrusage of the
# child), GNU time gives the child's peak RSS (ru_maxrss, KiB) and its voluntary
# and involuntary context switches. Both wrappers cost the same for every command
# measured (well under 1 ms), so ratios are not biased by them.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SCRATCH_PATH=${BENCH_SCRATCH_PATH:-$BENCH_ROOT/.build-bench}

bench_die() { echo "error: $*" >&2; exit "${BENCH_EXIT:-70}"; }

bench_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || BENCH_EXIT=69 bench_die "missing tool: $tool"
  done
  [[ -x /usr/bin/time ]] || BENCH_EXIT=69 bench_die "missing /usr/bin/time (Debian package: time)"
}

# Sets AGENT to a release enroll-agent (built once; the child re-run inside the
# network namespace inherits AGENT_BIN and skips the build).
bench_build_agent() {
  if [[ -n "${AGENT_BIN:-}" ]]; then
    [[ -x "$AGENT_BIN" ]] || bench_die "AGENT_BIN=$AGENT_BIN is not executable"
    AGENT=$AGENT_BIN
    return
  fi
  echo "building enroll-agent (release, scratch $BENCH_SCRATCH_PATH)..." >&2
  (cd "$BENCH_ROOT" && swift build -c release --scratch-path "$BENCH_SCRATCH_PATH" --product enroll-agent >&2) \
    || bench_die "release build failed"
  AGENT=$BENCH_SCRATCH_PATH/release/enroll-agent
  export AGENT_BIN=$AGENT
}

# scepserver has no bind-address option: as root, confine it (and the clients)
# to a private network namespace with only loopback up. Without root, stay in
# the host namespace and talk to 127.0.0.1 only.
bench_enter_netns() {
  if [[ -n "${BENCH_IN_NETNS:-}" || -n "${BENCH_NO_NETNS:-}" ]]; then return; fi
  if [[ $EUID -ne 0 ]]; then
    echo "note: not root, so no private network namespace; scepserver listens on all interfaces" >&2
    return
  fi
  command -v unshare >/dev/null && command -v ip >/dev/null || { echo "note: no unshare/ip; host namespace" >&2; return; }
  export BENCH_IN_NETNS=1
  exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' bash "$0" "$@"
}

# bench_scep_start DIR: a fresh CA in DIR/depot, a random challenge in
# DIR/challenge (0600), and scepserver on a free 127.0.0.1 port with
# -allowrenew 0 (repeated runs reuse DNs). The challenge reaches the server
# through its environment, never argv. Sets SCEP_PID, SCEP_PORT, SCEP_URL,
# SCEP_DEPOT, SCEP_CHALLENGE_FILE.
bench_scep_start() {
  local dir=$1 port
  mkdir -p "$dir"
  scepserver ca -init -depot "$dir/depot" -keySize 2048 -organization "enroll-agent bench CA" -years 1 >/dev/null 2>&1 \
    || bench_die "scepserver ca -init failed"
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/challenge")
  SCEP_DEPOT=$dir/depot
  SCEP_CHALLENGE_FILE=$dir/challenge
  SCEP_PID=""
  for _ in $(seq 20); do
    port=$((20000 + RANDOM % 30000))
    SCEP_CHALLENGE_PASSWORD=$(cat "$SCEP_CHALLENGE_FILE") scepserver -depot "$SCEP_DEPOT" -port "$port" -allowrenew 0 \
      >"$dir/scepserver.log" 2>&1 &
    SCEP_PID=$!
    for _ in $(seq 50); do
      if curl -fsS -o /dev/null "http://127.0.0.1:$port/scep?operation=GetCACaps" 2>/dev/null; then
        SCEP_PORT=$port
        SCEP_URL="http://127.0.0.1:$port/scep"
        return
      fi
      kill -0 "$SCEP_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$SCEP_PID" 2>/dev/null || true
    wait "$SCEP_PID" 2>/dev/null || true
    SCEP_PID=""
  done
  bench_die "could not start scepserver; see $dir/scepserver.log"
}

bench_scep_stop() {
  if [[ -n "${SCEP_PID:-}" ]]; then
    kill "$SCEP_PID" 2>/dev/null || true
    wait "$SCEP_PID" 2>/dev/null || true
    SCEP_PID=""
  fi
}

# bench_write_config FILE STATE_DIR PROFILES [CN_PREFIX]: PROFILES software-key
# profiles named p1..pN (CN=<prefix>-<i>), challenge from SCEP_CHALLENGE_FILE,
# the CA pinned by file; renewal_mode = $BENCH_RENEWAL_MODE when that is set.
bench_write_config() {
  local file=$1 state=$2 count=$3 prefix=${4:-bench} i
  {
    echo "state_dir = \"$state\""
    for i in $(seq "$count"); do
      cat <<TOML

[[profile]]
name = "p$i"
scep_url = "$SCEP_URL"
ca_pin_file = "$SCEP_DEPOT/ca.pem"
subject = "CN=$prefix-$i,O=enroll-agent bench"
key_storage = "software"
key_bits = 2048${BENCH_RENEWAL_MODE:+
renewal_mode = \"$BENCH_RENEWAL_MODE\"}

[profile.challenge]
source = "file"
file = "$SCEP_CHALLENGE_FILE"
TOML
    done
  } >"$file"
}

# bench_measure FILE LABEL CMD...: runs CMD once (stdout+stderr to FILE.log) and
# appends "LABEL wall_ms cpu_ms user_ms sys_ms maxrss_kib vol_cs invol_cs" to FILE.
# A failing CMD stops the benchmark: a failed run is not a data point.
bench_measure() {
  local file=$1 label=$2; shift 2
  local times rusage status real user sys rss vcs ics
  times=$(mktemp); rusage=$(mktemp)
  set +e
  { TIMEFORMAT='%3R %3U %3S'; time /usr/bin/time -f '%M %w %c' -o "$rusage" "$@" >>"$file.log" 2>&1; } 2>"$times"
  status=$?
  set -e
  if [[ $status -ne 0 ]]; then
    echo "run of $label failed (exit $status): $*" >&2
    tail -5 "$file.log" >&2
    exit 70
  fi
  read -r real user sys <"$times"
  read -r rss vcs ics < <(tail -1 "$rusage")
  awk -v l="$label" -v r="$real" -v u="$user" -v s="$sys" -v m="$rss" -v v="$vcs" -v c="$ics" \
    'BEGIN { printf "%s %.1f %.1f %.1f %.1f %d %d %d\n", l, r * 1000, (u + s) * 1000, u * 1000, s * 1000, m, v, c }' >>"$file"
  rm -f "$times" "$rusage"
}

# Column numbers of bench_measure's records, for bench_median.
BENCH_WALL=2 BENCH_CPU=3 BENCH_USER=4 BENCH_SYS=5 BENCH_RSS=6 BENCH_VCS=7 BENCH_ICS=8

# bench_median FILE LABEL COLUMN [QUANTILE]: the median (or another quantile,
# 0..1, nearest-rank with interpolation) of COLUMN over LABEL's records.
bench_median() {
  awk -v l="$2" -v c="$3" '$1 == l { print $c }' "$1" | sort -g |
    awk -v q="${4:-0.5}" '{ v[NR] = $1 }
      END { if (NR == 0) { print "nan"; exit }
            p = 1 + (NR - 1) * q; i = int(p); f = p - i
            x = (i < NR) ? v[i] + f * (v[i + 1] - v[i]) : v[i]
            if (x == int(x)) printf "%d", x; else printf "%.1f", x }'
}

bench_count() { awk -v l="$2" '$1 == l { n++ } END { print n + 0 }' "$1"; }

bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "-"; else printf "%.2f", a / b }'; }

bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

bench_machine() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPU(s), ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "tools:   $("$AGENT" --version 2>/dev/null), scep $(dpkg-query -W -f '${Version}' scep 2>/dev/null || echo '?'), $(openssl version | cut -d' ' -f1-2)"
}

#!/usr/bin/env bash
# The daemon at rest: `enroll-agent run` with every profile enrolled and nothing
# due, watched for N seconds — memory and wakeups (context switches), which is
# what an idle agent costs each host of a fleet all day.
#
#   benchmarks/daemon-idle.sh [N]      # N idle seconds (default 60)
#
# Environment: PROFILES  profiles in the config (default 1); STRACE_SECONDS
# syscall census window after the idle window (default 10, 0 = none); and see
# lib.sh (BENCH_SCRATCH_PATH, AGENT_BIN, BENCH_NO_NETNS).
#
# How: enroll every profile (untimed), start `enroll-agent run`, let it settle
# 3 s (its first pass finds nothing due), then sample /proc every 10 s for N s:
#   wakeups  = `perf stat -e context-switches -p PID` over the window (all threads,
#              exact), cross-checked with voluntary + involuntary context switches
#              summed over the live threads (/proc/PID/task/*/status) every 10 s
#              (a thread that exits mid-window takes its count along: /proc undercounts);
#   CPU      = utime + stime from /proc/PID/stat (10 ms ticks);
#   memory   = VmRSS, VmHWM (peak) and RssAnon from /proc/PID/status, and PSS
#              from /proc/PID/smaps_rollup (shared libraries split among users).
# There is no scepclient daemon to compare with. As a reference the same figures
# are taken, over the same window, for the idle scepserver (a Go HTTP daemon,
# not a peer: it waits in epoll, the agent sleeps until a renewal is due).
# Then `strace -c -f` counts the agent's syscalls for STRACE_SECONDS, and the
# time from SIGTERM to exit is measured.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-60}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 64; }
PROFILES=${PROFILES:-1}
STRACE_SECONDS=${STRACE_SECONDS:-10}
bench_require scepserver curl swift
bench_build_agent
bench_enter_netns "$@"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/daemon-idle-bench.XXXXXX")
DAEMON_PID=""
PERF_PIDS=()
cleanup() {
  local pid
  for pid in "${PERF_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  [[ -n "$DAEMON_PID" ]] && { kill "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; }
  bench_scep_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
bench_scep_start "$WORK/server"
bench_write_config "$WORK/config.toml" "$WORK/state" "$PROFILES" daemon
"$AGENT" enroll --config "$WORK/config.toml" >"$WORK/enroll.log" 2>&1 || bench_die "enroll failed: $(tail -3 "$WORK/enroll.log")"

# Figures of one process: "ctxsw cpu_ticks rss_kib hwm_kib anon_kib pss_kib threads".
sample() {
  local pid=$1 cs ticks
  cs=$(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }')
  ticks=$(awk '{ print $14 + $15 }' /proc/"$pid"/stat)
  echo "$cs $ticks $(awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } /^RssAnon/ { a = $2 }
                          END { printf "%d %d %d", r, h, a }' /proc/"$pid"/status) \
$(awk '/^Pss:/ { print $2 }' /proc/"$pid"/smaps_rollup 2>/dev/null || echo 0) \
$(awk '/^Threads/ { print $2 }' /proc/"$pid"/status)"
}

LOAD_BEFORE=$(bench_loadavg)
"$AGENT" run --config "$WORK/config.toml" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
sleep 3
kill -0 "$DAEMON_PID" 2>/dev/null || bench_die "the daemon exited: $(tail -3 "$WORK/daemon.log")"
LOG_LINES_BEFORE=$(wc -l <"$WORK/daemon.log")

# perf counts the context switches of every thread of each process over the window.
PERF_PIDS=()
if command -v perf >/dev/null; then
  perf stat -x, -e context-switches -p "$DAEMON_PID" -o "$WORK/perf-agent.txt" -- sleep "$N" 2>/dev/null &
  PERF_PIDS+=($!)
  perf stat -x, -e context-switches -p "$SCEP_PID" -o "$WORK/perf-server.txt" -- sleep "$N" 2>/dev/null &
  PERF_PIDS+=($!)
fi

echo "daemon idle for $N s ($PROFILES profile(s)), sampling every 10 s ..." >&2
: >"$WORK/agent-samples.txt"; : >"$WORK/server-samples.txt"
elapsed=0
sample "$DAEMON_PID" >>"$WORK/agent-samples.txt"; sample "$SCEP_PID" >>"$WORK/server-samples.txt"
while (( elapsed < N )); do
  step=$(( N - elapsed < 10 ? N - elapsed : 10 ))
  sleep "$step"; elapsed=$(( elapsed + step ))
  sample "$DAEMON_PID" >>"$WORK/agent-samples.txt"; sample "$SCEP_PID" >>"$WORK/server-samples.txt"
  printf '.' >&2
done
echo >&2
for pid in "${PERF_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PERF_PIDS=()
LOAD_AFTER=$(bench_loadavg)
LOG_LINES_AFTER=$(wc -l <"$WORK/daemon.log")

# Per-window wakeup counts, scaled to a minute; their median; totals.
summarise() {  # FILE -> "wakeups_total wakeups_per_min_median cpu_ms rss_end hwm_end anon_end pss_end threads"
  awk -v n="$N" '
    { cs[NR] = $1; tk[NR] = $2; rss = $3; hwm = $4; anon = $5; pss = $6; thr = $7; t[NR] = (NR - 1) * 10 }
    END {
      # A thread that exits takes its counts with it, so a window can come out short
      # (even negative); such windows count as 0 and perf stat gives the exact total.
      for (i = 2; i <= NR; i++) { dt = (i == NR) ? n - t[i - 1] : 10; d = cs[i] - cs[i - 1]; if (d < 0) d = 0
                                  total += d; rate[i - 1] = d * 60 / dt }
      m = NR - 1
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (rate[j] < rate[i]) { x = rate[i]; rate[i] = rate[j]; rate[j] = x }
      med = (m % 2) ? rate[(m + 1) / 2] : (rate[m / 2] + rate[m / 2 + 1]) / 2
      printf "%d %.1f %d %d %d %d %d %d\n", total, med, (tk[NR] - tk[1]) * 10, rss, hwm, anon, pss, thr
    }' "$1"
}
read -r A_CS A_RATE A_CPU A_RSS A_HWM A_ANON A_PSS A_THR < <(summarise "$WORK/agent-samples.txt")
read -r S_CS S_RATE S_CPU S_RSS S_HWM S_ANON S_PSS S_THR < <(summarise "$WORK/server-samples.txt")

perf_cs() {  # FILE -> context switches counted ("<not counted>": the task never ran, so 0)
  [[ -s "$1" ]] || { echo "-"; return; }
  awk -F, '$3 == "context-switches" { print ($1 ~ /^[0-9]/) ? $1 : 0; found = 1 } END { if (!found) print "-" }' "$1"
}
A_PERF=$(perf_cs "$WORK/perf-agent.txt"); S_PERF=$(perf_cs "$WORK/perf-server.txt")

# Syscall census of the idle agent (strace itself adds a few wakeups when it attaches).
STRACE_SUMMARY=""
if (( STRACE_SECONDS > 0 )) && command -v strace >/dev/null; then
  timeout -s INT "$STRACE_SECONDS" strace -c -f -p "$DAEMON_PID" -o "$WORK/strace.txt" 2>/dev/null || true
  # strace -c rows: "% time, seconds, usecs/call, calls, [errors,] syscall"
  STRACE_SUMMARY=$(awk '/^ *[0-9]/ && $NF != "total" { print $NF ":" $4 }' "$WORK/strace.txt" | head -12 | tr '\n' ' ')
  STRACE_TOTAL=$(awk '$NF == "total" { print $4 }' "$WORK/strace.txt")
fi

# Shutdown latency: SIGTERM to exit.
t0=${EPOCHREALTIME/./}
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null && STOP_STATUS=0 || STOP_STATUS=$?
t1=${EPOCHREALTIME/./}
DAEMON_PID=""

echo "== enroll-agent run, idle for $N s with $PROFILES profile(s) enrolled and nothing due"
bench_machine
echo "load:    $LOAD_BEFORE before, $LOAD_AFTER after (1/5/15-min averages)"
echo
printf '%-40s %12s %14s %8s\n' "" "agent (run)" "scepserver*" "ratio"
line() { printf '%-40s %12s %14s %8s\n' "$1" "$2" "$3" "$(bench_ratio "$2" "$3")"; }
line "wakeups in ${N}s (perf stat)" "$A_PERF" "$S_PERF"
line "wakeups in ${N}s (/proc, live threads)" "$A_CS" "$S_CS"
line "wakeups/min (/proc, median 10s window)" "$A_RATE" "$S_RATE"
line "CPU in ${N}s (ms, 10 ms ticks)" "$A_CPU" "$S_CPU"
line "RSS at end (KiB)" "$A_RSS" "$S_RSS"
line "peak RSS, VmHWM (KiB)" "$A_HWM" "$S_HWM"
line "anonymous RSS (KiB)" "$A_ANON" "$S_ANON"
line "PSS (KiB)" "$A_PSS" "$S_PSS"
line "threads" "$A_THR" "$S_THR"
echo
echo "* reference only, not a peer: micromdm scepclient has no daemon mode; scepserver is the idle Go daemon at hand."
echo "agent log lines written while idle: $((LOG_LINES_AFTER - LOG_LINES_BEFORE))"
[[ -n "$STRACE_SUMMARY" ]] && echo "agent syscalls in ${STRACE_SECONDS}s under strace -c -f (name:calls): ${STRACE_SUMMARY:-none} (total ${STRACE_TOTAL:-0})"
echo "SIGTERM to exit: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1000 }') ms (exit status $STOP_STATUS)"

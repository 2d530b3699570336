#!/usr/bin/env bash
# Builds the libFuzzer harnesses in fuzz/ and runs each one for SECONDS (default 60).
#
#   scripts/fuzz.sh                 # CI: every target for 60 s
#   scripts/fuzz.sh 3600            # a long run: an hour per target
#   scripts/fuzz.sh 300 certrep     # some targets only
#
# Targets: getcacert certrep tss2keyfile statefile config textinputs crl (see fuzz/README.md).
# Seeds are read from fuzz/corpus/<target>/ and never modified; what a run discovers is kept in
# .build-fuzz/corpus/<target>/, so the next run continues from there. Crashes, timeouts, leaks and
# out-of-memory inputs go to .build-fuzz/artifacts/<target>/; replay one with
#   .build-fuzz/release/Fuzz<Target> <artifact>     (SWIFT_BACKTRACE=enable=no, same LSAN_OPTIONS)
# Exit status: 0 when every target ran clean, 1 when any crashed, hung, leaked or ran out of
# memory, 2 when the build failed.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
all_targets=(getcacert certrep tss2keyfile statefile config textinputs crl)
targets=("${@:-${all_targets[@]}}")
declare -A harness=(
  [getcacert]=FuzzGetCACert [certrep]=FuzzCertRep [tss2keyfile]=FuzzTSS2KeyFile
  [statefile]=FuzzStateFile [config]=FuzzConfig [textinputs]=FuzzTextInputs [crl]=FuzzCRL
)
# Options of single targets. config: inputs up to 256 KiB (libFuzzer's default is the largest
# seed, at least 4 KiB), so that nesting past the TOML parser's 32 levels, long dotted keys and
# big files are reached.
declare -A target_options=(
  [config]="-max_len=262144"
)
for target in "${targets[@]}"; do
  [ -n "${harness[$target]:-}" ] || { echo "unknown target '$target' (known: ${all_targets[*]})" >&2; exit 2; }
done
case "$seconds" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

scratch=.build-fuzz
# A crash must end in ASan's report, not in the Swift backtracer (which waits up to 30 s).
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0:leak_check_at_exit=0"

echo "== building the harnesses ($scratch)"
build_start=$(date +%s)
# Everything is instrumented: our modules and swift-asn1 / swift-certificates, whose parsers do
# most of the work. --sanitize makes SwiftPM link libFuzzer's main and instruments the C code,
# but it hands swiftc one -sanitize= flag per sanitizer and swiftc keeps only the last one: the
# trailing -sanitize=fuzzer,address is what gives Swift code both coverage and ASan.
# -enable-testing lets the harnesses reach the internal parsers.
swift build --package-path fuzz --scratch-path "$scratch" -c release \
    --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -parse-as-library -Xswiftc -enable-testing 2>&1 \
  | grep -v "Cannot export local symbol"   # ld.gold noise from the ASan runtime
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz build failed" >&2; exit 2; }
echo "   built in $(( $(date +%s) - build_start )) s"

# Pulls one "name: value" field out of libFuzzer's last status line.
field() { grep -oE "$1: [0-9]+(/[0-9]+[a-zA-Z]*)?" <<<"$2" | tail -1 | cut -d' ' -f2; }

failed=()
summary=()
for target in "${targets[@]}"; do
  binary="$scratch/release/${harness[$target]}"
  corpus="$scratch/corpus/$target"
  artifacts="$scratch/artifacts/$target"
  log="$scratch/logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix="$artifacts/")
  [ -f "fuzz/dict/$target.dict" ] && options+=(-dict="fuzz/dict/$target.dict")
  read -ra extra <<<"${target_options[$target]:-}"
  options+=("${extra[@]}")

  echo "== $target: ${seconds} s"
  marker=$(mktemp)
  "$binary" "${options[@]}" "$corpus" "fuzz/corpus/$target" >"$log" 2>&1
  status=$?
  findings=$(find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
               \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  rm -f "$marker"

  status_line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
  # (libFuzzer prints the final stats twice when it stops on an error)
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' <<<"$status_line" | tr -d '#')
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | awk '{print $2}')
  result=ok
  if [ "$status" -ne 0 ] || [ -n "$findings" ]; then
    result="FAILED (exit $status, $(wc -w <<<"$findings") artifact(s))"
    failed+=("$target")
  fi
  summary+=("$(printf '%-12s %10s %8s %6s %7s %12s  %s' "$target" "${execs:-?}" "${rate:-?}" \
    "$(field cov "$status_line")" "$(field ft "$status_line")" "$(field corp "$status_line")" "$result")")
  echo "   ${summary[-1]}"
  if [ "$result" != ok ]; then
    # The sanitizer / libFuzzer report: from the first ==ERROR (or deadly signal) to the artifact line.
    sed -n '/==[0-9]*==ERROR\|ERROR: libFuzzer\|Fatal error\|deadly signal/,/Test unit written/p' "$log" | head -80
    for artifact in $findings; do
      echo "   reproducer: $artifact ($(stat -c %s "$artifact") bytes): $(head -c 256 "$artifact" | od -An -tx1 | tr -d ' \n')"
    done
    echo "   full log: $log"
  fi
done

echo
printf '%-12s %10s %8s %6s %7s %12s  %s\n' target executions exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# Checks the systemd units in systemd/ (for CI):
#   1. `systemd-analyze verify` on all units: syntax, unknown keys, broken
#      references. The binary is not installed on a build host, so the check
#      runs on temporary copies whose ExecStart= points at /bin/true.
#   2. `systemd-analyze security --offline=true` on each service: prints the
#      overall exposure and what stays exposed, and fails when a service scores
#      above the limit (default 2.0; certmonger.service scores 9.6).
#
#   scripts/check-systemd-units.sh [--max-exposure N] [--verbose]
#
# Needs systemd-analyze from systemd 250 or newer (--offline); systemd does not
# have to be running. Exit status: 0 all good, 1 a check failed, 2 usage or
# missing tool.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit_dir="${repo_root}/systemd"
units=(enroll-agent.service enroll-agent-renew.service enroll-agent-renew.timer)
services=(enroll-agent.service enroll-agent-renew.service)
max_exposure="${MAX_EXPOSURE:-2.0}"
verbose=false

usage() {
    # The comment block at the top of this file, without the "# ".
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --max-exposure) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; max_exposure="$2"; shift 2 ;;
        --max-exposure=*) max_exposure="${1#*=}"; shift ;;
        --verbose) verbose=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "check-systemd-units: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if ! [[ "${max_exposure}" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "check-systemd-units: --max-exposure expects a number such as 2.0, got '${max_exposure}'" >&2
    exit 2
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-systemd-units: systemd-analyze not found (Debian/Ubuntu: apt-get install systemd)" >&2
    exit 2
fi
systemd_version="$(systemd-analyze --version | awk 'NR == 1 { print $2 }')"
if ! [[ "${systemd_version}" =~ ^[0-9]+$ ]] || (( systemd_version < 250 )); then
    echo "check-systemd-units: systemd-analyze ${systemd_version} is too old: 'security --offline' needs systemd 250 or newer" >&2
    exit 2
fi
for unit in "${units[@]}"; do
    [[ -f "${unit_dir}/${unit}" ]] || { echo "check-systemd-units: missing ${unit_dir}/${unit}" >&2; exit 1; }
done

# Indents a report under its heading.
indent() {
    sed 's/^/  /'
}

failed=false
scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT

# --- 1. verify ------------------------------------------------------------

echo "== systemd-analyze verify (systemd ${systemd_version})"
for unit in "${units[@]}"; do
    sed 's|^\(Exec[A-Za-z]*=[-@:+!]*\)/[^ ]*/enroll-agent\b|\1/bin/true|' "${unit_dir}/${unit}" >"${scratch}/${unit}"
done
verify_paths=()
for unit in "${units[@]}"; do
    verify_paths+=("${scratch}/${unit}")
done
# verify exits 0 on warnings such as an unknown key; any output is a finding.
if verify_output="$(cd "${scratch}" && systemd-analyze verify "${verify_paths[@]}" 2>&1)" && [[ -z "${verify_output}" ]]; then
    echo "ok: ${units[*]}"
else
    echo "FAIL: systemd-analyze verify reported:"
    indent <<<"${verify_output//"${scratch}"\//systemd/}"
    failed=true
fi

# --- 2. security ----------------------------------------------------------

echo
echo "== systemd-analyze security --offline=true (limit ${max_exposure})"
for service in "${services[@]}"; do
    if ! report="$(cd "${unit_dir}" && systemd-analyze security --offline=true --no-pager "${service}" 2>&1)"; then
        echo "FAIL: ${service}: systemd-analyze security failed:"
        indent <<<"${report}"
        failed=true
        continue
    fi
    overall="$(echo "${report}" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')"
    if [[ -z "${overall}" ]]; then
        echo "FAIL: ${service}: no overall exposure in the output:"
        indent <<<"${report}"
        failed=true
        continue
    fi
    if awk -v score="${overall}" -v limit="${max_exposure}" 'BEGIN { exit !(score <= limit) }'; then
        verdict="ok"
    else
        verdict="FAIL (above ${max_exposure})"
        failed=true
    fi
    echo "${service}: exposure ${overall} — ${verdict}"
    if "${verbose}"; then
        indent <<<"${report}"
    else
        # What stays exposed, with its weight (the ✗ lines).
        echo "${report}" | grep '^✗' | sed -E 's/^✗ +/  remaining: /; s/ {2,}/  /g' || true
    fi
done

echo
if "${failed}"; then
    echo "check-systemd-units: FAILED"
    exit 1
fi
echo "check-systemd-units: all units pass"

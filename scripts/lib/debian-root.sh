# Shared by scripts/package-test.sh and scripts/vm-test.sh (sourced, not run):
# phase timing, and Debian 12 roots made by debootstrap and cached as tarballs.
#
# The sourcing script defines die() and note(), and names itself in test_name
# ("the package test"), before calling anything here.

readonly debian_suite=bookworm
readonly debian_mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly debian_security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
readonly debian_cache_dir=/var/cache/enroll-agent-ci

# --- Timing -----------------------------------------------------------------------

phase_names=()
phase_seconds=()
phase_started=0
current_phase=""
test_started="$(date +%s.%N)"

phase() {
    finish_phase
    current_phase="$1"
    phase_started="$(date +%s.%N)"
    echo
    echo "== ${current_phase}"
}

finish_phase() {
    if [[ -n "${current_phase}" ]]; then
        phase_names+=("${current_phase}")
        phase_seconds+=("$(awk -v now="$(date +%s.%N)" -v then="${phase_started}" 'BEGIN { print now - then }')")
        current_phase=""
    fi
}

print_timings() {
    finish_phase
    echo
    echo "== timings"
    for index in "${!phase_names[@]}"; do
        printf '  %7.1f s  %s\n' "${phase_seconds[${index}]}" "${phase_names[${index}]}"
    done
    printf '  %7.1f s  total\n' "$(awk -v now="$(date +%s.%N)" -v then="${test_started}" 'BEGIN { print now - then }')"
}

# --- Packages on this machine -------------------------------------------------------

# Installs the Debian packages named that are not installed yet.
install_missing_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" || missing+=("${package}")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "installing: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# The package names of a .deb's Depends, comma-separated, without versions or alternatives.
deb_dependency_names() {
    dpkg-deb --field "$1" Depends | tr ',' '\n' | sed 's/(.*//; s/|.*//; s/ //g' | sed '/^$/d' | paste -sd, -
}

# --- Cached roots -------------------------------------------------------------------

# The Debian archive cannot be reached: under CI=true a failure, elsewhere the test
# says so and skips (exit 0).
archive_unreachable() {
    local message="the Debian archive (${debian_mirror}) is unreachable: $1"
    if [[ "${CI:-}" == true ]]; then
        die "${message}. ${test_name^} needs it in CI: check the machine's network or set DEBIAN_MIRROR."
    fi
    note "SKIP: ${message}"
    exit 0
}

# Sets debian_root to the path of a tarball (zstd) of a minbase bookworm root with the packages in
# $2 (comma-separated, debootstrap --include), made with debootstrap unless already
# cached under /var/cache/enroll-agent-ci. $1 names it (e.g. "vm"); $3 is a scratch
# directory for the bootstrap. The cache key covers the suite, the package list and
# the mirror, so a changed list makes a new root. (A variable, not output: an
# unreachable archive must be able to end the calling script.)
debian_root_tarball() {
    local root_label="$1" root_include="$2" scratch="$3" key tarball bootstrap
    key="$(printf '%s\n' "${debian_suite}" minbase "${root_include}" "${debian_mirror}" | sha256sum | cut -c1-12)"
    tarball="${debian_cache_dir}/debian-${debian_suite}-${root_label}-${key}.tar.zst"
    mkdir -p "${debian_cache_dir}"
    if [[ ! -s "${tarball}" ]]; then
        echo "no cached ${root_label} root: debootstrap ${debian_suite} (minbase, ${root_include}) from ${debian_mirror}" >&2
        curl -fsS --max-time 20 -o /dev/null "${debian_mirror}/dists/${debian_suite}/Release" \
            || archive_unreachable "GET ${debian_mirror}/dists/${debian_suite}/Release failed"
        bootstrap="${scratch}/bootstrap-${root_label}"
        if ! debootstrap --variant=minbase --include="${root_include}" "${debian_suite}" "${bootstrap}" "${debian_mirror}" \
            >"${scratch}/debootstrap-${root_label}.log" 2>&1; then
            tail -20 "${scratch}/debootstrap-${root_label}.log" >&2
            archive_unreachable "debootstrap of the ${root_label} root failed (log above)"
        fi
        rm -rf "${bootstrap}/var/cache/apt/archives/"*.deb
        tar -C "${bootstrap}" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "${tarball}.partial"
        mv "${tarball}.partial" "${tarball}"
        rm -rf --one-file-system "${bootstrap}"
        echo "cached as ${tarball} ($(du -h "${tarball}" | cut -f1))" >&2
    fi
    debian_root="${tarball}"
}

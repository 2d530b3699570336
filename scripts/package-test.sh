#!/usr/bin/env bash
# The Debian package, tested the way an administrator meets it (issue 11 §1):
#
#   1. packaging/build-deb.sh builds dist/enroll-agent_<version>_amd64.deb;
#   2. lintian checks it (errors and warnings fail unless overridden, with the
#      reason, in packaging/debian/lintian-overrides);
#   3. a clean Debian 12 root from debootstrap (cached as a tarball under
#      /var/cache/enroll-agent-ci/, made again when absent), in which, by chroot:
#      apt-get installs the package and every dependency from the archive;
#      `enroll-agent --version`, both man pages render, `systemd-analyze verify`
#      accepts the units, the fresh configuration enrolls nothing (exit 78);
#      an enrollment as the enroll-agent user against micromdm scepserver on
#      loopback works; an upgrade (the package again over itself) and a remove
#      keep the store; a purge then leaves no file behind.
#
# The same package on a live host, systemd running and a vTPM, is scripts/vm-test.sh.
#
#   sudo scripts/package-test.sh        # needs root: debootstrap, chroot, mounts
#
# Every phase is timed. Under CI=true an unreachable Debian archive fails the test;
# elsewhere it is reported and the root-based checks are skipped.
# KEEP_ROOT=1 keeps the test root (its path is printed) for a look after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root="$(pwd)"

source scripts/lib/debian-root.sh
readonly suite="${debian_suite}" mirror="${debian_mirror}" security_mirror="${debian_security_mirror}"
# systemd: systemd-sysusers, systemd-tmpfiles and systemd-analyze, which a real host has;
# man-db: `man`. Everything the package depends on beyond these comes from the archive.
readonly include=systemd,man-db

test_name="the package test"
die() { echo "package-test: FAIL: $*" >&2; exit 1; }
note() { echo "package-test: $*"; }

[[ "$(id -u)" -eq 0 ]] || die "run as root (debootstrap, chroot and mounts need it)"

# --- Cleanup ----------------------------------------------------------------------

work=""
root=""
mounted=()
scep_pid=""

cleanup() {
    local status=$?
    set +e
    [[ -n "${scep_pid}" ]] && kill "${scep_pid}" 2>/dev/null && wait "${scep_pid}" 2>/dev/null
    for (( index=${#mounted[@]}-1; index>=0; index-- )); do
        umount "${mounted[${index}]}" 2>/dev/null || umount -l "${mounted[${index}]}"
    done
    if [[ -n "${work}" ]]; then
        if [[ "${KEEP_ROOT:-}" == 1 ]]; then
            note "kept the test root: ${root}"
        else
            rm -rf --one-file-system "${work}"
        fi
    fi
    print_timings
    if [[ ${status} -eq 0 ]]; then echo "package-test: PASS"; else echo "package-test: FAIL (exit ${status})" >&2; fi
    exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tools --------------------------------------------------------------------------

phase "tools"
install_missing_packages debootstrap lintian dpkg-dev binutils man-db zstd scep curl openssl iproute2 util-linux python3
command -v swift >/dev/null || die "swift is not on PATH"

# --- Build and lint -------------------------------------------------------------------

phase "build the package (packaging/build-deb.sh)"
deb="$(packaging/build-deb.sh)"
[[ -f "${deb}" ]] || die "build-deb.sh made no package"
note "built ${deb}"
dpkg-deb --info "${deb}" | sed -n '/Package:/,$p'
echo "-- contents"
dpkg-deb --contents "${deb}"
depends="$(dpkg-deb --field "${deb}" Depends)"
version="$(dpkg-deb --field "${deb}" Version)"

phase "lintian"
lintian_output="$(lintian --info --display-info --fail-on error,warning "${deb}" 2>&1)" && lintian_status=0 || lintian_status=$?
if [[ -n "${lintian_output}" ]]; then echo "${lintian_output}"; else echo "(lintian: no tags)"; fi
[[ ${lintian_status} -eq 0 ]] || die "lintian reports errors or warnings (exit ${lintian_status}); fix them or override them with a reason in packaging/debian/lintian-overrides"

# --- A clean Debian 12 root ------------------------------------------------------------

phase "clean ${suite} root (debootstrap, cached in ${debian_cache_dir})"
work="$(mktemp -d /var/tmp/enroll-agent-package-test.XXXXXX)"
root="${work}/root"
debian_root_tarball minbase "${include}" "${work}"
mkdir -p "${root}"
zstd -q -dc "${debian_root}" | tar -C "${root}" --numeric-owner --xattrs -xf -

for mount_point in proc sys dev dev/pts; do
    case "${mount_point}" in
        proc) mount -t proc proc "${root}/proc" ;;
        sys) mount -t sysfs sysfs "${root}/sys" ;;
        dev) mount --bind /dev "${root}/dev" ;;
        dev/pts) mount --bind /dev/pts "${root}/dev/pts" ;;
    esac
    mounted+=("${root}/${mount_point}")
done
cp /etc/resolv.conf "${root}/etc/resolv.conf"
cat >"${root}/etc/apt/sources.list" <<EOF
deb ${mirror} ${suite} main
deb ${mirror} ${suite}-updates main
deb ${security_mirror} ${suite}-security main
EOF
# As in any chroot: daemons of the dependencies (udev) must not start here.
printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
chmod 0755 "${root}/usr/sbin/policy-rc.d"

# Runs a command inside the root with a clean environment.
in_root() {
    chroot "${root}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive TERM=dumb "$@"
}

[[ -d "${root}/run/systemd/system" ]] && die "the test root has /run/systemd/system: the postinst would call systemctl"

phase "apt-get update in the root"
in_root apt-get update -qq || archive_unreachable "apt-get update in the root failed"

# Every path in the root, but the kernel's and apt/dpkg's bookkeeping, logs and
# caches (apt's lists and archives, man-db's index). The account databases'
# backups (/etc/passwd- and friends) are rewritten when an account is added:
# the enroll-agent user and group stay after a purge, as Debian policy wants.
file_list() {
    (cd "${root}" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \
        -o -path ./var/tmp -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache -o -path ./var/log \
        -o -path ./etc/passwd- -o -path ./etc/group- -o -path ./etc/shadow- -o -path ./etc/gshadow- \) -prune \
        -o -print | LC_ALL=C sort)
}
file_list >"${work}/files-before"
in_root dpkg-query -W -f='${Package}\n' | LC_ALL=C sort >"${work}/packages-before"
note "$(wc -l <"${work}/files-before") paths in the root before the install"

# --- Install ---------------------------------------------------------------------------

phase "apt-get install ./$(basename "${deb}") (dependencies from the archive)"
install -m 0644 "${deb}" "${root}/tmp/"
in_root apt-get install -y "/tmp/$(basename "${deb}")" 2>&1 | tee "${work}/install.log"
in_root dpkg-query -W -f='${Status} ${Version}\n' enroll-agent | grep -qx "install ok installed ${version}" \
    || die "enroll-agent ${version} is not installed"
for package in $(echo "${depends}" | tr ',' '\n' | sed 's/(.*//; s/|.*//' ); do
    in_root dpkg-query -W -f='${Status}\n' "${package}" | grep -qx "install ok installed" || die "dependency ${package} is not installed"
done
grep -q "installed but not enabled" "${work}/install.log" || die "the postinst did not say how to enable the agent"

phase "checks in the root"
agent_version="$(in_root enroll-agent --version)"
note "enroll-agent --version: ${agent_version}"
[[ "${version}" == "${agent_version##* }-"* ]] || die "--version says '${agent_version}', the package is ${version}"

in_root man -P cat enroll-agent >"${work}/man8.txt" 2>"${work}/man8.err" || die "man enroll-agent failed: $(cat "${work}/man8.err")"
grep -q "EXIT STATUS" "${work}/man8.txt" && grep -q "configuration error" "${work}/man8.txt" \
    && grep -q "check-config" "${work}/man8.txt" || die "man enroll-agent lacks the subcommands or the exit codes"
in_root man -P cat 5 enroll-agent.toml >"${work}/man5.txt" 2>"${work}/man5.err" || die "man 5 enroll-agent.toml failed: $(cat "${work}/man5.err")"
grep -q "poll_max_wait" "${work}/man5.txt" && grep -q "challenge" "${work}/man5.txt" || die "man 5 enroll-agent.toml lacks the keys"
note "man enroll-agent: $(wc -l <"${work}/man8.txt") lines; man 5 enroll-agent.toml: $(wc -l <"${work}/man5.txt") lines"

# The units' ExecStart= must point at the package's binary; verify loads them as systemd would.
grep -q '^ExecStart=/usr/bin/enroll-agent run$' "${root}/lib/systemd/system/enroll-agent.service" || die "ExecStart= of the daemon is not /usr/bin/enroll-agent"
in_root systemd-analyze verify /lib/systemd/system/enroll-agent.service \
    /lib/systemd/system/enroll-agent-renew.service /lib/systemd/system/enroll-agent-renew.timer \
    >"${work}/verify.log" 2>&1 || { cat "${work}/verify.log"; die "systemd-analyze verify rejects the units"; }
if [[ -s "${work}/verify.log" ]]; then
    cat "${work}/verify.log"
    die "systemd-analyze verify printed warnings"
fi
note "systemd-analyze verify: the three units load without a warning"

# The account, the directories and the configuration's permissions.
in_root id -nG enroll-agent | tr ' ' '\n' | grep -qx tss || die "enroll-agent is not in group tss"
expect_stat() {
    local path="$1" expected="$2" actual
    actual="$(in_root stat -c '%a %U:%G' "${path}")"
    [[ "${actual}" == "${expected}" ]] || die "${path} is ${actual}, expected ${expected}"
}
expect_stat /etc/enroll-agent "750 root:enroll-agent"
expect_stat /etc/enroll-agent/config.toml "640 root:enroll-agent"
expect_stat /var/lib/enroll-agent "750 enroll-agent:enroll-agent"
in_root dpkg-query --showformat='${Conffiles}\n' --show enroll-agent | grep -q '/etc/enroll-agent/config.toml' \
    || die "/etc/enroll-agent/config.toml is not a conffile"

# A fresh install enrolls nothing and says what to do.
set +e
in_root runuser -u enroll-agent -- enroll-agent check-config >"${work}/fresh.log" 2>&1
fresh_status=$?
set -e
cat "${work}/fresh.log"
[[ ${fresh_status} -eq 78 ]] || die "check-config on the fresh configuration exited ${fresh_status}, expected 78"
grep -q "no \[\[profile\]\] defined" "${work}/fresh.log" || die "check-config does not say that no profile is defined"

# --- Enrollment against scepserver on loopback --------------------------------------------

phase "enrollment as enroll-agent against scepserver on loopback"
scep="${work}/scep"
mkdir -m 0700 "${scep}"
scepserver ca -init -depot "${scep}/depot" -keySize 2048 -organization "enroll-agent package test CA" -years 1 >/dev/null
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"${scep}/challenge"
install -m 0640 -o root -g "$(in_root getent group enroll-agent | cut -d: -f3)" "${scep}/depot/ca.pem" "${root}/etc/enroll-agent/issuing-ca.pem"
install -m 0640 -o root -g "$(in_root getent group enroll-agent | cut -d: -f3)" "${scep}/challenge" "${root}/etc/enroll-agent/challenge"

# scepserver has no bind address and listens on every interface. The root shares
# this machine's network, so the server and the agent run together in a private
# network namespace with only loopback (when this kernel allows it).
enroll_script="${work}/enroll.sh"
cat >"${enroll_script}" <<'EOF'
set -euo pipefail
scep="$1"; root="$2"
ip link set lo up 2>/dev/null || true
for attempt in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 30000 ))
    SCEP_CHALLENGE_PASSWORD="$(cat "${scep}/challenge")" scepserver -depot "${scep}/depot" -port "${port}" \
        -allowrenew 0 >"${scep}/scepserver.log" 2>&1 &
    server=$!
    for _ in $(seq 1 50); do
        curl -fsS "http://127.0.0.1:${port}/scep?operation=GetCACaps" >/dev/null 2>&1 && break 2
        kill -0 "${server}" 2>/dev/null || break
        sleep 0.1
    done
    kill "${server}" 2>/dev/null || true
    server=""
done
[ -n "${server}" ] || { echo "could not start scepserver:" >&2; cat "${scep}/scepserver.log" >&2; exit 1; }
trap 'status=$?; kill "${server}" 2>/dev/null; wait "${server}" 2>/dev/null || true; exit "${status}"' EXIT

# The package's configuration, with its profile enabled the way its header says,
# then set for this server: a software key (no TPM in the test root).
chroot "${root}" sh -c "$(grep -o "sed -i '.*' /etc/enroll-agent/config.toml" "${root}/etc/enroll-agent/config.toml")"
sed -i \
    -e "s|^scep_url = .*|scep_url = \"http://127.0.0.1:${port}/scep\"|" \
    -e 's|^key_storage = .*|key_storage = "software"|' \
    -e 's|^san_dns = .*|san_dns = ["host01.example.com"]|' \
    -e 's|^source = "endpoint"|source = "file"\nfile = "/etc/enroll-agent/challenge"|' \
    -e '/^url = /d' -e '/^token_file = /d' \
    "${root}/etc/enroll-agent/config.toml"
agent() {
    chroot "${root}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        runuser -u enroll-agent -- enroll-agent "$@"
}
echo "-- check-config"; agent check-config
echo "-- enroll"; agent enroll
echo "-- status"; agent status
EOF
if unshare --net true 2>/dev/null; then
    unshare --net -- bash "${enroll_script}" "${scep}" "${root}"
else
    note "no network namespace here: scepserver listens on this machine's interfaces during the test"
    bash "${enroll_script}" "${scep}" "${root}"
fi
live="${root}/var/lib/enroll-agent/device/live"
openssl verify -CAfile "${scep}/depot/ca.pem" "${live}/cert.pem" || die "the installed certificate does not verify against the test CA"
cmp -s <(openssl x509 -in "${live}/cert.pem" -noout -pubkey) <(openssl pkey -in "${live}/key.pem" -pubout) \
    || die "key.pem does not match cert.pem"
expect_stat /var/lib/enroll-agent/device/live/key.pem "600 enroll-agent:enroll-agent"
serial="$(openssl x509 -in "${live}/cert.pem" -noout -serial)"
note "enrolled: $(openssl x509 -in "${live}/cert.pem" -noout -subject), ${serial}"

# --- Upgrade, remove, purge ------------------------------------------------------------------

phase "upgrade, remove, purge"
# The same package over itself takes the upgrade path (postinst configure <old version>):
# the store and the edited conffile stay.
in_root dpkg -i "/tmp/$(basename "${deb}")" >"${work}/upgrade.log" 2>&1 || { cat "${work}/upgrade.log"; die "reinstalling over itself failed"; }
grep -q "installed but not enabled" "${work}/upgrade.log" && die "the postinst printed the fresh-install text on an upgrade"
[[ "$(openssl x509 -in "${live}/cert.pem" -noout -serial)" == "${serial}" ]] || die "the upgrade changed the live certificate"
grep -q '^key_storage = "software"' "${root}/etc/enroll-agent/config.toml" || die "the upgrade replaced the edited config.toml"
expect_stat /etc/enroll-agent/config.toml "640 root:enroll-agent"

in_root apt-get remove -y enroll-agent >"${work}/remove.log" 2>&1 || { cat "${work}/remove.log"; die "apt-get remove failed"; }
[[ ! -e "${root}/usr/bin/enroll-agent" ]] || die "remove left /usr/bin/enroll-agent"
[[ -f "${live}/cert.pem" && -f "${root}/etc/enroll-agent/config.toml" ]] || die "remove deleted the store or the configuration"
note "remove: binary gone, store and configuration kept"

in_root apt-get purge -y enroll-agent >"${work}/purge.log" 2>&1 || { cat "${work}/purge.log"; die "apt-get purge failed"; }
[[ ! -e "${root}/var/lib/enroll-agent" && ! -e "${root}/etc/enroll-agent" ]] || die "purge left /var/lib/enroll-agent or /etc/enroll-agent"
# Then every package the install pulled in (not autoremove: it keeps what an installed
# package recommends), so that what is left over can only be ours.
in_root dpkg-query -W -f='${Package}\n' | LC_ALL=C sort >"${work}/packages-after"
pulled_in=($(comm -13 "${work}/packages-before" "${work}/packages-after"))
note "purge: store and configuration gone; purging the ${#pulled_in[@]} packages the install pulled in: ${pulled_in[*]}"
if [[ ${#pulled_in[@]} -gt 0 ]]; then
    in_root apt-get purge -y "${pulled_in[@]}" >"${work}/purge-dependencies.log" 2>&1 \
        || { cat "${work}/purge-dependencies.log"; die "purging the dependencies failed"; }
fi

file_list >"${work}/files-after"
if ! diff -u "${work}/files-before" "${work}/files-after" >"${work}/files.diff"; then
    cat "${work}/files.diff"
    die "the root after purge differs from the root before the install (diff above)"
fi
note "after purging it and what it pulled in, the root holds exactly the files it held before ($(wc -l <"${work}/files-after") paths)"
if in_root getent passwd enroll-agent >/dev/null; then
    note "the enroll-agent user and group remain, as Debian policy has it (system accounts are not removed)"
fi

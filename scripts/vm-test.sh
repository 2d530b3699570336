#!/usr/bin/env bash
# The real-host test (issue 14): the Debian package on a Debian 12 machine where
# systemd is PID 1, the key is made by a TPM through the kernel's resource manager
# (/dev/tpmrm0, the default TCTI), and the hardened units run as packaged.
#
#   sudo scripts/vm-test.sh
#
# 1. packaging/build-deb.sh builds the package twice: revision 1, and revision 2
#    (the same binary rebuilt) for the upgrade;
# 2. a bookworm image from debootstrap with its kernel, systemd, tpm-udev, the
#    tpm2 provider and the package's dependencies from the archive (cached under
#    /var/cache/enroll-agent-ci/ as a tarball), made into an ext4 image with
#    `mke2fs -d` (no loop mount), with micromdm scepserver (a static binary) and
#    tests/vm/guest.sh, run at boot by a oneshot unit;
# 3. boot 1 under qemu (TCG: KVM does not boot guests on these machines; no
#    network) with a vTPM from swtpm (tpm-crb): the daemon enrolls with a TPM key,
#    reload, watchdog, stop, timer, upgrade, remove and purge (tests/vm/guest.sh);
# 4. boot 2 of the same image without a TPM: tpm-preferred falls back to a
#    software key and says so.
# The guest writes its results into the image; debugfs reads them back.
#
# Under CI=true an unreachable Debian archive or a VM that does not start fails the
# test; elsewhere an unreachable archive is reported and the test is skipped.
# KEEP_ROOT=1 keeps the work directory (image, console logs) for a look after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/debian-root.sh

test_name="the VM test"
die() { echo "vm-test: FAIL: $*" >&2; exit 1; }
note() { echo "vm-test: $*"; }

[[ "$(id -u)" -eq 0 ]] || die "run as root (debootstrap and the image need it)"

work=""
swtpm_pid=""
cleanup() {
    local status=$?
    set +e
    [[ -n "${swtpm_pid}" ]] && kill "${swtpm_pid}" 2>/dev/null && wait "${swtpm_pid}" 2>/dev/null
    if [[ -n "${work}" ]]; then
        if [[ "${KEEP_ROOT:-}" == 1 ]]; then note "kept ${work}"; else rm -rf --one-file-system "${work}"; fi
    fi
    print_timings
    if [[ ${status} -eq 0 ]]; then echo "vm-test: PASS"; else echo "vm-test: FAIL (exit ${status})" >&2; fi
    exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase "tools"
install_missing_packages debootstrap dpkg-dev binutils zstd scep curl qemu-system-x86 e2fsprogs swtpm python3
command -v swift >/dev/null || die "swift is not on PATH"
work="$(mktemp -d /var/tmp/enroll-agent-vm-test.XXXXXX)"

phase "build the package, revision 1 and its rebuild as revision 2"
deb1="$(packaging/build-deb.sh --output "${work}/dist")"
deb2="$(packaging/build-deb.sh --revision 2 --output "${work}/dist")"
[[ -f "${deb1}" && -f "${deb2}" && "${deb1}" != "${deb2}" ]] || die "build-deb.sh did not make two packages"
note "$(basename "${deb1}"), $(basename "${deb2}")"

phase "VM image (debootstrap, cached in ${debian_cache_dir})"
vm_include="systemd,systemd-sysv,udev,linux-image-amd64,openssl,tpm-udev,tpm2-openssl,$(deb_dependency_names "${deb1}")"
debian_root_tarball vm "${vm_include}" "${work}"
vm_root="${work}/vm-root"
mkdir -p "${vm_root}"
zstd -q -dc "${debian_root}" | tar -C "${vm_root}" --numeric-owner --xattrs -xf -
install -m 0644 "${deb1}" "${deb2}" "${vm_root}/root/"
install -m 0755 tests/vm/guest.sh "${vm_root}/root/vm-guest.sh"
install -m 0755 "$(command -v scepserver)" "${vm_root}/usr/local/bin/scepserver"
cat >"${vm_root}/etc/systemd/system/vm-test.service" <<'UNIT'
[Unit]
Description=enroll-agent real-host test (tests/vm/guest.sh)
After=multi-user.target
[Service]
Type=oneshot
TimeoutStartSec=infinity
ExecStart=/root/vm-guest.sh
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/vm-test.service "${vm_root}/etc/systemd/system/multi-user.target.wants/vm-test.service"
# The serial getty's vhangup would cut off the console; the guest writes files instead.
ln -sf /dev/null "${vm_root}/etc/systemd/system/serial-getty@ttyS0.service"
echo "/dev/vda / ext4 rw 0 1" >"${vm_root}/etc/fstab"
echo enroll-agent-vm >"${vm_root}/etc/hostname"
kernel="$(ls "${vm_root}"/boot/vmlinuz-* | tail -1)"
initrd="$(ls "${vm_root}"/boot/initrd.img-* | tail -1)"
cp "${kernel}" "${work}/vmlinuz"
cp "${initrd}" "${work}/initrd.img"
mke2fs -q -t ext4 -d "${vm_root}" "${work}/vm.ext4" 3G
rm -rf --one-file-system "${vm_root}"

# boot NAME [qemu arguments...]: boots the image with enroll_agent_vm=NAME, waits for
# the guest to power off, prints its results and fails unless they end in GUEST-PASS.
boot() {
    local name="$1"; shift
    local started elapsed
    started="$(date +%s.%N)"
    if ! timeout 900 qemu-system-x86_64 -accel tcg -cpu max -m 1536 -smp 2 -nographic -nic none -no-reboot \
        -kernel "${work}/vmlinuz" -initrd "${work}/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 quiet enroll_agent_vm=${name}" \
        -drive file="${work}/vm.ext4",if=virtio,format=raw "$@" >"${work}/console-${name}.log" 2>&1; then
        tail -40 "${work}/console-${name}.log"
        die "boot ${name}: qemu failed or the guest did not power off within 15 minutes (console above)"
    fi
    elapsed="$(awk -v now="$(date +%s.%N)" -v then="${started}" 'BEGIN { printf "%.1f", now - then }')"
    debugfs -R "cat /root/results-${name}.txt" "${work}/vm.ext4" >"${work}/results-${name}.txt" 2>/dev/null || true
    sed 's/^/  guest: /' "${work}/results-${name}.txt"
    if ! grep -q '^GUEST-PASS' "${work}/results-${name}.txt"; then
        [[ -s "${work}/results-${name}.txt" ]] || tail -40 "${work}/console-${name}.log"
        die "boot ${name}: the checks in the VM failed (results above)"
    fi
    note "boot ${name}: ${elapsed} s from qemu start to power-off"
}

phase "boot 1: vTPM (swtpm, tpm-crb), the daemon with a TPM key"
mkdir -m 0700 "${work}/vtpm"
swtpm socket --tpm2 --tpmstate dir="${work}/vtpm" --ctrl type=unixio,path="${work}/vtpm/ctrl.sock" \
    --log file="${work}/vtpm/swtpm.log",level=1 &
swtpm_pid=$!
for _ in $(seq 1 50); do [[ -S "${work}/vtpm/ctrl.sock" ]] && break; sleep 0.1; done
[[ -S "${work}/vtpm/ctrl.sock" ]] || die "swtpm did not create its control socket"
boot tpm -chardev socket,id=chrtpm,path="${work}/vtpm/ctrl.sock" \
    -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0
# swtpm ends by itself when qemu shuts the vTPM down; kill it if it has not.
kill "${swtpm_pid}" 2>/dev/null || true
wait "${swtpm_pid}" 2>/dev/null || true
swtpm_pid=""

phase "boot 2: no TPM, tpm-preferred falls back to a software key"
boot notpm

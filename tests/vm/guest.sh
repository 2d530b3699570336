#!/bin/bash
# The guest half of scripts/vm-test.sh. A oneshot unit runs it at boot inside a
# Debian 12 VM where systemd is PID 1; the kernel command line says which boot
# this is (enroll_agent_vm=tpm: a vTPM from swtpm, /dev/tpmrm0 through the
# kernel's resource manager; enroll_agent_vm=notpm: no TPM at all). It writes
# /root/results-<boot>.txt, which the host reads back from the disk image with
# debugfs, and powers the VM off. "GUEST-PASS" at the end means every check held.
#
# In the VM: /root/enroll-agent_*-1_amd64.deb and its rebuild *-2_amd64.deb,
# /usr/local/bin/scepserver (micromdm, static), no network but loopback.
boot="$(sed -n 's/.*enroll_agent_vm=\([a-z]*\).*/\1/p' /proc/cmdline)"
exec >"/root/results-${boot:-unknown}.txt" 2>&1
set -u

readonly store=/var/lib/enroll-agent
readonly scep=/root/scep

# poweroff.target through systemd's private socket: the image has no D-Bus.
finish() { sync; systemctl start --no-block --job-mode=replace-irreversibly poweroff.target || echo o >/proc/sysrq-trigger; exit "$1"; }
fail() {
    echo "GUEST-FAIL: $*"
    echo "-- journalctl -u enroll-agent -u enroll-agent-renew"
    journalctl -u enroll-agent -u enroll-agent-renew --no-pager -o short-monotonic | tail -60
    finish 1
}
note() { echo "$*"; }
uptime_seconds() { cut -d' ' -f1 /proc/uptime; }
# wait_for SECONDS COMMAND...: true once COMMAND is, false if it is not within SECONDS.
wait_for() {
    local seconds="$1"; shift
    local tick
    for tick in $(seq 1 "${seconds}"); do
        "$@" && return 0
        sleep 1
    done
    "$@"
}
agent() { runuser -u enroll-agent -- enroll-agent "$@"; }
# is_state UNIT STATE: systemctl is-active says STATE (for wait_for, which re-runs it).
is_state() { [ "$(systemctl is-active "$1")" = "$2" ]; }
main_pid() { systemctl show -p MainPID --value enroll-agent.service; }
serial_of() { openssl x509 -in "${store}/$1/live/cert.pem" -noout -serial; }
# The unit's journal lines at priority err or worse (journald keeps the agent's <N> prefixes).
journal_errors() { journalctl -u "$1" -p err -q --no-pager -o cat; }

# Nothing at err or worse from UNIT, and no libdispatch "Failed to set thread priority"
# line from it. libdispatch logs through syslog, and journald cannot always tell the unit
# of a short-lived sender, so the whole journal is searched too, for errno=1: EPERM is
# what a system call filter answers. (A CLI run by an unprivileged user, as this script
# does with runuser, logs one line with errno=13: it may not lower a thread's nice value.)
check_journal_clean() {
    local unit="$1" errors
    errors="$(journal_errors "${unit}")"
    [ -z "${errors}" ] || fail "journalctl -u ${unit} -p err is not empty: ${errors}"
    if journalctl -u "${unit}" -q --no-pager -o cat | grep -i 'thread priority'; then
        fail "libdispatch's thread priority lines are in the journal of ${unit}"
    fi
    if journalctl -b -q --no-pager -o cat | grep -i 'thread priority.*errno=1$'; then
        fail "libdispatch's thread priority lines with EPERM (a system call filter) are in the journal (checking ${unit})"
    fi
}

# The control for check_journal_clean: the same binary in a unit that refuses
# setpriority(2), as the packaged units did before they allowed it, does log
# libdispatch's lines, so their absence means something.
check_priority_control() {
    local mark count
    mark="$(date +%s)"
    sleep 1
    # A unit file, not systemd-run: that needs D-Bus, which this image does not have.
    cat >/run/systemd/system/vm-test-priority-control.service <<'UNIT'
[Service]
Type=oneshot
User=enroll-agent
SystemCallFilter=~setpriority
SystemCallErrorNumber=EPERM
ExecStart=/usr/bin/enroll-agent status
UNIT
    systemctl daemon-reload
    systemctl start vm-test-priority-control.service
    sleep 2
    count="$(journalctl --since "@${mark}" -q --no-pager -o cat | grep -ci 'thread priority.*errno=1$')"
    [ "${count}" -gt 0 ] || fail "the control (setpriority refused) logged no thread priority line: the journal check proves nothing"
    note "control: with setpriority refused, libdispatch logs ${count} 'Failed to set thread priority' lines; the packaged units log none"
}

# dpkg -i on a host without the package: nothing enabled, nothing started.
install_fresh() {
    local deb="$1"
    dpkg -i "${deb}" >/root/install.log 2>&1 || { cat /root/install.log; fail "dpkg -i ${deb}"; }
    grep -q "installed but not enabled" /root/install.log || fail "the postinst gave no hint how to enable the agent"
    [ "$(systemctl is-enabled enroll-agent.service)" = disabled ] || fail "enroll-agent.service is enabled on install"
    [ "$(systemctl is-enabled enroll-agent-renew.timer)" = disabled ] || fail "the timer is enabled on install"
    systemctl is-active --quiet enroll-agent.service && fail "enroll-agent.service started on install"
    [ "$(stat -c '%a %U:%G' /etc/enroll-agent/config.toml)" = "640 root:enroll-agent" ] \
        || fail "config.toml is $(stat -c '%a %U:%G' /etc/enroll-agent/config.toml), expected 640 root:enroll-agent"
    note "installed $(dpkg-query -W -f='${Version}' enroll-agent): nothing enabled or started"
}

# micromdm scepserver on the guest's loopback, one reusable challenge.
start_scepserver() {
    if [ ! -d "${scep}/depot" ]; then
        mkdir -p "${scep}"
        scepserver ca -init -depot "${scep}/depot" -keySize 2048 -organization "vm test CA" -years 1 >/dev/null
    fi
    SCEP_CHALLENGE_PASSWORD=vmsecret scepserver -depot "${scep}/depot" -port 8080 -allowrenew 0 >"${scep}/log" 2>&1 &
    # The guest has no curl; bash's /dev/tcp tells when the port accepts.
    wait_for 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' 2>/dev/null || fail "scepserver does not listen on 127.0.0.1:8080"
    install -m 0640 -o root -g enroll-agent "${scep}/depot/ca.pem" /etc/enroll-agent/issuing-ca.pem
    printf 'vmsecret\n' >/etc/enroll-agent/challenge
    chown root:enroll-agent /etc/enroll-agent/challenge
    chmod 0640 /etc/enroll-agent/challenge
}

# profile NAME KEY_STORAGE [POST_INSTALL]: one [[profile]] block; the TCTI is the default.
profile() {
    cat <<EOF

[[profile]]
name = "$1"
scep_url = "http://127.0.0.1:8080/scep"
ca_pin_file = "/etc/enroll-agent/issuing-ca.pem"
subject = "CN={{Hostname}}-$1.example.com"
san_dns = ["{{Hostname}}.example.com"]
key_storage = "$2"
post_install = [${3:-}]
[profile.challenge]
source = "file"
file = "/etc/enroll-agent/challenge"
EOF
}

# write_config < PROFILES: the configuration (its mode and owner stay as the package made
# them), then check-config. A pipeline's subshell: the caller fails on its status.
write_config() {
    { echo 'state_dir = "/var/lib/enroll-agent"'; cat; } >/etc/enroll-agent/config.toml
    agent check-config
}

# --- Boot 1: a vTPM, /dev/tpmrm0 through the kernel's resource manager ------------------

boot_with_tpm() {
    udevadm settle
    [ -c /dev/tpmrm0 ] || fail "no /dev/tpmrm0: the guest sees no TPM"
    [ "$(stat -c '%U:%G %a' /dev/tpmrm0)" = "tss:tss 660" ] \
        || fail "/dev/tpmrm0 is $(stat -c '%U:%G %a' /dev/tpmrm0), expected tss:tss 660 (tpm-udev)"
    note "TPM: /dev/tpmrm0 $(stat -c '%U:%G %a' /dev/tpmrm0), $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null || echo '?')"

    install_fresh /root/enroll-agent_*-1_amd64.deb
    start_scepserver
    profile device tpm | write_config || fail "check-config rejects the test configuration"

    # The daemon as packaged: Type=notify, hardened, as user enroll-agent.
    local enabled_at enrolled_at
    enabled_at="$(uptime_seconds)"
    systemctl enable --now enroll-agent.service || fail "systemctl enable --now enroll-agent"
    wait_for 180 test -f "${store}/device/live/cert.pem" || fail "the daemon enrolled nothing within 180 s"
    enrolled_at="$(uptime_seconds)"
    note "BOOT-TO-ENROLLED ${enrolled_at} s (kernel start to the installed certificate)"
    note "ENABLE-TO-ENROLLED $(awk -v a="${enabled_at}" -v b="${enrolled_at}" 'BEGIN { printf "%.1f", b - a }') s"
    systemctl is-active --quiet enroll-agent.service || fail "enroll-agent.service is not active"

    # The key: a TSS2 key the vTPM made, reached through /dev/tpmrm0.
    local status_json
    status_json="$(agent status --json)" || fail "status --json"
    echo "${status_json}"
    echo "${status_json}" | grep -Eq '"state" *: *"valid"' || fail "status --json does not show a valid certificate"
    echo "${status_json}" | grep -Eq '"keyStorage" *: *"tpm"' || fail "status --json does not show a TPM key"
    [ "$(head -1 "${store}/device/live/key.pem")" = "-----BEGIN TSS2 PRIVATE KEY-----" ] || fail "key.pem is not a TSS2 PRIVATE KEY"
    journalctl -u enroll-agent -o cat | grep 'key in the TPM' | grep -q 'tcti=device:/dev/tpmrm0' \
        || fail "the journal does not show the key made through device:/dev/tpmrm0"
    openssl verify -CAfile "${scep}/depot/ca.pem" "${store}/device/live/cert.pem" || fail "the certificate does not verify"
    openssl x509 -in "${store}/device/live/cert.pem" -noout -pubkey >/root/cert-pub.pem
    openssl pkey -provider tpm2 -provider default -in "${store}/device/live/key.pem" -pubout >/root/key-pub.pem \
        || fail "OpenSSL's tpm2 provider cannot load key.pem"
    cmp -s /root/cert-pub.pem /root/key-pub.pem || fail "key.pem's public key is not the certificate's"
    echo "signed in the vTPM by the installed key" | openssl dgst -sha256 -binary >/root/digest
    openssl pkeyutl -provider tpm2 -provider default -sign -inkey "${store}/device/live/key.pem" -pkeyopt digest:sha256 \
        -in /root/digest -out /root/digest.sig || fail "the TPM key does not sign"
    openssl pkeyutl -verify -pubin -inkey /root/cert-pub.pem -pkeyopt digest:sha256 -in /root/digest -sigfile /root/digest.sig \
        || fail "the TPM signature does not verify with the certificate's key"
    note "the pair verifies: the tpm2 provider signs with key.pem, the certificate's key checks it"

    check_journal_clean enroll-agent
    local status_text
    status_text="$(systemctl show -p StatusText --value enroll-agent.service)"
    note "StatusText: ${status_text}"
    case "${status_text}" in
        "watching 1 profile(s)"|"device: next check in "*) ;;
        *) fail "StatusText is '${status_text}', not the agent's STATUS line" ;;
    esac

    # The watchdog: a hook that takes longer than WatchdogSec (10 s in this drop-in,
    # 2 min as packaged) while the daemon keeps pinging.
    mkdir -p /etc/systemd/system/enroll-agent.service.d
    printf '[Service]\nWatchdogSec=10s\n' >/etc/systemd/system/enroll-agent.service.d/vm-test-watchdog.conf
    systemctl daemon-reload
    systemctl restart enroll-agent.service || fail "restart with WatchdogSec=10s"
    [ "$(systemctl show -p WatchdogUSec --value enroll-agent.service)" = 10s ] || fail "the watchdog drop-in is not in effect"
    local pid
    pid="$(main_pid)"
    cat >/usr/local/bin/vm-test-slow-hook <<'EOF'
#!/bin/sh
sleep 25
echo "$ENROLL_AGENT_PROFILE" >/var/lib/enroll-agent/slow-hook-done
EOF
    chmod 0755 /usr/local/bin/vm-test-slow-hook

    # Reload (SIGHUP) with a second profile, whose install runs the slow hook.
    { profile device tpm; profile wifi tpm '"/usr/local/bin/vm-test-slow-hook"'; } | write_config || fail "check-config rejects the test configuration"
    systemctl reload enroll-agent.service || fail "systemctl reload"
    wait_for 180 test -f "${store}/wifi/live/cert.pem" || fail "the reload did not enroll the second profile"
    note "reload: profile wifi enrolled by the running daemon"
    wait_for 60 test -f "${store}/slow-hook-done" || fail "the slow post_install hook did not finish"
    sleep 2
    systemctl is-active --quiet enroll-agent.service || fail "the daemon is not active after the slow hook"
    [ "$(main_pid)" = "${pid}" ] || fail "the daemon was restarted (pid ${pid} -> $(main_pid)) during reload or the hook"
    [ "$(systemctl show -p NRestarts --value enroll-agent.service)" = 0 ] || fail "systemd restarted the daemon"
    journalctl -u enroll-agent -q --no-pager | grep -i 'watchdog timeout' && fail "systemd's watchdog fired"
    note "watchdog: a 25 s hook under WatchdogSec=10s, the daemon kept pid ${pid}"
    status_text="$(systemctl show -p StatusText --value enroll-agent.service)"
    note "StatusText after reload: ${status_text}"
    check_journal_clean enroll-agent

    # Stop: SIGTERM, a clean exit within TimeoutStopSec (10 s).
    local stop_started stop_seconds
    stop_started="$(date +%s.%N)"
    systemctl stop enroll-agent.service
    stop_seconds="$(awk -v a="${stop_started}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    note "STOP ${stop_seconds} s"
    awk -v s="${stop_seconds}" 'BEGIN { exit !(s < 10) }' || fail "systemctl stop took ${stop_seconds} s"
    [ "$(systemctl show -p Result --value enroll-agent.service)" = success ] || fail "stop: Result=$(systemctl show -p Result --value enroll-agent.service)"
    [ "$(systemctl show -p ExecMainStatus --value enroll-agent.service)" = 0 ] || fail "stop: the daemon exited $(systemctl show -p ExecMainStatus --value enroll-agent.service)"
    journalctl -u enroll-agent -o cat | grep -q 'SIGTERM: stopping' || fail "the journal does not show the daemon's SIGTERM"

    # Timer: starting it stops the daemon (Conflicts=); one pass finds nothing due.
    systemctl start enroll-agent.service || fail "start the daemon again"
    systemctl start enroll-agent-renew.timer || fail "start the timer"
    wait_for 20 is_state enroll-agent.service inactive || fail "starting the timer did not stop the daemon"
    [ "$(systemctl is-active enroll-agent-renew.timer)" = active ] || fail "the timer is not active"
    systemctl start enroll-agent-renew.service || fail "enroll-agent-renew.service failed"
    [ "$(systemctl show -p ExecMainStatus --value enroll-agent-renew.service)" = 0 ] || fail "renew exited $(systemctl show -p ExecMainStatus --value enroll-agent-renew.service)"
    journalctl -u enroll-agent-renew -o cat | grep -q 'not due.*profile=device' || fail "the renew pass did not report 'not due'"
    check_journal_clean enroll-agent-renew
    note "timer: Conflicts= stopped the daemon; enroll-agent-renew.service exited 0, nothing due"

    # Upgrade to the rebuilt package: the running daemon restarts, the store stays.
    systemctl start enroll-agent.service || fail "start the daemon before the upgrade"
    wait_for 20 is_state enroll-agent-renew.timer inactive || fail "starting the daemon did not stop the timer"
    local device_serial wifi_serial old_pid
    device_serial="$(serial_of device)"
    wifi_serial="$(serial_of wifi)"
    old_pid="$(main_pid)"
    dpkg -i /root/enroll-agent_*-2_amd64.deb >/root/upgrade.log 2>&1 || { cat /root/upgrade.log; fail "upgrade to revision 2"; }
    cat /root/upgrade.log
    dpkg-query -W -f='${Version}\n' enroll-agent | grep -q -- '-2$' || fail "revision 2 is not installed"
    wait_for 20 systemctl is-active --quiet enroll-agent.service || fail "the daemon is not running after the upgrade"
    [ "$(main_pid)" != "${old_pid}" ] || fail "the upgrade did not restart the daemon"
    [ "$(serial_of device)" = "${device_serial}" ] && [ "$(serial_of wifi)" = "${wifi_serial}" ] || fail "the upgrade changed the store"
    grep -q 'name = "wifi"' /etc/enroll-agent/config.toml || fail "the upgrade replaced the edited config.toml"
    note "upgrade to $(dpkg-query -W -f='${Version}' enroll-agent): daemon restarted (pid ${old_pid} -> $(main_pid)), store and configuration kept"

    check_journal_clean enroll-agent
    check_priority_control

    # Remove, then purge: nothing left behind.
    rm -r /etc/systemd/system/enroll-agent.service.d   # the administrator's own drop-in
    systemctl daemon-reload
    apt-get remove -y enroll-agent >/root/remove.log 2>&1 || { cat /root/remove.log; fail "apt-get remove"; }
    systemctl is-active --quiet enroll-agent.service && fail "the daemon still runs after remove"
    [ -f "${store}/device/live/cert.pem" ] && [ -f /etc/enroll-agent/config.toml ] || fail "remove deleted the store or the configuration"
    apt-get purge -y enroll-agent >/root/purge.log 2>&1 || { cat /root/purge.log; fail "apt-get purge"; }
    [ -e "${store}" ] && fail "purge left ${store}"
    [ -e /etc/enroll-agent ] && fail "purge left /etc/enroll-agent"
    local leftover
    leftover="$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
        /usr/bin /usr/share/man /usr/lib/systemd /lib/systemd -name 'enroll-agent*' 2>/dev/null)"
    [ -z "${leftover}" ] || fail "purge left: ${leftover}"
    note "remove stopped the daemon and kept the store; purge left nothing"
}

# --- Boot 2: no TPM: tpm-preferred falls back to a software key, and says so ------------

boot_without_tpm() {
    udevadm settle
    [ -e /dev/tpmrm0 ] && fail "this boot has no vTPM, yet /dev/tpmrm0 exists"
    install_fresh /root/enroll-agent_*-1_amd64.deb
    start_scepserver
    profile device tpm-preferred | write_config || fail "check-config rejects the test configuration"
    systemctl enable --now enroll-agent.service || fail "systemctl enable --now enroll-agent"
    wait_for 180 test -f "${store}/device/live/cert.pem" || fail "the daemon enrolled nothing within 180 s"
    note "BOOT-TO-ENROLLED $(uptime_seconds) s (software key)"
    [ "$(head -1 "${store}/device/live/key.pem")" = "-----BEGIN PRIVATE KEY-----" ] || fail "key.pem is not a software key"
    agent status --json | grep -Eq '"keyStorage" *: *"software"' || fail "status --json does not show the software key"
    journalctl -u enroll-agent -p warning -o cat | grep 'no usable TPM at device:/dev/tpmrm0' | grep -q 'using a SOFTWARE key' \
        || fail "the journal does not warn about the software fallback"
    journalctl -u enroll-agent -p warning -o cat | grep 'no usable TPM'
    check_journal_clean enroll-agent
    note "tpm-preferred without a TPM: a software key, and a warning in the journal"
}

[ -d /run/systemd/system ] || fail "no running systemd"
case "${boot}" in
    tpm) boot_with_tpm ;;
    notpm) boot_without_tpm ;;
    *) fail "unknown boot '${boot}' on the kernel command line" ;;
esac
echo "GUEST-PASS"
finish 0

#!/bin/sh
# The live-host half of scripts/package-test.sh: runs at boot inside a Debian 12 VM
# with systemd running (a oneshot unit starts it), and checks the maintainer
# scripts' paths a chroot cannot: nothing is enabled or started on install, the
# daemon enrolls once enabled, an upgrade restarts the running daemon and keeps the
# store, remove stops it, purge leaves no unit state behind. It writes
# /root/results.txt, which the host reads back from the disk image, and powers off.
exec >/root/results.txt 2>&1
set -x
finish() { sync; systemctl poweroff || echo o >/proc/sysrq-trigger; exit "$1"; }
fail() { echo "GUEST-FAIL: $*"; finish 1; }
deb=$(ls /root/enroll-agent_*.deb)
[ -d /run/systemd/system ] || fail "no running systemd"

dpkg -i "$deb" > /root/install.log 2>&1 || { cat /root/install.log; fail "dpkg -i"; }
cat /root/install.log
grep -q "installed but not enabled" /root/install.log || fail "no enable hint"
[ "$(systemctl is-enabled enroll-agent.service)" = disabled ] || fail "enabled on install"
[ "$(systemctl is-enabled enroll-agent-renew.timer)" = disabled ] || fail "timer enabled on install"
systemctl is-active enroll-agent.service && fail "started on install"
stat -c '%a %U:%G %n' /etc/enroll-agent /etc/enroll-agent/config.toml /var/lib/enroll-agent

# A SCEP server on the guest's loopback, and the configuration for it.
mkdir -p /root/scep
scepserver ca -init -depot /root/scep/depot -keySize 2048 -organization "vm test CA" -years 1
SCEP_CHALLENGE_PASSWORD=vmsecret scepserver -depot /root/scep/depot -port 8080 -allowrenew 0 >/root/scep/log 2>&1 &
sleep 2   # scepserver listens within a few ms; the guest has no curl to poll it
install -m 0640 -o root -g enroll-agent /root/scep/depot/ca.pem /etc/enroll-agent/issuing-ca.pem
printf 'vmsecret\n' > /etc/enroll-agent/challenge
chown root:enroll-agent /etc/enroll-agent/challenge; chmod 0640 /etc/enroll-agent/challenge
sh -c "$(grep -o "sed -i '.*' /etc/enroll-agent/config.toml" /etc/enroll-agent/config.toml)"
sed -i -e 's|^scep_url = .*|scep_url = "http://127.0.0.1:8080/scep"|' -e 's|^key_storage = .*|key_storage = "software"|' \
    -e 's|^source = "endpoint"|source = "file"\nfile = "/etc/enroll-agent/challenge"|' -e '/^url = /d' -e '/^token_file = /d' \
    /etc/enroll-agent/config.toml
runuser -u enroll-agent -- enroll-agent check-config || fail "check-config"

systemctl enable --now enroll-agent.service || { journalctl -u enroll-agent --no-pager; fail "enable --now"; }
for i in $(seq 1 60); do [ -f /var/lib/enroll-agent/device/live/cert.pem ] && break; sleep 1; done
[ -f /var/lib/enroll-agent/device/live/cert.pem ] || { journalctl -u enroll-agent --no-pager; fail "the daemon enrolled nothing"; }
serial=$(openssl x509 -in /var/lib/enroll-agent/device/live/cert.pem -noout -serial)
pid1=$(systemctl show -p MainPID --value enroll-agent.service)
echo "daemon pid $pid1, $serial"

# Upgrade (the package over itself): a running daemon is restarted, the store kept.
dpkg -i "$deb" > /root/upgrade.log 2>&1 || { cat /root/upgrade.log; fail "upgrade"; }
cat /root/upgrade.log
systemctl is-active enroll-agent.service || fail "daemon not running after upgrade"
pid2=$(systemctl show -p MainPID --value enroll-agent.service)
echo "daemon pid after upgrade $pid2"
[ "$pid1" != "$pid2" ] || fail "daemon not restarted by the upgrade"
[ "$(openssl x509 -in /var/lib/enroll-agent/device/live/cert.pem -noout -serial)" = "$serial" ] || fail "store changed"

# Remove: stopped, store and configuration kept.
dpkg -r enroll-agent || fail "remove"
systemctl is-active enroll-agent.service && fail "daemon still running after remove"
[ -f /var/lib/enroll-agent/device/live/cert.pem ] || fail "remove deleted the store"
[ -f /etc/enroll-agent/config.toml ] || fail "remove deleted the config"

# Purge: store, configuration and the enablement symlink gone.
dpkg -P enroll-agent || fail "purge"
[ -e /var/lib/enroll-agent ] && fail "purge left the store"
[ -e /etc/enroll-agent ] && fail "purge left /etc/enroll-agent"
leftover=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name 'enroll-agent*' 2>/dev/null)
[ -z "$leftover" ] || fail "purge left unit state: $leftover"
echo "GUEST-PASS"
finish 0

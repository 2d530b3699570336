#!/usr/bin/env bash
# Installs the Debian 12 packages enroll-agent builds and tests with.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  libssl-dev libcurl4-openssl-dev libtss2-dev pkg-config   # build: OpenSSL, libcurl, tpm2-tss
  scep                                                     # micromdm scepserver + scepclient (test peer)
  swtpm swtpm-tools tpm2-tools tpm2-openssl                # software TPM + tools (test peer)
  openssl curl iproute2 util-linux faketime hyperfine      # tests, demo, benchmarks
  python3 python3-venv                                     # the NTLM test peer's virtualenv
  tinyproxy                                                # the proxy tests' HTTP proxy
  prometheus-node-exporter                                 # scrapes the metrics_textfile in tests
)

# The NTLM peer of the challenge tests (Tests/Peers/ntlm_challenge_server.py): pyspnego from
# PyPI, an NTLM acceptor that verifies the client's NTLMv2 response, in a virtualenv of its own.
# Tests/EnrollAgentTests/NTLMChallengePeer.swift looks for it here (or $ENROLL_AGENT_NTLM_PYTHON).
install_ntlm_peer() {
  local venv=/var/cache/enroll-agent-tests/ntlm-venv
  "$venv/bin/python" -c 'import spnego' 2>/dev/null && return 0
  if [ "$(id -u)" -ne 0 ] && ! mkdir -p "$venv" 2>/dev/null; then
    echo "not root: skipping the NTLM test peer (set ENROLL_AGENT_NTLM_PYTHON to a python with pyspnego)" >&2
    return 0
  fi
  echo "installing the NTLM test peer (pyspnego) into $venv" >&2
  # Debian's python3 (python3-venv is installed above); another python3 on PATH may lack venv.
  local python=python3
  [ -x /usr/bin/python3 ] && python=/usr/bin/python3
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q 'pyspnego==0.12.*'
}
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
install_ntlm_peer

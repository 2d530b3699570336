#!/usr/bin/env bash
# Installs the Debian 12 packages enroll-agent builds and tests with.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  libssl-dev libcurl4-openssl-dev libtss2-dev pkg-config   # build: OpenSSL, libcurl, tpm2-tss
  scep                                                     # micromdm scepserver + scepclient (test peer)
  swtpm swtpm-tools tpm2-tools tpm2-openssl                # software TPM + tools (test peer)
  openssl curl iproute2 util-linux faketime hyperfine      # tests, demo, benchmarks
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null

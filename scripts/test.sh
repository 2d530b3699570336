#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test
# against the real peers (micromdm scepserver, swtpm) on loopback.
# Under CI=true a test whose peer is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build --build-tests

# scepserver has no bind-address option and listens on every interface. When we
# can (root, unshare), run the tests in a private network namespace that has
# only loopback, so the test servers are unreachable from outside.
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  exec unshare --net -- bash -c 'ip link set lo up && exec swift test --skip-build "$@"' _ "$@"
fi
exec swift test --skip-build "$@"

#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test
# against the real peers (micromdm scepserver, swtpm) on loopback. Then the
# binary-level tests run again against a release build: optimisation has
# exposed bugs a debug build hid (a C buffer freed too early).
# Under CI=true a test whose peer is missing fails instead of skipping.
#
#   scripts/test.sh                  # everything
#   scripts/test.sh --filter Daemon  # arguments go to `swift test` (debug run only)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build --build-tests
# The release build packaging/build-deb.sh ships (static Swift runtime, bind-now, no RUNPATH),
# so the binary-level tests below run the binary users install, and the package test
# (scripts/package-test.sh) finds it built.
swift build -c release --static-swift-stdlib -Xlinker -z -Xlinker now --disable-local-rpath --product enroll-agent

# scepserver has no bind-address option and listens on every interface. When we
# can (root, unshare), run the tests in a private network namespace that has
# only loopback, so the test servers are unreachable from outside.
run_isolated() {
  if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
    unshare --net -- bash -c 'ip link set lo up && exec "$@"' _ "$@"
  else
    "$@"
  fi
}

run_isolated swift test --skip-build "$@"
if [ $# -eq 0 ]; then
  echo "== binary-level tests against the release build (the one the package ships)"
  ENROLL_AGENT_BINARY="$PWD/.build/release/enroll-agent" run_isolated swift test --skip-build \
    --filter 'UnattendedEndToEndTests|DaemonTests|TPMEnrollmentTests|ConcurrencyTests|HelpGoldenTests|ChallengeSourceEndToEndTests'
fi

#!/usr/bin/env bash
# Fleet simulation (issue 5): builds the FleetSimulation benchmark in release mode and prints the
# spread of renewal requests from N agents whose certificates were issued at the same instant.
#
# Usage: benchmarks/fleet-simulation.sh [--save] [FleetSimulation options...]
#   --save      also write the output to benchmarks/results/fleet-simulation.txt
#   options     passed through: --hosts N --seed N --failure-rate F --buckets N
# Environment: PACKAGE_DIR  the Swift package to build (default: the repository root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package="${PACKAGE_DIR:-$(dirname "$here")}"

save=false
if [[ "${1:-}" == "--save" ]]; then
    save=true
    shift
fi

swift build -c release --product FleetSimulation --package-path "$package" >&2
binary="$(swift build -c release --show-bin-path --package-path "$package")/FleetSimulation"

if $save; then
    mkdir -p "$here/results"
    "$binary" "$@" | tee "$here/results/fleet-simulation.txt"
    echo "wrote $here/results/fleet-simulation.txt" >&2
else
    "$binary" "$@"
fi

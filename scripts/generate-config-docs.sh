#!/usr/bin/env bash
# Regenerates what the configuration key table documents: packaging/config.example.toml and
# the key table in README.md (between its markers). ConfigReferenceTests fails until this ran.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product enroll-agent >/dev/null
agent=.build/debug/enroll-agent
"$agent" config-keys --format example > packaging/config.example.toml
table=$(mktemp)
trap 'rm -f "$table"' EXIT
"$agent" config-keys --format markdown > "$table"
python3 - "$table" <<'PY'
import sys
table = open(sys.argv[1]).read()
text = open("README.md").read()
begin = text.index("<!-- config-keys:")
end_marker = "<!-- end of config-keys -->\n"
end = text.index(end_marker) + len(end_marker)
open("README.md", "w").write(text[:begin] + table + text[end:])
PY
echo "regenerated packaging/config.example.toml and the README key table"

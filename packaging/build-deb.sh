#!/usr/bin/env bash
# Builds the Debian package dist/enroll-agent_<version>-<revision>_amd64.deb from a
# release build with the Swift runtime linked statically, so that the package
# needs only Debian's own libraries (Depends computed by dpkg-shlibdeps).
#
#   packaging/build-deb.sh                  # swift build, then the package
#   packaging/build-deb.sh --binary PATH    # package an existing release binary
#
# Options:
#   --binary PATH     skip the build; PATH must be built with --static-swift-stdlib
#   --revision N      Debian revision (default 1): version <agent --version>-N
#   --output DIR      where the .deb goes (default: dist/)
#
# Needs dpkg-dev (dpkg-shlibdeps), binutils (strip), gzip, and the Swift toolchain
# for the build and for argument-parser's generate-manual tool (built once into
# .build/generate-manual, offline, from the checkout SwiftPM already fetched).
# The staging happens in a temporary directory; nothing under debian/ is written
# into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root="$(pwd)"

binary=""
revision="${DEB_REVISION:-1}"
output_dir="${repo_root}/dist"
maintainer="${DEB_MAINTAINER:-enroll-agent dev <dev@enroll-agent.invalid>}"

die() { echo "build-deb.sh: error: $*" >&2; exit 1; }
note() { echo "build-deb.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) [[ $# -ge 2 ]] || die "--binary needs a path"; binary="$2"; shift 2 ;;
        --revision) [[ $# -ge 2 ]] || die "--revision needs a number"; revision="$2"; shift 2 ;;
        --output) [[ $# -ge 2 ]] || die "--output needs a directory"; output_dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

for tool in dpkg-deb dpkg-shlibdeps strip readelf gzip ldd python3; do
    command -v "${tool}" >/dev/null || die "${tool} is missing (apt-get install dpkg-dev binutils gzip python3)"
done
[[ "$(dpkg --print-architecture)" == amd64 ]] || die "this script builds amd64 packages only"

# --- The binary ---------------------------------------------------------------

# -z now (with the default relro): the GOT read-only after start, as Debian's
# hardening flags make it (lintian: hardening-no-bindnow). No RUNPATH $ORIGIN:
# /usr/bin is no place to look for libraries.
swift_flags=(-c release --static-swift-stdlib -Xlinker -z -Xlinker now --disable-local-rpath --product enroll-agent)
if [[ -z "${binary}" ]]; then
    command -v swift >/dev/null || die "swift is not on PATH"
    note "swift build ${swift_flags[*]}"
    swift build "${swift_flags[@]}" >&2
    binary="$(swift build "${swift_flags[@]}" --show-bin-path)/enroll-agent"
fi
[[ -x "${binary}" ]] || die "no executable at ${binary}"

# The package must run on a Debian host without the toolchain: every library the
# binary loads must resolve, and none may come from the toolchain (a build without
# --static-swift-stdlib loads libswiftCore.so and friends from it).
toolchain_dir=""
if command -v swift >/dev/null; then
    toolchain_dir="$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")"
fi
libraries="$(ldd "${binary}")" || die "ldd ${binary} failed"
if grep -q 'not found' <<<"${libraries}"; then
    die "${binary} needs libraries that are not installed:"$'\n'"$(grep 'not found' <<<"${libraries}")"
fi
from_toolchain="$(grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|/opt/swift' <<<"${libraries}" || true)"
if [[ -n "${toolchain_dir}" && "${toolchain_dir}" != / ]]; then
    from_toolchain+="$(grep -F "${toolchain_dir}/" <<<"${libraries}" || true)"
fi
[[ -z "${from_toolchain}" ]] || die "${binary} loads libraries from the Swift toolchain (build with --static-swift-stdlib):"$'\n'"${from_toolchain}"
if readelf -d "${binary}" | grep -qE '\((RPATH|RUNPATH)\)'; then
    die "${binary} has an RPATH/RUNPATH (build with --disable-local-rpath): $(readelf -d "${binary}" | grep -E 'RPATH|RUNPATH')"
fi

version_line="$("${binary}" --version)"
upstream_version="${version_line##* }"
[[ "${upstream_version}" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "unexpected version '${version_line}' from ${binary} --version"
version="${upstream_version}-${revision}"
package="enroll-agent_${version}_amd64.deb"

# Reproducible: every date comes from the last commit.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    SOURCE_DATE_EPOCH="$(git -C "${repo_root}" log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH
commit="$(git -C "${repo_root}" rev-parse --short HEAD 2>/dev/null || echo unknown)"

work="$(mktemp -d "${TMPDIR:-/tmp}/enroll-agent-deb.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
# The staging root where dpkg-shlibdeps expects a package's files: debian/<package>/.
root="${work}/source/debian/enroll-agent"
mkdir -p "${root}"

# Stripped as lintian expects (dh_strip's options); the symbols are not shipped.
install -m 0755 "${binary}" "${work}/enroll-agent"
strip --remove-section=.comment --remove-section=.note "${work}/enroll-agent"
"${work}/enroll-agent" --version >/dev/null || die "the stripped binary does not run"

# --- Files: what install.sh installs, staged ---------------------------------

DESTDIR="${root}" packaging/install.sh --binary "${work}/enroll-agent" --prefix /usr \
    --unitdir /lib/systemd/system >/dev/null

doc_dir="${root}/usr/share/doc/enroll-agent"
agent="${root}/usr/bin/enroll-agent"

# Manual pages: enroll-agent(8) from argument-parser's help through its
# generate-manual tool (built from the checkout, so it works offline), with the
# exit codes of the README's table instead of the tool's generic ".Ex -std";
# enroll-agent.toml(5) from the agent's configuration key table.
generate_manual_scratch="${repo_root}/.build/generate-manual"
generate_manual="${generate_manual_scratch}/debug/generate-manual"
if [[ ! -x "${generate_manual}" ]]; then
    parser_checkout="${repo_root}/.build/checkouts/swift-argument-parser"
    [[ -f "${parser_checkout}/Package.swift" ]] || die "no ${parser_checkout}: run swift build first"
    note "building argument-parser's generate-manual (once)"
    swift build --package-path "${parser_checkout}" --scratch-path "${generate_manual_scratch}" \
        --product generate-manual >&2
fi
install -d -m 0755 "${root}/usr/share/man/man8" "${root}/usr/share/man/man5"
manual_date="$(date -u -d "@${SOURCE_DATE_EPOCH}" +%Y-%m-%d)"
"${generate_manual}" "${agent}" --section 8 --date "${manual_date}" --output-directory "${work}"
[[ -f "${work}/enroll-agent.8" ]] || die "generate-manual wrote no enroll-agent.8"
python3 - "${work}/enroll-agent.8" README.md <<'PY'
import re, sys
page_path, readme_path = sys.argv[1], sys.argv[2]
page = open(page_path).read()
readme = open(readme_path).read()

def text(s):
    # README markdown to mdoc text: code spans lose their backticks, the dash is \(em.
    return s.replace("\\", "\\e").replace("`", "").replace("\u2014", "\\(em")

section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)
if len(rows) < 10:
    sys.exit("build-deb.sh: the README's exit code table has %d rows" % len(rows))
exit_status = ["The exit codes are those of sysexits(3):", ".Bl -tag -width 4n"]
for code, meaning in rows:
    exit_status += [".It %s" % code, text(meaning)]
exit_status.append(".El")

files = [".Sh FILES", ".Bl -tag -width Ds",
         ".It Pa /etc/enroll-agent/config.toml",
         "the configuration, see",
         ".Xr enroll-agent.toml 5",
         ".It Pa /var/lib/enroll-agent/",
         "the store: one folder per profile, the live certificate and key in",
         ".Pa <profile>/live/",
         ".It Pa /lib/systemd/system/enroll-agent.service",
         "the daemon",
         ".Pq Cm run ;",
         ".It Pa /lib/systemd/system/enroll-agent-renew.timer",
         "or a renewal run twice a day",
         ".Pq Cm renew ;",
         "enable one of the two, not both",
         ".It Pa /usr/share/doc/enroll-agent/config.example.toml",
         "every key with an example",
         ".El"]
see_also = [".Sh SEE ALSO", ".Xr enroll-agent.toml 5 ,", ".Xr systemctl 1 ,", ".Xr journalctl 1"]

marker = ".Sh \"EXIT STATUS\""
if marker not in page:
    marker = ".Sh EXIT STATUS"
if marker not in page or ".Ex -std" not in page:
    sys.exit("build-deb.sh: generate-manual's page has no EXIT STATUS section to fill")
head, tail = page.split(marker, 1)
tail = tail.replace(".Ex -std", "\n".join(exit_status), 1)
# FILES comes before EXIT STATUS, SEE ALSO after it (mdoc(7)'s order).
parts = re.split(r"(?m)^(?=\.Sh )", tail, maxsplit=1)
rest = parts[1] if len(parts) > 1 else ""
page = head + "\n".join(files) + "\n" + marker + parts[0].rstrip("\n") + "\n" + "\n".join(see_also) + "\n" + rest
open(page_path, "w").write(page)
PY
gzip -9n -c "${work}/enroll-agent.8" >"${root}/usr/share/man/man8/enroll-agent.8.gz"
"${agent}" config-keys --format man | gzip -9n >"${root}/usr/share/man/man5/enroll-agent.toml.5.gz"

# Shell completions, from argument-parser.
install -d -m 0755 "${root}/usr/share/bash-completion/completions" \
    "${root}/usr/share/zsh/vendor-completions" "${root}/usr/share/fish/vendor_completions.d"
# bash-completion sources its files: no "#!" line (lintian: bash-completion-with-hashbang).
"${agent}" --generate-completion-script bash | sed '1{/^#!/d}' >"${root}/usr/share/bash-completion/completions/enroll-agent"
"${agent}" --generate-completion-script zsh >"${root}/usr/share/zsh/vendor-completions/_enroll-agent"
"${agent}" --generate-completion-script fish >"${root}/usr/share/fish/vendor_completions.d/enroll-agent.fish"
chmod 0644 "${root}/usr/share/bash-completion/completions/enroll-agent" \
    "${root}/usr/share/zsh/vendor-completions/_enroll-agent" "${root}/usr/share/fish/vendor_completions.d/enroll-agent.fish"

# copyright and changelog.Debian.
install -m 0644 packaging/debian/copyright "${doc_dir}/copyright"
changelog_date="$(date -u -R -d "@${SOURCE_DATE_EPOCH}")"
cat >"${work}/changelog.Debian" <<EOF
enroll-agent (${version}) bookworm; urgency=medium

  * Built from commit ${commit} with packaging/build-deb.sh.

 -- ${maintainer}  ${changelog_date}
EOF
gzip -9n -c "${work}/changelog.Debian" >"${doc_dir}/changelog.Debian.gz"
install -d -m 0755 "${root}/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "${root}/usr/share/lintian/overrides/enroll-agent"

# --- Control ------------------------------------------------------------------

# dpkg-shlibdeps wants a source tree with debian/control, and the files in
# debian/<package>/ next to its DEBIAN/; the staging root is that.
install -d -m 0755 "${root}/DEBIAN"
cat >"${work}/source/debian/control" <<EOF
Source: enroll-agent
Maintainer: ${maintainer}

Package: enroll-agent
Architecture: amd64
EOF
shlib_depends="$(cd "${work}/source" && dpkg-shlibdeps -O -edebian/enroll-agent/usr/bin/enroll-agent)"
shlib_depends="${shlib_depends#shlibs:Depends=}"
[[ -n "${shlib_depends}" ]] || die "dpkg-shlibdeps found no dependencies"
# systemd-sysusers and systemd-tmpfiles run in the postinst; the units need systemd,
# and enroll-agent.service's ExecReload= runs /bin/kill, which is procps's (present on
# any standard install, absent from a minimal root: systemd-analyze verify says so).
depends="${shlib_depends}, procps, systemd"

for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/${script}" "${root}/DEBIAN/${script}"
done
# Every file under /etc is a conffile: only config.toml.
(cd "${root}" && find etc -type f -printf '/%p\n' | sort) >"${root}/DEBIAN/conffiles"
chmod 0644 "${root}/DEBIAN/conffiles"
(cd "${root}" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 md5sum) >"${root}/DEBIAN/md5sums"
chmod 0644 "${root}/DEBIAN/md5sums"
# As dpkg-gencontrol counts it: each file's size in KiB rounded up, 1 for anything else.
installed_size="$(cd "${root}" && find . -path ./DEBIAN -prune -o ! -path . -printf '%y %s\n' \
    | awk '{ total += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print total }')"

cat >"${root}/DEBIAN/control" <<EOF
Package: enroll-agent
Version: ${version}
Architecture: amd64
Maintainer: ${maintainer}
Installed-Size: ${installed_size}
Depends: ${depends}
Suggests: tpm2-openssl
Section: admin
Priority: optional
Description: SCEP certificate enrollment agent with TPM-backed keys
 enroll-agent gets a client certificate onto a Linux host the way an MDM does
 for Windows and macOS devices, and keeps it valid. It fetches a one-time SCEP
 challenge from a management endpoint, a file or a command, creates the key
 pair inside the TPM (a software key only where the profile allows it),
 enrolls over SCEP (RFC 8894), verifies every reply against a pinned CA,
 installs key and certificate atomically and renews them before they expire.
 .
 It runs as a hardened systemd service or from a timer. Nothing is enabled on
 installation: define a profile in /etc/enroll-agent/config.toml first.
EOF
chmod 0644 "${root}/DEBIAN/control"

# Modes independent of the umask: directories 0755 and files 0644 but the
# programs. /etc/enroll-agent and config.toml too: the postinst's systemd-tmpfiles
# makes them root:enroll-agent 0750/0640 (the group does not exist when dpkg
# unpacks), and until then config.toml holds only the packaged text, which is
# public. dpkg keeps an edited config.toml, mode included, on upgrades.
find "${root}" -type d -exec chmod 0755 {} +
find "${root}" -type f -exec chmod 0644 {} +
chmod 0755 "${root}/usr/bin/enroll-agent" "${root}/DEBIAN/postinst" "${root}/DEBIAN/prerm" "${root}/DEBIAN/postrm"

mkdir -p "${output_dir}"
dpkg-deb --root-owner-group -Zxz --build "${root}" "${output_dir}/${package}" >&2
echo "${output_dir}/${package}"

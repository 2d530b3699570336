#!/usr/bin/env bash
# Installs enroll-agent: the binary, the systemd units, the service account and
# /etc/enroll-agent with a configuration whose profile is commented out (never
# overwriting one), so nothing is enrolled until the admin defines a profile.
#
#   sudo packaging/install.sh [--binary PATH] [--prefix DIR] [--dry-run]
#   DESTDIR=/tmp/pkgroot packaging/install.sh --prefix /usr    # packaging
#
# Idempotent: running it again updates the binary and the units and leaves the
# configuration, the account and the store alone.
#
# With DESTDIR set (staging for a package) it only copies files: no account is
# created, nothing is chowned, systemd is not told. The package's maintainer
# scripts then run `systemd-sysusers enroll-agent.conf`,
# `systemd-tmpfiles --create enroll-agent.conf` and `systemctl daemon-reload`
# (packaging/build-deb.sh stages the Debian package this way).
set -euo pipefail

readonly service_user="enroll-agent"
readonly tpm_group="tss"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"

binary="${repo_root}/.build/release/enroll-agent"
prefix="/usr/local"
sysconfdir="/etc"
statedir="/var/lib/enroll-agent"
unitdir=""
dry_run=false
destdir="${DESTDIR:-}"

usage() {
    cat <<EOF
Usage: $(basename "$0") [OPTIONS] [BINARY]

Install enroll-agent (run as root unless DESTDIR is set).

  BINARY, --binary PATH  the release binary
                         (default: ${repo_root}/.build/release/enroll-agent;
                         build it with: swift build -c release --static-swift-stdlib)
  --prefix DIR           installation prefix (default: /usr/local): the binary
                         goes to DIR/bin, the units to DIR/lib/systemd/system,
                         the sysusers and tmpfiles files to
                         DIR/lib/sysusers.d and DIR/lib/tmpfiles.d
  --unitdir DIR          where the units go (default: PREFIX/lib/systemd/system)
  --sysconfdir DIR       configuration root (default: /etc)
  --dry-run              print what would be done, change nothing
  -h, --help             this help

Environment:
  DESTDIR                stage the files under this directory (for packages);
                         skips account creation, ownership and systemctl.
EOF
}

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

note() {
    echo "install.sh: $*"
}

# Runs a command, or only prints it with --dry-run.
run() {
    if "${dry_run}"; then
        printf '+ %s\n' "$*"
    else
        "$@"
    fi
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) [[ $# -ge 2 ]] || die "--binary needs a path"; binary="$2"; shift 2 ;;
        --binary=*) binary="${1#*=}"; shift ;;
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --unitdir) [[ $# -ge 2 ]] || die "--unitdir needs a directory"; unitdir="$2"; shift 2 ;;
        --unitdir=*) unitdir="${1#*=}"; shift ;;
        --sysconfdir) [[ $# -ge 2 ]] || die "--sysconfdir needs a directory"; sysconfdir="$2"; shift 2 ;;
        --sysconfdir=*) sysconfdir="${1#*=}"; shift ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *) binary="$1"; shift ;;
    esac
done

[[ "${prefix}" == /* ]] || die "--prefix must be an absolute path, got '${prefix}'"
[[ "${sysconfdir}" == /* ]] || die "--sysconfdir must be an absolute path, got '${sysconfdir}'"
prefix="${prefix%/}"
sysconfdir="${sysconfdir%/}"
[[ -n "${unitdir}" ]] || unitdir="${prefix}/lib/systemd/system"
[[ "${unitdir}" == /* ]] || die "--unitdir must be an absolute path, got '${unitdir}'"
destdir="${destdir%/}"

# Installed paths (as seen on the target system) and where they are written.
bin_path="${prefix}/bin/enroll-agent"
sysusers_path="${prefix}/lib/sysusers.d/enroll-agent.conf"
tmpfiles_path="${prefix}/lib/tmpfiles.d/enroll-agent.conf"
doc_dir="${prefix}/share/doc/enroll-agent"
config_dir="${sysconfdir}/enroll-agent"
config_path="${config_dir}/config.toml"

# With DESTDIR, only files are staged; the live system is not touched.
staging=false
[[ -n "${destdir}" ]] && staging=true

if ! "${staging}" && ! "${dry_run}" && [[ "$(id -u)" -ne 0 ]]; then
    die "run as root (or set DESTDIR to stage files, or use --dry-run)"
fi

[[ -f "${binary}" ]] || die "no binary at ${binary}: build it with 'swift build -c release --static-swift-stdlib' or pass --binary PATH"
[[ -x "${binary}" ]] || die "${binary} is not executable"
for file in enroll-agent.service enroll-agent-renew.service enroll-agent-renew.timer; do
    [[ -f "${repo_root}/systemd/${file}" ]] || die "missing ${repo_root}/systemd/${file}"
done
for file in config.example.toml enroll-agent.sysusers.conf enroll-agent.tmpfiles.conf; do
    [[ -f "${script_dir}/${file}" ]] || die "missing ${script_dir}/${file}"
done

# A binary linked against the Swift runtime of a toolchain that the target host
# does not have fails at start; say so now rather than in the journal.
if command -v ldd >/dev/null 2>&1; then
    missing_libraries="$(ldd "${binary}" 2>/dev/null | awk '/not found/ { print $1 }' || true)"
    if [[ -n "${missing_libraries}" ]]; then
        die "${binary} needs libraries this host lacks: $(echo "${missing_libraries}" | tr '\n' ' ')(rebuild with --static-swift-stdlib, or install them)"
    fi
    if ldd "${binary}" 2>/dev/null | grep -q 'libswiftCore\.so'; then
        note "warning: ${binary} uses the Swift runtime from the toolchain ($(ldd "${binary}" | awk '/libswiftCore/ { print $3 }')); copy it to other hosts only if built with --static-swift-stdlib"
    fi
fi

# --- Files ----------------------------------------------------------------

run install -d -m 0755 "${destdir}${prefix}/bin" "${destdir}${unitdir}" \
    "${destdir}${prefix}/lib/sysusers.d" "${destdir}${prefix}/lib/tmpfiles.d" "${destdir}${doc_dir}"
run install -m 0755 "${binary}" "${destdir}${bin_path}"

# The units name /usr/local/bin/enroll-agent; follow --prefix.
for unit in enroll-agent.service enroll-agent-renew.service enroll-agent-renew.timer; do
    source_unit="${repo_root}/systemd/${unit}"
    target_unit="${destdir}${unitdir}/${unit}"
    if "${dry_run}"; then
        printf '+ install -m 0644 %s %s   (ExecStart=%s)\n' "${source_unit}" "${target_unit}" "${bin_path}"
    else
        temporary="$(mktemp)"
        sed "s|/usr/local/bin/enroll-agent|${bin_path}|g" "${source_unit}" >"${temporary}"
        install -m 0644 "${temporary}" "${target_unit}"
        rm -f "${temporary}"
    fi
done

run install -m 0644 "${script_dir}/enroll-agent.sysusers.conf" "${destdir}${sysusers_path}"
# The tmpfiles entry names /etc/enroll-agent; follow --sysconfdir.
if "${dry_run}"; then
    printf '+ install -m 0644 %s %s   (%s)\n' "${script_dir}/enroll-agent.tmpfiles.conf" "${destdir}${tmpfiles_path}" "${config_dir}"
else
    temporary="$(mktemp)"
    sed "s|/etc/enroll-agent|${config_dir}|g" "${script_dir}/enroll-agent.tmpfiles.conf" >"${temporary}"
    install -m 0644 "${temporary}" "${destdir}${tmpfiles_path}"
    rm -f "${temporary}"
fi
run install -m 0644 "${script_dir}/config.example.toml" "${destdir}${doc_dir}/config.example.toml"

# --- Account --------------------------------------------------------------

if ! "${staging}"; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        # Creates tss (if missing), enroll-agent and the membership; a no-op
        # for whatever already exists.
        run systemd-sysusers "${sysusers_path}"
    else
        getent group "${tpm_group}" >/dev/null || run groupadd --system "${tpm_group}"
        getent group "${service_user}" >/dev/null || run groupadd --system "${service_user}"
        if ! getent passwd "${service_user}" >/dev/null; then
            run useradd --system --gid "${service_user}" --home-dir "${statedir}" --no-create-home \
                --shell /usr/sbin/nologin --comment "SCEP certificate enrollment agent" "${service_user}"
        fi
        if ! id -nG "${service_user}" 2>/dev/null | tr ' ' '\n' | grep -qx "${tpm_group}"; then
            run usermod --append --groups "${tpm_group}" "${service_user}"
        fi
    fi
fi

# --- Configuration and store ---------------------------------------------

# Group ownership needs the account, which staging does not create.
owner_args=()
if ! "${staging}"; then
    owner_args=(-o root -g "${service_user}")
fi

# 0750 root:enroll-agent: the agent reads it, nobody else does (it holds
# tokens and challenges). install -d on an existing directory only resets
# owner and mode, so this stays idempotent.
run install -d -m 0750 ${owner_args[@]+"${owner_args[@]}"} "${destdir}${config_dir}"
if [[ -e "${destdir}${config_path}" ]]; then
    note "keeping the existing ${config_path}"
elif "${dry_run}"; then
    printf '+ %s config-keys --format disabled-example > %s   (0640)\n' "${binary}" "${destdir}${config_path}"
else
    # The example with its profile commented out, from the binary's own key table
    # (the full example is in ${doc_dir}).
    temporary="$(mktemp)"
    "${binary}" config-keys --format disabled-example >"${temporary}" \
        || { rm -f "${temporary}"; die "${binary} config-keys --format disabled-example failed"; }
    install -m 0640 ${owner_args[@]+"${owner_args[@]}"} "${temporary}" "${destdir}${config_path}"
    rm -f "${temporary}"
fi

if ! "${staging}"; then
    # systemd creates it too (StateDirectory=); creating it here lets an admin
    # run `sudo -u enroll-agent enroll-agent enroll` before the first start.
    run install -d -m 0750 -o "${service_user}" -g "${service_user}" "${statedir}"

    if [[ -d /run/systemd/system ]]; then
        run systemctl daemon-reload
    else
        note "systemd is not running here: skipped 'systemctl daemon-reload'"
    fi
fi

# --- Next steps -----------------------------------------------------------

if "${staging}"; then
    cat <<EOF

Staged under ${destdir}. On the target, the package must still run:
  systemd-sysusers ${sysusers_path}
  systemd-tmpfiles --create ${tmpfiles_path}   # ${config_dir} root:${service_user}, ${statedir}
  systemctl daemon-reload
EOF
    exit 0
fi

if "${dry_run}"; then
    verb="would be installed"
else
    verb="installed"
fi
cat <<EOF

enroll-agent ${verb}: ${bin_path}
  units:  ${unitdir}/enroll-agent.service, enroll-agent-renew.{service,timer}
  config: ${config_path}

Next:
  1. Edit ${config_path}: its [[profile]] is commented out (see its header);
     set scep_url, the pinned CA and the challenge source.
     To find the CA fingerprint: ${bin_path} ca-info https://scep.example.com/scep
     Secrets (token_file, challenge file): chown root:${service_user}, chmod 0640.
  2. Check it as the service user:
       sudo -u ${service_user} ${bin_path} check-config
  3. Start the daemon (or, instead, the timer — not both):
       systemctl enable --now enroll-agent
       # systemctl enable --now enroll-agent-renew.timer
     After an upgrade of the binary: systemctl restart enroll-agent
  4. Watch it: journalctl -u enroll-agent -f ; ${bin_path} status
EOF
if "${dry_run}"; then
    echo
    echo "(dry run: nothing was changed)"
fi

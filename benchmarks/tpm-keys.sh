#!/usr/bin/env bash
# TPM key operations: the agent's TPMKeys code against tpm2-tools, on the same
# fresh swtpm, alternating round by round so drift hits both alike.
#
#   benchmarks/tpm-keys.sh [N]        # N rounds (default 20)
#
# Environment: BENCH_SCRATCH_PATH  SwiftPM scratch dir for the release build
#              (default <repo>/.build-bench, git-ignored; never the lead's .build).
#
# What each figure includes:
#   agent (TPMKeysBench, timed inside one process, no process start):
#     create  = open TCTI+ESYS, flush leftovers, TestParms, CreatePrimary SRK
#               (ECC P-256, re-created every call: swtpm has no persistent SRK
#               here), Create RSA-2048, close
#     sign    = open, CreatePrimary SRK, Load, Sign (SHA-256 digest), close
#     decrypt = open, CreatePrimary SRK, Load, RSA_Decrypt (RSAES), close
#   tpm2-tools (wall time of whole processes: exec, TCTI load, ESYS init,
#   context files read and written):
#     create  = tpm2_createprimary (same SRK template) + tpm2_create -G rsa2048
#     sign    = tpm2_load + tpm2_sign -f plain (ContextLoad of the saved SRK
#               context, not a re-created SRK)
#     decrypt = tpm2_load + tpm2_rsadecrypt -s rsaes
# Untimed: encrypting test data with openssl, checking signatures and
# plaintexts, flushing transients between rounds.
set -euo pipefail

N=${1:-20}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 64; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${BENCH_SCRATCH_PATH:-$ROOT/.build-bench}

for tool in swtpm tpm2_createprimary tpm2_create tpm2_load tpm2_sign tpm2_rsadecrypt tpm2_readpublic tpm2_flushcontext openssl swift; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 69; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tpm-keys-bench.XXXXXX")
SWTPM_PID=""
cleanup() {
  if [[ -n "$SWTPM_PID" ]]; then kill "$SWTPM_PID" 2>/dev/null || true; wait "$SWTPM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "building TPMKeysBench (release, scratch $SCRATCH)..." >&2
(cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product TPMKeysBench >&2)
BENCH="$SCRATCH/release/TPMKeysBench"

mkdir "$WORK/tpm"
swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" \
  --server type=unixio,path="$WORK/tpm/tpm.sock" --ctrl type=unixio,path="$WORK/tpm/tpm.sock.ctrl" \
  --flags not-need-init,startup-clear >"$WORK/swtpm.log" 2>&1 &
SWTPM_PID=$!
for _ in $(seq 100); do [[ -S "$WORK/tpm/tpm.sock" ]] && break; sleep 0.05; done
[[ -S "$WORK/tpm/tpm.sock" ]] || { echo "swtpm did not start: $(cat "$WORK/swtpm.log")" >&2; exit 69; }
TCTI="swtpm:path=$WORK/tpm/tpm.sock"
export TPM2TOOLS_TCTI="$TCTI"

SRK_ATTRIBUTES="fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"
cd "$WORK"
head -c 32 /dev/urandom >digest.bin   # stands for a SHA-256 digest
head -c 32 /dev/urandom >secret.bin   # an AES-256 key, as in a CMS envelope

# Timestamps from bash 5's $EPOCHREALTIME (microseconds) taken inline, so no
# fork lands inside a timed interval; converted to ms afterwards.
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1000 }'; }

# Without a resource manager the tools leave what they loaded or
# context-loaded in the TPM's three object slots; the saved context files stay
# valid after a flush. Untimed.
flush_transients() { tpm2_flushcontext -t >/dev/null 2>&1 || true; }

: >agent.txt; : >tools.txt
echo "running $N alternating rounds on $TCTI..." >&2
for round in $(seq "$N"); do
  # Agent: one process per round, each operation timed inside it.
  "$BENCH" --tcti "$TCTI" -n 1 --raw >>agent.txt

  # tpm2-tools: the same three operations as separate processes.
  t0=${EPOCHREALTIME/./}
  tpm2_createprimary -Q -C o -G ecc256:aes128cfb -a "$SRK_ATTRIBUTES" -c srk.ctx
  t1=${EPOCHREALTIME/./}
  tpm2_create -Q -C srk.ctx -G rsa2048 -u key.pub -r key.priv
  t2=${EPOCHREALTIME/./}
  p=$(ms "$t0" "$t1"); c=$(ms "$t1" "$t2")
  echo "createprimary $p" >>tools.txt; echo "create_child $c" >>tools.txt
  echo "create $(awk -v a="$p" -v b="$c" 'BEGIN { printf "%.3f", a + b }')" >>tools.txt
  flush_transients

  t0=${EPOCHREALTIME/./}
  tpm2_load -Q -C srk.ctx -u key.pub -r key.priv -c key.ctx
  t1=${EPOCHREALTIME/./}
  tpm2_sign -Q -c key.ctx -g sha256 -s rsassa -d -f plain -o sig.bin digest.bin
  t2=${EPOCHREALTIME/./}
  l=$(ms "$t0" "$t1"); s=$(ms "$t1" "$t2")
  echo "load $l" >>tools.txt; echo "sign_only $s" >>tools.txt
  echo "sign $(awk -v a="$l" -v b="$s" 'BEGIN { printf "%.3f", a + b }')" >>tools.txt

  flush_transients
  # Untimed: check the signature, encrypt the secret to the new key.
  tpm2_readpublic -Q -c key.ctx -f pem -o key.pem
  openssl pkeyutl -verify -pubin -inkey key.pem -pkeyopt digest:sha256 -in digest.bin -sigfile sig.bin >/dev/null \
    || { echo "round $round: tpm2_sign signature does not verify" >&2; exit 70; }
  openssl pkeyutl -encrypt -pubin -inkey key.pem -pkeyopt rsa_padding_mode:pkcs1 -in secret.bin -out cipher.bin
  flush_transients

  t0=${EPOCHREALTIME/./}
  tpm2_load -Q -C srk.ctx -u key.pub -r key.priv -c key.ctx
  t1=${EPOCHREALTIME/./}
  tpm2_rsadecrypt -Q -c key.ctx -s rsaes -o plain.bin cipher.bin
  t2=${EPOCHREALTIME/./}
  l=$(ms "$t0" "$t1"); d=$(ms "$t1" "$t2")
  echo "load $l" >>tools.txt; echo "rsadecrypt_only $d" >>tools.txt
  echo "decrypt $(awk -v a="$l" -v b="$d" 'BEGIN { printf "%.3f", a + b }')" >>tools.txt
  cmp -s plain.bin secret.bin || { echo "round $round: tpm2_rsadecrypt returned the wrong plaintext" >&2; exit 70; }

  flush_transients
  printf '.' >&2
done
echo >&2

# Extra, not alternated: the agent again after persisting an SRK at 0x81000001
# (as a provisioned machine may have); then keys are created under it and
# each operation skips CreatePrimary. Shows what the re-created SRK costs.
tpm2_createprimary -Q -C o -G ecc256:aes128cfb -a "$SRK_ATTRIBUTES" -c persistent-srk.ctx
tpm2_evictcontrol -Q -C o -c persistent-srk.ctx 0x81000001
flush_transients
"$BENCH" --tcti "$TCTI" -n "$N" --raw >agent-persistent.txt

median() {  # median of the values recorded for operation $2 in file $1
  awk -v op="$2" '$1 == op { print $2 }' "$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "TPM key operations on swtpm $(swtpm --version 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1), RSA-2048, $N rounds, medians in ms"
printf '%-9s %14s %18s %8s\n' operation "agent (TPMKeys)" "tpm2-tools" "ratio"
for op in create sign decrypt; do
  a=$(median agent.txt "$op"); b=$(median tools.txt "$op")
  printf '%-9s %14s %18s %8s\n' "$op" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
done
echo
echo "agent with a persistent SRK at 0x81000001 (medians, ms): create $(median agent-persistent.txt create)," \
     "sign $(median agent-persistent.txt sign), decrypt $(median agent-persistent.txt decrypt)"
echo "tpm2-tools per command (medians, ms): createprimary $(median tools.txt createprimary)," \
     "create $(median tools.txt create_child), load $(median tools.txt load)," \
     "sign $(median tools.txt sign_only), rsadecrypt $(median tools.txt rsadecrypt_only)"
echo "ratio = agent / tpm2-tools. Agent figures are in-process calls that each open a TPM connection"
echo "and re-create the SRK; tpm2-tools figures are whole processes (exec + TCTI + ESYS init) that"
echo "reuse a saved SRK context. RSA key creation is a prime search: its spread is wide on any TPM."

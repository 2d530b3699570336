#!/usr/bin/env bash
# Makes the fuzz PKI and the seeds that need it (run once; the results are committed).
#
# The captured scepserver CA (capture/ca.pem) has no RA, and without its key nothing can be
# made to chain to it. So the harnesses also pin a CA of their own: a THROWAWAY PKI, test
# material only, with fixed dates (valid 2026-01-01 to 2046-01-01; the harnesses check at
# 2030-06-01, inside the captured CA's validity too):
#
#   capture/pki/ca.pem            the fuzz CA (pinned by the getcacert and certrep harnesses)
#   capture/pki/sub-ca.pem        an intermediate CA under it, and an RA under that (sub-ra.pem)
#   capture/pki/ra.pem            an RA with id-kp-cmcRA, digitalSignature + keyEncipherment
#   capture/pki/ra-sign.pem       NDES-style pair: Certificate Request Agent, digitalSignature only
#   capture/pki/ra-encrypt.pem      ... and keyEncipherment only
#   capture/pki/pinned-ra.pem     an RA without an RA purpose (the harnesses pin its SHA-256)
#   capture/pki/host.pem          an ordinary host certificate (clientAuth): never an RA
#   capture/pki/expired-ra.pem    an RA that expired in 2027; future-ra.pem is valid from 2035
#   capture/pki/client.pem        the certificate "issued" to capture/client-key.pem (the
#                                 envelope recipient: the harness opens envelopes with that key)
#   capture/pki/ladder-*.pem      3 layers x 3 certificates sharing name and key per layer; the
#                                 top layer claims the fuzz CA's name but an impostor signed it
#   capture/pki/twin-sub-ca.pem   the sub CA's name and key, signed by the impostor
#   capture/pki/*-key.pem         their keys (throwaway, kept so seeds can be added later)
#
# and seeds: corpus/getcacert/pki-*.der (certs-only PKCS#7 answers with RAs, ladders, too many
# certificates) and corpus/certrep/pki-*.der (CertReps signed by the RA, the NDES signing RA
# or the CA; SUCCESS envelopes in AES-CBC EnvelopedData, AES-GCM EnvelopedData with the tag
# appended, AuthEnvelopedData (RFC 5083) from `openssl cms -encrypt -aes-*-gcm`; PENDING,
# FAILURE; a BER re-encoding; the envelopes and the degenerate PKCS#7 on their own).
# The CertReps answer a fixed transactionID and senderNonce, which FuzzCertRep expects too.
#
# Existing keys are reused, so re-running it gives the same certificates (openssl ca with fixed
# serials and dates; RSA PKCS#1 v1.5 signatures are deterministic); delete capture/pki/ for a
# new PKI. Needs openssl (3.0+) and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")"
pki=capture/pki
mkdir -p "$pki" corpus/getcacert corpus/certrep
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

start=20260101000000Z
end=20460101000000Z
org="O=enroll-agent fuzz (throwaway)"

cat >"$work/ca.cnf" <<EOF
[ ca ]
default_ca = fuzz
[ fuzz ]
database = $work/index.txt
new_certs_dir = $work/new
serial = $work/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes
[ anything ]
commonName = supplied
organizationName = optional
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[ ra_ext ]
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = 1.3.6.1.5.5.7.3.28
subjectKeyIdentifier = hash
[ ra_sign_ext ]
keyUsage = critical, digitalSignature
extendedKeyUsage = 1.3.6.1.4.1.311.20.2.1
subjectKeyIdentifier = hash
[ ra_encrypt_ext ]
keyUsage = critical, keyEncipherment
extendedKeyUsage = 1.3.6.1.4.1.311.20.2.1
subjectKeyIdentifier = hash
[ plain_ra_ext ]
keyUsage = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier = hash
[ host_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
EOF
: >"$work/index.txt"
mkdir "$work/new"

key() {  # key NAME: the throwaway RSA-2048 key, made once
  [ -f "$pki/$1-key.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/$1-key.pem" 2>/dev/null
}
serial=4096
# issue NAME "CN" EXTENSIONS ISSUER [START END] [KEYNAME]: ISSUER "self" for a self-signed certificate.
issue() {
  local name=$1 cn=$2 ext=$3 issuer=$4 from=${5:-$start} to=${6:-$end} keyname=${7:-$1}
  key "$keyname"
  openssl req -new -key "$pki/$keyname-key.pem" -subj "/$org/CN=$cn" -out "$work/$name.csr" 2>/dev/null
  printf '%X\n' $(( serial++ )) >"$work/serial"
  local signer=(-cert "$pki/$issuer.pem" -keyfile "$pki/$issuer-key.pem")
  [ "$issuer" = self ] && signer=(-selfsign -keyfile "$pki/$keyname-key.pem")
  openssl ca -batch -config "$work/ca.cnf" -extensions "$ext" -startdate "$from" -enddate "$to" -notext \
    "${signer[@]}" -in "$work/$name.csr" -out "$pki/$name.pem" 2>/dev/null
}

issue ca "enroll-agent fuzz CA" ca_ext self
issue sub-ca "enroll-agent fuzz sub CA" ca_ext ca
issue ra "enroll-agent fuzz RA" ra_ext ca
issue ra-sign "enroll-agent fuzz NDES signing RA" ra_sign_ext ca
issue ra-encrypt "enroll-agent fuzz NDES encryption RA" ra_encrypt_ext ca
issue pinned-ra "enroll-agent fuzz RA pinned by fingerprint" plain_ra_ext ca
issue host "host.fuzz.invalid" host_ext ca
issue sub-ra "enroll-agent fuzz RA under the sub CA" ra_ext sub-ca
issue expired-ra "enroll-agent fuzz expired RA" ra_ext ca 20260101000000Z 20270101000000Z
issue future-ra "enroll-agent fuzz RA of 2035" ra_ext ca 20350101000000Z 20400101000000Z
# The certificate issued for the captured client key (the envelopes are encrypted to it).
cp capture/client-key.pem "$pki/client-key.pem"
issue client "fuzz-seed-client" host_ext ca
rm "$pki/client-key.pem"
# An impostor with the fuzz CA's name, a twin of the sub CA signed by it, and a ladder.
issue impostor "enroll-agent fuzz CA" ca_ext self "$start" "$end" impostor
issue twin-sub-ca "enroll-agent fuzz sub CA" ca_ext impostor "$start" "$end" sub-ca
above=impostor
for layer in 2 1 0; do
  for copy in 0 1 2; do
    issue "ladder-$layer-$copy" "enroll-agent fuzz ladder $layer" ca_ext "$above" "$start" "$end" "ladder-$layer"
  done
  # The layer below is signed by this layer's name and key (its first copy is the -cert).
  cp "$pki/ladder-$layer-key.pem" "$pki/ladder-$layer-0-key.pem"
  above="ladder-$layer-0"
done
rm -f "$pki"/ladder-?-0-key.pem

# GetCACert answers: certs-only PKCS#7.
p7() {  # p7 SEED CERT...
  local seed=$1; shift
  local args=()
  for c in "$@"; do args+=(-certfile "$c"); done
  openssl crl2pkcs7 -nocrl "${args[@]}" -outform DER -out "corpus/getcacert/$seed.der"
}
p=$pki
p7 pki-ca-ra $p/ca.pem $p/ra.pem
p7 pki-ndes-pair $p/ca.pem $p/ra-sign.pem $p/ra-encrypt.pem
p7 pki-pinned-ra $p/ca.pem $p/pinned-ra.pem
p7 pki-host-only $p/ca.pem $p/host.pem
p7 pki-sub-ca-ra $p/ca.pem $p/sub-ca.pem $p/sub-ra.pem
p7 pki-sub-ra-without-ca $p/sub-ca.pem $p/sub-ra.pem
p7 pki-expired-and-future-ra $p/ca.pem $p/expired-ra.pem $p/future-ra.pem $p/ra.pem
p7 pki-twin-sub-ca $p/ca.pem $p/twin-sub-ca.pem $p/sub-ca.pem $p/sub-ra.pem
p7 pki-ladder $p/ladder-0-*.pem $p/ladder-1-*.pem $p/ladder-2-*.pem $p/ca.pem
p7 pki-both-cas $p/ca.pem capture/ca.pem $p/ra.pem $p/host.pem
p7 pki-everything $p/ca.pem $p/sub-ca.pem $p/ra.pem $p/ra-sign.pem $p/ra-encrypt.pem $p/pinned-ra.pem $p/host.pem \
  $p/sub-ra.pem $p/expired-ra.pem $p/future-ra.pem $p/twin-sub-ca.pem $p/impostor.pem $p/ladder-*.pem
too_many=()
for _ in $(seq 11); do too_many+=($p/ca.pem $p/ra.pem $p/host.pem); done
p7 pki-33-certificates "${too_many[@]}"
openssl x509 -in $p/ca.pem -outform DER -out corpus/getcacert/pki-ca.der

# The issued certificate as the degenerate PKCS#7, and envelopes of it by openssl cms.
openssl crl2pkcs7 -nocrl -certfile $p/client.pem -certfile $p/ca.pem -outform DER -out "$work/degenerate.der"
for cipher in aes-128-cbc aes-256-cbc des-ede3-cbc aes-128-gcm aes-256-gcm; do
  openssl cms -encrypt -binary -$cipher -recip $p/client.pem -in "$work/degenerate.der" -outform DER -out "$work/envelope-$cipher.der"
done

python3 - "$pki" "$work" <<'PY'
import hashlib, pathlib, subprocess, sys
pki, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out = pathlib.Path("corpus/certrep")

# The exchange FuzzCertRep expects (keep in step with fuzzPKIExchange there).
TRANSACTION_ID = b"FUZZ-PKI-TRANSACTION-0001"
SENDER_NONCE = b"enroll-agentfuzz"          # our request's senderNonce: the reply's recipientNonce

def tlv(tag, content):
    n = len(content)
    if n < 0x80: length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content
def seq(*items): return tlv(0x30, b"".join(items))
def set_of(*items): return tlv(0x31, b"".join(sorted(items)))
def octets(b): return tlv(0x04, b)
def printable(s): return tlv(0x13, s)
def utf8(s): return tlv(0x0C, s.encode())
def integer(n): return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))
def oid(text):
    parts = [int(p) for p in text.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.insert(0, 0x80 | (p & 0x7F))
        body += bytes(chunk)
    return tlv(0x06, body)
NULL = b"\x05\x00"
def explicit(n, content): return tlv(0xA0 | n, content)

def parse(data, offset=0):
    """One TLV at offset: (tag, header length, content length, end)."""
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80: return tag, 2, first, offset + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[offset + 2:offset + 2 + count], "big")
    return tag, 2 + count, length, offset + 2 + count + length
def children(data, offset=0):
    tag, header, length, end = parse(data, offset)
    position, items = offset + header, []
    while position < end:
        item_end = parse(data, position)[3]
        items.append(data[position:item_end])
        position = item_end
    return items
def content(tlv_bytes):
    tag, header, length, end = parse(tlv_bytes)
    return tlv_bytes[header:end]

def der_of_pem(path):
    return subprocess.run(["openssl", "x509", "-in", str(path), "-outform", "DER"], check=True, capture_output=True).stdout
def issuer_and_serial(cert):
    tbs = children(cert)[0]
    fields = children(tbs)
    if fields[0][0] == 0xA0: fields = fields[1:]
    return seq(fields[2], fields[0])   # issuer Name, serialNumber
def subject_key_identifier(cert):
    tbs = children(cert)[0]
    for field in children(tbs):
        if field[0] == 0xA3:
            for extension in children(children(field)[0]):
                parts = children(extension)
                if parts[0] == oid("2.5.29.14"):
                    return content(content(parts[-1]))
    raise SystemExit("no subjectKeyIdentifier")

DIGESTS = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1", "sha512": "2.16.840.1.101.3.4.2.3"}
def attribute(type_oid, value): return seq(oid(type_oid), set_of(value))

def certrep(signer, status, envelope=b"", digest="sha256", fail_info=None, fail_text=None, by_key_id=False,
            transaction_id=TRANSACTION_ID, recipient_nonce=SENDER_NONCE):
    cert = der_of_pem(pki / f"{signer}.pem")
    attributes = [
        attribute("1.2.840.113549.1.9.3", oid("1.2.840.113549.1.7.1")),
        attribute("1.2.840.113549.1.9.4", octets(hashlib.new(digest, envelope).digest())),
        attribute("2.16.840.1.113733.1.9.2", printable(b"3")),
        attribute("2.16.840.1.113733.1.9.3", printable(status)),
        attribute("2.16.840.1.113733.1.9.7", printable(transaction_id)),
        attribute("2.16.840.1.113733.1.9.6", octets(recipient_nonce)),
        attribute("2.16.840.1.113733.1.9.5", octets(hashlib.sha256(b"server nonce " + status).digest()[:16])),
    ]
    if fail_info is not None: attributes.append(attribute("2.16.840.1.113733.1.9.4", printable(fail_info)))
    if fail_text is not None: attributes.append(attribute("1.3.6.1.5.5.7.24.1", utf8(fail_text)))
    signed = set_of(*attributes)
    signature = subprocess.run(["openssl", "dgst", f"-{digest}", "-sign", str(pki / f"{signer}-key.pem")],
                               input=signed, check=True, capture_output=True).stdout
    algorithm = seq(oid(DIGESTS[digest]), NULL)
    sid = tlv(0x80, subject_key_identifier(cert)) if by_key_id else issuer_and_serial(cert)
    signer_info = seq(integer(3 if by_key_id else 1), sid, algorithm, tlv(0xA0, content(signed)),
                      seq(oid("1.2.840.113549.1.1.1"), NULL), octets(signature))
    encapsulated = seq(oid("1.2.840.113549.1.7.1"), explicit(0, octets(envelope))) if envelope else seq(oid("1.2.840.113549.1.7.1"))
    signed_data = seq(integer(3 if by_key_id else 1), set_of(algorithm), encapsulated, tlv(0xA0, cert), set_of(signer_info))
    return seq(oid("1.2.840.113549.1.7.2"), explicit(0, signed_data))

def gcm_enveloped(auth_enveloped):
    """openssl's AuthEnvelopedData as the EnvelopedData step-ca sends: the tag after the ciphertext."""
    inner = content(children(auth_enveloped)[1])           # [0] EXPLICIT AuthEnvelopedData
    version, recipients, encrypted_info, *rest = children(inner)
    mac = content(rest[-1])                                # mac MessageAuthenticationCode
    content_type, algorithm, ciphertext = children(encrypted_info)
    encrypted_info = seq(content_type, algorithm, tlv(0x80, content(ciphertext) + mac))
    return seq(oid("1.2.840.113549.1.7.3"), explicit(0, seq(integer(0), recipients, encrypted_info)))

def ber(data, keep=()):
    """DER → BER as Java/NDES servers send it: indefinite lengths, OCTET STRINGs cut in 64-byte
    chunks; subtrees in `keep` (the SignerInfo, whose signed attributes are signed as DER, and
    the certificates) stay as they are."""
    if data in keep: return data
    tag, header, length, end = parse(data)
    body = data[header:end]
    if tag & 0x20:
        parts, position = [], 0
        while position < len(body):
            item_end = parse(body, position)[3]
            parts.append(ber(body[position:item_end], keep))
            position = item_end
        return bytes([tag, 0x80]) + b"".join(parts) + b"\0\0"
    if tag in (0x04, 0x80) and len(body) > 64:
        return bytes([tag | 0x20, 0x80]) + b"".join(tlv(0x04, body[i:i + 64]) for i in range(0, len(body), 64)) + b"\0\0"
    return data

def ber_certrep(rep):
    signed_data = content(children(rep)[1])
    version, digests, encapsulated, certificates, signer_infos = children(signed_data)
    return ber(rep, set(children(certificates)) | set(children(signer_infos)))
envelope = {c: (work / f"envelope-{c}.der").read_bytes() for c in ["aes-128-cbc", "aes-256-cbc", "des-ede3-cbc", "aes-128-gcm", "aes-256-gcm"]}
seeds = {
    "pki-ra-success-aes128cbc": certrep("ra", b"0", envelope["aes-128-cbc"]),
    "pki-ra-success-aes256cbc-sha512": certrep("ra", b"0", envelope["aes-256-cbc"], digest="sha512"),
    "pki-ra-success-des3-sha1": certrep("ra", b"0", envelope["des-ede3-cbc"], digest="sha1"),
    "pki-ra-success-gcm-enveloped": certrep("ra", b"0", gcm_enveloped(envelope["aes-128-gcm"])),
    "pki-ra-success-gcm256-enveloped": certrep("ra", b"0", gcm_enveloped(envelope["aes-256-gcm"])),
    "pki-ra-success-authenveloped": certrep("ra", b"0", envelope["aes-128-gcm"]),
    "pki-ra-success-authenveloped-aes256-keyid": certrep("ra", b"0", envelope["aes-256-gcm"], by_key_id=True),
    "pki-ndes-ra-success-aes128cbc": certrep("ra-sign", b"0", envelope["aes-128-cbc"]),
    "pki-ca-success-authenveloped": certrep("ca", b"0", envelope["aes-128-gcm"]),
    "pki-ra-pending": certrep("ra", b"3"),
    "pki-ra-failure-badrequest": certrep("ra", b"2", fail_info=b"2", fail_text="challenge refused by the fuzz RA"),
    "pki-host-signed-success": certrep("host", b"0", envelope["aes-128-cbc"]),            # not a trusted signer
    "pki-ra-success-wrong-nonce": certrep("ra", b"0", envelope["aes-128-cbc"], recipient_nonce=b"not-our-nonce-16"),
    "pki-ra-success-authenveloped-ber": ber_certrep(certrep("ra", b"0", envelope["aes-128-gcm"])),
    "pki-envelope-aes128cbc": envelope["aes-128-cbc"],
    "pki-envelope-gcm-enveloped": gcm_enveloped(envelope["aes-128-gcm"]),
    "pki-envelope-authenveloped": envelope["aes-256-gcm"],
    "pki-degenerate": (work / "degenerate.der").read_bytes(),
}
for name, data in seeds.items():
    (out / f"{name}.der").write_bytes(data)
PY
ls -l "$pki" corpus/getcacert/pki-* corpus/certrep/pki-*

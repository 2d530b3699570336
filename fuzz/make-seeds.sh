#!/usr/bin/env bash
# Derives the rest of the seed corpus (run once after capture-scep-seeds.sh; results committed):
# the inner layers of the captured CertRep (EnvelopedData, the decrypted certs-only PKCS#7), the
# test vectors of Tests/ (OpenSSL-made CMS, an older scepserver capture, the TSS2 key vector, the
# configs), and a certs-only GetCACert reply with two certificates. Needs openssl and python3.
set -euo pipefail
cd "$(dirname "$0")"
c=corpus
mkdir -p $c/getcacert $c/certrep $c/tss2keyfile $c/statefile $c/config

# Swift string constants of the test sources, decoded into seed files.
python3 - <<'PY'
import base64, re, pathlib
def constants(path):
    text = pathlib.Path(path).read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r'static let (\w+)\s*=\s*(?:Fixtures\.bytes\(base64: )?"""\n(.*?)\n\s*"""', text, re.S)}
def b64(value): return base64.b64decode("".join(value.split()))
fx = constants("../Tests/SCEPClientTests/Fixtures.swift")
out = pathlib.Path("corpus")
(out / "getcacert/scepserver-2026-11-23-getcacert.der").write_bytes(b64(fx["caCertificate"]))
(out / "getcacert/openssl-signeddata-stream.ber").write_bytes(b64(fx["signedDataStreamBER"]))
(out / "certrep/scepserver-2026-11-23-success.der").write_bytes(b64(fx["certRep"]))
(out / "certrep/scepserver-2026-11-23-pkcsreq.der").write_bytes(b64(fx["pkcsReq"]))
for name in ["signedDataContentInfo", "signedDataKeyIDContentInfo", "signedDataStreamBER",
             "envelopedDataContentInfo", "envelopedDataKeyIDContentInfo", "envelopedDataStreamBER"]:
    (out / f"certrep/openssl-{name}.der").write_bytes(b64(fx[name]))
tss = constants("../Tests/TPMKeysTests/TSS2PrivateKeyFileTests.swift")
pem = "\n".join(line.strip() for line in tss["vectorPEM"].strip().splitlines()) + "\n"
(out / "tss2keyfile/vector.pem").write_text(pem)
(out / "tss2keyfile/vector.der").write_bytes(base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----"))))
cfg = constants("../Tests/EnrollAgentTests/Config/AgentConfigTests.swift")
(out / "config/design-example.toml").write_text("\n".join(l[4:] if l.startswith("    ") else l for l in cfg["designExample"].splitlines()) + "\n")
PY

# The captured SUCCESS CertRep's layers: its content (the EnvelopedData ContentInfo) and, opened
# with the captured client key, the certs-only PKCS#7 (scepserver encrypts with DES: legacy provider).
openssl cms -verify -noverify -inform DER -in $c/certrep/scepserver-success.der -out $c/certrep/scepserver-success-envelope.der 2>/dev/null
openssl cms -decrypt -provider legacy -provider default -inform DER -in $c/certrep/scepserver-success-envelope.der \
  -inkey capture/client-key.pem -out $c/certrep/scepserver-success-degenerate.der
cp $c/certrep/scepserver-success-degenerate.der $c/getcacert/scepserver-issued-certs-only.der

# An RA-style GetCACert reply: certs-only PKCS#7 with the CA and the certificate it issued.
openssl pkcs7 -inform DER -in $c/certrep/scepserver-success-degenerate.der -print_certs -out /tmp/issued.$$.pem
openssl crl2pkcs7 -nocrl -certfile capture/ca.pem -certfile /tmp/issued.$$.pem -outform DER -out $c/getcacert/ca-ra-certs-only.der
rm -f /tmp/issued.$$.pem

cp ../packaging/config.example.toml $c/config/config.example.toml
ls -l $c/*

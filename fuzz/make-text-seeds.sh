#!/usr/bin/env bash
# Writes the seeds of the textinputs target and the large / deeply nested config seeds (run once;
# the results are committed). Needs python3 (standard library) and openssl.
#
#   corpus/textinputs/<n>-*   the first byte picks the parser (see FuzzTextInputs.swift):
#                             0 Retry-After, 1 header line, 2 endpoint JSON, 3 GetCACaps,
#                             4 pin-file PEM, 5 software-key PEM
#   corpus/config/deep-*.toml, long-*.toml, big-*.toml
#                             nesting around the parser's limit of 32 levels, long dotted keys,
#                             a config of about 200 KiB (scripts/fuzz.sh runs config with
#                             -max_len=262144)
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/textinputs corpus/config
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Keys for the software-key parser: the throwaway client key as PKCS#1 and PKCS#8, an
# encrypted PKCS#8 one (a passphrase-protected key must be refused, never prompted for), an EC key.
openssl pkey -in capture/client-key.pem -out "$work/pkcs8.pem"
openssl rsa -in capture/client-key.pem -traditional -out "$work/pkcs1.pem" 2>/dev/null
openssl pkey -in capture/client-key.pem -aes-128-cbc -passout pass:fuzz -out "$work/encrypted.pem"
openssl rsa -in capture/client-key.pem -traditional -aes128 -passout pass:fuzz -out "$work/encrypted-traditional.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.pem" 2>/dev/null

python3 - "$work" <<'PY'
import pathlib, sys
work = pathlib.Path(sys.argv[1])
t = pathlib.Path("corpus/textinputs")
def seed(name, selector, data):
    (t / f"{selector}-{name}").write_bytes(str(selector).encode() + (data.encode() if isinstance(data, str) else data))

# 0: Retry-After (RFC 9110 §10.2.3): delay-seconds and the three HTTP-date forms.
for name, value in [("seconds", "120"), ("zero", "0"), ("huge", "9" * 400), ("padded", "  30 \t"),
                    ("imf-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT"), ("future", "Sat, 01 Jun 2030 00:05:00 GMT"),
                    ("rfc850", "Sunday, 06-Nov-94 08:49:37 GMT"), ("asctime", "Sun Nov  6 08:49:37 1994"),
                    ("leap-second", "Sat, 01 Jun 2030 23:59:60 GMT"), ("feb-31", "Mon, 31 Feb 2031 10:00:00 GMT"),
                    ("year-0000", "Mon, 01 Jan 0000 00:00:00 GMT"), ("negative", "-5"), ("fraction", "1.5")]:
    seed(f"retry-after-{name}", 0, value)
# 1: header lines as libcurl passes them to the header callback.
for name, value in [("status", "HTTP/1.1 200 OK\r\n"), ("continue", "HTTP/1.1 100 Continue\r\n"),
                    ("retry-after", "Retry-After: 120\r\n"), ("date", "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
                    ("content-type", "Content-Type: application/x-x509-ca-ra-cert\r\n"),
                    ("location", "Location:  https://other.example/scep?a=b:c \t\r\n"), ("end", "\r\n"),
                    ("folded", "X-Folded: one\r\n two\r\n"), ("not-utf8", b"X-\xff: \xc3\r\n")]:
    seed(f"header-{name}", 1, value)
# 2: the management endpoint's JSON answer.
for name, value in [("full", '{"challenge": "s3cr3t-challenge", "expires_in": 600, "variables": {"UPN": "host01@example.com", "Team": "ops"}}'),
                    ("minimal", '{"challenge":"x"}'), ("empty", '{"challenge": "   "}'),
                    ("control", '{"challenge": "line1\\nline2"}'), ("escapes", '{"challenge": "\\u00e9\\ud83d\\ude00\\t"}'),
                    ("wrong-type", '{"challenge": 42}'), ("variables-wrong", '{"challenge": "a", "variables": {"n": 1}}'),
                    ("nested", '{"challenge": "a", "variables": {}, "extra": [[[[[[[[[[{}]]]]]]]]]]}'),
                    ("not-json", "challenge=abc"), ("big", '{"challenge": "' + "A" * 70000 + '"}')]:
    seed(f"endpoint-{name}", 2, value)
# 3: GetCACaps answers (RFC 8894 §3.5.2).
for name, value in [("scepserver", "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation\n"),
                    ("crlf", "POSTPKIOperation\r\nSHA-512\r\nAES\r\n"), ("standard", "SCEPStandard"),
                    ("weak", "DES3\nSHA-1\n"), ("none", ""), ("mixed-case", "  aes \n sha-256\t\nGetNextCACert\nunknown\n"),
                    ("escape", "AES\n\x1b[31mred\u202egnp.exe\n\0")]:
    seed(f"caps-{name}", 3, value)
# 4: the CA pin file.
ca = pathlib.Path("capture/ca.pem").read_text()
fuzz_ca = pathlib.Path("capture/pki/ca.pem").read_text()
seed("pin-ca", 4, ca)
seed("pin-two", 4, ca + "\n# comment\n" + fuzz_ca)
seed("pin-with-key", 4, pathlib.Path("capture/client-key.pem").read_text() + ca)
seed("pin-no-certificate", 4, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
# 5: the software key file.
seed("key-pkcs1", 5, (work / "pkcs1.pem").read_text())
seed("key-pkcs8", 5, (work / "pkcs8.pem").read_text())
seed("key-encrypted-pkcs8", 5, (work / "encrypted.pem").read_text())
seed("key-encrypted-traditional", 5, (work / "encrypted-traditional.pem").read_text())
seed("key-ec", 5, (work / "ec.pem").read_text())

# Configs: deep nesting (the TOML parser allows 32 levels), long dotted keys, a big file.
c = pathlib.Path("corpus/config")
profile = '''[[profile]]
name = "device"
scep_url = "https://scep.example.com/scep"
ca_pin_sha256 = "3f9a000000000000000000000000000000000000000000000000000000000000"
subject = "CN={{Hostname}}"
key_storage = "software"
'''
def nested_arrays(depth): return "[" * depth + "1" + "]" * depth
def nested_tables(depth): return "{ a = " * depth + "1" + " }" * depth
def mixed(depth): return "".join("[ { a = " if i % 2 == 0 else "" for i in range(depth)) + "1" + "".join(" } ]" if i % 2 == 0 else "" for i in range(depth))
(c / "deep-arrays.toml").write_text(profile + f"post_install = {nested_arrays(31)}\nra_pin_sha256 = {nested_arrays(32)}\nsan_dns = {nested_arrays(33)}\n")
(c / "deep-arrays-1000.toml").write_text(profile + f"post_install = {nested_arrays(1000)}\n")
(c / "deep-inline-tables.toml").write_text(profile + f"variables = {nested_tables(31)}\n[profile.challenge]\nsource = {nested_tables(40)}\n")
(c / "deep-mixed.toml").write_text(profile + f"variables = {{ x = {mixed(70)} }}\n")
(c / "deep-unclosed.toml").write_text(profile + "post_install = " + "[{ a = " * 200 + "\n")
dotted = ".".join(f"k{i}" for i in range(300))
quoted = ".".join(f'"q {i}"' for i in range(100))
(c / "long-dotted-keys.toml").write_text(
    f"{dotted} = 1\n[{'.'.join(f't{i}' for i in range(200))}]\nx = 2\n[[{'.'.join(f'a{i}' for i in range(64))}]]\n{quoted} = 'v'\n"
    + profile + f"challenge.{dotted} = 3\nvariables.{'.'.join(['v'] * 40)} = 'deep'\n")
(c / "long-key-and-string.toml").write_text(profile + "k" * 60000 + ' = "' + "\\u00e9" * 10000 + '"\n' + 'subject = """' + "a\\\n" * 5000 + '"""\n')
profiles = "".join(f'''[[profile]]
name = "device-{i}"
scep_url = "https://scep{i}.example.com/scep"
ca_pin_sha256 = "{i:064x}"
subject = "CN={{{{Hostname}}}}-{i},O=Example"
san_dns = ["{{{{Hostname}}}}.example.com", "h{i}.example.com"]
key_storage = "software"
renew_before = "{i % 90 + 1}d"
variables = {{ Index = "{i}", Team = "ops" }}
challenge.source = "file"
challenge.file = "/etc/enroll-agent/challenge-{i}"

''' for i in range(460))
(c / "big-460-profiles.toml").write_text('state_dir = "/var/lib/enroll-agent"\n\n' + profiles)
PY
ls -l corpus/textinputs corpus/config | awk '{print $5, $9}'

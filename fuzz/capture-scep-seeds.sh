#!/usr/bin/env bash
# Captures real micromdm scepserver replies as fuzz seeds (run once; the results are committed):
#   fuzz/corpus/getcacert/scepserver-getcacert.der   the GetCACert body (a bare DER certificate)
#   fuzz/corpus/certrep/scepserver-success.der       a SUCCESS CertRep (SHA-1 signed, DES envelope)
#   fuzz/corpus/certrep/scepserver-failure.der       a FAILURE CertRep (wrong challenge -> badRequest)
#   fuzz/capture/                                    the CA, the throwaway client key, the PKCSReq
#                                                    (the CertRep harness's fixed expectation)
# scepserver listens on every interface, so everything runs in a private network
# namespace with only loopback (needs root or unprivileged user namespaces).
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" != "--inside" ]; then
  exec unshare -rn -- "$0" --inside
fi
ip link set lo up

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
scepserver ca -init -depot "$work/depot" -keySize 2048 -organization "Fuzz Seed CA" -years 10 >/dev/null 2>&1
SCEP_CHALLENGE_PASSWORD=seed-challenge scepserver -depot "$work/depot" -port 18080 -allowrenew 0 \
  >"$work/server.log" 2>&1 &

# A forwarding proxy on 18081 that writes every request and response body to $work/bodies/.
mkdir "$work/bodies"
python3 - "$work/bodies" <<'PY' &
import http.server, sys, urllib.request, itertools
out, counter = sys.argv[1], itertools.count()
class Proxy(http.server.BaseHTTPRequestHandler):
    def forward(self, body):
        n = next(counter)
        op = self.path.split("operation=")[-1].split("&")[0]
        req = urllib.request.Request("http://127.0.0.1:18080" + self.path, data=body, method=self.command)
        for k in ("Content-Type",):
            if self.headers.get(k): req.add_header(k, self.headers[k])
        try:
            resp = urllib.request.urlopen(req); status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        if body: open(f"{out}/{n:02d}-{op}.req", "wb").write(body)
        open(f"{out}/{n:02d}-{op}.resp", "wb").write(data)
        self.send_response(status); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self): self.forward(None)
    def do_POST(self): self.forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", 18081), Proxy).serve_forever()
PY
for _ in $(seq 50); do curl -fs "http://127.0.0.1:18080/scep?operation=GetCACaps" >/dev/null && break; sleep 0.1; done
sleep 0.3

(cd "$work" && scepclient -server-url http://127.0.0.1:18081/scep -challenge seed-challenge \
   -private-key client.key -certificate client.pem -cn fuzz-seed-client -keySize 2048 >/dev/null 2>&1)
mkdir "$work/bad" && (cd "$work/bad" && scepclient -server-url http://127.0.0.1:18081/scep -challenge wrong \
   -private-key k.key -certificate c.pem -cn fuzz-seed-refused >/dev/null 2>&1 || true)

ls "$work/bodies"
mkdir -p corpus/getcacert corpus/certrep capture
cp "$(ls "$work"/bodies/*-GetCACert.resp | head -1)" corpus/getcacert/scepserver-getcacert.der
ops=( $(ls "$work"/bodies/*-PKIOperation.resp) )
cp "${ops[0]}" corpus/certrep/scepserver-success.der
cp "${ops[-1]}" corpus/certrep/scepserver-failure.der
reqs=( $(ls "$work"/bodies/*-PKIOperation.req) )
cp "${reqs[0]}" capture/pkcsreq-success.der
cp "${reqs[-1]}" capture/pkcsreq-failure.der
install -m 0644 "$work/depot/ca.pem" capture/ca.pem
install -m 0644 "$work/client.key" capture/client-key.pem   # throwaway test key, only for the harness
echo "captured into $(pwd)/corpus and $(pwd)/capture"

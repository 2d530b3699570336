#!/usr/bin/env python3
"""A real NTLM peer for enroll-agent's challenge tests: an NDES-style mscep_admin page
behind NTLM, verified by pyspnego's NTLM acceptor (MS-NLMP: it checks the client's
NTLMv2 response against the password, so a wrong password is refused).

    NTLM_USER_FILE=users.txt NDES_CHALLENGE=… python ntlm_challenge_server.py

users.txt holds "DOMAIN:user:password" lines (pyspnego's format); the page's one-time
password comes from NDES_CHALLENGE (secrets stay out of argv). The server listens on
127.0.0.1 on a port the kernel picks, prints "PORT <n>" on stdout, then serves until
SIGTERM (the test stops it). For every request it prints one line on
stdout: "AUTH <scheme>" for an unauthenticated request, "NEGOTIATE <flags hex>" for a
type 1 message, "AUTHENTICATED <user>" or "REFUSED <reason>" for a type 3 message.
"""
import base64
import http.server
import os
import struct
import threading

import spnego

CHALLENGE = os.environ["NDES_CHALLENGE"]
PAGE = (
    "<HTML><Head><Title>Network Device Enrollment Service</Title></Head><Body>"
    "<P> The thumbprint (hash value) for the CA certificate is: <B> 5E9C1A0B 7D2F3A44 </B> <P>"
    f" The enrollment challenge password is: <B> {CHALLENGE} </B> <P>"
    " This password can be used only once and will expire within 60 minutes. </P></Body></HTML>"
)
lock = threading.Lock()


def report(line):
    with lock:
        print(line, flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    # NTLM authenticates a connection: type 1, 2 and 3 travel over one kept-alive connection.
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=(), close=False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        header = self.headers.get("Authorization", "")
        scheme, _, data = header.partition(" ")
        if scheme.upper() != "NTLM" or not data:
            report(f"AUTH {scheme or '-'}")
            self.reply(401, b"", [("WWW-Authenticate", "NTLM")])
            return
        token = base64.b64decode(data)
        if token[:8] != b"NTLMSSP\0" or len(token) < 12:
            report("REFUSED not an NTLMSSP message")
            self.reply(400, close=True)
            return
        message_type = struct.unpack("<I", token[8:12])[0]
        if message_type == 1:
            flags = struct.unpack("<I", token[12:16])[0] if len(token) >= 16 else 0
            report(f"NEGOTIATE {flags:08x}")
            self.acceptor = spnego.server(protocol="ntlm")
            answer = self.acceptor.step(token)
            self.reply(401, b"", [("WWW-Authenticate", "NTLM " + base64.b64encode(answer).decode())])
            return
        acceptor = getattr(self, "acceptor", None)
        if message_type != 3 or acceptor is None:
            report(f"REFUSED type {message_type} out of order")
            self.reply(401, b"", [("WWW-Authenticate", "NTLM")], close=True)
            return
        try:
            acceptor.step(token)
        except Exception as error:  # a wrong password: the NTLMv2 response does not verify
            report(f"REFUSED {type(error).__name__}")
            self.reply(401, b"", [("WWW-Authenticate", "NTLM")], close=True)
            return
        report(f"AUTHENTICATED {acceptor.client_principal}")
        body = b"\xff\xfe" + PAGE.encode("utf-16-le")
        self.reply(200, body, [("Content-Type", "text/html")])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()

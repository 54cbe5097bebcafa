#!/usr/bin/env python3
"""TLS and plaintext-authentication defaults of wd-server (suite `tls`).

1. Protocol versions, on IMAP (implicit TLS and STARTTLS), POP3 (implicit
   TLS and STLS): TLS 1.0 and 1.1 are refused, TLS 1.2 and 1.3 accepted;
   the same with openssl s_client. tls.minVersion=TLSv1.3 refuses 1.2.
2. Ciphers (RSA certificate, TLS 1.2): each weak family offered alone is
   refused (RC4, 3DES, DES, export, NULL, anonymous DH/ECDH, static RSA key
   exchange, CBC with SHA-1, CBC with SHA-256/384, PSK, SRP, CAMELLIA, ARIA,
   SEED, IDEA); the forward-secret AEAD suites are accepted. Every refused
   probe is first tried against a permissive reference server on the same
   OpenSSL: when that accepts it, wd-server's refusal is a real one; when
   even the reference cannot (the library no longer has the suite) that is
   reported and checked as such.
3. Plaintext logins: on a plain listener (imap.secure=false,
   pop3.secure=false) with the default insecureAuth=false, CAPABILITY says
   LOGINDISABLED, LOGIN and AUTHENTICATE PLAIN get NO [PRIVACYREQUIRED],
   POP3 USER, PASS and AUTH get -ERR and CAPA lists neither USER nor SASL;
   after STARTTLS/STLS the same logins work. insecureAuth="loopback"
   allows them from loopback peers only (a PROXY header naming 192.0.2.7
   or 2001:db8::7 is refused, 127.0.0.9 and ::1 allowed); insecureAuth=true
   and "any" allow every peer; another value stops the server with a clear
   error. LMTP offers no AUTH.

usage: test_tls_defaults.py WD_SERVER WDCTL"""

import base64
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tlsprobe import (ReferenceServer, client_context, handshake, make_cert,  # noqa: E402
                      s_client)
from imapserver import Conn, Server, Stack, skip_without_stack  # noqa: E402

PASSWORD = "tls-test-pass"


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s %s" % (what, str(detail)[:500]), flush=True)
        return cond


def versions(check, ports):
    for name, port, starttls in ports:
        for version, want in (("TLSv1", False), ("TLSv1.1", False), ("TLSv1.2", True),
                              ("TLSv1.3", True)):
            res = handshake(port, client_context(version), starttls)
            check(res[0] == want and (not want or res[1] == version),
                  "%s %s %s" % (name, version, "accepted" if want else "refused"), res)
    # openssl s_client on the implicit-TLS IMAP port
    port = ports[0][1]
    for flag, want in (("-tls1", False), ("-tls1_1", False), ("-tls1_2", True),
                       ("-tls1_3", True)):
        done, out = s_client(port, flag, "-cipher", "ALL:@SECLEVEL=0")
        check(done == want, "openssl s_client %s %s" % (flag, "accepted" if want else "refused"),
              out[-400:])


# (family, TLS 1.2 cipher string); each offered alone must be refused
WEAK = [
    ("RC4", "RC4"), ("3DES", "3DES"), ("DES", "DES:!3DES"), ("export", "EXP"),
    ("NULL encryption", "eNULL"), ("anonymous", "aNULL"), ("static RSA key exchange", "kRSA"),
    ("ECDHE CBC SHA-1", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"),
    ("ECDHE CBC SHA-2", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384"),
    ("DHE CBC", "DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA256"),
    ("PSK", "PSK"), ("SRP", "SRP"), ("CAMELLIA", "CAMELLIA"), ("ARIA", "ARIA"),
    ("SEED", "SEED"), ("IDEA", "IDEA"), ("MD5", "MD5"), ("SHA-1 MAC", "SHA1"),
]
STRONG = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
          "ECDHE-RSA-CHACHA20-POLY1305", "DHE-RSA-AES128-GCM-SHA256",
          "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305"]


def ciphers(check, port, reference):
    real, library = [], []
    for family, spec in WEAK:
        try:
            ctx = client_context("TLSv1.2", spec)
        except ssl_error():
            library.append(family)
            check(True, "%s: the library cannot even offer it" % family)
            continue
        ref = handshake(reference.port, ctx)
        res = handshake(port, ctx)
        check(not res[0], "%s refused" % family, res)
        (real if ref[0] else library).append(family)
    for suite in STRONG:
        res = handshake(port, client_context("TLSv1.2", suite))
        check(res[0] and res[2] == suite, "%s accepted" % suite, res)
    res = handshake(port, client_context("TLSv1.3"))
    check(res[0] and res[2].startswith("TLS_"), "TLS 1.3 suite", res)
    print("weak families refused by wd-server and accepted by the reference server: %s" %
          ", ".join(real))
    print("weak families the local OpenSSL cannot negotiate at all: %s" % ", ".join(library))
    check(len(real) >= 8, "most weak families were really probed", real)


def ssl_error():
    import ssl
    return ssl.SSLError


# ---------------------------------------------------------------- logins

def imap_plain(port, proxy=None):
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    if proxy:
        sock.sendall(proxy)
    c = Conn.__new__(Conn)
    c.sock, c.buf, c.inflate, c.deflate, c.tagn = sock, b"", None, None, 0
    c.greeting = c.line()
    return c


def plain_b64(user):
    return base64.b64encode(("\0%s\0%s" % (user, PASSWORD)).encode()).decode()


def imap_login_allowed(c):
    """(capability line, LOGIN answer, AUTHENTICATE answer)."""
    lines, _ = c.cmd("CAPABILITY")
    cap = " ".join(lines)
    _, login = c.cmd('LOGIN tlsuser "%s"' % PASSWORD)
    auth = None
    if " OK " not in login:
        _, auth = c.cmd("AUTHENTICATE PLAIN " + plain_b64("tlsuser"))
    return cap, login, auth


class Pop:
    def __init__(self, port, proxy=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        if proxy:
            self.sock.sendall(proxy)
        self.buf = b""
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def capa(self):
        first = self.cmd("CAPA")
        lines = []
        while first.startswith("+OK"):
            line = self.line()
            if line == ".":
                break
            lines.append(line)
        return lines

    def starttls(self):
        import ssl
        check = self.cmd("STLS")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        return check


def plaintext_default(check, server):
    imap, pop = server.ports["imap"], server.ports["pop3"]
    c = imap_plain(imap)
    cap, login, auth = imap_login_allowed(c)
    check("LOGINDISABLED" in cap and "STARTTLS" in cap, "plain IMAP: LOGINDISABLED", cap)
    check(" NO [PRIVACYREQUIRED]" in login, "plain IMAP: LOGIN refused", login)
    check(auth is not None and " NO [PRIVACYREQUIRED]" in auth,
          "plain IMAP: AUTHENTICATE PLAIN refused", auth)
    _, ok = c.cmd("STARTTLS")
    c.starttls()
    lines, _ = c.cmd("CAPABILITY")
    check("LOGINDISABLED" not in " ".join(lines), "after STARTTLS: no LOGINDISABLED", lines)
    _, login = c.cmd('LOGIN tlsuser "%s"' % PASSWORD)
    check(" OK " in login, "after STARTTLS: LOGIN works", login)
    c.close()
    p = Pop(pop)
    caps = p.capa()
    check("USER" not in caps and not any(x.startswith("SASL") for x in caps) and "STLS" in caps,
          "plain POP3: CAPA without USER and SASL", caps)
    check(p.cmd("USER tlsuser").startswith("-ERR"), "plain POP3: USER refused")
    check(p.cmd("PASS " + PASSWORD).startswith("-ERR"), "plain POP3: PASS refused")
    check(p.cmd("AUTH PLAIN " + plain_b64("tlsuser")).startswith("-ERR"),
          "plain POP3: AUTH PLAIN refused")
    check(p.starttls().startswith("+OK"), "STLS")
    caps = p.capa()
    check("USER" in caps, "after STLS: USER offered", caps)
    p.cmd("USER tlsuser")
    check(p.cmd("PASS " + PASSWORD).startswith("+OK"), "after STLS: login works")
    p.sock.close()


PEERS = [  # (PROXY v1 header, loopback?)
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\n", False),
    (b"PROXY TCP6 2001:db8::7 ::1 40000 143\r\n", False),
    (b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 143\r\n", False),
    (b"PROXY TCP4 127.0.0.9 127.0.0.1 40000 143\r\n", True),
    (b"PROXY TCP6 ::1 ::1 40000 143\r\n", True),
    (b"PROXY TCP6 ::ffff:127.0.0.1 ::1 40000 143\r\n", True),
]


def plaintext_policy(check, server, policy):
    for header, loopback in PEERS:
        allowed = policy == "any" or (policy == "loopback" and loopback)
        what = "insecureAuth=%s, peer %s" % (policy, header.split()[2].decode())
        c = imap_plain(server.ports["imap"], header)
        cap, login, auth = imap_login_allowed(c)
        if allowed:
            check("LOGINDISABLED" not in cap and " OK " in login, what + ": IMAP LOGIN works",
                  (cap, login))
        else:
            check("LOGINDISABLED" in cap and "PRIVACYREQUIRED" in login and
                  "PRIVACYREQUIRED" in (auth or ""), what + ": IMAP LOGIN refused",
                  (cap, login, auth))
        c.close()
        p = Pop(server.ports["pop3"], header)
        p.cmd("USER tlsuser")
        res = p.cmd("PASS " + PASSWORD)
        check(res.startswith("+OK") == allowed, what + ": POP3 %s" %
              ("works" if allowed else "refused"), res)
        p.sock.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    check = Checks()
    stack = Stack(wdctl)
    stack.user("tlsuser", PASSWORD)
    tmp = tempfile.TemporaryDirectory(prefix="wd-tls-")
    cert, key = make_cert(tmp.name, "rsa-server")
    tls = ["--tls.cert=" + cert, "--tls.key=" + key, "--pop3.authFailureDelay=0"]
    start = time.time()
    servers = []
    reference = ReferenceServer(cert, key)
    try:
        secure = Server(wd_server, stack, *tls)
        plain = Server(wd_server, stack, *tls, "--imap.secure=false", "--pop3.secure=false")
        servers += [secure, plain]
        versions(check, [("IMAP", secure.ports["imap"], None),
                         ("IMAP STARTTLS", plain.ports["imap"], "imap"),
                         ("POP3", secure.ports["pop3"], None),
                         ("POP3 STLS", plain.ports["pop3"], "pop3")])
        # the reference server does take TLS 1.0: the refusals above are real
        ref = handshake(reference.port, client_context("TLSv1"))
        check(ref[0], "reference server negotiates TLS 1.0 with this client", ref)
        ciphers(check, secure.ports["imap"], reference)
        only13 = Server(wd_server, stack, *tls, "--tls.minVersion=TLSv1.3")
        servers.append(only13)
        res = handshake(only13.ports["imap"], client_context("TLSv1.2"))
        check(not res[0], "minVersion TLSv1.3 refuses TLS 1.2", res)
        res = handshake(only13.ports["imap"], client_context("TLSv1.3"))
        check(res[0], "minVersion TLSv1.3 takes TLS 1.3", res)
        plaintext_default(check, plain)
        for policy, value in (("loopback", "loopback"), ("any", "true"), ("any", "any")):
            srv = Server(wd_server, stack, *tls, "--imap.secure=false", "--pop3.secure=false",
                         "--imap.proxy=true", "--pop3.proxy=true",
                         "--imap.insecureAuth=" + value, "--pop3.insecureAuth=" + value)
            servers.append(srv)
            plaintext_policy(check, srv, policy)
        # a value that means nothing stops the server with a clear error
        try:
            bad = Server(wd_server, stack, *tls, "--imap.insecureAuth=maybe")
            servers.append(bad)
            check(False, "insecureAuth=maybe refused at startup")
        except RuntimeError as e:
            check("insecureAuth" in str(e), "insecureAuth=maybe: a clear error", str(e)[-300:])
        # LMTP has no AUTH
        lm = Server(wd_server, stack, *tls, "--lmtp.enabled=true")
        servers.append(lm)
        s = socket.create_connection(("127.0.0.1", lm.ports["lmtp"]), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"LHLO x\r\n")
        ehlo = []
        while True:
            line = f.readline().decode()
            ehlo.append(line)
            if line[3:4] != "-":
                break
        s.sendall(b"AUTH PLAIN " + plain_b64("tlsuser").encode() + b"\r\n")
        answer = f.readline().decode()
        check(not any("AUTH" in l for l in ehlo) and answer.startswith("5"),
              "LMTP offers and takes no AUTH", (ehlo, answer))
        s.close()
    finally:
        reference.stop()
        for srv in servers:
            srv.stop()
        stack.cleanup()
        tmp.cleanup()
    print("%d checks passed, %d failed (%.1fs)" % (check.passed, check.failed,
                                                   time.time() - start))
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

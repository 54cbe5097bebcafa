#!/usr/bin/env python3
"""Certificate reload on SIGHUP in wd-server (suite `tls`).

wd-server runs with four event loops (each has its own IMAP, POP3 and LMTP
instances and TLS contexts) and certificate files that the test rewrites in
place, as certbot does:

1. CN=first is served. An IMAP session over TLS (logged in, INBOX selected)
   and a POP3 session over TLS stay open throughout.
2. The files become CN=second, SIGHUP: twelve new connections (spread over
   the loops by the kernel) on implicit-TLS IMAP and POP3 and on IMAP
   STARTTLS all present CN=second; the two old sessions still work (FETCH,
   NOOP, STAT) on their TLS session of CN=first.
3. A certificate file that is not PEM, then a key that does not match the
   certificate, then a missing key file: after each SIGHUP the log says
   "reload failed, keeping the current certificate" with the reason, new
   connections still get CN=second, and the server keeps running.
4. Good files again (CN=third), SIGHUP: CN=third.

usage: test_tls_reload.py WD_SERVER WDCTL"""

import os
import shutil
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tlsprobe import sighup, client_context, handshake, make_cert  # noqa: E402
from imapserver import Conn, Server, Stack, skip_without_stack  # noqa: E402
from test_tls_defaults import Checks, Pop  # noqa: E402

PASSWORD = "reload-pass"
MESSAGE = b"From: a@example.com\r\nSubject: reload\r\n\r\nbody\r\n"


def install(tmp, name, cert_path, key_path):
    cert, key = make_cert(tmp, name, "ec")
    shutil.copyfile(cert, cert_path + ".new")
    shutil.copyfile(key, key_path + ".new")
    os.replace(key_path + ".new", key_path)
    os.replace(cert_path + ".new", cert_path)


def served(server, count=12):
    """Subject CNs seen on `count` new connections of each kind."""
    seen = set()
    ctx = client_context()
    for _ in range(count):
        for port, starttls in ((server.ports["imap"], None), (server.ports["pop3"], None),
                               (server.ports["imapplain"], "imap")):
            res = handshake(port, ctx, starttls)
            seen.add(res[3] if res[0] else "error: " + res[1])
    return seen


def hup(server, check, want="certificates reloaded"):
    log = sighup(server, want)
    check(log is not None, "log after SIGHUP has %r" % want, "".join(server.log[-5:]))
    return log or []


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    check = Checks()
    stack = Stack(wdctl)
    stack.user("reloader", PASSWORD)
    tmp = tempfile.TemporaryDirectory(prefix="wd-reload-")
    cert_path = os.path.join(tmp.name, "live.crt")
    key_path = os.path.join(tmp.name, "live.key")
    install(tmp.name, "first", cert_path, key_path)
    start = time.time()
    server = Server(wd_server, stack, "--tls.cert=" + cert_path, "--tls.key=" + key_path,
                    "--workers.loops=4", "--pop3.authFailureDelay=0")
    # a second IMAP listener without implicit TLS for STARTTLS: a second
    # server on the same files
    plain = Server(wd_server, stack, "--tls.cert=" + cert_path, "--tls.key=" + key_path,
                   "--imap.secure=false", "--workers.loops=2")
    server.ports["imapplain"] = plain.ports["imap"]
    try:
        check(served(server, 2) == {"first"}, "CN=first served", served(server, 2))
        stack.run_wdctl("message", "import", "reloader", "INBOX", write_eml(tmp.name))
        imap = Conn(server.ports["imap"], tls=True)
        check(imap.sock.version() is not None, "IMAP session over TLS")
        _, t = imap.cmd('LOGIN reloader "%s"' % PASSWORD)
        check(" OK " in t, "IMAP login", t)
        imap.cmd("SELECT INBOX")
        raw = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=20)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        pop = Pop.__new__(Pop)
        pop.sock, pop.buf = ctx.wrap_socket(raw, server_hostname="localhost"), b""
        pop.line()
        pop.cmd("USER reloader")
        check(pop.cmd("PASS " + PASSWORD).startswith("+OK"), "POP3 login")

        install(tmp.name, "second", cert_path, key_path)
        hup(server, check)
        hup(plain, check)
        seen = served(server)
        check(seen == {"second"}, "after SIGHUP every new connection gets CN=second", seen)
        lines, t = imap.cmd("UID FETCH 1:* (BODY.PEEK[])")
        check(" OK " in t and any("reload" in l for l in lines),
              "the IMAP session from before the reload goes on", (lines[:3], t))
        check(pop.cmd("STAT").startswith("+OK 1 "), "the POP3 session from before goes on")

        bad_cases = [
            ("certificate file is not PEM", lambda: open(cert_path, "w").write("garbage\n"),
             "cannot load certificate"),
            ("key does not match", lambda: (make_cert(tmp.name, "other", "ec"),
                                            shutil.copyfile(os.path.join(tmp.name, "other.crt"),
                                                            cert_path)),
             "key values mismatch"),
            ("key file missing", lambda: os.remove(key_path), "cannot load"),
        ]
        install(tmp.name, "second", cert_path, key_path)
        hup(server, check)
        for what, breakit, reason in bad_cases:
            install(tmp.name, "second", cert_path, key_path)
            hup(server, check)
            breakit()
            log = hup(server, check, "reload failed, keeping the current certificate")
            check(any(reason in l for l in log), "%s: the log gives the reason" % what,
                  "".join(log))
            check(server.proc.poll() is None, "%s: server still running" % what)
            seen = served(server, 4)
            check(seen == {"second"}, "%s: still CN=second" % what, seen)
        install(tmp.name, "third", cert_path, key_path)
        hup(server, check)
        hup(plain, check)
        seen = served(server, 4)
        check(seen == {"third"}, "good files again: CN=third", seen)
        lines, t = imap.cmd("NOOP")
        check(" OK " in t, "the old IMAP session still answers", t)
        check(pop.cmd("QUIT").startswith("+OK"), "the old POP3 session ends normally")
        imap.cmd("LOGOUT")
    finally:
        code = server.stop()
        plain.stop()
        check(code == 0, "wd-server exit status", code)
        stack.cleanup()
        tmp.cleanup()
    print("%d checks passed, %d failed (%.1fs)" % (check.passed, check.failed,
                                                   time.time() - start))
    sys.exit(1 if check.failed else 0)


def write_eml(directory):
    path = os.path.join(directory, "m.eml")
    with open(path, "wb") as f:
        f.write(MESSAGE)
    return path


if __name__ == "__main__":
    main()

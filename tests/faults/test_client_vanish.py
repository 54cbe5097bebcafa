#!/usr/bin/env python3
"""Fault injection: clients that vanish in the middle of a command (suite
`faults`).

  - APPEND whose message literal is half sent (synchronising and LITERAL+),
    then the connection is reset;
  - FETCH BODY[] of a 20 MB message, the client reading 256 KiB of it and
    then resetting the connection;
  - LMTP DATA half sent (a message with an attachment), then reset.

Each is done repeatedly. Asserted: no partial message is stored (INBOX
counts unchanged, `wdctl check` finds nothing: no attachment reference
left behind by an interrupted delivery), the server keeps serving (the
20 MB message is fetched whole afterwards, new sessions work), and nothing
leaks: built with -Dsanitize=true (`--sanitize`, passed by
tests/faults/meson.build) the server runs under ASan and LeakSanitizer and
must exit 0 on SIGTERM; otherwise its resident memory after the rounds may
exceed the one after the first round by a bounded amount only.

usage: test_client_vanish.py WD_SERVER WDCTL [--sanitize]"""

import base64
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultstack import (Results, Server, addr, check, fetch_all, imap_login,  # noqa: E402
                        lmtp_session, message, rss_kib, setup, stop_server, stuffed,
                        wdctl_lines)

ROUNDS = 6
BIG = 20 * 1024 * 1024
# growth of the resident set allowed over ROUNDS-1 rounds after the first
# (allocator caches and the like; one leaked 20 MB message per round would be
# 100 MB)
RSS_SLACK_KIB = 32 * 1024


def reset(sock):
    """Close with RST (SO_LINGER 0): the client is gone, no FIN handshake."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def status_messages(port, user="alice"):
    c = imap_login(port, user)
    untagged, tagged = c.cmd("STATUS INBOX (MESSAGES)")
    check(" OK" in tagged, tagged)
    c.cmd("LOGOUT")
    c.close()
    return int(untagged[0].split("MESSAGES ")[1].rstrip(")"))


def big_message():
    rnd = random.Random(20)
    att = base64.encodebytes(rnd.randbytes(BIG * 3 // 4 - 4096)).replace(b"\n", b"\r\n")
    head = (b"From: big@outside.example\r\nTo: " + addr("alice").encode() +
            b"\r\nSubject: fault msg 0 attempt 1\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n"
            b"--bb\r\nContent-Type: text/plain\r\n\r\nbig one\r\n"
            b"--bb\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    return head + att + b"--bb--\r\n"


def append_half(port, literal_plus):
    c = imap_login(port)
    msg = message(1000, 1, random.Random(1).randbytes(200000))
    if literal_plus:
        c.send(b"a1 APPEND INBOX {%d+}\r\n" % len(msg) + msg[:len(msg) // 2])
    else:
        c.send(b"a1 APPEND INBOX (\\Seen) {%d}\r\n" % len(msg))
        check(c.line().startswith("+"), "no continuation")
        c.send(msg[:len(msg) // 2])
    time.sleep(0.05)
    reset(c.sock)


def fetch_big_vanish(port, uid):
    c = imap_login(port)
    c.cmd("SELECT INBOX")
    c.send("f1 UID FETCH %d (BODY.PEEK[])\r\n" % uid)
    got = 0
    while got < 256 * 1024:
        chunk = c.sock.recv(65536)
        check(chunk, "server closed the FETCH")
        got += len(chunk)
    reset(c.sock)


def lmtp_half(port, n):
    c = lmtp_session(port)
    code, text = c.cmd("MAIL FROM:<sender@outside.example>")
    check(code == 250, text)
    code, text = c.cmd("RCPT TO:<%s>" % addr("bob"))
    check(code == 250, text)
    code, text = c.cmd("DATA")
    check(code == 354, text)
    body = stuffed(message(2000 + n, 1, random.Random(7).randbytes(300000)))
    c.send(body[:len(body) // 2])
    time.sleep(0.05)
    reset(c.sock)


def t_vanish(server, stack, sanitize, report):
    port, lmtp = server.port, server.ports["lmtp"]
    big = big_message()
    c = lmtp_session(lmtp)
    code, text = c.deliver("sender@outside.example", addr("alice"), big)
    check(code == 250, text)
    c.close()
    conn = imap_login(port)
    conn.cmd("SELECT INBOX")
    uid = max(fetch_all(conn, "UID"))
    conn.close()
    alice, bob = status_messages(port), status_messages(port, "bob")

    rss = []
    for r in range(ROUNDS):
        for plus in (False, True):
            append_half(port, plus)
        fetch_big_vanish(port, uid)
        lmtp_half(lmtp, r)
        time.sleep(0.5)  # let the server notice the resets
        check(status_messages(port) == alice, "round %d: alice's INBOX changed" % r)
        check(status_messages(port, "bob") == bob, "round %d: bob's INBOX changed" % r)
        rss.append(rss_kib(server.proc.pid))

    # still serving: the big message whole
    conn = imap_login(port)
    conn.cmd("SELECT INBOX")
    conn.sock.settimeout(120)
    got = fetch_all(conn, "BODY.PEEK[]", str(uid))
    check(got[uid][1][0].endswith(big), "the 20 MB message is not served whole")
    conn.cmd("LOGOUT")
    conn.close()
    code, out = wdctl_lines(stack, "check")
    check(code == 0 and "0 problems found" in out, "wdctl check (exit %d):\n%s" % (code, out))
    report.update(rounds=ROUNDS, rss_first_kib=rss[0], rss_last_kib=rss[-1])
    if not sanitize:
        check(rss[-1] - rss[0] < RSS_SLACK_KIB,
              "resident memory grew from %d to %d KiB over %d rounds" % (rss[0], rss[-1], ROUNDS))


def main():
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    sanitize = "--sanitize" in sys.argv[3:]
    if sanitize:
        os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    pstack, stack = setup("vanish", wdctl, users=("alice", "bob"))
    res = Results()
    server = None
    report = {}
    try:
        server = Server(wd_server, stack, "--lmtp.enabled=true")
        res.run("clients vanishing mid-APPEND, mid-FETCH, mid-DATA", t_vanish, server, stack,
                sanitize, report)
        print("figures: %s (server under ASan: %s)" % (report, sanitize), flush=True)
    finally:
        if server is not None:
            stop_server(server, res)
        stack.cleanup()
        pstack.destroy()
    res.exit()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""MIME bombs and huge headers, delivered over LMTP and APPENDed (suite
`limits`): 100,000 parts; 10,000 levels of multipart nesting; a 10 MB
header block; a single 1 MB header line. Each is stored byte-exactly
(FETCH BODY[] equals the input; the MIME parser's part and depth limits,
10,000 parts and 64 levels, only flatten the tree it builds), BODYSTRUCTURE
and a header search still answer, the server's memory stays bounded and
the server answers other clients afterwards. The 10 MB header block cannot
be one database document: it gets a permanent 552 5.3.4 / NO [LIMIT]
"headers too large", never a 451 the MTA would retry forever. Over the limits that refuse:
a message line over 1 MiB gets a clear 5xx from LMTP, and more recipients
than lmtp.maxRecipients get 452 4.5.3.

usage: test_mime_bombs.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from limitslib import (MIB, PASSWORD, Lmtp, Memory, Results, Server, Stack, check,  # noqa: E402
                       imap_login, skip_without_stack)

DOMAIN = "bombs.example"
TRACE = re.compile(rb"^(Delivered-To|Return-Path|Received): [^\r\n]*\r\n", re.M)


def head(subject):
    return (b"From: bomber@example.com\r\nTo: alice@%s\r\nSubject: %s\r\n"
            b"Message-ID: <%s@example.com>\r\nMIME-Version: 1.0\r\n" %
            (DOMAIN.encode(), subject.encode(), subject.encode()))


def many_parts(n):
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(n))
    return (head("parts") + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts +
            b"--b--\r\n")


def deep_nesting(depth):
    opening = b"".join(b"Content-Type: multipart/mixed; boundary=n%d\r\n\r\n--n%d\r\n" % (i, i)
                       for i in range(depth))
    closing = b"".join(b"\r\n--n%d--" % i for i in reversed(range(depth)))
    return head("deep") + opening + b"Content-Type: text/plain\r\n\r\ninnermost" + closing + b"\r\n"


def header_block(size):
    line = b"X-Filler: " + b"h" * 88 + b"\r\n"
    return head("headers") + line * (size // len(line)) + b"\r\nbody\r\n"


def long_header_line(size):
    return head("longline") + b"X-Long: " + b"L" * size + b"\r\n\r\nbody\r\n"


# name, message, whether a clear permanent refusal is acceptable: the header
# lines are kept three times in the message's document (the raw piece,
# mimeTree.header, parsedHeader, as WildDuck needs them), so 10 MB of
# headers cannot fit MongoDB's 16 MiB document
BOMBS = [
    ("100,000 parts", lambda: many_parts(100000), False),
    ("10,000-deep nesting", lambda: deep_nesting(10000), False),
    ("10 MB header block", lambda: header_block(10 * MIB), True),
    ("1 MB header line", lambda: long_header_line(1000 * 1000), False),
]


def fetch_body(c, uid):
    """FETCH BODY[] of a UID as bytes (the literal read exactly)."""
    tag = c.tag()
    c.send("%s UID FETCH %d BODY.PEEK[]\r\n" % (tag, uid))
    while True:
        line = c.line()
        m = re.search(r"BODY\[\] \{(\d+)\}$", line)
        if m:
            n = int(m.group(1))
            while len(c.buf) < n:
                c._fill()
            data, c.buf = c.buf[:n], c.buf[n:]
            c.until(tag)
            return data
        check(not line.startswith(tag + " "), "FETCH: " + line)


def last_uid(c):
    lines, ok = c.cmd("UID SEARCH ALL")
    check(" OK " in ok, ok)
    uids = [int(x) for x in lines[0].split()[2:]]
    return max(uids)


def check_stored(c, expected, what):
    _, ok = c.cmd("NOOP")
    uid = last_uid(c)
    got = fetch_body(c, uid)
    stripped = TRACE.sub(b"", got, count=3)
    check(stripped == expected, "%s: BODY[] differs (%d bytes stored, %d sent)" %
          (what, len(got), len(expected)))


# What BODYSTRUCTURE, ENVELOPE and SEARCH may make the server hold while
# they work on the bombs: a sanity bound, far above what delivery and
# BODY[] need. They parse or decode whole messages, and on these messages
# they cost 50-150 times the message size (docs/RELIABILITY.md: known,
# reported, not fixed here); this bound only catches growth without end.
STRUCTURE_BOUND_MIB = 1024


def check_structure_and_search(server, c, what):
    """BODYSTRUCTURE / ENVELOPE of the newest message and SEARCH over the
    mailbox still answer; their memory is reported."""
    mem = Memory(server)
    uid = last_uid(c)
    lines, ok = c.cmd("UID FETCH %d (BODYSTRUCTURE ENVELOPE)" % uid)
    check(" OK " in ok and lines, "%s: BODYSTRUCTURE: %s" % (what, ok))
    mem.report(what + ": BODYSTRUCTURE")
    for key in ('HEADER Message-ID "@example.com"', "BODY innermost"):
        lines, ok = c.cmd("UID SEARCH " + key)
        check(" OK " in ok, "%s: SEARCH %s: %s" % (what, key, ok))
    mem.report(what + ": and SEARCH")
    check(mem.within(STRUCTURE_BOUND_MIB), "%s: BODYSTRUCTURE/SEARCH grew memory "
          "by %.1f MiB" % (what, mem.peak_growth_mib()))


def append(c, mailbox, message):
    tag = c.tag()
    c.send("%s APPEND %s {%d}\r\n" % (tag, mailbox, len(message)))
    cont = c.line()
    check(cont.startswith("+"), "APPEND: " + cont)
    c.sock.sendall(message + b"\r\n")
    _, ok = c.until(tag)
    return ok


def t_bomb(server, name, make, refusable=False):
    """Deliver and APPEND one bomb: stored byte-exactly, or (refusable)
    refused with a permanent, clear error (552 5.3.4 / NO [LIMIT]); never a
    temporary failure the MTA would retry forever. Delivery, APPEND and
    FETCH BODY[] stay within 160 MiB of peak growth, or 24 times the
    message size when that is more."""
    message = make()
    mem = Memory(server)
    start = time.time()
    lmtp = Lmtp(server.ports["lmtp"], timeout=120)
    lmtp.cmd("LHLO client.example")
    replies = lmtp.deliver("bomber@example.com", ["alice@%s" % DOMAIN], message)
    lmtp.cmd("QUIT")
    lmtp.close()
    c = imap_login(server.port, "alice")
    c.sock.settimeout(120)
    _, ok = c.cmd("SELECT INBOX")
    if refusable and replies[0][0] != 250:
        check(replies[0][0] == 552 and "5.3.4" in replies[0][1] and "too large" in replies[0][1],
              "%s over LMTP: %s" % (name, replies))
    else:
        check(replies[0][0] == 250, "%s over LMTP: %s" % (name, replies))
        check_stored(c, message, name + " (LMTP)")
    ok = append(c, "INBOX", message)
    if refusable and " OK " not in ok:
        check(" NO [LIMIT] " in ok and "too large" in ok, "%s APPEND: %s" % (name, ok))
    else:
        check(" OK " in ok, "%s APPEND: %s" % (name, ok))
        check_stored(c, message, name + " (APPEND)")
    print("     LMTP: %s; APPEND: %s" % (replies[0][1][:60], ok[:60]), flush=True)
    mem.report("%s (%.1f MB)" % (name, len(message) / 1e6))
    print("     %.1f s" % (time.time() - start), flush=True)
    # the message's database document is built whole before it is sent
    # (or, 32 MB for the 10 MB header block, measured and refused), with
    # libbson doubling its buffer: up to about 20 times the message
    bound = max(160, 24 * len(message) // MIB)
    check(mem.within(bound), "%s grew memory by %.1f MiB" %
          (name, mem.peak_growth_mib()))
    check_structure_and_search(server, c, name)
    c.close()
    other = imap_login(server.port, "bob")
    _, ok = other.cmd("NOOP")
    check(" OK " in ok, ok)
    other.close()


def t_line_over_limit(server):
    message = head("overline") + b"X-Long: " + b"L" * (2 * MIB) + b"\r\n\r\nbody\r\n"
    lmtp = Lmtp(server.ports["lmtp"])
    lmtp.cmd("LHLO client.example")
    replies = lmtp.deliver("bomber@example.com", ["alice@%s" % DOMAIN], message)
    check(replies[0][0] >= 500 and "line" in replies[0][1].lower(), replies)
    check(lmtp.cmd("NOOP")[0] == 250, "session unusable after the refusal")
    lmtp.close()


def t_recipients(server):
    lmtp = Lmtp(server.ports["lmtp"])
    lmtp.cmd("LHLO client.example")
    check(lmtp.cmd("MAIL FROM:<a@example.com>")[0] == 250, "MAIL")
    codes = [lmtp.cmd("RCPT TO:<bob@%s>" % DOMAIN) for _ in range(6)]
    check(all(c == 250 for c, _ in codes[:5]), codes)
    check(codes[5][0] == 452 and "4.5.3" in codes[5][1], codes[5])
    lmtp.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    for user in ("alice", "bob"):
        stack.run_wdctl("user", "create", user, "--address", "%s@%s" % (user, DOMAIN),
                        "--password", PASSWORD)
    server = Server(wd_server, stack, "--imap.secure=false", "--imap.starttls=false",
                    "--imap.insecureAuth=true", "--lmtp.enabled=true",
                    "--lmtp.maxRecipients=5")
    try:
        for name, make, refusable in BOMBS:
            res.run(name, t_bomb, server, name, make, refusable)
        res.run("LMTP line over 1 MiB", t_line_over_limit, server)
        res.run("LMTP recipients over the limit", t_recipients, server)
    finally:
        code = server.stop()
        stack.cleanup()
    check(code == 0, "wd-server exit status %s" % code)
    res.exit()


if __name__ == "__main__":
    main()

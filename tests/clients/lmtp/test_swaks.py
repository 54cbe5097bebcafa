#!/usr/bin/env python3
"""swaks (Debian) delivering to wd-server over LMTP: one recipient, several
with per-recipient replies, PIPELINING, and only unknown recipients; the
messages are read back through IMAP and compared byte for byte apart from
the trace headers delivery adds.

usage: test_swaks.py WD_SERVER WDCTL   (exit 77 without the stack or swaks)"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402
from test_lmtp import PASSWORD, addr, check_stored, inbox, new_messages  # noqa: E402

MESSAGE = (b"From: swaks <swaks@outside.example>\r\n"
           b"To: alice@lmtp.example\r\n"
           b"Subject: from swaks\r\n"
           b"Message-ID: <swaks-%d@outside.example>\r\n"
           b"\r\n"
           b"line one\r\n"
           b".dot line swaks must stuff\r\n"
           b"last\r\n")


def swaks(port, rcpts, message, *extra):
    # swaks ends DATA with CRLF "." CRLF after the text as given: the last
    # line's CRLF is its own
    with tempfile.NamedTemporaryFile(suffix=".eml") as f:
        f.write(message[:-2] if message.endswith(b"\r\n") else message)
        f.flush()
        res = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                              "--protocol", "LMTP", "--helo", "swaks.test",
                              "--from", "swaks@outside.example", "--to", ",".join(rcpts),
                              "--data", "@" + f.name] + list(extra),
                             capture_output=True, text=True, timeout=60)
    return res.returncode, res.stdout + res.stderr


def t_one(port, imap_port):
    before = inbox(imap_port, "alice")
    msg = MESSAGE % 1
    code, out = swaks(port, [addr("alice")], msg)
    check(code == 0, out)
    check("<~ 250" in out or "<-  250" in out, out)
    fresh = new_messages(imap_port, "alice", before)
    check(len(fresh) == 1, len(fresh))
    check_stored(fresh[0], msg)


def t_several(port, imap_port, *extra):
    a, b = inbox(imap_port, "alice"), inbox(imap_port, "bob")
    msg = MESSAGE % (2 + len(extra))
    code, out = swaks(port, [addr("alice"), addr("nobody"), addr("bob")], msg, *extra)
    # swaks goes on after a refused RCPT; the per-recipient replies follow DATA
    check(code == 0, out)
    check(out.count("5.1.1") >= 1 or " 550 " in out, out)
    fa, fb = new_messages(imap_port, "alice", a), new_messages(imap_port, "bob", b)
    check(len(fa) == 1 and len(fb) == 1, (len(fa), len(fb), out))
    check_stored(fa[0], msg)
    check_stored(fb[0], msg)


def t_nobody(port):
    code, out = swaks(port, [addr("nobody")], MESSAGE % 9)
    check(code == 24, "exit %d (24: no RCPTs accepted)\n%s" % (code, out))


def main():
    skip_without_stack()
    if shutil.which("swaks") is None:
        print("swaks not installed: skipping")
        sys.exit(77)
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    for user in ("alice", "bob"):
        stack.run_wdctl("user", "create", user, "--address", addr(user), "--password", PASSWORD)
    server = Server(wd_server, stack, "--lmtp.enabled=true", "--lmtp.port=0")
    port, imap_port = server.ports["lmtp"], server.port
    try:
        res.run("swaks one recipient", t_one, port, imap_port)
        res.run("swaks mixed recipients", t_several, port, imap_port)
        res.run("swaks --pipeline", t_several, port, imap_port, "--pipeline")
        res.run("swaks only unknown recipients", t_nobody, port)
    finally:
        server.stop()
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

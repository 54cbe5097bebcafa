#!/usr/bin/env python3
"""End to end: LMTP delivery to a user with a forward target and an active
autoreply; wd-server's outbound sender (sender.enabled, relay = a local
SMTP sink, tests/clients/smtpsink.py) must hand each forward and the
autoreply to the relay exactly once, and send no autoreply for bulk or
list mail nor a second one to the same sender.

usage: test_forward_autoreply.py WD_SERVER WDCTL USER_SETUP
       (exit 77 without the stack)"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402
from test_lmtp import PASSWORD, Lmtp, addr, inbox, new_messages, transaction  # noqa: E402

FORWARD_TO = "elsewhere@remote.example"
FRIEND = "friend@outside.example"
LIST = "news@lists.example"


class Sink:
    """tests/clients/smtpsink.py in a process of its own."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="wd-sink-")
        self.proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(HERE),
                                                                   "smtpsink.py"),
                                      "--dir", self.dir.name, "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def messages(self):
        out = []
        for meta in sorted(glob.glob(os.path.join(self.dir.name, "*.json"))):
            with open(meta) as f:
                info = json.load(f)
            with open(meta[:-5] + ".eml", "rb") as f:
                info["raw"] = f.read()
            out.append(info)
        return out

    def wait(self, count, timeout=30):
        end = time.time() + timeout
        while len(self.messages()) < count and time.time() < end:
            time.sleep(0.2)
        return self.messages()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.dir.cleanup()


def deliver(port, sender, body):
    c = Lmtp(port)
    c.lhlo()
    codes, replies = transaction(c, sender, [addr("carol")], body + b".\r\n")
    check(codes == [250] and replies[0].startswith("250 "), (codes, replies))
    c.cmd("QUIT")
    c.close()


def forwards(msgs):
    return [m for m in msgs if m["rcpt_to"] == [FORWARD_TO]]


def autoreplies(msgs):
    return [m for m in msgs if b"\r\nAuto-Submitted: auto-replied" in b"\r\n" + m["raw"]]


def t_forward_and_autoreply(port, imap_port, sink):
    before = inbox(imap_port, "carol")
    body = (b"From: Friend <friend@outside.example>\r\n"
            b"To: carol@lmtp.example\r\n"
            b"Subject: lunch?\r\n"
            b"Message-ID: <lunch@outside.example>\r\n"
            b"\r\n"
            b"are you free?\r\n")
    deliver(port, FRIEND, body)
    msgs = sink.wait(2)
    time.sleep(3)  # anything more would be a duplicate
    msgs = sink.messages()
    fw, ar = forwards(msgs), autoreplies(msgs)
    check(len(fw) == 1, "forwards: %r" % [m["rcpt_to"] for m in msgs])
    check(len(ar) == 1, "autoreplies: %r" % [m["rcpt_to"] for m in msgs])
    check(len(msgs) == 2, "messages at the relay: %d" % len(msgs))
    # the forward carries the message; the autoreply goes to the sender, from <>
    check(b"are you free?\r\n" in fw[0]["raw"] and b"Subject: lunch?" in fw[0]["raw"], fw[0]["raw"])
    check(ar[0]["rcpt_to"] == [FRIEND], ar[0]["rcpt_to"])
    check(ar[0]["mail_from"] == "", "autoreply envelope sender: %r" % ar[0]["mail_from"])
    check(b"In-Reply-To: <lunch@outside.example>" in ar[0]["raw"], ar[0]["raw"][:600])
    # and the user still has the message
    check(len(new_messages(imap_port, "carol", before)) == 1, "stored for carol")


def t_no_second_autoreply(port, sink):
    count = len(sink.messages())
    deliver(port, FRIEND, b"From: friend@outside.example\r\nSubject: again\r\n\r\nme again\r\n")
    sink.wait(count + 1)
    time.sleep(3)
    msgs = sink.messages()[count:]
    check(len(forwards(msgs)) == 1, "forward of the second message: %d" % len(forwards(msgs)))
    check(len(autoreplies(msgs)) == 0, "a second autoreply to the same sender")


def t_no_autoreply_for_bulk(port, sink):
    for i, header in enumerate((b"Precedence: bulk", b"Precedence: list",
                                b"List-Unsubscribe: <mailto:unsub@lists.example>",
                                b"Auto-Submitted: auto-generated")):
        count = len(sink.messages())
        sender = "news%d@lists.example" % i
        deliver(port, sender, b"From: " + sender.encode() + b"\r\n" + header +
                b"\r\nSubject: newsletter\r\n\r\nnews\r\n")
        sink.wait(count + 1)
        time.sleep(2)
        msgs = sink.messages()[count:]
        check(len(forwards(msgs)) == 1, "%s: forwards %d" % (header, len(forwards(msgs))))
        check(not autoreplies(msgs), "%s: autoreply sent" % header)


def main():
    skip_without_stack()
    wd_server, wdctl, setup = sys.argv[1], sys.argv[2], sys.argv[3]
    stack = Stack(wdctl)
    res = Results()
    stack.run_wdctl("user", "create", "carol", "--address", addr("carol"), "--password", PASSWORD)
    for args in (["forward", FORWARD_TO], ["autoreply", "Away", "I am away this week."]):
        subprocess.run([setup, stack.mongo, "carol"] + args, check=True, timeout=30)
    sink = Sink()
    # a queue of this test's own: the sender must see no other test's mail
    server = Server(wd_server, stack, "--lmtp.enabled=true", "--lmtp.port=0",
                    "--dbs.sender=%s_sender" % stack.db, "--sender.enabled=true", "--sender.relay.host=127.0.0.1",
                    "--sender.relay.port=%d" % sink.port, "--sender.pollInterval=0.2")
    try:
        res.run("forward and autoreply, each once", t_forward_and_autoreply,
                server.ports["lmtp"], server.port, sink)
        res.run("no second autoreply to the same sender", t_no_second_autoreply,
                server.ports["lmtp"], sink)
        res.run("no autoreply for bulk and list mail", t_no_autoreply_for_bulk,
                server.ports["lmtp"], sink)
    finally:
        server.stop()
        sink.stop()
        stack.cleanup()

    def t_clean_logs():
        bad = [l for l in server.log if "Sanitizer" in l or "runtime error" in l or "panic" in l]
        check(not bad, "".join(server.log[-40:]))
        check(server.proc.returncode == 0, "exit code %s" % server.proc.returncode)
    res.run("server logs clean, exit 0", t_clean_logs)
    res.exit()


if __name__ == "__main__":
    main()

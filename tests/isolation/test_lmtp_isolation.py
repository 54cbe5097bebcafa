#!/usr/bin/env python3
"""LMTP: recipient tricks deliver to exactly the right account or are
refused, never to another user.

World: world.py. A owns alice@example.com and the catch-all *@shared.test;
B owns zqxbob@example.com, zqxbob@shared.test (an exact address inside A's
catch-all domain) and zqxbob@bücher.test; carol is disabled, dave
suspended; fwd@example.com is a forwarded address.

Each case is one LMTP transaction with one recipient (raw RCPT TO text) and
a message whose subject names the case. The expected outcome is the account
that must get it ("A", "B"), "refused" (5xx at RCPT or DATA), "nobody"
(accepted for forwarding, stored in no mailbox), or a set of acceptable
ones ("B|refused": a spelling that may be B's or invalid, but never A's).
Cases: case, +labels, dots, quoted local parts (RFC 5321: "zqxbob" quoted
is the same mailbox as zqxbob), "%" and "!" relays, source routes,
trailing dots, address literals, IDN (punycode and UTF-8 with SMTPUTF8),
look-alikes (Cyrillic, full-width), the catch-all against B's exact
address, disabled and suspended users, the forwarded address, ORCPT
naming another user, several addresses in one RCPT, control bytes.

Afterwards every mailbox of A, B, carol and dave is listed through the API
and each case's subject must be exactly where the expectation says. Then
one message to A and B in one transaction: each gets a copy; A deleting and
flagging hers leaves B's as it was.

usage: test_lmtp_isolation.py WD_API WD_SERVER WDCTL [-v]"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import MARK, Checks, World, message, skip_without_stack  # noqa: E402

M = MARK
CASES = [
    # (RCPT TO argument as sent, expected)
    ("<%s@example.com>" % M, "B"),
    ("<%s@EXAMPLE.COM>" % M.upper(), "B"),
    ("<%s+tag@example.com>" % M, "B"),
    ("<%s+alice@example.com>" % M, "B"),
    ("<zqx.bob@example.com>", "B"),
    ("<.%s.@example.com>" % M, "B|refused"),
    ("<alice@example.com>", "A"),
    ("<a.l.i.c.e@example.com>", "A"),
    ("<alice+%s@example.com>" % M, "A"),
    ("<Alice+%s@Example.COM>" % M.upper(), "A"),
    # a quoted local part that needs no quotes is the same mailbox: B's,
    # not A's catch-all (it was A's until lmtp-command.c unquoted it)
    ('<"%s"@example.com>' % M, "B"),
    ('<"%s"@shared.test>' % M, "B"),
    ('<"%s+x"@shared.test>' % M, "B"),
    ('<"%s."@shared.test>' % M, "B"),
    ('<"zqx bob"@shared.test>', "A|refused"),
    ('<"%s@example.com"@shared.test>' % M, "A|refused"),
    ('<"alice"@example.com>', "A|refused"),
    ('<"zqx\\bob"@shared.test>', "B"),
    ("<%s%%example.com@shared.test>" % M, "A|refused"),
    ("<%s%%shared.test@example.com>" % M, "refused"),
    ("<shared.test!%s@example.com>" % M, "refused"),
    ("<example.com!%s>" % M, "refused"),
    ("<@example.com:%s@shared.test>" % M, "B"),
    ("<@shared.test,@example.com:alice@example.com>", "A"),
    ("<@shared.test:%s>" % M, "refused"),
    ("<%s@shared.test.>" % M, "B|refused"),
    ("<%s@example.com.>" % M, "B|refused"),
    ("<%s@example.com..>" % M, "B|refused"),
    ("<%s@[127.0.0.1]>" % M, "refused"),
    ("<%s@[IPv6:::1]>" % M, "refused"),
    ("<%s>" % M, "refused"),
    ("<%s@>" % M, "refused"),
    ("<@example.com>", "refused"),
    ("<%s@xn--bcher-kva.test>" % M, "B"),
    ("<%s@XN--BCHER-KVA.TEST>" % M, "B"),
    ("<%s@bücher.test> SMTPUTF8" % M, "B"),
    ("<%s@BÜCHER.TEST> SMTPUTF8" % M, "B"),
    ("<%s@bucher.test>" % M, "refused"),
    ("<%s@xn--bcher-kva.test.>" % M, "B|refused"),
    ("<zqxb\u043eb@example.com> SMTPUTF8", "refused"),     # Cyrillic o
    ("<\uff5a\uff51\uff58\uff42\uff4f\uff42@example.com> SMTPUTF8", "B|refused"),  # full-width
    ("<zqxbo\u0301b@example.com> SMTPUTF8", "refused"),    # combining accent
    ("<%s@Shared.Test>" % M.upper(), "B"),
    ("<%s@shared.test>" % M, "B"),
    ("<%s+x@shared.test>" % M, "B"),
    ("<z.q.x.b.o.b@shared.test>", "B"),
    ("<nobody@shared.test>", "A"),
    ("<nobody@SHARED.TEST>", "A"),
    ("<alice@shared.test>", "A"),
    ("<*@shared.test>", "A|refused"),
    ("<%s@*>" % M, "refused"),
    ("<*@example.com>", "refused"),
    ("<carol@example.com>", "refused"),
    ("<CAROL+x@example.com>", "refused"),
    ("<dave@example.com>", "refused"),
    ("<fwd@example.com>", "nobody"),
    ("<f.w.d+x@example.com>", "nobody"),
    # DSN is not offered: its parameters are refused (555)
    ("<alice@example.com> ORCPT=rfc822;%s@example.com" % M, "A|refused"),
    ("<alice@example.com> NOTIFY=NEVER ORCPT=rfc822;%s@example.com" % M, "A|refused"),
    ("<alice@example.com>,<%s@example.com>" % M, "refused"),
    ("<alice@example.com, %s@example.com>" % M, "refused"),
    ("<alice@example.com> <%s@example.com>" % M, "refused"),
    ("<%s@example.com>" % M + "\x00", "refused"),
    ("<%s@example.com\x00alice@example.com>" % M, "refused"),
    ("<alice@example.com\r%s@example.com>" % M, "refused"),
    ("<%s\xff@example.com>" % M, "refused"),
    ("%s@example.com" % M, "B|refused"),
    ("<<%s@example.com>>" % M, "refused"),
    ("<alice@example.com" + "x" * 2000 + ">", "refused"),
]


class Lmtp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.reply()
        self.cmd("LHLO tester.example.org")

    def reply(self):
        """(code, text) of a possibly multi-line reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        self.sock.sendall(text + b"\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def raw_bytes(text):
    """Case text to wire bytes: \\xff stays one byte, the rest UTF-8."""
    out = b""
    for ch in text:
        out += bytes([ord(ch)]) if 0x80 <= ord(ch) <= 0xff and ch == "\xff" else ch.encode()
    return out


def deliver(port, rcpt, subject):
    """(stage, code, text): stage "rcpt" when RCPT refused, else "data"."""
    c = Lmtp(port)
    try:
        utf8 = " SMTPUTF8" if "SMTPUTF8" in rcpt else ""
        code, text = c.cmd("MAIL FROM:<sender@example.org>" + utf8)
        if code != 250:
            return "mail", code, text
        args = rcpt.replace(" SMTPUTF8", "")
        code, text = c.cmd(b"RCPT TO:" + raw_bytes(args))
        if code != 250:
            return "rcpt", code, text
        code, text = c.cmd("DATA")
        if code != 354:
            return "data", code, text
        c.sock.sendall(message("case@example.org", subject) + b".\r\n")
        code, text = c.reply()
        return "data", code, text
    except (EOFError, ConnectionError):
        return "closed", 0, "connection closed"
    finally:
        c.close()


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = [a for a in sys.argv[1:] if a != "-v"][:3]
    check = Checks()
    w = World(wd_api, wd_server, wdctl)
    start = time.time()
    try:
        w.populate()
        port = w.server.ports["lmtp"]
        outcomes = {}
        for i, (rcpt, expect) in enumerate(CASES):
            subject = "lmtp-case-%02d" % i
            stage, code, text = deliver(port, rcpt, subject)
            outcomes[subject] = (rcpt, expect, stage, code, text)
            if code == 0 or 400 <= code < 500:
                check(False, "case %r: a definite answer" % rcpt, (stage, code, text))
        # where each case landed
        where = {}
        for who, uid in (("A", w.a), ("B", w.b), ("carol", w.c), ("dave", w.d),
                         ("erin", w.e)):
            for subject, paths in w.messages(uid).items():
                if subject.startswith("lmtp-case-"):
                    where.setdefault(subject, []).append(who)
        counts = {}
        for subject, (rcpt, expect, stage, code, text) in outcomes.items():
            got = sorted(where.get(subject, []))
            accepted = stage == "data" and code == 250
            if accepted:
                result = got[0] if len(got) == 1 else ("nobody" if not got else "+".join(got))
            else:
                result = "refused"
                check(not got, "case %r: refused yet stored" % rcpt, got)
            counts[result] = counts.get(result, 0) + 1
            check(result in expect.split("|"), "RCPT TO:%r goes to %s" % (rcpt, expect),
                  "went to %s (%s %d %s)" % (result, stage, code, text[:120]))
            if check.verbose:
                print("     %-60r -> %s" % (rcpt, result))
        print("%d recipient cases: %s" % (len(CASES), counts))
        # one message to A and B: two independent copies
        c = Lmtp(port)
        c.cmd("MAIL FROM:<sender@example.org>")
        c.cmd("RCPT TO:<alice@example.com>")
        c.cmd("RCPT TO:<%s@example.com>" % MARK)
        c.cmd("DATA")
        c.sock.sendall(message("both@example.com", "to both of them") + b".\r\n")
        replies = [c.reply()[0], c.reply()[0]]
        check(replies == [250, 250], "one transaction to A and B: two 250s", replies)
        c.close()
        a = w.imap()
        lines, _ = a.cmd("SELECT INBOX")
        lines, _ = a.cmd('UID SEARCH SUBJECT "to both of them"')
        uids = lines[0].split()[2:] if lines else []
        check(len(uids) == 1, "A got one copy", lines)
        b = w.imap(MARK, "secret-bob")
        b.cmd("EXAMINE INBOX")
        lines, _ = b.cmd('UID SEARCH SUBJECT "to both of them"')
        b_uids = lines[0].split()[2:] if lines else []
        check(len(b_uids) == 1, "B got one copy", lines)
        before, _ = b.cmd("UID FETCH %s (FLAGS MODSEQ BODY.PEEK[])" % ",".join(b_uids or ["1"]))
        if uids:
            a.cmd("UID STORE %s +FLAGS (\\Seen \\Flagged $Mine)" % uids[0])
            a.cmd("UID STORE %s +FLAGS (\\Deleted)" % uids[0])
            _, t = a.cmd("UID EXPUNGE %s" % uids[0])
            check(" OK " in t, "A expunged her copy", t)
        b.cmd("NOOP")
        after, _ = b.cmd("UID FETCH %s (FLAGS MODSEQ BODY.PEEK[])" % ",".join(b_uids or ["1"]))
        check(before == after and before, "B's copy untouched by A's flags and expunge",
              (before[:2], after[:2]))
        a.close()
        b.close()
    finally:
        code = w.stop()
        check(code == (0, 0), "wd-server and wd-api exit status 0", code)
    print("total %.1fs" % (time.time() - start))
    check.done("lmtp-isolation")


if __name__ == "__main__":
    main()

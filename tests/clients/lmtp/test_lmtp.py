#!/usr/bin/env python3
"""wd-server's LMTP engine on loopback against the real stack and the real
delivery pipeline: Python smtplib.LMTP sessions and raw-socket transcripts
(LHLO capabilities, mixed per-recipient replies, pipelining in one write,
dot-stuffing both ways checked through IMAP BODY[] and POP3 RETR, size and recipient
limits, bad sequence, hostile input, a second client served meanwhile,
STARTTLS, shutdown).

usage: test_lmtp.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import imaplib
import os
import re
import smtplib
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "correct horse"
DOMAIN = "lmtp.example"
TRACE = re.compile(rb"^(Delivered-To|Return-Path): [^\r\n]*$")


class Lmtp:
    """A raw LMTP connection: send bytes, read whole replies."""

    def __init__(self, port, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_bytewise(self, data):
        if isinstance(data, str):
            data = data.encode()
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; had %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One reply, all its lines: (code, [lines])."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return int(lines[-1][:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        code, lines = self.reply()
        return code, lines[-1]

    def lhlo(self, name="client.test"):
        self.send("LHLO %s\r\n" % name)
        return self.reply()

    def closed(self, timeout=10):
        end = time.time() + timeout
        try:
            while time.time() < end:
                self.sock.settimeout(max(0.1, end - time.time()))
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def addr(user):
    return "%s@%s" % (user, DOMAIN)


def imap(port, user):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    check(m.login(user, PASSWORD)[0] == "OK", "login " + user)
    return m


def inbox(port, user):
    """Every INBOX message of `user` as {uid: bytes}."""
    m = imap(port, user)
    typ, data = m.select("INBOX", readonly=True)
    check(typ == "OK", data)
    result = {}
    if data[0] != b"0":
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        check(typ == "OK", data)
        for d in data:
            if isinstance(d, tuple):
                uid = int(re.search(rb"UID (\d+)", d[0]).group(1))
                result[uid] = d[1]
    m.logout()
    return result


def new_messages(port, user, before, count=1, timeout=10):
    """Wait for `count` messages that were not in `before`; return them."""
    end = time.time() + timeout
    while True:
        now = inbox(port, user)
        fresh = [now[u] for u in sorted(now) if u not in before]
        if len(fresh) >= count or time.time() > end:
            return fresh
        time.sleep(0.2)


def check_stored(stored, original):
    """Byte-identical apart from the trace headers delivery puts on top."""
    check(stored.endswith(original), "stored message differs:\n%r\n---\n%r" % (stored, original))
    prefix = stored[:len(stored) - len(original)]
    lines = prefix.split(b"\r\n")
    check(lines[-1] == b"", "trace headers not on lines of their own: %r" % prefix)
    for line in lines[:-1]:
        check(TRACE.match(line), "unexpected header added: %r" % line)
    check(any(l.startswith(b"Delivered-To: ") for l in lines), "no Delivered-To: %r" % prefix)


def transaction(c, sender, rcpts, body):
    """MAIL, RCPTs, DATA with `body` already dot-stuffed and ended; returns
    (rcpt codes, data reply lines)."""
    code, text = c.cmd("MAIL FROM:<%s>" % sender)
    check(code == 250, text)
    codes = [c.cmd("RCPT TO:<%s>" % r)[0] for r in rcpts]
    code, text = c.cmd("DATA")
    check(code == 354, text)
    c.send(body)
    replies = [c.reply()[1][-1] for code in codes if code == 250]
    return codes, replies


MESSAGE = (b"From: Sender <sender@outside.example>\r\n"
           b"To: alice@lmtp.example\r\n"
           b"Subject: dots and bytes\r\n"
           b"Message-ID: <dots@outside.example>\r\n"
           b"\r\n"
           b".leading dot\r\n"
           b"..two dots\r\n"
           b".\r\n"
           b"middle . dot\r\n"
           b"\xc3\xa4 8bit line\r\n"
           b"end\r\n")


def stuffed(message):
    """Dot-stuffed (RFC 5321 §4.5.2) and ended with CRLF "." CRLF."""
    lines = message.split(b"\r\n")
    out = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)
    return out + b".\r\n" if out.endswith(b"\r\n") else out + b"\r\n.\r\n"


# ---- tests ----

def t_lhlo_capabilities(port):
    with smtplib.LMTP("127.0.0.1", port) as s:
        code, msg = s.ehlo("client.test")  # LMTP sends LHLO
        check(code == 250, msg)
        for ext in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "size"):
            check(s.has_extn(ext), "missing %s in %r" % (ext, s.esmtp_features))
        check(s.esmtp_features["size"] == str(25 * 1024 * 1024), s.esmtp_features)
        check(not s.has_extn("starttls"), "STARTTLS offered on loopback by default")
        check(not s.has_extn("chunking") and not s.has_extn("auth"), s.esmtp_features)
    c = Lmtp(port)
    check(c.greeting[0] == 220 and " LMTP " in c.greeting[1][0], c.greeting)
    code, text = c.cmd("HELO client.test")
    check(code == 500, text)
    code, text = c.cmd("MAIL FROM:<a@b.example>")
    check(code == 503, "MAIL before LHLO: " + text)
    code, lines = c.lhlo()
    check(code == 250 and lines[-1] == "250 ENHANCEDSTATUSCODES", lines)
    code, text = c.cmd("VRFY alice")
    check(code == 252, text)
    code, text = c.cmd("QUIT")
    check(code == 221 and c.closed(), text)


def t_smtplib_delivery(port, imap_port):
    before = inbox(imap_port, "alice")
    with smtplib.LMTP("127.0.0.1", port) as s:
        refused = s.sendmail("sender@outside.example", [addr("alice")], MESSAGE)
        check(refused == {}, refused)
    fresh = new_messages(imap_port, "alice", before)
    check(len(fresh) == 1, "messages: %d" % len(fresh))
    check_stored(fresh[0], MESSAGE)
    check(b"Delivered-To: alice@lmtp.example\r\n" in fresh[0], fresh[0][:200])
    check(b"Return-Path: <sender@outside.example>\r\n" in fresh[0], fresh[0][:200])


def t_mixed_recipients(port, imap_port):
    a_before, b_before = inbox(imap_port, "alice"), inbox(imap_port, "bob")
    c = Lmtp(port)
    c.lhlo()
    body = (b"From: x@outside.example\r\nSubject: mixed\r\n\r\nfor two of four\r\n")
    codes, replies = transaction(c, "x@outside.example",
                                 [addr("alice"), addr("nobody"), addr("bob"), "nobody@nowhere.example"],
                                 body + b".\r\n")
    check(codes[0] == 250 and codes[2] == 250, codes)
    check(codes[1] // 100 == 5 and codes[3] // 100 == 5, codes)
    check(len(replies) == 2 and all(r.startswith("250 ") for r in replies), replies)
    code, text = c.cmd("QUIT")
    check(code == 221, text)
    fa = new_messages(imap_port, "alice", a_before)
    fb = new_messages(imap_port, "bob", b_before)
    check(len(fa) == 1 and len(fb) == 1, (len(fa), len(fb)))
    check_stored(fa[0], body)
    check_stored(fb[0], body)


def t_pipelining_one_write(port, imap_port):
    before = inbox(imap_port, "alice")
    c = Lmtp(port)
    c.send("LHLO client.test\r\nMAIL FROM:<p@outside.example>\r\nRCPT TO:<%s>\r\n"
           "RCPT TO:<%s>\r\nNOOP\r\nDATA\r\n" % (addr("alice"), addr("ghost")))
    check(c.reply()[0] == 250, "lhlo")
    seen = [c.reply()[0] for _ in range(5)]
    check(seen[0] == 250 and seen[1] == 250 and seen[2] // 100 == 5 and seen[3] == 250
          and seen[4] == 354, seen)
    body = b"Subject: pipelined\r\n\r\nbody\r\n"
    c.send(body + b".\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<%s>\r\nDATA\r\n" % addr("ghost").encode()
           + b"QUIT\r\n")
    seen = [c.reply()[1][-1] for _ in range(6)]
    check(seen[0].startswith("250 "), seen)      # the delivery to alice
    check(seen[1].startswith("250 "), seen)      # RSET
    check(seen[2].startswith("250 "), seen)      # MAIL
    check(seen[3][:1] == "5", seen)              # RCPT ghost
    check(seen[4].startswith("503 "), seen)      # DATA without recipients
    check(seen[5].startswith("221 "), seen)      # QUIT
    check(c.closed(), "closed after QUIT")
    fresh = new_messages(imap_port, "alice", before)
    check(len(fresh) == 1, len(fresh))
    check_stored(fresh[0], body)


def t_dot_stuffing(port, imap_port):
    """Raw transcript, stuffed by hand; read back through IMAP."""
    before = inbox(imap_port, "alice")
    c = Lmtp(port)
    c.lhlo()
    wire = stuffed(MESSAGE)
    check(b"\r\n..leading dot\r\n...two dots\r\n..\r\n" in wire, wire)
    codes, replies = transaction(c, "sender@outside.example", [addr("alice")], wire)
    check(codes == [250] and replies[0].startswith("250 "), (codes, replies))
    c.cmd("QUIT")
    fresh = new_messages(imap_port, "alice", before)
    check(len(fresh) == 1, len(fresh))
    check_stored(fresh[0], MESSAGE)
    # and IMAP hands the stuffed-looking lines back unstuffed, byte for byte
    check(b"\r\n.leading dot\r\n..two dots\r\n.\r\nmiddle" in fresh[0], fresh[0])


def t_pop3_retr(port, pop3_port):
    """Delivered by LMTP, collected by POP3: RETR (unstuffed by poplib)
    gives the delivered bytes apart from the trace headers on top. carol's
    INBOX holds only this message."""
    import poplib
    body = MESSAGE.replace(b"alice@", b"carol@") + b"\r\n.\r\n.. \r\nlast line\r\n"
    c = Lmtp(port)
    c.lhlo()
    codes, replies = transaction(c, "sender@outside.example", [addr("carol")], stuffed(body))
    check(codes == [250] and replies[0].startswith("250 "), (codes, replies))
    c.cmd("QUIT")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    p = poplib.POP3_SSL("127.0.0.1", pop3_port, context=ctx, timeout=20)
    p.user("carol")
    p.pass_(PASSWORD)
    count, _ = p.stat()
    check(count == 1, "carol has %d messages" % count)
    resp, lines, octets = p.retr(1)
    p.quit()
    retrieved = b"\r\n".join(lines) + b"\r\n"
    check(octets >= len(retrieved), (octets, len(retrieved)))
    check_stored(retrieved, body)


def t_size_limit(port):
    c = Lmtp(port)
    c.lhlo()
    code, text = c.cmd("MAIL FROM:<s@outside.example> SIZE=%d" % (1024 * 1024 + 1))
    check(code == 552 and "5.3.4" in text, text)
    code, text = c.cmd("MAIL FROM:<s@outside.example> SIZE=1000")
    check(code == 250, text)
    check(c.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250, "rcpt")
    check(c.cmd("RCPT TO:<%s>" % addr("bob"))[0] == 250, "rcpt")
    check(c.cmd("DATA")[0] == 354, "data")
    line = b"x" * 998 + b"\r\n"
    c.send(b"Subject: big\r\n\r\n" + line * 1100 + b".\r\n")
    for _ in range(2):
        code, lines = c.reply()
        check(code == 552 and "5.3.4" in lines[-1], lines)
    code, text = c.cmd("NOOP")
    check(code == 250, "session goes on: " + text)
    c.close()


def t_recipient_limit(port):
    c = Lmtp(port)
    c.lhlo()
    check(c.cmd("MAIL FROM:<s@outside.example>")[0] == 250, "mail")
    batch = "".join("RCPT TO:<alice+%d@%s>\r\n" % (i, DOMAIN) for i in range(401))
    c.send(batch)
    codes = [c.reply()[0] for _ in range(401)]
    check(codes[:400] == [250] * 400, [x for x in codes[:400] if x != 250][:5])
    check(codes[400] == 452, codes[400])
    code, text = c.cmd("RSET")
    check(code == 250, text)
    c.close()


def t_bad_sequence(port):
    c = Lmtp(port)
    c.lhlo()
    for command, want in (("RCPT TO:<%s>" % addr("alice"), "503 5.5.1"),
                          ("DATA", "503 5.5.1"),
                          ("MAIL FROM:<s@outside.example>", "250 2.1.0"),
                          ("MAIL FROM:<s@outside.example>", "503 5.5.1"),
                          ("DATA", "503 5.5.1"),
                          ("RCPT TO:%s" % addr("alice"), "501 5.5.4"),
                          ("RCPT TO:<%s> NOTIFY=NEVER" % addr("alice"), "555 5.5.4"),
                          ("MAIL FROM:<s@outside.example> BODY=BINARYMIME", "503 5.5.1"),
                          ("RSET", "250 2.0.0"),
                          ("MAIL FROM:<s@outside.example> BODY=BINARYMIME", "501 5.5.4"),
                          ("MAIL FROM:<j\u00f6rg@outside.example>", "553 5.6.7"),
                          ("BDAT 10 LAST", "502 5.5.1"),
                          ("XYZZY", "500 5.5.1")):
        code, text = c.cmd(command)
        check(text.startswith(want), "%s: %s (wanted %s)" % (command, text, want))
    c.close()


def count_inbox(imap_port, user):
    return len(inbox(imap_port, user))


def t_hostile(port, imap_port, server):
    before = count_inbox(imap_port, "alice")
    # a whole transaction one byte per write
    c = Lmtp(port)
    c.send_bytewise("LHLO slow.test\r\nMAIL FROM:<s@outside.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                    % addr("alice"))
    codes = [c.reply()[0] for _ in range(4)]
    check(codes == [250, 250, 250, 354], codes)
    c.send_bytewise(b"Subject: bytewise\r\n\r\n..x\r\n.\r\n")
    code, lines = c.reply()
    check(code == 250, lines)
    # an overlong command line, a NUL, binary junk: errors, the session goes on
    c.send(b"NOOP " + b"A" * 5000 + b"\r\n")
    code, lines = c.reply()
    check(code == 500 and "5.5.2" in lines[-1], lines)
    c.send(b"NO\x00OP\r\n")
    check(c.reply()[0] == 500, "NUL")
    c.send(b"\xff\xfe\x00\x01\r\n")
    check(c.reply()[0] == 500, "junk")
    check(c.cmd("NOOP")[0] == 250, "after junk")
    # NUL inside a message: refused per recipient
    check(c.cmd("MAIL FROM:<s@outside.example>")[0] == 250, "mail")
    check(c.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250, "rcpt")
    check(c.cmd("DATA")[0] == 354, "data")
    c.send(b"Subject: nul\r\n\r\na\x00b\r\n.\r\n")
    code, lines = c.reply()
    check(code == 554, lines)
    c.close()
    # unterminated DATA, then the client goes: nothing stored
    d = Lmtp(port)
    d.lhlo()
    check(d.cmd("MAIL FROM:<s@outside.example>")[0] == 250, "mail")
    check(d.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250, "rcpt")
    check(d.cmd("DATA")[0] == 354, "data")
    d.send(b"Subject: cut\r\n\r\nnever ends\r\n.\n")   # "." + bare LF is not the end
    time.sleep(0.3)
    d.close()
    time.sleep(1.0)
    check(count_inbox(imap_port, "alice") == before + 1, "only the bytewise message is stored")
    check(any("not delivered (connection lost during DATA)" in l for l in server.log),
          "transaction log line for the dropped DATA")


def t_second_client(port, imap_port):
    before_a, before_b = inbox(imap_port, "alice"), inbox(imap_port, "bob")
    a = Lmtp(port)
    a.lhlo()
    check(a.cmd("MAIL FROM:<a@outside.example>")[0] == 250, "mail")
    check(a.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250, "rcpt")
    check(a.cmd("DATA")[0] == 354, "data")
    a.send(b"Subject: first, slow\r\n\r\nhalf")
    b = Lmtp(port)
    b.lhlo()
    body = b"Subject: second\r\n\r\nserved meanwhile\r\n"
    codes, replies = transaction(b, "b@outside.example", [addr("bob")], body + b".\r\n")
    check(codes == [250] and replies[0].startswith("250 "), (codes, replies))
    check(len(new_messages(imap_port, "bob", before_b)) == 1, "bob got his")
    a.send(b" and the rest\r\n.\r\n")
    code, lines = a.reply()
    check(code == 250, lines)
    fresh = new_messages(imap_port, "alice", before_a)
    check(len(fresh) == 1, len(fresh))
    check_stored(fresh[0], b"Subject: first, slow\r\n\r\nhalf and the rest\r\n")
    a.close()
    b.close()


def t_starttls(port, imap_port):
    before = inbox(imap_port, "alice")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.LMTP("127.0.0.1", port) as s:
        s.ehlo("client.test")
        check(s.has_extn("starttls"), s.esmtp_features)
        code, msg = s.starttls(context=ctx)
        check(code == 220, msg)
        s.ehlo("client.test")
        check(not s.has_extn("starttls"), "STARTTLS offered again under TLS")
        refused = s.sendmail("tls@outside.example", [addr("alice")], b"Subject: tls\r\n\r\nover TLS\r\n")
        check(refused == {}, refused)
    check(len(new_messages(imap_port, "alice", before)) == 1, "stored over TLS")
    # plaintext pipelined after STARTTLS is dropped, never executed
    c = Lmtp(port)
    c.lhlo()
    c.send("STARTTLS\r\nMAIL FROM:<injected@outside.example>\r\n")
    code, lines = c.reply()
    check(code == 220, lines)
    tls = ctx.wrap_socket(c.sock, server_hostname="localhost")
    tls.sendall(b"MAIL FROM:<x@outside.example>\r\n")
    reply = tls.recv(4096).decode()
    check(reply.startswith("503"), "LHLO needed again after STARTTLS: " + reply)
    tls.close()


def t_proxy_protocol(port, server):
    """lmtp.proxy: the PROXY header's client address is the one logged and
    handed to delivery; without a header the connection is refused."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 2424\r\n")
    c = Lmtp.__new__(Lmtp)
    c.sock, c.buf = sock, b""
    c.greeting = c.reply()
    check(c.greeting[0] == 220, c.greeting)
    c.lhlo()
    codes, replies = transaction(c, "proxied@outside.example", [addr("alice")],
                                 b"Subject: proxied\r\n\r\nx\r\n.\r\n")
    check(codes == [250] and replies[0].startswith("250 "), (codes, replies))
    c.cmd("QUIT")
    time.sleep(0.3)
    check(any("from=<proxied@outside.example> ip=192.0.2.7 " in l for l in server.log),
          [l for l in server.log if "proxied" in l])
    bare = Lmtp.__new__(Lmtp)
    bare.sock, bare.buf = socket.create_connection(("127.0.0.1", port), timeout=20), b""
    bare.send("LHLO client.test\r\n")
    check(bare.closed(15), "a connection without PROXY header is closed")


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    for user in ("alice", "bob", "carol"):
        stack.run_wdctl("user", "create", user, "--address", addr(user), "--password", PASSWORD)
    lmtp = ["--lmtp.enabled=true", "--lmtp.port=0", "--lmtp.host=127.0.0.1"]
    server = Server(wd_server, stack, *lmtp)
    small = Server(wd_server, stack, *lmtp, "--lmtp.maxMB=1")
    tls = Server(wd_server, stack, *lmtp, "--lmtp.disableSTARTTLS=false")
    proxy = Server(wd_server, stack, *lmtp, "--lmtp.proxy=true")
    port, imap_port = server.ports["lmtp"], server.port
    try:
        res.run("LHLO capabilities", t_lhlo_capabilities, port)
        res.run("smtplib delivery, stored byte-exact", t_smtplib_delivery, port, imap_port)
        res.run("mixed per-recipient replies", t_mixed_recipients, port, imap_port)
        res.run("pipelining in one write", t_pipelining_one_write, port, imap_port)
        res.run("dot-stuffing both ways", t_dot_stuffing, port, imap_port)
        res.run("delivered by LMTP, RETR by POP3, byte-identical", t_pop3_retr, port,
                server.ports["pop3"])
        res.run("size limit (SIZE= and actual)", t_size_limit, small.ports["lmtp"])
        res.run("recipient limit 400", t_recipient_limit, port)
        res.run("bad sequence and syntax", t_bad_sequence, port)
        res.run("hostile input", t_hostile, port, imap_port, server)
        res.run("second client served meanwhile", t_second_client, port, imap_port)
        res.run("STARTTLS", t_starttls, tls.ports["lmtp"], imap_port)
        res.run("PROXY protocol", t_proxy_protocol, proxy.ports["lmtp"], proxy)

        def t_transaction_log():
            lines = [l for l in server.log if "transaction " in l and "from=<" in l]
            check(len(lines) >= 5, lines)
            check(any("rcpts=2 refused=2" in l for l in lines), lines)

        res.run("one log line per transaction", t_transaction_log)

        def t_shutdown():
            c = Lmtp(port)
            c.lhlo()
            code = server.stop()
            line = c.line()
            check(line.startswith("421 "), line)
            check(code == 0, "exit code %s" % code)
        res.run("graceful shutdown", t_shutdown)
    finally:
        for s in (server, small, tls, proxy):
            s.stop()
        stack.cleanup()

    def t_clean_logs():
        for s in (server, small, tls, proxy):
            bad = [l for l in s.log if "Sanitizer" in l or "runtime error" in l or "panic" in l]
            check(not bad, "".join(s.log[-40:]))
            check(s.proc.returncode == 0, "exit code %s" % s.proc.returncode)
    res.run("server logs clean, exit 0", t_clean_logs)
    res.exit()


if __name__ == "__main__":
    main()

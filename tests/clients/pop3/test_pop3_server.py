#!/usr/bin/env python3
"""wd-server's POP3 engine on loopback against the real stack, with Python
poplib and raw-socket transcripts: the whole session (STAT, LIST, UIDL,
RETR, TOP, DELE, RSET, NOOP, QUIT) with RETR byte-identical to the imported
message, \\Seen only after QUIT, DELE moving to Trash only at QUIT, a dropped
connection changing nothing, STLS, AUTH PLAIN with and without an initial
response, wrong passwords (delayed, limited per connection), application
passwords and 2FA accounts, pop3.maxMessages / users.pop3MaxMessages and the
pxm: watermark, the daily download limit, pipelining, hostile input,
concurrent sessions, the PROXY protocol, shutdown.

The database is checked directly (pop3-db-tool: UIDL = message _id, flags,
which mailbox holds what) and through IMAP (bytes of the messages moved to
Trash).

usage: test_pop3_server.py WD_SERVER WDCTL DB_TOOL   (exit 77 without the stack)"""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import random
import re
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "correct horse"
DELAY = 0.3  # --pop3.authFailureDelay in seconds

ATTACHMENT = bytes(random.Random(7).getrandbits(8) for _ in range(1536 * 1024))
MESSAGES = [
    b"From: a@example.com\r\nTo: u@example.com\r\nSubject: first\r\n"
    b"Message-ID: <m0@example.com>\r\n\r\nbody of the first\r\nsecond line\r\n",
    # lines that start with dots, a lone dot in the body
    b"From: a@example.com\r\nSubject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n",
    # 8-bit text and no line feed at the end
    b"From: a@example.com\r\nSubject: =?utf-8?q?=C3=A4?=\r\n\r\n\xc3\xa4\xc3\xb6 8bit\r\nlast line",
    # bare LF line ends kept as they are
    b"From: a@example.com\nSubject: lf\n\nline 1\nline 2\n",
    # a multipart message whose attachment lives in GridFS
    b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
    b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b1\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=\"x.bin\"\r\n\r\n"
    + base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    + b"--b1--\r\n",
]


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Pop:
    """A raw POP3 connection."""

    def __init__(self, port, tls=True, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = tls_context().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.line()

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock, server_hostname="localhost")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def raw_line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def line(self):
        return self.raw_line().rstrip(b"\r\n").decode("utf-8", "replace")

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def block(self):
        """The body of a multi-line response, still byte-stuffed."""
        out = []
        while True:
            line = self.raw_line()
            if line == b".\r\n":
                return b"".join(out)
            out.append(line)

    def multi(self, text):
        status = self.cmd(text)
        check(status.startswith("+OK"), "%s: %s" % (text, status))
        return status, self.block()

    def login(self, user, password=PASSWORD):
        check(self.cmd("USER " + user).startswith("+OK"), "USER")
        status = self.cmd("PASS " + password)
        check(status.startswith("+OK maildrop has"), status)
        return status

    def closed(self, timeout=10):
        end = time.time() + timeout
        try:
            while time.time() < end:
                self.sock.settimeout(max(0.1, end - time.time()))
                self._fill()
        except (EOFError, ConnectionResetError, ssl.SSLError, OSError):
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def unstuff(block):
    return b"".join(l[1:] if l.startswith(b".") else l for l in block.splitlines(keepends=True))


def expected_retr(raw):
    """What RETR gives back after unstuffing: the message, plus CRLF when it
    does not end with a line feed."""
    return raw if raw.endswith(b"\n") else raw + b"\r\n"


class Db:
    def __init__(self, tool, stack):
        self.tool = tool
        self.stack = stack

    def run(self, *args):
        res = subprocess.run([self.tool, self.stack.mongo] + list(args), capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError("pop3-db-tool %s: %s" % (" ".join(args), res.stderr))
        return res.stdout

    def messages(self, user, path="INBOX"):
        """[(uid, id hex, set of flags)] by UID."""
        out = []
        for line in self.run("messages", user, path).splitlines():
            parts = line.split(" ")
            flags = set(parts[2].split(",")) if len(parts) > 2 and parts[2] else set()
            out.append((int(parts[0]), parts[1], flags))
        return out

    def set_user(self, user, field, value):
        self.run("set-user", user, field, str(value))


def make_user(stack, tmp, name, messages=MESSAGES):
    stack.user(name, PASSWORD)
    paths = []
    for i, raw in enumerate(messages):
        path = os.path.join(tmp, "%s-%d.eml" % (name, i))
        with open(path, "wb") as f:
            f.write(raw)
        paths.append(path)
    stack.run_wdctl("message", "import", name, "INBOX", *paths)


# ---- tests ----

def t_session(port, db):
    p = Pop(port)
    check(p.greeting.startswith("+OK ") and "<" not in p.greeting, p.greeting)  # no APOP
    status, capa = p.multi("CAPA")
    caps = capa.decode().split("\r\n")
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN", "PIPELINING"):
        check(c in caps, (c, caps))
    check("STLS" not in caps, caps)
    check("-ERR" in p.cmd("STAT"), "STAT before login")
    p.login("alice")
    total = sum(len(m) for m in MESSAGES)
    check(p.cmd("STAT") == "+OK %d %d" % (len(MESSAGES), total), "STAT")
    status, block = p.multi("LIST")
    check(block.decode().split("\r\n")[:-1] ==
          ["%d %d" % (i + 1, len(m)) for i, m in enumerate(MESSAGES)], block)
    check(p.cmd("LIST 2") == "+OK 2 %d" % len(MESSAGES[1]), "LIST 2")
    check(p.cmd("LIST 9").startswith("-ERR"), "LIST 9")
    check(p.cmd("LIST x").startswith("-ERR"), "LIST x")
    # UIDL = the message _id, oldest first
    ids = [m[1] for m in db.messages("alice")]
    status, block = p.multi("UIDL")
    check(block.decode().split("\r\n")[:-1] ==
          ["%d %s" % (i + 1, h) for i, h in enumerate(ids)], (block, ids))
    check(p.cmd("UIDL 3") == "+OK 3 %s" % ids[2], "UIDL 3")
    # RETR byte-identical after unstuffing, for every message
    for i, raw in enumerate(MESSAGES):
        status, block = p.multi("RETR %d" % (i + 1))
        check(status == "+OK %d octets" % len(raw), status)
        check(unstuff(block) == expected_retr(raw), "RETR %d differs" % (i + 1))
    # the stuffing itself, on the wire
    status, block = p.multi("RETR 2")
    check(b"\r\n..hidden\r\n...two\r\n..\r\nend\r\n" in block, block)
    # TOP: header, the empty line, n lines
    status, block = p.multi("TOP 1 1")
    check(block == MESSAGES[0].split(b"\r\n\r\n")[0] + b"\r\n\r\nbody of the first\r\n", block)
    status, block = p.multi("TOP 4 0")
    check(block == b"From: a@example.com\nSubject: lf\n\n", block)
    status, block = p.multi("TOP 5 2")
    check(block.endswith(b"\r\n\r\npreamble\r\n--b1\r\n"), block[-60:])
    check(p.cmd("TOP 1").startswith("-ERR"), "TOP without count")
    check(p.cmd("NOOP") == "+OK", "NOOP")
    # DELE hides a message; RSET brings it back
    check(p.cmd("DELE 2").startswith("+OK"), "DELE 2")
    check(p.cmd("DELE 2").startswith("-ERR"), "DELE 2 twice")
    check(p.cmd("RETR 2").startswith("-ERR"), "RETR of a deleted message")
    check(p.cmd("STAT") == "+OK %d %d" % (len(MESSAGES) - 1, total - len(MESSAGES[1])), "STAT")
    status, block = p.multi("LIST")
    check(b"\r\n2 " not in b"\r\n" + block and block.startswith(b"1 ") and b"\r\n3 " in block,
          block)
    check(p.cmd("RSET").startswith("+OK maildrop has %d messages" % len(MESSAGES)), "RSET")
    check(p.cmd("STAT") == "+OK %d %d" % (len(MESSAGES), total), "STAT after RSET")
    check(p.cmd("USER x").startswith("-ERR"), "USER in TRANSACTION")
    check(p.cmd("QUIT").startswith("+OK"), "QUIT")
    check(p.closed(), "closed after QUIT")
    # everything was retrieved: all \Seen, nothing moved
    after = db.messages("alice")
    check([m[1] for m in after] == ids, after)
    check(all("\\Seen" in m[2] for m in after), after)
    check(db.messages("alice", "Trash") == [], "Trash")


def t_poplib(port, db):
    p = poplib.POP3_SSL("127.0.0.1", port, context=tls_context())
    caps = p.capa()
    check("UIDL" in caps and "SASL" in caps and caps["SASL"] == ["PLAIN"], caps)
    p.user("bob")
    p.pass_(PASSWORD)
    count, size = p.stat()
    check(count == len(MESSAGES) and size == sum(len(m) for m in MESSAGES), (count, size))
    resp, lines, octets = p.retr(1)
    check(b"\r\n".join(lines) + b"\r\n" == MESSAGES[0], lines)
    resp, lines, octets = p.retr(2)
    check(lines[3:6] == [b".hidden", b"..two", b"."], lines)
    resp, lines, octets = p.top(3, 0)
    check(lines[-1] == b"" and lines[1].startswith(b"Subject:"), lines)
    resp, uidls, _ = p.uidl()
    check(len(uidls) == len(MESSAGES), uidls)
    p.quit()
    # RETR 1 and 2 got \Seen; TOP did not mark 3
    flags = [m[2] for m in db.messages("bob")]
    check("\\Seen" in flags[0] and "\\Seen" in flags[1], flags)
    check(all("\\Seen" not in f for f in flags[2:]), flags)


def t_seen_and_trash_at_quit(port, imap_port, db):
    before = db.messages("carol")
    p = Pop(port)
    p.login("carol")
    p.multi("RETR 1")
    check(p.cmd("DELE 2").startswith("+OK"), "DELE 2")
    check(p.cmd("DELE 5").startswith("+OK"), "DELE 5")
    # nothing changed yet
    check(db.messages("carol") == before, "changed before QUIT")
    check(db.messages("carol", "Trash") == [], "Trash before QUIT")
    status = p.cmd("QUIT")
    check(status == "+OK Bye (2 messages deleted)", status)
    check(p.closed(), "closed")
    inbox = db.messages("carol")
    check([m[1] for m in inbox] == [before[0][1], before[2][1], before[3][1]], inbox)
    check("\\Seen" in inbox[0][2] and "\\Seen" not in inbox[1][2], inbox)
    trash = db.messages("carol", "Trash")
    check(len(trash) == 2 and all("\\Seen" in m[2] for m in trash), trash)
    # the moved messages are the same bytes (IMAP BODY.PEEK[] in Trash)
    m = imaplib.IMAP4_SSL("127.0.0.1", imap_port, ssl_context=tls_context())
    m.login("carol", PASSWORD)
    typ, data = m.select("Trash")
    check(typ == "OK" and data[0] == b"2", data)
    typ, data = m.fetch("1:2", "(BODY.PEEK[])")
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    check(bodies == [MESSAGES[1], MESSAGES[4]], [len(b) for b in bodies])
    m.logout()
    # a new session lists what is left, renumbered
    p = Pop(port)
    status = p.login("carol")
    check("3 messages" in status, status)
    check(p.cmd("UIDL 2") == "+OK 2 %s" % before[2][1], "renumbered")
    p.cmd("QUIT")


def t_dropped_connection(port, db):
    before = db.messages("dave")
    p = Pop(port)
    p.login("dave")
    p.multi("RETR 1")
    p.cmd("DELE 1")
    p.cmd("DELE 3")
    p.close()
    # a RETR of the big message cut off in the middle
    p = Pop(port)
    p.login("dave")
    p.send("RETR 5\r\n")
    check(p.line().startswith("+OK"), "RETR 5")
    p.close()
    # QUIT before login changes nothing either
    p = Pop(port)
    p.cmd("USER dave")
    check(p.cmd("QUIT").startswith("+OK"), "QUIT")
    time.sleep(1.0)
    check(db.messages("dave") == before, db.messages("dave"))
    check(db.messages("dave", "Trash") == [], "Trash")


def t_stls(plain_port, db):
    p = Pop(plain_port, tls=False)
    status, capa = p.multi("CAPA")
    caps = capa.decode().split("\r\n")
    check("STLS" in caps and "USER" not in caps and "SASL PLAIN" not in caps, caps)
    for c in ("USER erin", "PASS x", "AUTH PLAIN AGVyaW4AeA=="):
        r = p.cmd(c)
        check(r.startswith("-ERR [AUTH]") and "STLS" in r, (c, r))
    check(p.cmd("STLS") == "+OK Begin TLS negotiation", "STLS")
    p.starttls()
    status, capa = p.multi("CAPA")
    caps = capa.decode().split("\r\n")
    check("STLS" not in caps and "USER" in caps and "SASL PLAIN" in caps, caps)
    check(p.cmd("STLS").startswith("-ERR"), "STLS twice")
    p.login("erin")
    status, capa = p.multi("CAPA")
    check(b"USER" not in capa and b"SASL" not in capa, capa)
    p.cmd("QUIT")
    # poplib's stls()
    c = poplib.POP3("127.0.0.1", plain_port)
    c.stls(context=tls_context())
    c.user("erin")
    c.pass_(PASSWORD)
    check(c.stat()[0] == len(MESSAGES), "stat")
    c.quit()
    # commands pipelined after STLS were sent in clear: refused, closed
    p = Pop(plain_port, tls=False)
    p.send("STLS\r\nUSER erin\r\n")
    check(p.line().startswith("-ERR"), "STLS injection")
    check(p.closed(), "closed after STLS injection")


def t_auth_plain(port, db):
    cred = base64.b64encode(b"\0erin\0" + PASSWORD.encode()).decode()
    # with an initial response
    p = Pop(port)
    status = p.cmd("AUTH PLAIN " + cred)
    check(status.startswith("+OK maildrop has"), status)
    p.cmd("QUIT")
    # without: "+ " then the response; authzid equal to authcid is fine
    p = Pop(port)
    check(p.cmd("AUTH PLAIN") == "+ ", "continuation")
    cred2 = base64.b64encode(b"erin\0erin\0" + PASSWORD.encode()).decode()
    status = p.cmd(cred2)
    check(status.startswith("+OK maildrop has"), status)
    p.cmd("QUIT")
    p = Pop(port)
    status, block = p.multi("AUTH")
    check(block == b"PLAIN\r\n", block)
    check(p.cmd("AUTH PLAIN") == "+ ", "continuation")
    check(p.cmd("*").startswith("-ERR"), "cancel")
    check(p.cmd("AUTH LOGIN").startswith("-ERR"), "LOGIN mechanism")
    check(p.cmd("AUTH PLAIN !!!notbase64").startswith("-ERR"), "bad base64")
    check(p.cmd("AUTH PLAIN " + base64.b64encode(b"erin").decode()).startswith("-ERR"),
          "no NULs")
    other = base64.b64encode(b"alice\0erin\0" + PASSWORD.encode()).decode()
    check(p.cmd("AUTH PLAIN " + other).startswith("-ERR [AUTH]"), "authzid")
    # the connection still works
    check(p.cmd("AUTH PLAIN " + cred).startswith("+OK"), "login after errors")
    p.cmd("QUIT")
    # poplib does AUTH through _shortcmd; a wrong password there
    p = Pop(port)
    wrong = base64.b64encode(b"\0erin\0wrong").decode()
    start = time.time()
    r = p.cmd("AUTH PLAIN " + wrong)
    check(r.startswith("-ERR [AUTH]") and time.time() - start >= DELAY * 0.9, r)
    p.close()


def t_wrong_password(port, db):
    p = Pop(port)
    for i in range(3):
        p.cmd("USER frank")
        start = time.time()
        r = p.cmd("PASS wrong%d" % i)
        took = time.time() - start
        check(r.startswith("-ERR [AUTH]"), r)
        check(took >= DELAY * 0.9, "answered after %.3f s" % took)
    check("closing" in r, r)
    check(p.closed(), "closed after 3 failures")
    # unknown user: the same answer
    p = Pop(port)
    p.cmd("USER nobody-here")
    r = p.cmd("PASS x")
    check(r == "-ERR [AUTH] Authentication failed", r)
    check(p.cmd("PASS x").startswith("-ERR"), "PASS without USER")
    # the right password still works on a new connection
    p = Pop(port)
    p.login("frank")
    p.cmd("QUIT")


def totp(seed_b32, t=None):
    key = base64.b32decode(seed_b32.upper() + "=" * (-len(seed_b32) % 8))
    counter = int((t or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def t_app_password(port, stack, db):
    out = stack.run_wdctl("asp", "create", "gina", "--description", "pop", "--scope", "pop3")
    asp = out.split()[1]
    imap_only = stack.run_wdctl("asp", "create", "gina", "--description", "imap",
                                "--scope", "imap").split()[1]
    p = Pop(port)
    p.login("gina", asp)
    p.cmd("QUIT")
    p = Pop(port)
    p.cmd("USER gina")
    check(p.cmd("PASS " + imap_only).startswith("-ERR [AUTH]"), "imap-only app password")
    p.close()
    # with 2FA on, the account password is refused for POP3, the app one works
    seed = stack.run_wdctl("2fa", "totp", "setup", "gina").split("\n")[0].strip()
    stack.run_wdctl("2fa", "totp", "enable", "gina", totp(seed))
    p = Pop(port)
    p.cmd("USER gina")
    r = p.cmd("PASS " + PASSWORD)
    check(r.startswith("-ERR [AUTH]") and "application-specific" in r, r)
    p.close()
    p = Pop(port)
    cred = base64.b64encode(b"\0gina\0" + asp.encode()).decode()
    check(p.cmd("AUTH PLAIN " + cred).startswith("+OK"), "app password with 2FA")
    p.cmd("QUIT")


def t_max_messages(port_max3, db):
    ids = [m[1] for m in db.messages("hank")]
    # pop3.maxMessages = 3: the newest three, oldest first
    p = Pop(port_max3)
    status = p.login("hank")
    check("3 messages" in status, status)
    status, block = p.multi("UIDL")
    check(block.decode().split("\r\n")[:-1] ==
          ["%d %s" % (i + 1, h) for i, h in enumerate(ids[2:])], block)
    p.cmd("QUIT")
    # users.pop3MaxMessages = 2 wins over the server's setting
    db.set_user("hank", "pop3MaxMessages", 2)
    p = Pop(port_max3)
    p.login("hank")
    status, block = p.multi("UIDL")
    check(block.decode().split("\r\n")[:-1] == ["1 %s" % ids[3], "2 %s" % ids[4]], block)
    # deleting both: the watermark (pxm:) keeps the older ones from showing
    p.cmd("DELE 1")
    p.cmd("DELE 2")
    check(p.cmd("QUIT").startswith("+OK Bye (2 messages"), "QUIT")
    p = Pop(port_max3)
    status = p.login("hank")
    check("0 messages" in status, status)
    check(p.cmd("STAT") == "+OK 0 0", "STAT")
    status, block = p.multi("LIST")
    check(block == b"", block)
    p.cmd("QUIT")
    check([m[1] for m in db.messages("hank")] == ids[:3], "INBOX")


def t_pipelining(port, db):
    p = Pop(port)
    p.send("CAPA\r\nUSER ivan\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 2\r\nNOOP\r\n"
           "TOP 1 0\r\nDELE 1\r\nRSET\r\nQUIT\r\n" % PASSWORD)
    check(p.line().startswith("+OK"), "CAPA")
    check(b"PIPELINING" in p.block(), "PIPELINING")
    check(p.line().startswith("+OK"), "USER")
    check(p.line().startswith("+OK maildrop has %d" % len(MESSAGES)), "PASS")
    check(p.line().startswith("+OK %d " % len(MESSAGES)), "STAT")
    check(p.line().startswith("+OK"), "LIST")
    check(len(p.block().splitlines()) == len(MESSAGES), "LIST lines")
    check(p.line().startswith("+OK 1 "), "UIDL 1")
    check(p.line() == "+OK %d octets" % len(MESSAGES[1]), "RETR 2")
    check(unstuff(p.block()) == MESSAGES[1], "RETR 2 bytes")
    check(p.line() == "+OK", "NOOP")
    check(p.line().startswith("+OK"), "TOP")
    p.block()
    check(p.line().startswith("+OK"), "DELE")
    check(p.line().startswith("+OK"), "RSET")
    check(p.line().startswith("+OK Bye"), "QUIT")
    check(p.closed(), "closed")


def t_hostile(port, db):
    # a whole session written one byte at a time
    p = Pop(port)
    for b in ("USER ivan\r\nPASS %s\r\nRETR 1\r\n" % PASSWORD).encode():
        p.send(bytes([b]))
    check(p.line().startswith("+OK"), "USER")
    check(p.line().startswith("+OK maildrop"), "PASS")
    check(p.line().startswith("+OK"), "RETR")
    check(unstuff(p.block()) == MESSAGES[0], "RETR bytes")
    # an overlong line: -ERR, and the session goes on
    p.send("NOOP " + "x" * 10000 + "\r\n")
    check(p.line() == "-ERR Line too long", "overlong")
    check(p.cmd("NOOP") == "+OK", "after overlong")
    check(p.cmd("APOP ivan 0123456789abcdef0123456789abcdef").startswith("-ERR"), "APOP")
    check(p.cmd("XTND").startswith("-ERR"), "unknown")
    check(p.cmd("RETR 0").startswith("-ERR"), "RETR 0")
    check(p.cmd("RETR 99999999999").startswith("-ERR"), "RETR huge")
    check(p.cmd("TOP 1 -1").startswith("-ERR"), "TOP -1")
    check(p.cmd("DELE").startswith("-ERR"), "DELE without number")
    check(p.cmd("LIST 1 2").startswith("-ERR"), "LIST 1 2")
    check(p.cmd("STAT x").startswith("-ERR"), "STAT x")
    check(p.cmd("NOOP") == "+OK", "still serving")
    p.cmd("QUIT")
    # binary junk, then endless bytes without a line feed
    rnd = random.Random(3)
    p = Pop(port)
    junk = bytes(rnd.getrandbits(8) for _ in range(4000)).replace(b"\n", b"")
    p.send(junk[:2000] + b"\r\n" + junk[2000:] + b"\r\n")
    check(p.line().startswith("-ERR"), "junk 1")
    check(p.line().startswith("-ERR"), "junk 2")
    check(p.cmd("CAPA").startswith("+OK"), "CAPA after junk")
    p.block()
    p.send(b"\0" * 200000)
    check(p.line() == "-ERR Line too long", "NULs")
    p.close()
    # bad commands in a row end the session
    p = Pop(port)
    p.send("BAD\r\n" * 12)
    lines = [p.line() for _ in range(10)]
    check(all(l.startswith("-ERR") for l in lines) and "closing" in lines[-1], lines)
    check(p.closed(), "closed after bad commands")
    # the server still serves another client
    q = poplib.POP3_SSL("127.0.0.1", port, context=tls_context())
    q.user("ivan")
    q.pass_(PASSWORD)
    check(q.stat()[0] == len(MESSAGES), "another client")
    q.quit()


def t_concurrent_sessions(port, db):
    """Two sessions of one user: each has its listing; QUIT of one moves a
    message, the other then gets -ERR for it and its own QUIT skips it."""
    a = Pop(port)
    a.login("judy")
    b = Pop(port)
    b.login("judy")
    check(a.cmd("DELE 1").startswith("+OK"), "DELE in a")
    check(a.cmd("QUIT").startswith("+OK Bye (1 message deleted)"), "QUIT a")
    r = b.cmd("RETR 1")
    check(r.startswith("-ERR") and "no longer exists" in r, r)
    check(b.cmd("DELE 1").startswith("+OK"), "DELE in b")
    b.multi("RETR 2")
    check(b.cmd("QUIT").startswith("+OK Bye (0 messages deleted)"), "QUIT b")
    check(len(db.messages("judy", "Trash")) == 1, "Trash")
    inbox = db.messages("judy")
    check(len(inbox) == len(MESSAGES) - 1 and "\\Seen" in inbox[0][2], inbox)


def t_download_limit(port, db):
    """users.pop3MaxDownload: retrievals are refused once the day's bytes
    (WildDuck's pdw:<user> counter, shared by every session) reach it."""
    db.set_user("lena", "pop3MaxDownload", 200)
    p = Pop(port)
    p.login("lena")
    p.multi("RETR 1")  # 120 bytes (+3 for the terminator)
    p.multi("RETR 2")  # 62 (+3 stuffed dots, +3)
    p.multi("TOP 3 0")  # counted too: 191 before it, over 200 after
    r = p.cmd("RETR 4")
    check(r.startswith("-ERR") and "rate limited" in r, r)
    check(p.cmd("NOOP") == "+OK", "session goes on")
    p.cmd("QUIT")
    p = Pop(port)
    p.login("lena")
    r = p.cmd("TOP 4 0")
    check(r.startswith("-ERR") and "rate limited" in r, r)
    p.cmd("QUIT")


def t_plain_port(ports):
    check("pop3plain" in ports, ports)
    p = Pop(ports["pop3plain"], tls=False)
    status, capa = p.multi("CAPA")
    check(b"STLS\r\n" in capa, capa)
    p.cmd("QUIT")
    p = Pop(ports["pop3"], tls=True)
    p.cmd("QUIT")


def t_insecure_auth(port):
    p = Pop(port, tls=False)
    status, capa = p.multi("CAPA")
    caps = capa.decode().split("\r\n")
    check("USER" in caps and "SASL PLAIN" in caps and "STLS" not in caps, caps)
    p.login("ivan")
    p.cmd("QUIT")


def t_proxy_protocol(server):
    """pop3.proxy: the PROXY header's address is the client's (logged)."""
    sock = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=20)
    sock.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 110\r\n")
    p = Pop.__new__(Pop)
    p.sock, p.buf = sock, b""
    check(p.line().startswith("+OK"), "greeting after the PROXY header")
    p.cmd("USER kate")
    check(p.cmd("PASS wrong").startswith("-ERR [AUTH]"), "refused")
    p.cmd("QUIT")
    check(any("from 192.0.2.7 refused" in l for l in server.log), "peer address from the header")
    # without the header the connection is refused
    q = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=20)
    q.sendall(b"CAPA\r\n")
    q.settimeout(15)
    try:
        data = q.recv(100)
    except (ConnectionResetError, socket.timeout):
        data = b""
    check(not data.startswith(b"+OK"), data)
    q.close()


def t_shutdown(server, db):
    before = db.messages("kate")
    p = Pop(server.ports["pop3"])
    p.login("kate")
    p.multi("RETR 1")
    p.cmd("DELE 2")
    code = server.stop()
    check(code == 0, "exit %s" % code)
    r = p.line()
    check(r.startswith("-ERR [SYS/TEMP]"), r)
    check(p.closed(), "closed at shutdown")
    check(db.messages("kate") == before, "changed by shutdown")


def main():
    skip_without_stack()
    wd_server, wdctl, db_tool = sys.argv[1], sys.argv[2], sys.argv[3]
    stack = Stack(wdctl)
    db = Db(db_tool, stack)
    res = Results()
    for name in ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan",
                 "judy", "kate", "lena"):
        make_user(stack, stack.tmp.name, name)
    pop3 = ["--pop3.host=127.0.0.1", "--pop3.port=0",
            "--pop3.authFailureDelay=%d" % int(DELAY * 1000)]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    plain_port = sock.getsockname()[1]
    sock.close()
    server = Server(wd_server, stack, *pop3, "--pop3.plainPort=%d" % plain_port)
    plain = Server(wd_server, stack, *pop3, "--pop3.secure=false")
    insecure = Server(wd_server, stack, *pop3, "--pop3.secure=false",
                      "--pop3.insecureAuth=true", "--pop3.disableSTARTTLS=true")
    max3 = Server(wd_server, stack, *pop3, "--pop3.maxMessages=3")
    down = Server(wd_server, stack, *pop3)
    proxy = Server(wd_server, stack, *pop3, "--pop3.secure=false", "--pop3.insecureAuth=true",
                   "--pop3.proxy=true")
    servers = [server, plain, insecure, max3, down, proxy]
    port = server.ports["pop3"]
    try:
        res.run("session", t_session, port, db)
        res.run("poplib", t_poplib, port, db)
        res.run("seen and trash at quit", t_seen_and_trash_at_quit, port, server.port, db)
        res.run("dropped connection", t_dropped_connection, port, db)
        res.run("stls", t_stls, plain.ports["pop3"], db)
        res.run("auth plain", t_auth_plain, port, db)
        res.run("wrong password", t_wrong_password, port, db)
        res.run("app password and 2fa", t_app_password, port, stack, db)
        res.run("max messages and watermark", t_max_messages, max3.ports["pop3"], db)
        res.run("pipelining", t_pipelining, port, db)
        res.run("hostile input", t_hostile, port, db)
        res.run("concurrent sessions", t_concurrent_sessions, port, db)
        res.run("download limit", t_download_limit, port, db)
        res.run("plain port", t_plain_port, server.ports)
        res.run("insecure auth", t_insecure_auth, insecure.ports["pop3"])
        res.run("proxy protocol", t_proxy_protocol, proxy)
        res.run("shutdown", t_shutdown, down, db)
    finally:
        for srv in servers:
            code = srv.stop()
            bad = [l for l in srv.log if "runtime error" in l or "Sanitizer" in l
                   or "LeakSanitizer" in l]
            if code != 0 or bad:
                res.failed.append("server exit %s" % code)
                print("".join(srv.log[-30:]))
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

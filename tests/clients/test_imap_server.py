#!/usr/bin/env python3
"""wd-server's IMAP engine on loopback against the real stack: Python
imaplib sessions and raw-socket transcripts (capabilities, logins, TLS,
COMPRESS, mailbox commands, SELECT/EXAMINE, hostile input, timeouts,
connection limit, shutdown).

usage: test_imap_server.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import imaplib
import os
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imapserver import Conn, Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "correct horse"


def caps_of(line):
    """Capabilities from '* CAPABILITY ...' or a [CAPABILITY ...] code."""
    if "[CAPABILITY " in line:
        line = line.split("[CAPABILITY ", 1)[1].split("]", 1)[0]
    elif line.startswith("* CAPABILITY "):
        line = line[len("* CAPABILITY "):]
    return set(line.split())


def tls_login(port, user="alice"):
    c = Conn(port)
    _, ok = c.cmd("STARTTLS")
    check(" OK " in ok, ok)
    c.starttls()
    _, ok = c.cmd('LOGIN %s "%s"' % (user, PASSWORD))
    check(" OK " in ok, "login: " + ok)
    return c


# ---- tests ----

def t_prelogin_capabilities(port):
    c = Conn(port)
    check(c.greeting.startswith("* OK [CAPABILITY "), c.greeting)
    lines, ok = c.cmd("CAPABILITY")
    check(ok.endswith("OK Capability completed"), ok)
    caps = caps_of(lines[0])
    check({"IMAP4rev1", "STARTTLS", "LOGINDISABLED"} <= caps, caps)
    check(not any(x.startswith("AUTH=") for x in caps), caps)
    check("UTF8=ACCEPT" not in caps and "IDLE" not in caps or "IDLE" in caps, caps)
    check("UTF8=ACCEPT" not in caps, "UTF8=ACCEPT before login")
    # plaintext login refused without TLS
    _, no = c.cmd('LOGIN alice "%s"' % PASSWORD)
    check("NO [PRIVACYREQUIRED]" in no, no)
    _, bad = c.cmd("SELECT INBOX")
    check(" BAD " in bad, bad)
    c.close()


def t_starttls_and_login(port):
    c = Conn(port)
    _, ok = c.cmd("STARTTLS")
    check(" OK " in ok, ok)
    c.starttls()
    lines, _ = c.cmd("CAPABILITY")
    caps = caps_of(lines[0])
    check({"AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR"} <= caps, caps)
    check("STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps)
    _, bad = c.cmd("STARTTLS")
    check(" BAD " in bad, bad)
    _, no = c.cmd('LOGIN alice "wrong password"')
    check("NO [AUTHENTICATIONFAILED]" in no, no)
    _, ok = c.cmd('LOGIN alice "%s"' % PASSWORD)
    check("OK [CAPABILITY " in ok, ok)
    caps = caps_of(ok)
    for cap in ("IMAP4rev1", "ENABLE", "NAMESPACE", "UNSELECT", "SPECIAL-USE", "LIST-EXTENDED",
                "LIST-STATUS", "CHILDREN", "UTF8=ACCEPT", "QUOTA", "COMPRESS=DEFLATE", "ID",
                "MOVE", "CONDSTORE", "QRESYNC", "ESEARCH", "SEARCHRES", "BINARY"):
        check(cap in caps, "%s missing in %s" % (cap, caps))
    check("AUTH=PLAIN" not in caps and "STARTTLS" not in caps, caps)
    _, bad = c.cmd('LOGIN alice "%s"' % PASSWORD)
    check(" BAD " in bad, bad)
    lines, ok = c.cmd("LOGOUT")
    check(lines == ["* BYE Logging out"] and " OK " in ok, (lines, ok))
    check(c.closed(), "not closed after LOGOUT")


def t_starttls_injection(port):
    c = Conn(port)
    c.send("a STARTTLS\r\nb CAPABILITY\r\n")
    _, resp = c.until("a")
    check(" BAD " in resp, resp)
    check(c.closed(), "not closed after pipelined STARTTLS")


def t_authenticate(port):
    c = Conn(port)
    c.cmd("STARTTLS")
    c.starttls()
    # PLAIN with SASL-IR
    ir = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
    _, ok = c.cmd("AUTHENTICATE PLAIN " + ir)
    check("OK [CAPABILITY" in ok, ok)
    c.close()
    # PLAIN with a continuation, then "*" cancel on another connection
    c = Conn(port)
    c.cmd("STARTTLS")
    c.starttls()
    c.send("p1 AUTHENTICATE PLAIN\r\n")
    check(c.line().startswith("+"), "no continuation")
    c.send("*\r\n")
    _, bad = c.until("p1")
    check(" BAD " in bad, bad)
    c.send("p2 AUTHENTICATE LOGIN\r\n")
    check(c.line() == "+ VXNlcm5hbWU6", "LOGIN user prompt")
    c.send(base64.b64encode(b"alice").decode() + "\r\n")
    check(c.line() == "+ UGFzc3dvcmQ6", "LOGIN password prompt")
    c.send(base64.b64encode(PASSWORD.encode()).decode() + "\r\n")
    _, ok = c.until("p2")
    check("OK [CAPABILITY" in ok, ok)
    c.close()
    # LOGIN with an initial response (Outlook does this), bad base64
    c = Conn(port)
    c.cmd("STARTTLS")
    c.starttls()
    c.send("l1 AUTHENTICATE LOGIN %s\r\n" % base64.b64encode(b"alice").decode())
    check(c.line() == "+ UGFzc3dvcmQ6", "password prompt after IR")
    c.send("!!notbase64\r\n")
    _, bad = c.until("l1")
    check(" BAD " in bad, bad)
    _, no = c.cmd("AUTHENTICATE CRAM-MD5")
    check(" NO " in no, no)
    c.close()


def t_rate_limit(port):
    c = Conn(port)
    c.cmd("STARTTLS")
    c.starttls()
    answers = []
    for i in range(14):
        _, resp = c.cmd('LOGIN victim "wrong %d"' % i)
        answers.append(resp)
    check(all(" NO " in a for a in answers), answers)
    check("[LIMIT]" in answers[-1], answers[-1])
    # the right password is refused too while limited
    _, resp = c.cmd('LOGIN victim "%s"' % PASSWORD)
    check("[LIMIT]" in resp, resp)
    c.close()


def t_implicit_tls(port):
    c = Conn(port, tls=True)
    caps = caps_of(c.greeting)
    check("STARTTLS" not in caps and "AUTH=PLAIN" in caps, caps)
    _, ok = c.cmd('LOGIN alice "%s"' % PASSWORD)
    check(" OK " in ok, ok)
    c.close()


def t_imaplib_session(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4("127.0.0.1", port)
    m.starttls(ctx)
    typ, _ = m.login("alice", PASSWORD)
    check(typ == "OK", typ)
    typ, data = m.list()
    names = [d.decode() for d in data]
    check(any('"INBOX"' in n for n in names), names)
    check(any("\\Sent" in n for n in names), names)
    check(m.create("Projects/2024/Q1")[0] == "OK", "create")
    check(m.create("Projects/2024/Q1")[0] == "NO", "create twice")
    typ, data = m.list('""', "Projects/%")
    check(any("\\Noselect" in d.decode() and '"Projects/2024"' in d.decode() for d in data), data)
    check(m.create("Projects")[0] == "OK", "create parent")
    typ, data = m.list('""', "Projects*")
    txt = b" ".join(data).decode()
    check('(\\HasChildren) "/" "Projects"' in txt, txt)
    check(m.rename("Projects", "Archive")[0] == "OK", "rename")
    typ, data = m.list('""', "*")
    txt = b" ".join(data).decode()
    check('"Archive/2024/Q1"' in txt and "Projects" not in txt, txt)
    check(m.rename("INBOX", "Other")[0] == "NO", "rename INBOX")
    check(m.subscribe("Archive/2024/Q1")[0] == "OK", "subscribe")
    typ, data = m.lsub('""', "Archive/*")
    check(data == [b'(\\HasNoChildren) "/" "Archive/2024/Q1"'], data)
    check(m.unsubscribe("Archive/2024/Q1")[0] == "OK", "unsubscribe")
    typ, data = m.lsub('""', "Archive/*")
    check(data == [None], data)
    check(m.subscribe("Nope")[0] == "NO", "subscribe missing")
    check(m.delete("Archive/2024/Q1")[0] == "OK", "delete")
    check(m.delete("Archive/2024/Q1")[0] == "NO", "delete twice")
    check(m.delete("INBOX")[0] == "NO", "delete INBOX")
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)")
    txt = data[0].decode()
    check("MESSAGES 3" in txt and "UIDNEXT 4" in txt and "UNSEEN 3" in txt, txt)
    check(m.status("Nope", "(MESSAGES)")[0] == "NO", "status missing")
    typ, data = m.namespace()
    check(data[0] == b'(("" "/")) NIL NIL', data)
    typ, data = m.getquotaroot("INBOX")
    check(data[0] == [b'"INBOX" ""'], data)
    check(data[1][0].startswith(b'"" (STORAGE '), data)
    typ, data = m.select("INBOX")
    check(typ == "OK" and data == [b"3"], (typ, data))
    check(m.untagged_responses.get("UIDNEXT") == [b"4"], m.untagged_responses)
    check(m.close()[0] == "OK", "close")
    typ, data = m.select("INBOX", readonly=True)
    check(typ == "OK" and data == [b"3"], (typ, data))
    check("READ-ONLY" in m.untagged_responses, m.untagged_responses)
    check(m.select("Nope")[0] == "NO", "select missing")
    m.logout()


def t_raw_mailbox(port):
    c = tls_login(port)
    # SELECT reports, RECENT claimed once, EXAMINE read-only, UNSELECT, [CLOSED]
    lines, ok = c.cmd("SELECT INBOX")
    check("[READ-WRITE]" in ok, ok)
    check("* 3 EXISTS" in lines, lines)
    check(any(l.startswith("* OK [UIDVALIDITY ") for l in lines), lines)
    check(any(l.startswith("* OK [PERMANENTFLAGS (") and "\\*" in l for l in lines), lines)
    check(any(l.startswith("* OK [UNSEEN 1]") for l in lines), lines)
    lines, ok = c.cmd("EXAMINE INBOX")
    check(lines[0] == "* OK [CLOSED] Previous mailbox closed", lines)
    check("[READ-ONLY]" in ok and "* 0 RECENT" in lines, (lines, ok))
    _, ok = c.cmd("UNSELECT")
    check(" OK " in ok, ok)
    _, bad = c.cmd("CLOSE")
    check(" BAD " in bad, bad)
    # LIST-EXTENDED, LIST-STATUS, SPECIAL-USE selection
    lines, ok = c.cmd('LIST (SPECIAL-USE) "" "*"')
    check(len(lines) == 4 and all("\\" in l for l in lines), lines)
    lines, ok = c.cmd('LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))')
    check(lines[0].startswith("* LIST (") and lines[1] == '* STATUS "INBOX" (MESSAGES 3 UNSEEN 3)',
          lines)
    lines, _ = c.cmd('LIST "" ""')
    check(lines == ['* LIST (\\Noselect) "/" ""'], lines)
    # CREATE-SPECIAL-USE
    _, no = c.cmd("CREATE Foo (USE (\\Important))")
    check("NO [USEATTR]" in no, no)
    _, no = c.cmd("CREATE Foo2 (USE (\\Sent))")
    check(" NO " in no, no)  # the user has a \Sent mailbox already
    # mUTF-7 and UTF8=ACCEPT
    _, ok = c.cmd('CREATE "&ZeVnLIqe-"')
    check(" OK " in ok, ok)
    lines, _ = c.cmd('LIST "" "&ZeVnLIqe-"')
    check(lines == ['* LIST (\\HasNoChildren) "/" "&ZeVnLIqe-"'], lines)
    _, bad = c.cmd('CREATE "&Jjo"')
    check(" BAD " in bad, bad)
    lines, ok = c.cmd("ENABLE UTF8=ACCEPT CONDSTORE")
    check(lines == ["* ENABLED UTF8=ACCEPT CONDSTORE"], lines)
    c.send('u1 LIST "" "\u65e5\u672c\u8a9e"\r\n')
    lines, _ = c.until("u1")
    check(lines == ['* LIST (\\HasNoChildren) "/" "\u65e5\u672c\u8a9e"'], lines)
    lines, ok = c.cmd('ID ("name" "test" "version" "1")')
    check(lines[0].startswith("* ID (") and " OK " in ok, lines)
    _, ok = c.cmd("GETQUOTA \"\"")
    check(" OK " in ok, ok)
    _, no = c.cmd("GETQUOTA \"other\"")
    check(" NO " in no, no)
    c.close()


def t_compress(port):
    c = tls_login(port)
    _, ok = c.cmd("COMPRESS DEFLATE")
    check(" OK " in ok, ok)
    c.compress()
    lines, ok = c.cmd('LIST "" "*"')
    check(" OK " in ok and len(lines) >= 5, (lines, ok))
    _, no = c.cmd("COMPRESS DEFLATE")
    check("COMPRESSIONACTIVE" in no, no)
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    c.close()


def t_hostile(port):
    bystander = tls_login(port)
    # one byte at a time
    c = tls_login(port)
    for b in b"h1 NOOP\r\n":
        c.sock.sendall(bytes([b]))
    _, ok = c.until("h1")
    check(" OK " in ok, ok)
    # a 100 KB line
    c.send("h2 NOOP " + "x" * 100000 + "\r\n")
    resp = c.line()
    check(" BAD " in resp or "BYE" in resp, resp)
    c.close()
    # an oversized synchronising literal is refused before it is sent
    c = tls_login(port)
    c.send("h3 ID {999999999}\r\n")
    resp = c.line()
    check(resp.startswith("h3 NO [TOOBIG]") or resp.startswith("h3 BAD"), resp)
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    # deep nesting, invalid mUTF-7, unknown command, garbage
    _, bad = c.cmd("ID " + "(" * 40 + ")" * 40)
    check(" BAD " in bad, bad)
    _, bad = c.cmd('SELECT "&AGE-"')
    check(" BAD " in bad, bad)
    _, bad = c.cmd("FROBNICATE")
    check(" BAD " in bad, bad)
    c.send("\x01\x02 garbage\r\n")
    resp = c.line()
    check(resp.startswith("* BAD"), resp)
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    # a non-synchronising literal past the limit (LITERAL+): BAD or close,
    # never read as commands
    c.send("h4 ID {70000000+}\r\n" + "h5 LOGOUT\r\n" * 100)
    resp = c.line()
    check("BAD" in resp or "NO" in resp or "BYE" in resp, resp)
    c.close()
    # an unterminated line, then the peer goes away
    c = Conn(port)
    c.send("x1 NOOP")
    c.close()
    # the bystander is still served
    _, ok = bystander.cmd("NOOP")
    check(" OK " in ok, ok)
    lines, ok = bystander.cmd('LIST "" INBOX')
    check(" OK " in ok and len(lines) == 1, lines)
    bystander.close()


def t_pipelining(port):
    c = tls_login(port)
    c.send("p1 NOOP\r\np2 STATUS INBOX (MESSAGES)\r\np3 BOGUS\r\np4 LIST \"\" INBOX\r\n"
           "p5 NAMESPACE\r\np6 NOOP\r\n")
    tags = []
    while len(tags) < 6:
        line = c.line()
        if not line.startswith("*"):
            tags.append(line.split(" ")[0])
    check(tags == ["p1", "p2", "p3", "p4", "p5", "p6"], tags)
    c.close()


def t_unauth_timeout(port):
    c = Conn(port)
    start = time.time()
    line = c.line()
    check(line.startswith("* BYE"), line)
    check(c.closed(), "not closed after timeout BYE")
    check(time.time() - start < 8, "timeout took %.1fs" % (time.time() - start))


def t_connection_limit(port):
    conns = [tls_login(port, "limited") for _ in range(3)]
    c = Conn(port)
    c.cmd("STARTTLS")
    c.starttls()
    _, no = c.cmd('LOGIN limited "%s"' % PASSWORD)
    check("NO [LIMIT]" in no, no)
    conns[0].cmd("LOGOUT")
    conns[0].closed()
    for _ in range(50):  # the server notices the close asynchronously
        _, resp = c.cmd('LOGIN limited "%s"' % PASSWORD)
        if " OK " in resp:
            break
        time.sleep(0.1)
    check(" OK " in resp, resp)
    for x in conns[1:] + [c]:
        x.close()


def t_connection_limit_instances(port_a, port_b):
    """imap.maxConnections holds across instances: 2 sessions on A and one
    on B fill the limit of 3; B refuses the next; a logout on A frees a slot
    that B sees."""
    on_a = [tls_login(port_a, "limited") for _ in range(2)]
    on_b = [tls_login(port_b, "limited")]
    c = Conn(port_b)
    c.cmd("STARTTLS")
    c.starttls()
    _, no = c.cmd('LOGIN limited "%s"' % PASSWORD)
    check("NO [LIMIT]" in no, no)
    on_a[0].cmd("LOGOUT")
    on_a[0].closed()
    for _ in range(50):  # the release is a job after the close
        _, resp = c.cmd('LOGIN limited "%s"' % PASSWORD)
        if " OK " in resp:
            break
        time.sleep(0.1)
    check(" OK " in resp, resp)
    for x in on_a[1:] + on_b + [c]:
        x.close()


def t_noop_sync(port, stack):
    c = tls_login(port)
    _, ok = c.cmd("CREATE Sync")
    check(" OK " in ok, ok)
    lines, ok = c.cmd("SELECT Sync")
    check("* 0 EXISTS" in lines, lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "new.eml")
        with open(path, "wb") as f:
            f.write(b"From: b@example.com\r\nSubject: new\r\n\r\nnew message\r\n")
        stack.run_wdctl("message", "import", "alice", "Sync", path)
    # STATUS counts the message as recent and does not claim it
    s = tls_login(port)
    lines, ok = s.cmd("STATUS Sync (MESSAGES RECENT)")
    check('* STATUS "Sync" (MESSAGES 1 RECENT 1)' in lines, lines)
    lines, ok = c.cmd("NOOP")
    check("* 1 EXISTS" in lines and "* 1 RECENT" in lines and " OK " in ok, (lines, ok))
    lines, ok = s.cmd("STATUS Sync (RECENT UNSEEN)")
    check('* STATUS "Sync" (RECENT 0 UNSEEN 1)' in lines, lines)
    s.close()
    lines, ok = c.cmd("NOOP")
    check(lines == [], lines)
    # another session sees it, not as recent (claimed by the first)
    d = tls_login(port)
    lines, _ = d.cmd("SELECT Sync")
    check("* 1 EXISTS" in lines and "* 0 RECENT" in lines, lines)
    # a flag change by another session reaches the first with its \Recent
    _, ok = d.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    check(" OK " in ok, ok)
    lines, ok = c.cmd("NOOP")
    check(any(re.match(r"\* 1 FETCH \(UID \d+ FLAGS \(\\Recent \\Flagged\)", l) for l in lines),
          lines)
    c.close()
    d.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    for user in ("alice", "victim", "limited"):
        stack.user(user, PASSWORD)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(3):
            path = os.path.join(tmp, "m%d.eml" % i)
            with open(path, "wb") as f:
                f.write(b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: test %d\r\n"
                        b"Message-ID: <m%d@example.com>\r\n\r\nbody %d\r\n" % (i, i, i))
            stack.run_wdctl("message", "import", "alice", "INBOX", path)
    common = ["--imap.secure=false", "--imap.starttls=true", "--imap.enableCompression=true",
              "--imap.maxConnections=3", "--imap.compression.windowBits=12",
              "--imap.compression.memLevel=5"]
    plain = Server(wd_server, stack, "--imap.unauthenticatedTimeout=2", *common)
    implicit = Server(wd_server, stack, "--imap.secure=true")
    other = Server(wd_server, stack, *common)
    try:
        res.run("prelogin capabilities", t_prelogin_capabilities, plain.port)
        res.run("starttls and login", t_starttls_and_login, plain.port)
        res.run("starttls command injection", t_starttls_injection, plain.port)
        res.run("authenticate plain/login", t_authenticate, plain.port)
        res.run("login rate limit", t_rate_limit, plain.port)
        res.run("implicit tls", t_implicit_tls, implicit.port)
        res.run("imaplib session", t_imaplib_session, plain.port)
        res.run("raw mailbox commands", t_raw_mailbox, plain.port)
        res.run("compress deflate", t_compress, plain.port)
        res.run("hostile input", t_hostile, plain.port)
        res.run("pipelining order", t_pipelining, plain.port)
        res.run("unauthenticated timeout", t_unauth_timeout, plain.port)
        res.run("per-user connection limit", t_connection_limit, plain.port)
        res.run("connection limit across instances", t_connection_limit_instances, plain.port,
                other.port)
        res.run("NOOP brings changes (EXISTS, RECENT)", t_noop_sync, plain.port, stack)

        def t_shutdown():
            c = tls_login(plain.port)
            code = plain.stop()
            line = c.line()
            check(line.startswith("* BYE"), line)
            check(code == 0, "exit code %s" % code)
            check(any("stopped" in l for l in plain.log), plain.log[-3:])
        res.run("graceful shutdown", t_shutdown)
    finally:
        plain.stop()
        implicit.stop()
        other.stop()
        stack.cleanup()

    def t_clean_logs():
        for server in (plain, implicit):
            bad = [l for l in server.log if "Sanitizer" in l or "runtime error" in l or
                   "panic" in l]
            check(not bad, "".join(server.log[-40:]))
            check(server.proc.returncode == 0, "exit code %s" % server.proc.returncode)
    res.run("server logs clean, exit 0", t_clean_logs)
    res.exit()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""wd-server's message commands on loopback against the real stack: FETCH
(items, BODY[] byte-identical to the imported message, \\Seen, CHANGEDSINCE,
VANISHED), STORE (+/-FLAGS, .SILENT, UNCHANGEDSINCE/MODIFIED), SEARCH
(ESEARCH, SEARCHRES), COPY/MOVE (COPYUID, TRYCREATE), EXPUNGE / UID EXPUNGE,
and a second session seeing the changes, through wd_events or, with Redis
unreachable, by journal polling and by full re-sync.

usage: test_imap_messages.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import imaplib
import os
import re
import ssl
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imapserver import Conn, Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "correct horse"
MESSAGES = [b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: msg %d\r\n"
            b"Message-ID: <m%d@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
            b"\r\nbody %d\r\n\xc3\xa4 line two\r\n" % (i, i, i) for i in range(4)]


def login(port):
    c = Conn(port, tls=True)
    _, ok = c.cmd('LOGIN alice "%s"' % PASSWORD)
    check(" OK " in ok, ok)
    return c


def imaplib_login(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    check(m.login("alice", PASSWORD)[0] == "OK", "login")
    return m


def t_fetch(port):
    m = imaplib_login(port)
    typ, data = m.select("INBOX")
    check(typ == "OK" and data[0] == b"4", data)
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    check(typ == "OK" and len(data) == 4, data)
    for i, d in enumerate(data):
        txt = d.decode()
        check(txt.startswith("%d (" % (i + 1)) and "UID %d" % (i + 1) in txt, txt)
        check("RFC822.SIZE %d" % len(MESSAGES[i]) in txt, txt)
    # BODY.PEEK[] byte-identical, no \Seen
    typ, data = m.uid("FETCH", "1:4", "(BODY.PEEK[])")
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    check(bodies == MESSAGES, bodies)
    typ, data = m.fetch("1", "(FLAGS)")
    check("\\Seen" not in data[0].decode(), data)
    # BODY[] sets \Seen and the response says so
    typ, data = m.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
    check(data[0][1] == b"Subject: msg 0\r\n\r\n", data)
    check("\\Seen" in (data[0][0] + data[1]).decode(), data)
    typ, data = m.fetch("1", "(FLAGS)")
    check("\\Seen" in data[0].decode(), data)
    typ, data = m.fetch("2", "(BODY.PEEK[TEXT]<0.4> ENVELOPE BODYSTRUCTURE INTERNALDATE)")
    check(data[0][1] == b"body", data)
    check(b'"msg 1"' in data[0][0] + data[1], data)
    # out of range sequence numbers: nothing, still OK
    typ, data = m.fetch("9", "(FLAGS)")
    check(typ == "OK", (typ, data))
    m.logout()


def t_store(port):
    c = login(port)
    c.cmd("SELECT INBOX")
    lines, ok = c.cmd("STORE 2 +FLAGS (\\Flagged $Label1)")
    check(" OK " in ok and len(lines) == 1, (lines, ok))
    check(re.match(r"\* 2 FETCH \(FLAGS \((.*)\)\)", lines[0]), lines)
    check("\\Flagged" in lines[0] and "$Label1" in lines[0], lines)
    lines, ok = c.cmd("STORE 2 -FLAGS.SILENT ($Label1)")
    check(" OK " in ok and lines == [], (lines, ok))
    lines, ok = c.cmd("UID STORE 2:3 FLAGS (\\Answered)")
    check(" OK " in ok and len(lines) == 2 and all("UID" in l for l in lines), (lines, ok))
    check("\\Flagged" not in lines[0] and "\\Answered" in lines[0], lines)
    lines, ok = c.cmd("STORE 2 +FLAGS \\Draft \\Flagged")
    check(" OK " in ok and "\\Draft" in lines[0] and "\\Flagged" in lines[0], (lines, ok))
    # CONDSTORE: MODSEQ in FETCH, UNCHANGEDSINCE
    lines, ok = c.cmd("FETCH 2 (MODSEQ)")
    mo = re.search(r"MODSEQ \((\d+)\)", lines[0])
    check(mo, lines)
    modseq = int(mo.group(1))
    lines, ok = c.cmd("STORE 2,3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % (modseq - 1))
    check("[MODIFIED 2" in ok, (lines, ok))
    check(not any(l.startswith("* 2 FETCH") for l in lines), lines)
    lines, ok = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % modseq)
    check(" OK " in ok and all("MODSEQ" in l for l in lines) and len(lines) >= 1, (lines, ok))
    check(not any(l.startswith("* 2 FETCH") for l in lines), lines)
    lines, ok = c.cmd("STORE 1 +FLAGS (\\Recent)")
    check(" BAD " in ok, ok)
    lines, ok = c.cmd("STORE 1 +FOO (\\Seen)")
    check(" BAD " in ok, ok)
    c.cmd("EXAMINE INBOX")
    lines, ok = c.cmd("STORE 1 +FLAGS (\\Seen)")
    check(" NO " in ok, ok)
    c.close()


def t_search(port):
    c = login(port)
    c.cmd("SELECT INBOX")
    lines, ok = c.cmd("SEARCH FLAGGED")
    check(lines == ["* SEARCH 2"] and " OK " in ok, (lines, ok))
    lines, ok = c.cmd("UID SEARCH SUBJECT \"msg 3\"")
    check(lines == ["* SEARCH 4"], lines)
    lines, ok = c.cmd("SEARCH RETURN (MIN MAX COUNT) ALL", tag="s1")
    check(lines == ['* ESEARCH (TAG "s1") MIN 1 MAX 4 COUNT 4'], lines)
    lines, ok = c.cmd("UID SEARCH RETURN (ALL) UNSEEN", tag="s2")
    check(len(lines) == 1 and lines[0].startswith('* ESEARCH (TAG "s2") UID ALL'), lines)
    lines, ok = c.cmd("SEARCH RETURN (SAVE) ANSWERED")
    check(lines == [] and " OK " in ok, (lines, ok))
    lines, ok = c.cmd("FETCH $ (UID)")
    check(sorted(lines) == ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"], lines)
    lines, ok = c.cmd("SEARCH CHARSET KOI8-R ALL")
    check(" NO [BADCHARSET" in ok, ok)
    lines, ok = c.cmd("SEARCH NOSUCHKEY")
    check(" BAD " in ok, ok)
    lines, ok = c.cmd("SEARCH BODY \"line two\" NOT 1")
    check(lines == ["* SEARCH 2 3 4"], lines)
    c.close()


def t_copy_move_expunge(port):
    c = login(port)
    c.cmd("SELECT INBOX")
    lines, ok = c.cmd("COPY 1 Nowhere")
    check(" NO [TRYCREATE]" in ok, ok)
    c.cmd("CREATE Target")
    lines, ok = c.cmd("COPY 1:2 Target")
    mo = re.search(r"\[COPYUID (\d+) 1:2 1:2\]", ok)
    check(" OK " in ok and mo, ok)
    lines, ok = c.cmd("COPY 1 INBOX")
    check("* 5 EXISTS" in lines and "[COPYUID " in ok, (lines, ok))
    c.cmd("STORE 5 +FLAGS.SILENT (\\Deleted)")
    lines, ok = c.cmd("UID EXPUNGE 5")
    check(lines == ["* 5 EXPUNGE"], lines)
    lines, ok = c.cmd("UID MOVE 4 Target")
    check(any(re.match(r"\* OK \[COPYUID \d+ 4 3\]", l) for l in lines), lines)
    check("* 4 EXPUNGE" in lines and " OK " in ok, (lines, ok))
    # another session on INBOX learns of the removal
    d = login(port)
    lines, _ = d.cmd("SELECT INBOX")
    check("* 3 EXISTS" in lines, lines)
    c.cmd("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    lines, ok = c.cmd("UID EXPUNGE 3")
    check(lines == ["* 3 EXPUNGE"] and " OK " in ok, (lines, ok))
    lines, ok = c.cmd("EXPUNGE")
    check(lines == ["* 1 EXPUNGE"], lines)
    lines, ok = c.cmd("FETCH 1:* (UID)")
    check(lines == ["* 1 FETCH (UID 2)"], lines)
    # the other session: FETCH by number never sends EXPUNGE (RFC 2180 §4.1.1:
    # the expunged messages get no response), NOOP does
    lines, ok = d.cmd("FETCH 1:* (UID)")
    check(lines == ["* 2 FETCH (UID 2)"] and "[EXPUNGEISSUE]" in ok, (lines, ok))
    lines, ok = d.cmd("NOOP")
    check(len([l for l in lines if l.endswith(" EXPUNGE")]) == 2, lines)
    lines, ok = d.cmd("FETCH 1:* (UID)")
    check(lines == ["* 1 FETCH (UID 2)"], lines)
    lines, ok = d.cmd("SELECT Target")
    check("* 3 EXISTS" in lines, lines)
    lines, ok = d.cmd("UID FETCH 1:* (UID FLAGS)")
    check(len(lines) == 3, lines)
    c.close()
    d.close()


def t_qresync_vanished(port):
    c = login(port)
    _, ok = c.cmd("ENABLE QRESYNC")
    lines, ok = c.cmd("SELECT Target")
    check(" OK " in ok, ok)
    lines, ok = c.cmd("UID FETCH 1:10 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    check(" OK " in ok, ok)
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines, ok = c.cmd("EXPUNGE")
    check(lines == ["* VANISHED 1"], lines)
    lines, ok = c.cmd("UID FETCH 1:10 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    check(lines and lines[0] == "* VANISHED (EARLIER) 1", lines)
    # another session expunges; this one has not synced yet: the UID FETCH
    # (VANISHED) still names it (RFC 7162 §3.2.6)
    lines, ok = c.cmd("UID SEARCH ALL")
    uid = int(lines[0].split()[2])
    d = login(port)
    d.cmd("SELECT Target")
    d.cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
    _, ok = d.cmd("UID EXPUNGE %d" % uid)
    check(" OK " in ok, ok)
    d.close()
    lines, ok = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    check(" OK " in ok and "EXPUNGEISSUE" not in ok, ok)
    vanished = [l for l in lines if l.startswith("* VANISHED")]
    check(any(str(uid) in l for l in vanished), lines)
    check(not any(re.match(r"\* \d+ FETCH \(UID %d " % uid, l) for l in lines), lines)
    c.close()


def t_append(port):
    m = imaplib_login(port)
    # a large message (spooled to a file) comes back byte-identical
    big = (b"From: big@example.com\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n" +
           b"".join(b"line %07d with some filler text to make it longer\r\n" % i
                    for i in range(60000)))
    typ, data = m.append("Target", "(\\Seen $Big)", '"02-Mar-2026 10:00:00 +0200"', big)
    check(typ == "OK" and b"[APPENDUID " in data[0], data)
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
    m.select("Target")
    typ, data = m.uid("FETCH", str(uid), "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    check(typ == "OK" and data[0][1] == big, (typ, len(data[0][1]) if data else None))
    head = data[0][0].decode()
    check("$Big" in head and "\\Seen" in head and "RFC822.SIZE %d" % len(big) in head, head)
    check('"02-Mar-2026 08:00:00 +0000"' in head, head)
    typ, data = m.append("NoSuchBox", None, None, b"Subject: x\r\n\r\nx\r\n")
    m.logout()
    # raw: literal+ and MULTIAPPEND, TRYCREATE, APPENDLIMIT
    c = login(port)
    one, two = b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n"
    c.send(b"a1 APPEND Target {%d+}\r\n%s (\\Flagged) {%d+}\r\n%s\r\n" %
           (len(one), one, len(two), two))
    lines, ok = c.until("a1")
    check(re.search(r"OK \[APPENDUID \d+ \d+:\d+\]", ok), ok)
    c.send(b"a2 APPEND Missing {%d}\r\n" % len(one))
    check(c.line().startswith("+ "), "continuation")
    c.send(one + b"\r\n")
    lines, ok = c.until("a2")
    check(" NO [TRYCREATE]" in ok, ok)
    c.send(b"a3 APPEND Target {999999999}\r\n")
    lines, ok = c.until("a3")
    check(" NO " in ok and "TOOBIG" in ok, ok)
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    # APPEND to the selected mailbox: EXISTS with the tagged OK
    lines, _ = c.cmd("SELECT Target")
    exists = int([l for l in lines if l.endswith(" EXISTS")][0].split()[1])
    c.send(b"a4 APPEND Target {%d+}\r\n%s\r\n" % (len(one), one))
    lines, ok = c.until("a4")
    check("* %d EXISTS" % (exists + 1) in lines and " OK [APPENDUID" in ok, (lines, ok))
    # .SILENT under CONDSTORE still reports the new MODSEQ
    lines, ok = c.cmd("STORE %d +FLAGS.SILENT (\\Seen) (UNCHANGEDSINCE 999999)" % (exists + 1))
    check(" BAD " in ok, ok)  # modifier goes before the item
    lines, ok = c.cmd("STORE %d (UNCHANGEDSINCE 999999) +FLAGS.SILENT (\\Seen)" % (exists + 1))
    check(len(lines) == 1 and re.match(r"\* %d FETCH \(MODSEQ \(\d+\)\)" % (exists + 1),
                                       lines[0]), (lines, ok))
    c.close()


def t_hostile(port):
    c = login(port)
    c.cmd("SELECT INBOX")
    for bad in ("FETCH 1:*:3 FLAGS", "FETCH 1 (FLAGS", "FETCH 1 (NOSUCH)", "FETCH 0 FLAGS",
                "FETCH 1 BODY[1.2.X]", "STORE 1 FLAGS", "UID EXPUNGE", "COPY 1",
                "SEARCH " + "(" * 200 + "ALL" + ")" * 200, "SEARCH " + "NOT " * 500 + "ALL",
                "FETCH " + ",".join(str(i) for i in range(1, 30000, 2)) + " FLAGS"):
        lines, ok = c.cmd(bad)
        check(" BAD " in ok or " NO " in ok, (bad[:40], ok))
    lines, ok = c.cmd("FETCH 1 (UID)")
    check(" OK " in ok and lines, (lines, ok))
    c.close()


def wait_line(c, pattern, timeout=15):
    """The next line matching `pattern` (others are skipped), within timeout."""
    c.sock.settimeout(timeout)
    seen = []
    while True:
        line = c.line()
        seen.append(line)
        if re.search(pattern, line):
            c.sock.settimeout(20)
            return seen


def t_idle_two_instances(port, port2):
    c = login(port)
    lines, ok = c.cmd("SELECT Target")
    exists = int([l for l in lines if l.endswith(" EXISTS")][0].split()[1])
    c.send("i1 IDLE\r\n")
    check(c.line().startswith("+ "), "idling")
    d = login(port2)
    msg = b"Subject: idle\r\n\r\nwake up\r\n"
    d.send(b"a1 APPEND Target {%d+}\r\n%s\r\n" % (len(msg), msg))
    _, ok = d.until("a1")
    uid = int(re.search(r"APPENDUID \d+ (\d+)", ok).group(1))
    wait_line(c, r"^\* %d EXISTS" % (exists + 1))
    d.cmd("SELECT Target")
    _, ok = d.cmd("UID STORE %d +FLAGS.SILENT (\\Flagged \\Deleted)" % uid)
    check(" OK " in ok, ok)
    seen = wait_line(c, r"^\* %d FETCH \(.*FLAGS" % (exists + 1))
    check("\\Flagged" in seen[-1], seen)
    _, ok = d.cmd("EXPUNGE")
    wait_line(c, r"^\* %d EXPUNGE" % (exists + 1))
    c.send("DONE\r\n")
    lines, ok = c.until("i1")
    check(" OK " in ok, ok)
    lines, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    c.close()
    d.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    stack.user("alice", PASSWORD)
    with tempfile.TemporaryDirectory() as tmp:
        for i, raw in enumerate(MESSAGES):
            path = os.path.join(tmp, "m%d.eml" % i)
            with open(path, "wb") as f:
                f.write(raw)
            stack.run_wdctl("message", "import", "alice", "INBOX", path)
    server = Server(wd_server, stack, "--imap.secure=true")
    server2 = Server(wd_server, stack, "--imap.secure=true", "--workers.loops=3")
    # instances whose Redis is unreachable: no wd_events, so IDLE learns of
    # changes only by reading on its own, from the journal (polling) or by
    # re-reading the whole mailbox (full re-sync on every read)
    dead_redis = "--dbs.redis=redis://127.0.0.1:1/0"
    polling = Server(wd_server, stack, "--imap.secure=true", dead_redis,
                     "--imap.syncPollSeconds=1")
    resync = Server(wd_server, stack, "--imap.secure=true", dead_redis,
                    "--imap.syncPollSeconds=1", "--imap.fullSyncSeconds=1")
    try:
        res.run("fetch", t_fetch, server.port)
        res.run("store", t_store, server.port)
        res.run("search", t_search, server.port)
        res.run("copy, move, expunge", t_copy_move_expunge, server.port)
        res.run("qresync vanished", t_qresync_vanished, server.port)
        res.run("append", t_append, server.port)
        res.run("hostile arguments", t_hostile, server.port)
        res.run("idle sees another instance", t_idle_two_instances, server.port, server2.port)
        res.run("idle without redis: journal polling", t_idle_two_instances, polling.port,
                server.port)
        res.run("idle without redis: full re-sync", t_idle_two_instances, resync.port,
                server.port)
    finally:
        for srv in (server, server2, polling, resync):
            code = srv.stop()
            if code != 0 or any("runtime error" in l or "Sanitizer" in l for l in srv.log):
                res.failed.append("server exit %s" % code)
                print("".join(srv.log[-20:]))
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

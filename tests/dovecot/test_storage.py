"""The wildduck mail storage in Debian's Dovecot, side by side with wd-server
on one database (suite `dovecot`).

A private Dovecot (dovecot_stack.py) runs the shipped conf.d snippets
(auth-wildduck.conf.ext, 10-wildduck.conf, 90-wildduck-plugins.conf with the
quota backend enabled) against a unique WildDuck database on the test stack;
a wd-server (tests/clients/imapserver.py) serves the same database. Every
check compares what a real client sees on both servers, or sees one server
react to a change made through the other:

  - LMTP delivery into Dovecot (the storage's save path; the LMTP plugin is
    not loaded) plus one delivery through wd-server's LMTP; \Recent claimed
    once across both servers (the first read-write SELECT); then over
    Dovecot IMAP and wd-server IMAP: the same folder list with special
    uses, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UIDs, FLAGS, MODSEQs,
    RFC822.SIZE, INTERNALDATE and BODY[] bytes (a multipart message with a
    base64 attachment in GridFS among them);
  - APPEND, STORE, EXPUNGE and MOVE through Dovecot seen by an IDLE client
    on wd-server (EXISTS, FETCH with the same MODSEQ, EXPUNGE), with
    APPENDUID/COPYUID equal to the UIDs wd-server reports;
  - the reverse: APPEND, STORE and EXPUNGE on wd-server seen by an IDLE
    client on Dovecot through the wd_events subscription;
  - QRESYNC on a fresh Dovecot session after expunges made on wd-server:
    the same VANISHED (EARLIER) and changed FETCHes as wd-server answers;
  - POP3 through Dovecot: the same UIDL list and RETR bytes as wd-server's
    POP3, DELE moving the message to Trash as WildDuck does;
  - folders created, renamed, subscribed and deleted through Dovecot, as
    wd-server lists them;
  - SEARCH through Dovecot (pushed down to MongoDB) giving wd-server's
    answers; GETQUOTAROOT from users.storageUsed / users.quota, and an
    APPEND over the user's quota refused with [OVERQUOTA];
  - a 1.4 MB message with a base64 attachment appended through Dovecot:
    the same bytes and partial fetches on both servers; one over
    wildduck_max_message_size refused without breaking the session;
  - a second Dovecot with the index in a directory (INDEX=, the tmpfs
    middle ground) and Redis unreachable: a new process resumes from its
    index through WildDuck's journal and shows wd-server's view after
    changes made meanwhile; IDLE still sees a change (fallback timer);
  - a clean stop of Dovecot."""

import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dovecot_stack import Dovecot, wildduck_args  # noqa: E402
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "Correct horse 2"
SOURCE_DIR = os.environ.get("WD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

MSG_PLAIN = (b"From: Ann <ann@example.com>\r\nTo: alice@example.org\r\n"
             b"Subject: plain one\r\nMessage-ID: <p1@example.com>\r\n"
             b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nHello there.\r\nSecond line.\r\n")
MSG_MULTIPART = (b"From: Bob <bob@example.com>\r\nTo: alice@example.org\r\n"
                 b"Subject: with attachment\r\nMessage-ID: <m2@example.com>\r\n"
                 b"Date: Tue, 02 Jan 2024 11:00:00 +0100\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
                 b"preamble\r\n--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                 b"See the attachment.\r\n--XyZ\r\n"
                 b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
                 b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n" +
                 b"\r\n".join([b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5"] * 40) +
                 b"\r\n--XyZ--\r\nepilogue\r\n")
MSG_UTF8 = ("From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\nTo: alice@example.org\r\n"
            "Subject: =?utf-8?b?w5xiZXJncsO2w59l?=\r\nDate: Wed, 03 Jan 2024 12:00:00 -0500\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Grüße aus München.\r\n").encode()


def msg(subject, body="body\r\n"):
    return ("From: x@example.com\r\nTo: alice@example.org\r\nSubject: %s\r\n\r\n%s"
            % (subject, body)).encode()


# ---- a raw IMAP client that keeps literals ----

class Imap:
    """One IMAP connection; responses are (text, [literals]) where each
    literal's place in the text is {n}."""

    def __init__(self, port, tls=False, timeout=20):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.buf = b""
        self.n = 0
        self.greeting = self.response()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        text, literals = b"", []
        while True:
            line = self._line()
            m = re.search(rb"\{(\d+)\}$", line)
            text += line
            if not m:
                return text.decode("utf-8", "replace"), literals
            literals.append(self._bytes(int(m.group(1))))

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, text, literal=None):
        """Runs `tag text` (with one synchronising literal appended when
        given); returns ([untagged (text, literals)], tagged text)."""
        self.n += 1
        tag = "t%d" % self.n
        if literal is None:
            self.send("%s %s\r\n" % (tag, text))
        else:
            self.send("%s %s {%d}\r\n" % (tag, text, len(literal)))
            cont = self.response()[0]
            if cont.startswith(tag + " "):
                return [], cont  # refused before the literal (e.g. OVERQUOTA)
            check(cont.startswith("+"), "no continuation: %r" % cont)
            self.send(literal + b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r[0].startswith(tag + " "):
                return untagged, r[0]
            untagged.append(r)

    def ok(self, text, literal=None):
        untagged, tagged = self.cmd(text, literal)
        check(" OK" in tagged[:12], "%s -> %s" % (text, tagged))
        return untagged, tagged

    def login(self):
        self.ok("LOGIN alice \"%s\"" % PASSWORD)
        return self

    def idle_start(self):
        self.n += 1
        self.idle_tag = "t%d" % self.n
        self.send("%s IDLE\r\n" % self.idle_tag)
        check(self.response()[0].startswith("+"), "IDLE continuation")

    def idle_wait(self, pattern, timeout=10):
        """Untagged lines while idling until one matches; returns them."""
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                text = self.response()[0]
            except socket.timeout:
                break
            seen.append(text)
            if re.search(pattern, text):
                self.sock.settimeout(20)
                return seen
        self.sock.settimeout(20)
        raise AssertionError("no %r while idling within %d s; got %r" % (pattern, timeout, seen))

    def idle_done(self):
        self.send("DONE\r\n")
        untagged = []
        while True:
            text = self.response()[0]
            if text.startswith(self.idle_tag + " "):
                check(" OK" in text, text)
                return untagged
            untagged.append(text)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def code(untagged, tagged, name):
    """Value of a response code [NAME value] in the tagged or untagged lines."""
    for text in [tagged] + [t for t, _ in untagged]:
        m = re.search(r"\[%s ([^\]]*)\]" % name, text)
        if m:
            return m.group(1)
    return None


def select(c, box="INBOX", extra=""):
    untagged, tagged = c.ok("SELECT \"%s\"%s" % (box, extra))
    exists = [int(t.split()[1]) for t, _ in untagged if re.match(r"\* \d+ EXISTS", t)]
    return {"uidvalidity": code(untagged, tagged, "UIDVALIDITY"),
            "uidnext": code(untagged, tagged, "UIDNEXT"),
            "highestmodseq": code(untagged, tagged, "HIGHESTMODSEQ"),
            "exists": exists[-1] if exists else None,
            "untagged": untagged}


def fetch_items(text):
    """A FETCH response's items as a dict (FLAGS without \\Recent)."""
    items = {}
    m = re.search(r"UID (\d+)", text)
    if m:
        items["uid"] = int(m.group(1))
    m = re.search(r"FLAGS \(([^)]*)\)", text)
    if m:
        items["flags"] = sorted(f for f in m.group(1).split() if f != "\\Recent")
    m = re.search(r"MODSEQ \((\d+)\)", text)
    if m:
        items["modseq"] = int(m.group(1))
    m = re.search(r"RFC822\.SIZE (\d+)", text)
    if m:
        items["size"] = int(m.group(1))
    m = re.search(r'INTERNALDATE "([^"]*)"', text)
    if m:
        items["internaldate"] = m.group(1)
    return items


def fetch_all(c, items="(UID FLAGS MODSEQ RFC822.SIZE INTERNALDATE)", uids="1:*"):
    untagged, _ = c.ok("UID FETCH %s %s" % (uids, items))
    out = {}
    for text, literals in untagged:
        if " FETCH " not in text:
            continue
        f = fetch_items(text)
        if literals:
            f["body"] = literals[0]
        out[f["uid"]] = f
    return out


def search(c, criteria):
    untagged, _ = c.ok("UID SEARCH " + criteria)
    for text, _ in untagged:
        if text.startswith("* SEARCH"):
            return sorted(int(x) for x in re.sub(r"\(MODSEQ \d+\)", "", text).split()[2:])
    return []


def list_boxes(c, cmd="LIST \"\" \"*\""):
    untagged, _ = c.ok(cmd)
    boxes = {}
    for text, literals in untagged:
        m = re.match(r"\* (?:LIST|LSUB) \(([^)]*)\) \"/\" (.*)$", text)
        if not m:
            continue
        name = m.group(2)
        if literals:
            name = literals[0].decode()
        name = name.strip('"')
        special = sorted(f for f in m.group(1).split()
                         if f in ("\\Sent", "\\Trash", "\\Drafts", "\\Junk", "\\Archive"))
        boxes[name] = special
    return boxes


# ---- the instances ----

class Env:
    def __init__(self, dv, wd, stack):
        self.dv, self.wd, self.stack = dv, wd, stack

    def dovecot(self):
        return Imap(self.dv.ports["imap"]).login()

    def wdserver(self):
        return Imap(self.wd.ports["imap"], tls=True).login()


def dovecot_settings(stack, index=None, redis=None, poll="5s"):
    """The shipped snippets, pointed at the test database."""
    def read(name):
        with open(os.path.join(SOURCE_DIR, "conf.d", name)) as f:
            return f.read()
    args = wildduck_args(stack)
    auth = read("auth-wildduck.conf.ext")
    check(auth.count("args = config=/etc/wildduck/wildduck.toml") == 2, "auth snippet's args")
    auth = auth.replace("args = config=/etc/wildduck/wildduck.toml uid=vmail gid=vmail",
                        "args = %s uid=nobody gid=nogroup" % args).replace(
        "args = config=/etc/wildduck/wildduck.toml", "args = " + args)
    storage = read("10-wildduck.conf")
    check("\nmail_location = wildduck:\n" in storage, "10-wildduck.conf mail_location")
    if index is not None:
        storage = storage.replace("\nmail_location = wildduck:\n",
                                  "\nmail_location = wildduck::INDEX=%s/%%u\n" % index)
    plugins = read("90-wildduck-plugins.conf")
    plugin = ["plugin {", "  wildduck_mongo = " + stack.mongo,
              "  wildduck_redis = " + (redis or stack.redis),
              "  wildduck_poll_interval = " + poll, "  wildduck_max_message_size = 2M",
              "  quota = wildduck:User quota", "}"]
    sqlite = os.environ.get("WD_FERRETDB_SQLITE")
    if sqlite:
        plugin.insert(3, "  wildduck_ferretdb_sqlite = " + sqlite)
    return "\n".join([auth, storage, plugins] + plugin + [
        "mail_plugins = $mail_plugins quota wildduck_quota",
        "protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}",
        "auth_failure_delay = 0",
        # debug lines of the storage (SEARCH push-down) in the log
        "mail_debug = yes", ""])


# ---- checks ----

def t_lmtp_delivery(env):
    """LMTP into Dovecot (the storage's save path) and into wd-server."""
    lmtp = env.dv.lmtp()
    for raw in (MSG_PLAIN, MSG_MULTIPART, MSG_UTF8):
        refused = lmtp.sendmail("sender@example.net", ["alice@example.org"], raw)
        check(refused == {}, "Dovecot LMTP refused %r" % refused)
    lmtp.quit()
    wd = smtplib.LMTP("127.0.0.1", env.wd.ports["lmtp"], timeout=30)
    refused = wd.sendmail("other@example.net", ["alice@example.org"], msg("via wd-server"))
    check(refused == {}, "wd-server LMTP refused %r" % refused)
    wd.quit()
    # \Recent across servers (one Redis watermark): the first session to
    # select the mailbox read-write, here Dovecot's, gets the 4 as recent
    c = env.dovecot()
    state = select(c)
    check(state["exists"] == 4, "Dovecot sees 4 messages")
    recent = [t for t, _ in state["untagged"] if re.match(r"\* \d+ RECENT", t)]
    check(recent == ["* 4 RECENT"], "Dovecot RECENT %r" % recent)
    untagged, _ = c.ok("FETCH 1 FLAGS")
    check("\\Recent" in untagged[0][0], "\\Recent in %r" % untagged[0][0])
    w = env.wdserver()
    recent = [t for t, _ in select(w)["untagged"] if re.match(r"\* \d+ RECENT", t)]
    check(recent == ["* 0 RECENT"], "wd-server RECENT after Dovecot claimed: %r" % recent)
    w.close()
    c.close()


def t_same_view(env):
    """The same folders, mailbox state, message data and bytes."""
    d, w = env.dovecot(), env.wdserver()
    for c in (d, w):
        c.ok("ENABLE CONDSTORE")
    dl, wl = list_boxes(d), list_boxes(w)
    check(dl == wl, "LIST differs:\n dovecot %r\n wd-server %r" % (dl, wl))
    check(dl.get("Trash") == ["\\Trash"] and dl.get("Junk") == ["\\Junk"], "special use %r" % dl)
    dsub, wsub = list_boxes(d, "LSUB \"\" \"*\""), list_boxes(w, "LSUB \"\" \"*\"")
    check(sorted(dsub) == sorted(wsub), "LSUB differs: %r / %r" % (dsub, wsub))
    ds, ws = select(d), select(w)
    for key in ("uidvalidity", "uidnext", "highestmodseq", "exists"):
        check(ds[key] == ws[key], "%s: dovecot %s, wd-server %s" % (key, ds[key], ws[key]))
    df, wf = fetch_all(d), fetch_all(w)
    check(sorted(df) == sorted(wf) and len(df) == 4, "UIDs %s vs %s" % (sorted(df), sorted(wf)))
    check(df == wf, "FETCH differs:\n dovecot %r\n wd-server %r" % (df, wf))
    db = fetch_all(d, "(UID BODY.PEEK[])")
    wb = fetch_all(w, "(UID BODY.PEEK[])")
    for uid in df:
        check(db[uid]["body"] == wb[uid]["body"], "BODY[] of UID %d differs" % uid)
        check(len(db[uid]["body"]) == df[uid]["size"], "RFC822.SIZE of UID %d" % uid)
    # the delivered bytes are stored exactly (plus Dovecot's trace headers)
    bodies = [db[uid]["body"] for uid in sorted(db)]
    check(bodies[1].endswith(MSG_MULTIPART), "multipart bytes changed")
    check(bodies[2].endswith(MSG_UTF8), "8bit bytes changed")
    # sections and partial fetches from the same stream
    for item in ("BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[2]", "BODY.PEEK[]<10.20>"):
        dv_ = fetch_all(d, "(UID %s)" % item, "2")
        wv_ = fetch_all(w, "(UID %s)" % item, "2")
        check(dv_[2]["body"] == wv_[2]["body"], "%s differs: %r vs %r"
              % (item, dv_[2]["body"][:80], wv_[2]["body"][:80]))
    d.close()
    w.close()


def t_dovecot_writes_seen_by_wdserver(env):
    """APPEND, STORE, EXPUNGE, MOVE through Dovecot; wd-server IDLE sees them."""
    w = env.wdserver()
    w.ok("ENABLE CONDSTORE")
    select(w)
    w.idle_start()
    d = env.dovecot()
    d.ok("ENABLE CONDSTORE")
    select(d)
    # APPEND
    _, tagged = d.ok("APPEND INBOX (\\Seen $Work)", msg("appended through dovecot"))
    m = re.search(r"APPENDUID (\d+) (\d+)", tagged)
    check(m is not None, "no APPENDUID: %s" % tagged)
    appended = int(m.group(2))
    w.idle_wait(r"^\* 5 EXISTS")
    # STORE: the FETCH wd-server announces carries Dovecot's MODSEQ
    untagged, _ = d.ok("UID STORE 1 +FLAGS (\\Flagged)")
    stored = fetch_items(untagged[-1][0])
    seen = w.idle_wait(r"FETCH .*\\Flagged")
    wf = fetch_items(seen[-1])
    check(wf.get("modseq") == stored.get("modseq"), "MODSEQ %r vs %r" % (wf, stored))
    # EXPUNGE (message 4, the wd-server delivery)
    d.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    d.ok("EXPUNGE")
    w.idle_wait(r"^\* 4 EXPUNGE")
    # MOVE to Trash: COPYUID (untagged OK, then EXPUNGE) names Trash's UID
    untagged, tagged = d.ok("UID MOVE 3 Trash")
    m = re.search(r"COPYUID \d+ 3 (\d+)", " ".join([t for t, _ in untagged] + [tagged]))
    check(m is not None, "no COPYUID for MOVE: %r %s" % (untagged, tagged))
    moved = int(m.group(1))
    w.idle_wait(r"^\* 3 EXPUNGE")
    w.idle_done()
    # wd-server has the appended message under the APPENDUID, flags intact
    wf = fetch_all(w)
    check(appended in wf and wf[appended]["flags"] == ["$Work", "\\Seen"],
          "appended %d: %r" % (appended, wf.get(appended)))
    df = fetch_all(d)
    check(df == wf, "after the writes:\n dovecot %r\n wd-server %r" % (df, wf))
    # the moved message in Trash under the COPYUID's UID on both
    trash_w = (select(w, "Trash"), fetch_all(w))
    trash_d = (select(d, "Trash"), fetch_all(d))
    check(trash_w[1] == trash_d[1] and sorted(trash_w[1]) == [moved], "Trash %r / %r (moved %d)"
          % (trash_w[1], trash_d[1], moved))
    check(trash_w[0]["uidnext"] == trash_d[0]["uidnext"], "Trash UIDNEXT")
    d.close()
    w.close()


def t_wdserver_writes_seen_by_dovecot(env):
    """APPEND, STORE, EXPUNGE on wd-server; Dovecot IDLE sees them."""
    d = env.dovecot()
    d.ok("ENABLE CONDSTORE")
    state = select(d)
    d.idle_start()
    w = env.wdserver()
    w.ok("ENABLE CONDSTORE")
    select(w)
    _, tagged = w.ok("APPEND INBOX (\\Answered)", msg("appended through wd-server"))
    uid = int(re.search(r"APPENDUID \d+ (\d+)", tagged).group(1))
    n = state["exists"] + 1
    t0 = time.time()
    d.idle_wait(r"^\* %d EXISTS" % n)
    check(time.time() - t0 < 4, "EXISTS took %.1f s (Redis, not the 5 s poll)" % (time.time() - t0))
    untagged, _ = w.ok("UID STORE %d +FLAGS ($Done)" % uid)
    stored = fetch_items(untagged[-1][0])
    seen = d.idle_wait(r"FETCH .*\$Done")
    check(fetch_items(seen[-1]).get("modseq") == stored.get("modseq"),
          "MODSEQ %r vs %r" % (seen[-1], stored))
    w.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
    w.ok("UID EXPUNGE %d" % uid)
    d.idle_wait(r"^\* %d EXPUNGE" % n)
    d.idle_done()
    check(fetch_all(d) == fetch_all(w), "after the wd-server writes")
    d.close()
    w.close()


def t_qresync(env):
    """QRESYNC on a fresh Dovecot session after expunges on wd-server."""
    w = env.wdserver()
    w.ok("ENABLE QRESYNC")
    state = select(w)
    uv, modseq = state["uidvalidity"], state["highestmodseq"]
    known = sorted(fetch_all(w))
    # changes after the client's state: a flag change and two expunges
    for i in range(3):
        w.ok("APPEND INBOX ()", msg("qresync %d" % i))
    select(w)
    new = sorted(fetch_all(w))[-3:]
    w.ok("UID STORE %d +FLAGS (\\Flagged)" % known[0])
    w.ok("UID STORE %d,%d +FLAGS.SILENT (\\Deleted)" % (known[-1], new[0]))
    w.ok("EXPUNGE")
    w.ok("UNSELECT")
    arg = " (QRESYNC (%s %s %d:%d))" % (uv, modseq, 1, new[-1])
    ws = select(w, extra=arg)
    d = env.dovecot()
    d.ok("ENABLE QRESYNC")
    ds = select(d, extra=arg)

    def vanished(s):
        return [t for t, _ in s["untagged"] if t.startswith("* VANISHED")]

    def fetches(s):
        return sorted((fetch_items(t)["uid"], fetch_items(t).get("modseq"),
                       tuple(fetch_items(t)["flags"]))
                      for t, _ in s["untagged"] if " FETCH " in t)
    check(vanished(ds) == vanished(ws), "VANISHED: dovecot %r, wd-server %r"
          % (vanished(ds), vanished(ws)))
    expunged = vanished(ds)[0].split()[-1] if vanished(ds) else ""
    for uid in (known[-1], new[0]):
        check(re.search(r"(^|,)%d($|,|:)" % uid, expunged) or any(
            int(a) <= uid <= int(b) for a, b in re.findall(r"(\d+):(\d+)", expunged)),
            "UID %d not in VANISHED %r" % (uid, expunged))
    check(fetches(ds) == fetches(ws), "changed FETCHes: dovecot %r, wd-server %r"
          % (fetches(ds), fetches(ws)))
    check(ds["highestmodseq"] == ws["highestmodseq"], "HIGHESTMODSEQ")
    d.close()
    w.close()


def t_pop3(env):
    """POP3 through Dovecot: wd-server's UIDLs and bytes; DELE = to Trash."""
    dp = env.dv.pop3()
    dp.user("alice")
    dp.pass_(PASSWORD)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    wp = poplib.POP3_SSL("127.0.0.1", env.wd.ports["pop3"], context=ctx)
    wp.user("alice")
    wp.pass_(PASSWORD)
    du, wu = dp.uidl()[1], wp.uidl()[1]
    check(du == wu and len(du) > 0, "UIDL differs:\n dovecot %r\n wd-server %r" % (du, wu))
    check(all(re.fullmatch(rb"\d+ [0-9a-f]{24}", x) for x in du), "UIDLs are message ids %r" % du)
    check(dp.list()[1] == wp.list()[1], "LIST sizes differ")
    check(dp.retr(1)[1] == wp.retr(1)[1], "RETR 1 differs")
    wp.quit()
    dp.dele(len(du))
    dp.quit()
    # WildDuck's POP3: the deleted message is now in Trash, with \Seen
    w = env.wdserver()
    check(select(w)["exists"] == len(du) - 1, "INBOX still has the deleted message")
    select(w, "Trash")
    trash = fetch_all(w)
    check(len(trash) == 2 and "\\Seen" in trash[max(trash)]["flags"],
          "Trash after DELE: %r" % trash)
    w.close()


def t_folders(env):
    d, w = env.dovecot(), env.wdserver()
    d.ok("CREATE \"Projects/2024\"")
    d.ok("CREATE Lists")
    d.ok("RENAME Lists Archive")
    d.ok("UNSUBSCRIBE Archive")
    wl = list_boxes(w)
    check("Projects/2024" in wl and "Archive" in wl and "Lists" not in wl, "wd-server LIST %r" % wl)
    check("Archive" not in list_boxes(w, "LSUB \"\" \"*\""), "Archive still subscribed")
    check(list_boxes(d) == list_boxes(w), "LIST differs after changes")
    d.ok("DELETE Archive")
    untagged, tagged = d.cmd("DELETE INBOX")
    check(" NO" in tagged, "deleting INBOX: %s" % tagged)
    check("Archive" not in list_boxes(w), "Archive not deleted")
    # STATUS of a mailbox that is not selected, from the database
    st_d, _ = d.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    st_w, _ = w.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")

    def items(u):
        return dict(re.findall(r"(MESSAGES|UIDNEXT|UIDVALIDITY|UNSEEN|HIGHESTMODSEQ) (\d+)",
                               u[0][0]))
    check(items(st_d) == items(st_w), "STATUS %r vs %r" % (items(st_d), items(st_w)))
    # again, now from WildDuck's counters in Redis, after changes elsewhere
    w.ok("APPEND INBOX ()", msg("counted"))
    w.ok("APPEND INBOX (\\Seen)", msg("counted too"))
    st_d, _ = d.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    st_w, _ = w.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    check(items(st_d) == items(st_w), "STATUS (counters) %r vs %r" % (items(st_d), items(st_w)))
    d.close()
    w.close()


def t_search(env):
    mark = env.dv.log_mark()
    d, w = env.dovecot(), env.wdserver()
    for c in (d, w):
        c.ok("ENABLE CONDSTORE")
        select(c)
    for criteria in ("ALL", "SEEN", "UNSEEN", "FLAGGED", "KEYWORD $Work", "NOT DELETED",
                     "LARGER 1000", "SMALLER 200", "SUBJECT attachment", "FROM bob",
                     "HEADER Message-ID p1@example.com", "SINCE 1-Jan-2020",
                     "BEFORE 1-Jan-2020", "MODSEQ 5", "UID 1:3", "OR FLAGGED SUBJECT plain",
                     "NOT SUBJECT plain", "BODY attachment", "TEXT Hello"):
        ds, ws = search(d, criteria), search(w, criteria)
        check(ds == ws, "SEARCH %s: dovecot %r, wd-server %r" % (criteria, ds, ws))
    # the header and body keys were answered by MongoDB, not by reading mail
    pushed = re.findall(r"SEARCH pushed down \((\d+) of (\d+) keys\)", env.dv.log_since(mark))
    check(len(pushed) >= 8, "pushed-down searches: %r" % pushed)
    d.close()
    w.close()


def t_quota(env):
    d, w = env.dovecot(), env.wdserver()
    ud, _ = d.ok("GETQUOTAROOT INBOX")
    uw, _ = w.ok("GETQUOTAROOT INBOX")

    def storage(u):
        for t, _ in u:
            m = re.search(r"STORAGE (\d+) (\d+)", t)
            if m:
                return int(m.group(1)), int(m.group(2))
        return None
    check(storage(ud) is not None and storage(ud) == storage(uw),
          "STORAGE %r vs %r" % (storage(ud), storage(uw)))
    d.close()
    w.close()


def t_large_messages(env):
    """A 1.4 MB message with a base64 attachment (GridFS chunks) appended
    through Dovecot reads back byte for byte on both servers, in pieces too;
    one over wildduck_max_message_size is refused and the session goes on."""
    import base64
    blob = bytes((i * 7 + i // 251) % 256 for i in range(1000000))
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    big = (b"From: big@example.com\r\nTo: alice@example.org\r\nSubject: large\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + b64 + b"--B--\r\n")
    d, w = env.dovecot(), env.wdserver()
    _, tagged = d.ok("APPEND Drafts ()", big)
    uid = int(re.search(r"APPENDUID \d+ (\d+)", tagged).group(1))
    for c in (d, w):
        select(c, "Drafts")
    db = fetch_all(d, "(UID RFC822.SIZE BODY.PEEK[])", str(uid))[uid]
    wb = fetch_all(w, "(UID RFC822.SIZE BODY.PEEK[])", str(uid))[uid]
    check(db["body"] == big and wb["body"] == big, "large message bytes")
    check(db["size"] == len(big) == wb["size"], "sizes %r %r %d" % (db["size"], wb["size"], len(big)))
    part = fetch_all(d, "(UID BODY.PEEK[2]<300000.500000>)", str(uid))[uid]["body"]
    check(part == fetch_all(w, "(UID BODY.PEEK[2]<300000.500000>)", str(uid))[uid]["body"] and
          len(part) == 500000, "partial fetch across GridFS chunks")
    untagged, tagged = d.cmd("APPEND Drafts ()", b"x" * (3 * 1024 * 1024))
    check(" NO " in tagged, "3 MB APPEND over the 2 MB limit: %s" % tagged)
    d.ok("NOOP")
    d.close()
    w.close()


def t_doveadm(env):
    """doveadm on the same storage: folders, and messages with their ids."""
    res = env.dv.doveadm("mailbox", "list", "-u", "alice", check=True)
    check(set(res.stdout.split()) >= {"INBOX", "Trash", "Junk", "Drafts"}, res.stdout)
    res = env.dv.doveadm("fetch", "-u", "alice", "uid guid", "mailbox", "INBOX", check=True)
    guids = re.findall(r"guid: ([0-9a-f]+)", res.stdout)
    w = env.wdserver()
    select(w)
    check(len(guids) == len(fetch_all(w)) and all(len(g) == 24 for g in guids),
          "doveadm fetch guid: %r" % res.stdout[:400])
    w.close()


def t_over_quota(env, db_tool):
    """users.quota below storageUsed: Dovecot's quota plugin refuses APPEND."""
    def set_quota(value):
        subprocess.run([db_tool, env.stack.mongo, "set-user", "alice", "quota", str(value)],
                       check=True, capture_output=True, timeout=60)
    d = env.dovecot()
    set_quota(1024)
    try:
        untagged, tagged = d.cmd("APPEND INBOX ()", msg("over quota"))
        check(" NO [OVERQUOTA]" in tagged, "APPEND over quota: %s" % tagged)
        ud, _ = d.ok("GETQUOTAROOT INBOX")
        check(any(re.search(r"STORAGE \d+ 1\)", t) for t, _ in ud), "limit 1 KiB: %r" % ud)
    finally:
        set_quota(0)
    d.ok("APPEND INBOX ()", msg("under quota again"))
    d.close()


def t_index_dir_no_redis(env):
    """INDEX= directory and Redis down: resume by journal, poll while IDLE."""
    index = tempfile.mkdtemp(prefix="wd-dv-index-")
    os.chmod(index, 0o777)
    settings = dovecot_settings(env.stack, index=index, redis="redis://127.0.0.1:9/3", poll="2s")
    try:
        with Dovecot(settings=settings) as dv2:
            w = env.wdserver()
            w.ok("ENABLE CONDSTORE")
            c = Imap(dv2.ports["imap"]).login()
            c.ok("ENABLE CONDSTORE")
            select(c)
            select(w)
            check(fetch_all(c) == fetch_all(w), "first open")
            c.close()
            check(any(name.startswith("dovecot.index") for _, _, files in os.walk(index)
                      for name in files), "no index files under %s" % index)
            # changes while no Dovecot session has the mailbox open
            w.ok("APPEND INBOX (\\Seen)", msg("while away"))
            known = sorted(fetch_all(w))
            w.ok("UID STORE %d +FLAGS (\\Answered $Later)" % known[0])
            w.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % known[1])
            w.ok("UID EXPUNGE %d" % known[1])
            mark = dv2.log_mark()
            c = Imap(dv2.ports["imap"]).login()
            c.ok("ENABLE CONDSTORE")
            cs, ws = select(c), select(w)
            check(cs["highestmodseq"] == ws["highestmodseq"] and cs["uidnext"] == ws["uidnext"],
                  "state %r vs %r" % (cs, ws))
            check(fetch_all(c) == fetch_all(w), "after resuming from the index")
            log = dv2.log_since(mark)
            check("reading the journal after" in log and "reading the whole mailbox" not in log,
                  "the second open did not resume from the journal:\n" + log[-2000:])
            # IDLE without Redis: the fallback timer finds the change
            c.idle_start()
            w.ok("APPEND INBOX ()", msg("seen by polling"))
            n = ws["exists"] + 1
            c.idle_wait(r"^\* %d EXISTS" % n, timeout=10)
            c.idle_done()
            c.close()
            w.close()
    finally:
        subprocess.run(["rm", "-rf", index])


def main():
    skip_without_stack()
    wdctl, wd_server, db_tool = sys.argv[1], sys.argv[2], sys.argv[3]
    stack = Stack(wdctl)
    stack.run_wdctl("user", "create", "alice", "--password", PASSWORD,
                    "--address", "alice@example.org")
    res = Results()
    dv = Dovecot(settings=dovecot_settings(stack), start=False)
    wd = None
    try:
        dv.start()
        wd = Server(wd_server, stack, "--lmtp.enabled=true", "--imap.enableCompression=false")
        env = Env(dv, wd, stack)
        res.run("lmtp delivery (dovecot, wd-server)", t_lmtp_delivery, env)
        res.run("same view on both servers", t_same_view, env)
        res.run("dovecot writes, wd-server IDLE", t_dovecot_writes_seen_by_wdserver, env)
        res.run("wd-server writes, dovecot IDLE", t_wdserver_writes_seen_by_dovecot, env)
        res.run("qresync after remote expunges", t_qresync, env)
        res.run("search pushed down", t_search, env)
        res.run("large messages", t_large_messages, env)
        res.run("doveadm", t_doveadm, env)
        res.run("quota", t_quota, env)
        res.run("over quota", t_over_quota, env, db_tool)
        res.run("folders", t_folders, env)
        res.run("pop3 uidl, retr, dele", t_pop3, env)
        res.run("index directory, redis down", t_index_dir_no_redis, env)
        res.run("no errors in dovecot's log", lambda: check(
            not re.search(r"(Error|Panic|Fatal):", dv.log()), "log:\n" + "\n".join(
                l for l in dv.log().splitlines() if re.search(r"(Error|Panic|Fatal):", l))))
        res.run("clean stop", dv.stop)
    finally:
        if res.failed:
            print(dv.all_output())
            if wd is not None:
                print("--- wd-server ---\n" + "".join(wd.log[-60:]))
        if wd is not None:
            wd.stop()
        dv.cleanup()
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

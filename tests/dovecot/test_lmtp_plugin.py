#!/usr/bin/env python3
"""The LMTP plugin (lib95_wildduck_lmtp_plugin.so) in Debian's Dovecot,
against wd-server's own LMTP on the same database: the same transactions go
to both, and both must answer every recipient alike and store the same
documents.

  - mixed recipients (accepted, a +label of an accepted one, unknown,
    disabled, over quota at RCPT, over quota with the real size at DATA):
    identical RCPT and DATA replies (message ids aside), sequential and
    pipelined in one write;
  - the stored message: BODY[] through wd-server's IMAP byte-identical, the
    message documents equal apart from ids, uid, modseq and times;
  - a filter moving a message to a folder, a spam header sending it to Junk;
  - forwards and autoreplies queued once per delivery (the queue entries
    named by the message's `outbound`), no second autoreply to a sender,
    and then sent by wd-server's sender to an SMTP sink, each exactly once;
  - bare LF, NUL and an over-long line treated as wd-server treats them;
  - plugin settings: lmtp.maxMB as LHLO SIZE and the DATA limit,
    lmtp.overQuota=defer, lmtp.maxRecipients;
  - Dovecot's own storage never written (the maildir of mail_location stays
    empty, no "saved mail to" in its log);
  - an unreachable database: 451 4.3.0 at RCPT within the configured
    wildduck_lmtp_db_timeout.

  - the shipped conf.d snippets with the storage plugin as mail_location:
    one stored message per delivery, read the same through both IMAPs.

usage: test_lmtp_plugin.py WD_SERVER WDCTL DB_TOOL PLUGIN STORAGE_PLUGIN
       (exit 77 without the stack)"""

import glob
import imaplib
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients", "lmtp"))
from dovecot_stack import Dovecot, free_port, static_authdbs  # noqa: E402
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402
# wd-server's LMTP test: a raw LMTP connection, dot-stuffing
from test_lmtp import Lmtp, stuffed  # noqa: E402

PASSWORD = "correct horse"
DOVECOT_PASSWORD = "static-pw"  # Dovecot's static passdb in t_shipped_config
DOMAIN = "dvlmtp.example"
FRIEND = "friend@outside.example"

DB_TOOL = None


def addr(user):
    return "%s@%s" % (user, DOMAIN)


# ---- the database ----

def db(url, *args):
    res = subprocess.run([DB_TOOL, url] + list(args), capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError("dovecot-lmtp-db %s: %s" % (" ".join(args), res.stderr))
    return res.stdout


def find(url, collection, query, sort=None):
    args = ["find", collection, json.dumps(query)] + ([json.dumps(sort)] if sort else [])
    return [json.loads(line) for line in db(url, *args).splitlines() if line.strip()]


def oid(value):
    return {"$oid": value}


def user_id(stack, name):
    docs = find(stack.mongo, "users", {"username": name})
    check(len(docs) == 1, "user %s: %r" % (name, docs))
    return docs[0]["_id"]["$oid"]


def set_user(stack, name, fields):
    n = db(stack.mongo, "update", "users", json.dumps({"username": name}),
           json.dumps({"$set": fields}))
    check(n.strip() == "1", "update of %s matched %s" % (name, n))


# ---- LMTP ----

def line(c, text):
    """The last line of the reply to one command."""
    return c.cmd(text)[1]


def transaction(port, sender, rcpts, message, pipelined=False):
    """LHLO, MAIL, the RCPTs and DATA (when one was accepted); returns
    (RCPT reply lines, DATA reply lines)."""
    c = Lmtp(port)
    try:
        c.send("LHLO client.test\r\n")
        check(c.reply()[0] == 250, "LHLO")
        if pipelined:
            c.send("MAIL FROM:<%s>\r\n" % sender +
                   "".join("RCPT TO:<%s>\r\n" % r for r in rcpts) + "DATA\r\n")
            check(c.reply()[1][-1].startswith("250 "), "MAIL")
            rcpt_lines = [c.reply()[1][-1] for _ in rcpts]
            data = c.reply()[1][-1]
        else:
            mail = line(c, "MAIL FROM:<%s>" % sender)
            check(mail.startswith("250 "), mail)
            rcpt_lines = [line(c, "RCPT TO:<%s>" % r) for r in rcpts]
            data = line(c, "DATA") if any(l.startswith("250 ") for l in rcpt_lines) else None
        data_lines = []
        if data is not None and data.startswith("354"):
            c.send(stuffed(message))
            data_lines = [c.reply()[1][-1] for l in rcpt_lines if l.startswith("250 ")]
        else:
            check(data is None or not any(l.startswith("250 ") for l in rcpt_lines), data)
        c.send("QUIT\r\n")
        return rcpt_lines, data_lines
    finally:
        c.close()


def masked(lines):
    return [re.sub(r"\b[0-9a-f]{24}\b", "<id>", l) for l in lines]


def stored_ids(lines):
    return [m.group(1) for m in (re.search(r"Message stored as ([0-9a-f]{24})", l) for l in lines)
            if m]


# ---- IMAP through wd-server ----

def imap(port, user):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    check(m.login(user, PASSWORD)[0] == "OK", "login " + user)
    return m


def mailbox(port, user, name):
    """Every message of a mailbox as {uid: bytes}."""
    m = imap(port, user)
    try:
        typ, data = m.select('"%s"' % name, readonly=True)
        check(typ == "OK", data)
        result = {}
        if data[0] != b"0":
            typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
            check(typ == "OK", data)
            for d in data:
                if isinstance(d, tuple):
                    result[int(re.search(rb"UID (\d+)", d[0]).group(1))] = d[1]
        return result
    finally:
        m.logout()


# ---- documents ----

# per stored message: ids, position, times, and WildDuck's random `magic`
# (attachment reference salt); everything else must be equal
VOLATILE = {"_id", "root", "uid", "modseq", "idate", "magic", "thread", "exp", "rdate"}
VOLATILE_META = {"time", "transactionId", "queueId"}


def normalized(doc):
    doc = {k: v for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc.get("meta"), dict):
        doc["meta"] = {k: v for k, v in doc["meta"].items() if k not in VOLATILE_META}
    doc.pop("outbound", None)  # queue ids differ; compared through the queue
    return doc


def message_doc(stack, msg_id):
    docs = find(stack.mongo, "messages", {"_id": oid(msg_id)})
    check(len(docs) == 1, "message %s: %d documents" % (msg_id, len(docs)))
    return docs[0]


def same_documents(stack, id_wd, id_dv):
    a, b = message_doc(stack, id_wd), message_doc(stack, id_dv)
    na, nb = normalized(a), normalized(b)
    diff = sorted(k for k in set(na) | set(nb) if na.get(k) != nb.get(k))
    check(not diff, "documents differ in %s:\nwd-server %r\ndovecot   %r"
          % (diff, {k: na.get(k) for k in diff}, {k: nb.get(k) for k in diff}))
    # the volatile ones are there in both
    for key in ("_id", "uid", "modseq", "idate"):
        check(key in a and key in b, "missing %s" % key)
    check(a["meta"]["transactionId"] != b["meta"]["transactionId"], "one transaction id")
    return a, b


# ---- tests ----

DATE = b"Date: Sun, 29 Nov 2026 10:00:00 +0000"
BODY = (b"From: Sender <sender@outside.example>\r\n"
        b"To: alice@dvlmtp.example\r\n" + DATE + b"\r\n"
        b"Subject: mixed recipients\r\n"
        b"Message-ID: <mixed@outside.example>\r\n"
        b"\r\n"
        b".leading dot\r\n" + b"some text to make it larger than gina's quota\r\n" * 40)


def t_mixed(ctx, pipelined):
    rcpts = [addr("alice"), addr("nobody"), addr("bob"), addr("carol"), "Alice+Tag@" + DOMAIN,
             addr("gina"), addr("dave")]
    before = mailbox(ctx.imap_port, "alice", "INBOX")
    wd = transaction(ctx.wd_lmtp, "sender@outside.example", rcpts, BODY, pipelined)
    dv = transaction(ctx.dv_lmtp, "sender@outside.example", rcpts, BODY, pipelined)
    check(wd[0] == dv[0], "RCPT replies differ:\nwd-server %r\ndovecot   %r" % (wd[0], dv[0]))
    check(masked(wd[1]) == masked(dv[1]),
          "DATA replies differ:\nwd-server %r\ndovecot   %r" % (wd[1], dv[1]))
    # and they are what the pipeline answers
    codes = [l[:9] for l in dv[0]]
    check(codes == ["250 2.1.5", "550 5.1.1", "550 5.2.1", "552 5.2.2", "250 2.1.5",
                    "250 2.1.5", "250 2.1.5"], dv[0])
    data = [l[:9] for l in dv[1]]
    check(data == ["250 2.0.0", "250 2.0.0", "552 5.2.2", "250 2.0.0"], dv[1])
    ids = stored_ids(dv[1])
    check(ids[0] == ids[1], "alice+tag is alice: one delivery, the first one's reply: %r" % dv[1])
    # one new message per server in alice's INBOX, byte for byte the same
    after = mailbox(ctx.imap_port, "alice", "INBOX")
    fresh = [after[u] for u in sorted(after) if u not in before]
    check(len(fresh) == 2, "alice got %d messages" % len(fresh))
    check(fresh[0] == fresh[1], "BODY[] differs:\n%r\n%r" % (fresh[0][:300], fresh[1][:300]))
    check(fresh[0].startswith(b"Delivered-To: alice@dvlmtp.example\r\n"
                              b"Return-Path: <sender@outside.example>\r\n") and
          fresh[0].endswith(BODY), fresh[0][:200])
    same_documents(ctx.stack, stored_ids(wd[1])[0], ids[0])
    same_documents(ctx.stack, stored_ids(wd[1])[-1], ids[-1])  # dave


def t_filter_and_junk(ctx):
    invoice = (b"From: billing@shop.example\r\nTo: dave@dvlmtp.example\r\n" + DATE +
               b"\r\nMessage-ID: <invoice42@shop.example>\r\n"
               b"Subject: Invoice 42\r\n\r\nplease pay\r\n")
    spam = (b"From: promo@spam.example\r\nTo: alice@dvlmtp.example\r\n" + DATE +
            b"\r\nMessage-ID: <win@spam.example>\r\n"
            b"X-Spam-Status: Yes, score=12.0\r\nSubject: win\r\n\r\nmoney\r\n")
    inbox_before = mailbox(ctx.imap_port, "dave", "INBOX")
    replies = []
    for port in (ctx.wd_lmtp, ctx.dv_lmtp):
        replies.append(transaction(port, "billing@shop.example", [addr("dave")], invoice))
        replies.append(transaction(port, "promo@spam.example", [addr("alice")], spam))
    check(masked(replies[0][1]) == masked(replies[2][1]) and
          masked(replies[1][1]) == masked(replies[3][1]), replies)
    check(all(r[1][0].startswith("250 2.0.0 Message stored as ") for r in replies), replies)
    inv = mailbox(ctx.imap_port, "dave", "Invoices")
    check(len(inv) == 2 and len(set(inv.values())) == 1, "Invoices: %d" % len(inv))
    check(mailbox(ctx.imap_port, "dave", "INBOX") == inbox_before, "an invoice in INBOX")
    junk = mailbox(ctx.imap_port, "alice", "Junk")
    check(len(junk) == 2 and len(set(junk.values())) == 1, "Junk: %d" % len(junk))
    a, b = same_documents(ctx.stack, stored_ids(replies[0][1])[0], stored_ids(replies[2][1])[0])
    check(a["mailbox"] == b["mailbox"] == oid(ctx.invoices), (a["mailbox"], ctx.invoices))
    check(a["filters"] == [oid(ctx.filter_id)], a["filters"])
    a, b = same_documents(ctx.stack, stored_ids(replies[1][1])[0], stored_ids(replies[3][1])[0])
    check(a.get("junk") is True, "junk flag: %r" % a.get("junk"))


def queued(ctx, msg_id):
    """(recipient, reason) of the queue entries a stored message names."""
    doc = message_doc(ctx.stack, msg_id)
    out = []
    for qid in doc.get("outbound", []):
        entries = find(ctx.queue_url, "zone-queue", {"id": qid})
        files = find(ctx.queue_url, "mail.files", {"filename": "message " + qid})
        check(len(files) == 1, "GridFS files for %s: %d" % (qid, len(files)))
        reason = files[0]["metadata"]["data"].get("reason")
        out += [(e["recipient"], reason) for e in entries]
    return sorted(out)


def t_forward_autoreply(ctx):
    msg = (b"From: Friend <friend@outside.example>\r\nTo: someone@dvlmtp.example\r\n" + DATE +
           b"\r\n"
           b"Subject: lunch?\r\nMessage-ID: <lunch@outside.example>\r\n\r\nare you free?\r\n")
    wd = transaction(ctx.wd_lmtp, FRIEND, [addr("frank")], msg)
    dv = transaction(ctx.dv_lmtp, FRIEND, [addr("erin")], msg)
    check(wd[1][0].startswith("250 2.0.0") and dv[1][0].startswith("250 2.0.0"), (wd, dv))
    q_wd = queued(ctx, stored_ids(wd[1])[0])
    q_dv = queued(ctx, stored_ids(dv[1])[0])
    check(q_wd == sorted([("fw-frank@remote.example", "forward"), (FRIEND, "autoreply")]), q_wd)
    check(q_dv == sorted([("fw-erin@remote.example", "forward"), (FRIEND, "autoreply")]), q_dv)
    all_entries = find(ctx.queue_url, "zone-queue", {})
    check(len(all_entries) == 4, "queue entries: %r" % [e["recipient"] for e in all_entries])
    # a second message from the same sender: forwarded, no second autoreply
    dv2 = transaction(ctx.dv_lmtp, FRIEND, [addr("erin")], msg.replace(b"lunch?", b"again"))
    q_dv2 = queued(ctx, stored_ids(dv2[1])[0])
    check(q_dv2 == [("fw-erin@remote.example", "forward")], q_dv2)
    check(len(find(ctx.queue_url, "zone-queue", {})) == 5, "queue entries after the second")


def t_sent_once(ctx):
    """wd-server's sender empties the queue into an SMTP sink: every queued
    forward and autoreply arrives exactly once."""
    sink_dir = tempfile.TemporaryDirectory(prefix="wd-dvlmtp-sink-")
    sink = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(HERE), "clients",
                                                          "smtpsink.py"),
                             "--dir", sink_dir.name, "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(sink.stdout.readline())["port"]
        sender = Server(ctx.wd_server, ctx.stack, "--dbs.sender=" + ctx.queue_db,
                        "--sender.enabled=true", "--sender.relay.host=127.0.0.1",
                        "--sender.relay.port=%d" % port, "--sender.pollInterval=0.2")
        try:
            deadline = time.time() + 30
            while time.time() < deadline and len(glob.glob(sink_dir.name + "/*.json")) < 5:
                time.sleep(0.2)
            time.sleep(3)  # anything more would be a duplicate
        finally:
            sender.stop()
        got = []
        for meta in sorted(glob.glob(sink_dir.name + "/*.json")):
            with open(meta) as f:
                info = json.load(f)
            with open(meta[:-5] + ".eml", "rb") as f:
                raw = f.read()
            auto = b"\r\nAuto-Submitted: auto-replied" in b"\r\n" + raw
            got.append((tuple(info["rcpt_to"]), "autoreply" if auto else "forward"))
        want = [(("fw-erin@remote.example",), "forward")] * 2 + \
            [(("fw-frank@remote.example",), "forward")] + [((FRIEND,), "autoreply")] * 2
        check(sorted(got) == sorted(want), "at the relay: %r" % sorted(got))
        check(find(ctx.queue_url, "zone-queue", {}) == [], "queue not empty")
    finally:
        sink.terminate()
        sink.wait(10)
        sink_dir.cleanup()


def t_hostile_bytes(ctx):
    bare_lf = b"Subject: bare\nX-A: 1\n" + DATE + b"\nMessage-ID: <bare@lf.example>\n\nline one\nline two\r\nline three\rstill three\nend\r\n"
    nul = b"Subject: nul\r\n\r\nzero \x00 byte\r\n"
    long_line = b"Subject: long\r\n\r\n" + b"y" * (1024 * 1024 + 1) + b"\r\n"
    before = mailbox(ctx.imap_port, "alice", "INBOX")
    for name, msg in (("bare LF", bare_lf), ("NUL", nul), ("long line", long_line)):
        wd = transaction(ctx.wd_lmtp, "s@outside.example", [addr("alice"), addr("dave")], msg)
        dv = transaction(ctx.dv_lmtp, "s@outside.example", [addr("alice"), addr("dave")], msg)
        check(masked(wd[1]) == masked(dv[1]), "%s:\nwd-server %r\ndovecot   %r" % (name, wd, dv))
        if name == "bare LF":
            check(all(l.startswith("250 2.0.0") for l in dv[1]), dv)
            same_documents(ctx.stack, stored_ids(wd[1])[0], stored_ids(dv[1])[0])
        else:
            check(all(l.startswith("554 5.6.0") for l in dv[1]), dv)
    after = mailbox(ctx.imap_port, "alice", "INBOX")
    fresh = [after[u] for u in sorted(after) if u not in before]
    check(len(fresh) == 2 and fresh[0] == fresh[1], "bare LF: %d stored" % len(fresh))
    check(fresh[0].endswith(b"Subject: bare\r\nX-A: 1\r\n" + DATE +
                            b"\r\nMessage-ID: <bare@lf.example>\r\n\r\nline one\r\nline two\r\n"
                            b"line three\rstill three\r\nend\r\n"), fresh[0])


def t_capabilities(ctx):
    for port in (ctx.wd_lmtp, ctx.dv_lmtp):
        c = Lmtp(port)
        c.send("LHLO client.test\r\n")
        code, lines = c.reply()
        c.close()
        for ext in ("SIZE 26214400", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"):
            check(any(l[4:] == ext for l in lines), "%s missing: %r" % (ext, lines))


def t_settings(ctx):
    """A Dovecot whose plugin settings change lmtp.maxMB, lmtp.overQuota and
    lmtp.maxRecipients, with wd-server started with the same settings."""
    extra = ["--lmtp.maxMB=1", "--lmtp.overQuota=defer", "--lmtp.maxRecipients=3"]
    wd = Server(ctx.wd_server, ctx.stack, "--lmtp.enabled=true", "--lmtp.port=0",
                "--dbs.sender=" + ctx.queue_db, *extra)
    dv = ctx.dovecot("lmtp.maxMB=1 lmtp.overQuota=defer lmtp.maxRecipients=3")
    try:
        ports = (wd.ports["lmtp"], dv.ports["lmtp"])
        for port in ports:
            c = Lmtp(port)
            c.send("LHLO client.test\r\n")
            lines = c.reply()[1]
            c.close()
            check(any(l[4:] == "SIZE 1048576" for l in lines), lines)
        rcpts = [addr("carol"), addr("alice"), addr("dave"), addr("gina"), addr("bob")]
        big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 1100
        res = [transaction(p, "s@outside.example", rcpts, big) for p in ports]
        check(res[0][0] == res[1][0], "RCPT:\nwd-server %r\ndovecot   %r" % (res[0][0], res[1][0]))
        check([l[:9] for l in res[1][0]] == ["452 4.2.2", "250 2.1.5", "250 2.1.5", "250 2.1.5",
                                             "452 4.5.3"], res[1][0])
        # past lmtp.maxMB: wd-server's 552 for every recipient
        check(res[0][1] == res[1][1] == ["552 5.3.4 Message too big (the limit is 1048576 bytes)"] * 3,
              "DATA:\nwd-server %r\ndovecot   %r" % (res[0][1], res[1][1]))
        for port in ports:
            # SIZE= over the limit, also after a transaction on the connection
            # (Dovecot's own refusal: 552 5.2.3 where wd-server says 5.3.4)
            c = Lmtp(port)
            c.send("LHLO client.test\r\n")
            c.reply()
            lines = [line(c, "MAIL FROM:<s@outside.example> SIZE=1048577"),
                     line(c, "MAIL FROM:<s@outside.example> SIZE=1000"), line(c, "RSET"),
                     line(c, "MAIL FROM:<s@outside.example> SIZE=1048577")]
            c.close()
            check([l[:4] for l in lines] == ["552 ", "250 ", "250 ", "552 "], lines)
        small = transaction(dv.ports["lmtp"], "s@outside.example", [addr("gina")],
                            b"Subject: small\r\n\r\nfits\r\n")
        check(small[1][0].startswith("250 2.0.0"), small)
        ctx.check_no_store(dv)
    finally:
        wd.stop()
        dv.stop()
        dv.cleanup()


def read_conf(name):
    source = os.environ.get("WD_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
    with open(os.path.join(source, "conf.d", name)) as f:
        return f.read()


def t_shipped_config(ctx):
    """The shipped snippets: the storage plugin as mail_location = wildduck:
    (10-wildduck.conf) and 95-wildduck-lmtp.conf's protocol block turned on.
    A delivery through Dovecot's LMTP is stored once, by the pipeline (its
    trace headers, meta.source LMTP), and Dovecot's IMAP over the storage
    plugin reads the very bytes wd-server's IMAP reads."""
    lmtp_conf = read_conf("95-wildduck-lmtp.conf")
    block = "#protocol lmtp {\n#  mail_plugins = $mail_plugins wildduck_lmtp\n#}\n"
    check(block in lmtp_conf, "95-wildduck-lmtp.conf: the protocol block")
    lmtp_conf = lmtp_conf.replace(block, block.replace("#", ""))
    storage = read_conf("10-wildduck.conf")
    check("\nmail_location = wildduck:\n" in storage, "10-wildduck.conf mail_location")
    settings = "\n".join([static_authdbs(DOVECOT_PASSWORD), storage,
                          read_conf("90-wildduck-plugins.conf"), lmtp_conf, ctx.plugin_block("")])
    dv = Dovecot(settings=settings, mail_plugins=ctx.all_plugins, auth_modules=[])
    try:
        before = find(ctx.stack.mongo, "messages", {"user": oid(user_id(ctx.stack, "dave"))})
        msg = (b"From: s@outside.example\r\nTo: dave@dvlmtp.example\r\n" + DATE +
               b"\r\nMessage-ID: <shipped@outside.example>\r\nSubject: shipped\r\n\r\nonce\r\n")
        rcpt, data = transaction(dv.ports["lmtp"], "s@outside.example",
                                 [addr("dave"), addr("nobody")], msg)
        check(rcpt == ["250 2.1.5 Recipient OK", "550 5.1.1 Unknown recipient"], rcpt)
        check(len(data) == 1 and data[0].startswith("250 2.0.0 Message stored as "), data)
        after = find(ctx.stack.mongo, "messages", {"user": oid(user_id(ctx.stack, "dave"))})
        check(len(after) == len(before) + 1, "dave: %d new documents" % (len(after) - len(before)))
        doc = message_doc(ctx.stack, stored_ids(data)[0])
        check(doc["meta"].get("source") == "LMTP" and "transactionId" in doc["meta"], doc["meta"])
        wd_view = mailbox(ctx.imap_port, "dave", "INBOX")
        stored = [b for b in wd_view.values() if b.endswith(msg)]
        check(len(stored) == 1 and stored[0] == b"Delivered-To: dave@dvlmtp.example\r\n"
              b"Return-Path: <s@outside.example>\r\n" + msg, stored)
        m = imaplib.IMAP4("127.0.0.1", dv.ports["imap"])
        try:
            check(m.login("dave", DOVECOT_PASSWORD)[0] == "OK", "Dovecot IMAP login")
            typ, d = m.select("INBOX", readonly=True)
            check(typ == "OK" and int(d[0]) == len(wd_view), "Dovecot INBOX: %r" % d)
            typ, d = m.uid("FETCH", str(doc["uid"]), "(BODY.PEEK[])")
            check(typ == "OK" and d[0][1] == stored[0], d)
        finally:
            m.logout()
        ctx.check_no_store(dv)
    finally:
        dv.stop()
        dv.cleanup()


def t_database_down(ctx):
    """MongoDB unreachable: the pipeline cannot be opened; the attempt is
    bounded by wildduck_lmtp_db_timeout, and the recipients get 451 4.3.0
    at once while the last attempt is recent."""
    dead = free_port()
    dv = Dovecot(settings=ctx.dovecot_settings(
        "", mongo="mongodb://127.0.0.1:%d/nothing" % dead, timeout="2s"),
        mail_plugins=[ctx.plugin], auth_modules=[])
    try:
        start = time.time()
        c = Lmtp(dv.ports["lmtp"])  # the greeting follows the client hook's attempt
        greeted = time.time() - start
        try:
            check(c.greeting[0] == 220, c.greeting)
            c.send("LHLO client.test\r\n")
            check(c.reply()[0] == 250, "LHLO")
            check(line(c, "MAIL FROM:<s@outside.example>").startswith("250 "), "MAIL")
            start = time.time()
            rcpts = [line(c, "RCPT TO:<%s>" % addr(u)) for u in ("alice", "dave", "gina")]
            answered = time.time() - start
            check(rcpts == ["451 4.3.0 Temporary local problem, try again later"] * 3, rcpts)
            check(line(c, "DATA").startswith("503 "), "DATA without recipients")
        finally:
            c.close()
        # 2 s of server selection (the harness's own readiness probe may have
        # made the first attempt already)
        check(greeted < 8, "greeting after %.1f s" % greeted)
        check(answered < 1.5, "three RCPTs took %.1f s" % answered)
        dv.wait_log(r"wildduck: the delivery pipeline is not available")
        dv.wait_log(r"tried \d+ s ago")
    finally:
        dv.stop()
        dv.cleanup()


class Context:
    pass


def main():
    global DB_TOOL
    skip_without_stack()
    wd_server, wdctl, DB_TOOL, plugin, storage_plugin = sys.argv[1:6]
    stack = Stack(wdctl)
    ctx = Context()
    ctx.stack, ctx.wd_server, ctx.plugin = stack, wd_server, os.path.abspath(plugin)
    ctx.all_plugins = [ctx.plugin, os.path.abspath(storage_plugin)]
    # the outbound queue in a database of this test's own
    ctx.queue_db = stack.db + "_q"
    ctx.queue_url = stack.mongo.rsplit("/", 1)[0] + "/" + ctx.queue_db
    res = Results()

    for name in ("alice", "bob", "carol", "dave", "erin", "frank", "gina"):
        stack.run_wdctl("user", "create", name, "--address", addr(name), "--password", PASSWORD)
    set_user(stack, "bob", {"disabled": True})
    set_user(stack, "carol", {"quota": 1000, "storageUsed": 2000})
    set_user(stack, "gina", {"quota": 1500})
    for name in ("erin", "frank"):
        uid = user_id(stack, name)
        set_user(stack, name, {"targets": [{"id": oid("%024x" % (0xabc0 + len(name))),
                                            "type": "mail",
                                            "value": "fw-%s@remote.example" % name}],
                               "autoreply": True})
        db(stack.mongo, "insert", "autoreplies", json.dumps({
            "user": oid(uid), "status": True, "name": "", "subject": "Away",
            "text": "I am away this week.", "html": "", "start": False, "end": False,
            "created": {"$date": int(time.time() * 1000)}}))

    def plugin_block(overrides, mongo=None, timeout=None):
        text = "plugin {\n  wildduck_mongo = %s\n  wildduck_redis = %s\n" % (
            mongo or stack.mongo, stack.redis)
        if os.environ.get("WD_FERRETDB_SQLITE"):
            text += "  wildduck_ferretdb_sqlite = %s\n" % os.environ["WD_FERRETDB_SQLITE"]
        text += "  wildduck_lmtp_settings = dbs.sender=%s %s\n" % (ctx.queue_db, overrides)
        if timeout:
            text += "  wildduck_lmtp_db_timeout = %s\n" % timeout
        return text + "}\n"

    def dovecot_settings(overrides, mongo=None, timeout=None):
        return (static_authdbs("unused") +
                "protocol lmtp {\n  mail_plugins = $mail_plugins wildduck_lmtp\n}\n" +
                plugin_block(overrides, mongo, timeout))

    def dovecot(overrides=""):
        return Dovecot(settings=dovecot_settings(overrides), mail_plugins=[ctx.plugin],
                       auth_modules=[])

    def check_no_store(dv):
        """Dovecot's own storage untouched: nothing under its maildir root,
        no local delivery in its log."""
        check(os.listdir(dv.path("mail")) == [], "maildir: %r" % os.listdir(dv.path("mail")))
        log = dv.log()
        check("saved mail to" not in log, "Dovecot saved mail itself:\n" + log[-2000:])
        check(not re.search(r"(Panic|Fatal|Error):|assertion failed", log), log[-3000:])

    ctx.dovecot_settings, ctx.dovecot, ctx.check_no_store = dovecot_settings, dovecot, check_no_store
    ctx.plugin_block = plugin_block

    server = Server(wd_server, stack, "--lmtp.enabled=true", "--lmtp.port=0",
                    "--dbs.sender=" + ctx.queue_db)
    dv = dovecot()
    try:
        ctx.wd_lmtp, ctx.imap_port, ctx.dv_lmtp = server.ports["lmtp"], server.port, dv.ports["lmtp"]
        # dave's folder and his filter (created through wd-server's IMAP)
        m = imap(ctx.imap_port, "dave")
        check(m.create("Invoices")[0] == "OK", "CREATE Invoices")
        m.logout()
        dave = user_id(stack, "dave")
        ctx.invoices = find(stack.mongo, "mailboxes",
                            {"user": oid(dave), "path": "Invoices"})[0]["_id"]["$oid"]
        ctx.filter_id = db(stack.mongo, "insert", "filters", json.dumps({
            "user": oid(dave), "name": "invoices", "query": {"headers": {"subject": "invoice"}},
            "action": {"mailbox": oid(ctx.invoices)}, "disabled": False,
            "created": {"$date": int(time.time() * 1000)}})).strip()

        res.run("LHLO capabilities as wd-server", t_capabilities, ctx)
        res.run("mixed recipients, same replies", t_mixed, ctx, False)
        res.run("mixed recipients, pipelined", t_mixed, ctx, True)
        res.run("filter to a folder, spam to Junk", t_filter_and_junk, ctx)
        res.run("forward and autoreply queued once", t_forward_autoreply, ctx)
        res.run("bare LF, NUL, long line", t_hostile_bytes, ctx)
        res.run("no double store", check_no_store, dv)

        def t_log():
            log = dv.log()
            lines = re.findall(r"wildduck: transaction [0-9a-f]{24} from=<[^>]*> ip=127\.0\.0\.1 "
                               r"size=\d+ ms=\d+ rcpts=\d+ refused=\d+:.*", log)
            check(len(lines) >= 8, "transaction lines: %d\n%s" % (len(lines), log[-3000:]))
            check(re.search(r"wildduck deliver: txn=[0-9a-f]{24} .*action=stored", log), log[-2000:])
            check(re.search(r"refused=3: <alice@dvlmtp\.example> 250 2\.0\.0, "
                            r"<Alice\+Tag@dvlmtp\.example> 250 2\.0\.0, "
                            r"<gina@dvlmtp\.example> 552 5\.2\.2, <dave@dvlmtp\.example> 250 2\.0\.0",
                            log), log[-3000:])
        res.run("transaction log lines", t_log)
        res.run("shipped conf.d with mail_location = wildduck:", t_shipped_config, ctx)
    finally:
        server.stop()
        dv.stop()
        dv.cleanup()
    res.run("sent by wd-server's sender, each once", t_sent_once, ctx)
    res.run("plugin settings (maxMB, overQuota, maxRecipients)", t_settings, ctx)
    res.run("database down: 451 within the timeout", t_database_down, ctx)

    def t_server_clean():
        bad = [l for l in server.log if "Sanitizer" in l or "runtime error" in l or "panic" in l]
        check(not bad, "".join(bad[-20:]))
        check(server.proc.returncode == 0, "wd-server exit code %s" % server.proc.returncode)
    res.run("wd-server logs clean, exit 0", t_server_clean)
    stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

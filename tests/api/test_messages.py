"""wd-api's mailboxes, messages and submission endpoints over real HTTP
(WildDuck's lib/api/mailboxes.js, messages.js, submit.js), with wd-server's
IMAP on the same database: a message uploaded through the API reads back
byte for byte over IMAP and the other way round, flags and moves made
through the API are what IMAP sees, attachments download decoded, and
every refused request (bad ids, unknown mailboxes and messages, wrong
types, unknown keys) leaves the data as it was."""

import base64
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, Conn, Server, Stack, skip_without_stack  # noqa: E402

NOID = "0123456789abcdef01234567"


def create_user(stack, name, password):
    out = stack.run_wdctl("user", "create", name, "--password", password,
                          "--address", name + "@example.com")
    return out.strip().split()[-1]


def mailboxes_by_path(c, uid, **query):
    res = c.get("/users/%s/mailboxes" % uid, query=query or None)
    return {m["path"]: m for m in res.json["results"]}


# ---------------------------------------------------------------- IMAP

def imap_login(port, user, password):
    conn = Conn(port, tls=True)
    _, tagged = conn.cmd("LOGIN %s %s" % (user, password))
    if " OK" not in tagged:
        raise RuntimeError("IMAP login failed: " + tagged)
    return conn


def imap_read(conn, n):
    while len(conn.buf) < n:
        conn._fill()
    data, conn.buf = conn.buf[:n], conn.buf[n:]
    return data


def imap_fetch_body(conn, uid):
    """BODY.PEEK[] of one UID in the selected mailbox, as bytes (None when absent)."""
    tag = conn.tag()
    conn.send("%s UID FETCH %d (BODY.PEEK[])\r\n" % (tag, uid))
    body = None
    while True:
        line = conn.line()
        if line.startswith(tag + " "):
            return body
        m = re.search(r"\{(\d+)\}$", line)
        if m:
            body = imap_read(conn, int(m.group(1)))


def imap_flags(conn, uid):
    conn.cmd("NOOP")  # the session learns of the API's changes
    lines, _ = conn.cmd("UID FETCH %d (FLAGS)" % uid)
    for line in lines:
        m = re.search(r"FLAGS \(([^)]*)\)", line)
        if m and ("UID %d " % uid in line or "UID %d)" % uid in line):
            return set(m.group(1).split()) - {"\\Recent"}
    return None


def imap_append(conn, mailbox, raw, flags=""):
    tag = conn.tag()
    conn.send("%s APPEND %s (%s) {%d}\r\n" % (tag, mailbox, flags, len(raw)))
    line = conn.line()
    if not line.startswith("+"):
        raise RuntimeError("APPEND refused: " + line)
    conn.send(raw + b"\r\n")
    _, tagged = conn.until(tag)
    m = re.search(r"APPENDUID \d+ (\d+)", tagged)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- mailboxes

def mailboxes(check, c, uid, uid2):
    base = "/users/%s/mailboxes" % uid
    res = c.get(base)
    check.status(res, 200, "list mailboxes")
    paths = [m["path"] for m in res.json["results"]]
    check(paths[0] == "INBOX", "INBOX first", repr(paths))
    check(set(paths) == {"INBOX", "Sent Mail", "Trash", "Drafts", "Junk"}, "default set", repr(paths))
    inbox = res.json["results"][0]
    for key in ("id", "name", "path", "specialUse", "modifyIndex", "subscribed", "hidden"):
        check(key in inbox, "listing has " + key, repr(inbox))
    check(inbox["specialUse"] is None and "total" not in inbox, "INBOX specialUse null, no counters")
    sent = [m for m in res.json["results"] if m["path"] == "Sent Mail"][0]
    check(sent["specialUse"] == "\\Sent", "Sent specialUse")

    # create
    res = c.post(base, {"path": "Work/Projects", "retention": 86400000})
    check.status(res, 200, "create mailbox")
    work_id = res.json.get("id", "")
    check(re.fullmatch(r"[0-9a-f]{24}", work_id or "") is not None, "create returns id", repr(res))
    res = c.post(base, {"path": "Work/Projects"})
    check.status(res, 400, "create existing path")
    check(res.json.get("code") == "ALREADYEXISTS", "ALREADYEXISTS", repr(res))
    check.status(c.post(base, {"path": "a//b"}), 400, "path with //")
    check.status(c.post(base, {"path": "a/"}), 400, "path with trailing /")
    check.status(c.post(base, {}), 400, "path required")
    check.status(c.post(base, {"path": "x", "bogus": 1}), 400, "unknown key")
    check.status(c.post(base, {"path": "x", "retention": -1}), 400, "negative retention")
    check.status(c.post("/users/%s/mailboxes" % NOID, {"path": "x"}), 404, "create for unknown user")
    res = c.post(base, {"path": "Secret", "hidden": True})
    check.status(res, 200, "create hidden")
    hidden_id = res.json["id"]

    listing = mailboxes_by_path(c, uid)
    check("x" not in listing and "a" not in listing, "refused creates left nothing", repr(list(listing)))
    check("Secret" not in listing, "hidden not listed")
    check(listing["Work/Projects"]["name"] == "Projects", "name is last level")
    check(listing["Work/Projects"].get("retention") == 86400000, "retention listed")
    listing = mailboxes_by_path(c, uid, showHidden="true", counters="true", sizes="true")
    check(listing.get("Secret", {}).get("hidden") is True, "showHidden lists hidden")
    check(listing["INBOX"].get("total") == 0 and listing["INBOX"].get("unseen") == 0, "counters zero")
    check(listing["INBOX"].get("size") == 0, "size zero")
    special = mailboxes_by_path(c, uid, specialUse="1")
    check(set(special) == {"INBOX", "Sent Mail", "Trash", "Drafts", "Junk"}, "specialUse filter",
          repr(list(special)))

    # get, resolve
    res = c.get(base + "/" + work_id)
    check.status(res, 200, "get mailbox")
    check(res.json.get("path") == "Work/Projects" and res.json.get("total") == 0, "get fields", repr(res))
    res = c.get(base + "/resolve", query={"path": "Work/Projects"})
    check.status(res, 200, "resolve mailbox")
    check(res.json.get("id") == work_id, "resolve gives the id", repr(res))
    res = c.get(base + "/resolve", query={"path": "inbox"})
    check(res.json.get("path") == "INBOX", "resolve inbox in any case", repr(res))
    res = c.get(base + "/resolve", query={"path": "Nope"})
    check.status(res, 404, "resolve unknown path")
    check(res.json.get("code") == "NoSuchMailbox", "NoSuchMailbox", repr(res))
    check.status(c.get(base + "/" + NOID), 404, "get unknown mailbox")
    check.status(c.get(base + "/zzzz"), 400, "get malformed mailbox id")
    # another user's mailbox is not found
    check.status(c.get("/users/%s/mailboxes/%s" % (uid2, work_id)), 404, "other user's mailbox")

    # update
    res = c.put(base + "/" + work_id, {"path": "Work/Archive", "subscribed": False, "retention": 0})
    check.status(res, 200, "rename + unsubscribe")
    res = c.get(base + "/" + work_id)
    check(res.json.get("path") == "Work/Archive" and res.json.get("subscribed") is False,
          "update applied", repr(res))
    check.status(c.put(base + "/" + work_id, {}), 400, "nothing to change")
    check.status(c.put(base + "/" + work_id, {"hidden": "maybe"}), 400, "wrong type")
    res = c.put(base + "/" + NOID, {"subscribed": True})
    check.status(res, 404, "update unknown mailbox")
    check(res.json.get("code") == "NONEXISTENT", "NONEXISTENT", repr(res))
    res = c.put(base + "/" + work_id, {"path": "INBOX"})
    check.status(res, 400, "rename onto INBOX")
    check(c.get(base + "/" + work_id).json.get("path") == "Work/Archive", "refused rename changed nothing")
    res = c.put(base + "/" + listing["INBOX"]["id"], {"path": "Other"})
    check.status(res, 400, "INBOX cannot be renamed")
    res = c.put(base + "/" + hidden_id, {"hidden": False})
    check.status(res, 200, "unhide")
    check("Secret" in mailboxes_by_path(c, uid), "unhidden is listed")

    # delete
    res = c.delete(base + "/" + listing["INBOX"]["id"])
    check.status(res, 400, "delete INBOX refused")
    check(res.json.get("code") == "CANNOT", "CANNOT", repr(res))
    check.status(c.delete(base + "/" + NOID), 404, "delete unknown mailbox")
    check.status(c.delete(base + "/" + hidden_id), 200, "delete mailbox")
    check("Secret" not in mailboxes_by_path(c, uid, showHidden="1"), "deleted mailbox gone")
    return work_id


# ---------------------------------------------------------------- messages

PAYLOAD = bytes(range(256)) * 40          # binary attachment, 10240 bytes
QP_TEXT = "Grüße aus Köln, a long line " * 6 + "\n= sign and tab\there\n"


def sample_message(subject, to="alice@example.com"):
    b64 = base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
    qp = QP_TEXT.replace("ü", "=C3=BC").replace("ö", "=C3=B6").replace("= sign", "=3D sign")
    return (b"From: =?UTF-8?Q?J=C3=BCrgen_Sender?= <juergen@example.org>\r\n"
            b"To: Alice <" + to.encode() + b">\r\n"
            b"Cc: Carol <carol@example.net>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + subject.replace(" ", "-").encode() + b"@example.org>\r\n"
            b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
            b"preamble\r\n--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Hello Alice, see the attachments " + subject.encode() + b".\r\n"
            b"--XYZ\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 +
            b"--XYZ\r\nContent-Type: text/csv; charset=utf-8; name=\"notes.csv\"\r\n"
            b"Content-Disposition: attachment; filename=\"notes.csv\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
            qp.encode().replace(b"\n", b"\r\n") + b"\r\n--XYZ--\r\nepilogue\r\n")


def plain_message(subject, body="Just text.\r\n"):
    return ("From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\n\r\n%s" % (subject, subject.replace(" ", "-"), body)).encode()


def message_count(c, uid, mailbox):
    return c.get("/users/%s/mailboxes/%s/messages" % (uid, mailbox)).json.get("total")


def messages(check, c, uid, uid2, imap_port, work_id):
    boxes = mailboxes_by_path(c, uid)
    inbox = boxes["INBOX"]["id"]
    trash = boxes["Trash"]["id"]
    base = "/users/%s/mailboxes/%s/messages" % (uid, inbox)

    # upload raw (message/rfc822 body) and read it back over IMAP byte for byte
    raw = sample_message("First upload")
    res = c.post(base, raw=raw)
    check.status(res, 200, "upload raw")
    msg = res.json.get("message", {})
    uid1 = msg.get("id")
    check(msg.get("mailbox") == inbox and msg.get("size") == len(raw), "upload answer", repr(res))
    imap = imap_login(imap_port, "alice", "alice-secret")
    imap.cmd("SELECT INBOX")
    check(imap_fetch_body(imap, uid1) == raw, "API upload is byte-identical over IMAP")
    check(imap_flags(imap, uid1) == {"\\Seen"}, "uploaded as seen by default", repr(imap_flags(imap, uid1)))

    # IMAP APPEND (LF line ends, no final newline) is byte-identical via message.eml
    odd = b"From: x@example.org\nSubject: odd bytes\n\nline one\r\nline two\n\tno final newline"
    uid2_ = imap_append(imap, "INBOX", odd)
    check(uid2_ is not None, "APPENDUID")
    res = c.get(base + "/%d/message.eml" % uid2_)
    check.status(res, 200, "message.eml")
    check(res.body == odd, "IMAP APPEND is byte-identical via message.eml", repr(res.body[:80]))
    check(res.headers.get("Content-Type", "").startswith("message/rfc822"), "eml content type")
    res = c.get(base + "/%d/message.eml" % uid1)
    check(res.body == raw, "uploaded message.eml identical")

    # JSON uploads: raw as base64, raw as text, composed from fields
    raw2 = plain_message("Base64 upload")
    res = c.post(base, {"raw": base64.b64encode(raw2).decode(), "unseen": True, "flagged": True})
    check.status(res, 200, "upload base64 raw")
    uid3 = res.json["message"]["id"]
    check(c.get(base + "/%d/message.eml" % uid3).body == raw2, "base64 raw stored as given")
    res = c.post(base, {"raw": plain_message("Text upload").decode(), "date": "2020-02-03T04:05:06Z"})
    check.status(res, 200, "upload text raw")
    uid4 = res.json["message"]["id"]
    res = c.post(base, {"from": {"name": "Zoë", "address": "zoe@example.com"},
                        "to": [{"name": "Alice", "address": "alice@example.com"}],
                        "bcc": [{"address": "hidden@example.com"}],
                        "subject": "Composed ünïcode", "text": "Plain ü text", "html": "<p>Hi</p>",
                        "headers": [{"key": "X-Custom", "value": "yes"}], "draft": True})
    check.status(res, 200, "upload composed")
    uid5 = res.json["message"]["id"]
    composed = c.get(base + "/%d/message.eml" % uid5).body
    check(b"\r\nX-Custom: yes\r\n" in composed and b"Bcc: hidden@example.com" in composed and
          b"multipart/alternative" in composed and b"\n" not in composed.replace(b"\r\n", b""),
          "composed message: CRLF, custom header, Bcc kept, alternative", repr(composed[:400]))

    # refused uploads leave nothing behind
    before = message_count(c, uid, inbox)
    check.status(c.post(base, raw=b""), 400, "empty upload")
    check.status(c.post("/users/%s/mailboxes/%s/messages" % (uid, NOID), raw=raw2), 404,
                 "upload to unknown mailbox")
    check.status(c.post("/users/%s/mailboxes/%s/messages" % (uid2, inbox), raw=raw2), 404,
                 "upload into another user's mailbox")
    check.status(c.post(base, {"raw": "x", "bogus": 1}), 400, "upload unknown key")
    check.status(c.post(base, {"to": "nobody", "text": "x"}), 400, "upload bad address list")
    check(message_count(c, uid, inbox) == before, "refused uploads stored nothing")

    # the parsed message
    res = c.get(base + "/%d" % uid1)
    check.status(res, 200, "get message")
    m = res.json
    check(m.get("id") == uid1 and m.get("mailbox") == inbox and m.get("user") == uid, "ids", repr(m)[:300])
    check(m.get("subject") == "First upload", "subject")
    check(m.get("from", {}).get("name") == "Jürgen Sender", "from name decoded", repr(m.get("from")))
    check(m.get("to") == [{"address": "alice@example.com", "name": "Alice"}], "to", repr(m.get("to")))
    check(m.get("cc", [{}])[0].get("address") == "carol@example.net", "cc")
    check(m.get("messageId") == "<First-upload@example.org>", "messageId", repr(m.get("messageId")))
    check(m.get("date") == "2024-01-01T10:00:00.000Z", "date from header", repr(m.get("date")))
    check(m.get("seen") is True and m.get("flagged") is False and m.get("draft") is False, "flags")
    check(m.get("contentType", {}).get("value") == "multipart/mixed", "contentType", repr(m.get("contentType")))
    check("Hello Alice" in m.get("text", ""), "text", repr(m.get("text")))
    check(isinstance(m.get("html"), list), "html is a list")
    check(m.get("envelope", {}).get("rcpt") == [], "envelope of an upload", repr(m.get("envelope")))
    atts = {a["filename"]: a for a in m.get("attachments", [])}
    check(set(atts) == {"data.bin", "notes.csv"}, "attachments listed", repr(m.get("attachments")))
    for key in ("id", "contentType", "disposition", "transferEncoding", "related", "sizeKb"):
        check(all(key in a for a in atts.values()), "attachment has " + key)

    # attachments decoded
    if "data.bin" in atts:
        res = c.get(base + "/%d/attachments/%s" % (uid1, atts["data.bin"]["id"]))
        check.status(res, 200, "download base64 attachment")
        check(res.body == PAYLOAD, "base64 attachment decoded", "%d bytes" % len(res.body))
        check(res.headers.get("Content-Type") == "application/octet-stream", "attachment type",
              repr(res.headers.get("Content-Type")))
        res = c.get(base + "/%d/attachments/%s" % (uid1, atts["data.bin"]["id"].lower()))
        check(res.status == 200 and res.body == PAYLOAD, "attachment id case-insensitive")
    if "notes.csv" in atts:
        res = c.get(base + "/%d/attachments/%s" % (uid1, atts["notes.csv"]["id"]))
        check(res.status == 200 and res.body == QP_TEXT.replace("\n", "\r\n").encode(),
              "quoted-printable attachment decoded", repr(res.body[:120]))
    check.status(c.get(base + "/%d/attachments/ATT99999" % uid1), 404, "unknown attachment")
    check.status(c.get(base + "/%d/attachments/nonsense" % uid1), 400, "malformed attachment id")

    # errors of the read paths
    check.status(c.get(base + "/999999"), 404, "unknown message")
    check(c.get(base + "/999999").json.get("code") == "MessageNotFound", "MessageNotFound")
    check.status(c.get(base + "/abc"), 400, "malformed message id")
    check.status(c.get(base + "/0"), 400, "message id 0")
    check.status(c.get(base + "/999999/message.eml"), 404, "eml of unknown message")
    check.status(c.get("/users/%s/mailboxes/zzz/messages" % uid), 400, "listing malformed mailbox")
    res = c.get("/users/%s/mailboxes/%s/messages" % (uid, NOID))
    check(res.status == 404 and res.json.get("code") == "NoSuchMailbox", "listing unknown mailbox", repr(res))
    check.status(c.get("/users/%s/mailboxes/%s/messages/%d" % (uid2, inbox, uid1)), 404,
                 "another user's message")
    check.status(c.get(base, query={"limit": 0}), 400, "limit 0")
    check.status(c.get(base, query={"order": "sideways"}), 400, "bad order")

    # markAsSeen
    res = c.get(base + "/%d" % uid3, query={"markAsSeen": "true"})
    check(res.json.get("seen") is True, "markAsSeen answers seen")
    check("\\Seen" in (imap_flags(imap, uid3) or set()), "markAsSeen visible over IMAP")

    # listing and paging
    res = c.get(base)
    check.status(res, 200, "list messages")
    lst = res.json
    total = lst.get("total")
    check(total == 5 and len(lst.get("results", [])) == 5, "listing total", repr(lst)[:300])
    check(lst.get("specialUse") is None and lst.get("page") == 1 and lst.get("previousCursor") is False
          and lst.get("nextCursor") is False, "listing paging fields", repr(lst)[:300])
    entry = [e for e in lst["results"] if e["id"] == uid1][0]
    for key in ("id", "mailbox", "thread", "from", "to", "cc", "bcc", "subject", "date", "idate", "intro",
                "attachments", "size", "seen", "deleted", "flagged", "draft", "answered", "forwarded",
                "contentType", "references", "messageId"):
        check(key in entry, "listing entry has " + key)
    check(entry["attachments"] is True and entry["size"] == len(raw), "listing attachments and size")
    check(lst["results"][0]["id"] == uid4 or lst["results"][0]["idate"] >= lst["results"][-1]["idate"],
          "newest first")
    seen_ids = []
    cursor = None
    for _ in range(6):
        q = {"limit": 2}
        if cursor:
            q["next"] = cursor
        page = c.get(base, query=q).json
        seen_ids += [e["id"] for e in page["results"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    check(sorted(seen_ids) == sorted(e["id"] for e in lst["results"]) and len(seen_ids) == 5,
          "next cursors walk every message once", repr(seen_ids))
    p1 = c.get(base, query={"limit": 2, "order": "asc"}).json
    p2 = c.get(base, query={"limit": 2, "order": "asc", "next": p1["nextCursor"], "page": 2}).json
    check(p2.get("page") == 2 and p2.get("previousCursor"), "second page has previous", repr(p2)[:200])
    back = c.get(base, query={"limit": 2, "order": "asc", "previous": p2["previousCursor"], "page": 1}).json
    check([e["id"] for e in back["results"]] == [e["id"] for e in p1["results"]],
          "previous cursor returns the first page", repr(back)[:300])
    check.status(c.get(base, query={"next": "garbage!"}), 400, "bad cursor")
    unseen = c.get(base, query={"unseen": "true"}).json
    check([e["id"] for e in unseen["results"]] == [uid2_], "unseen filter", repr(unseen)[:200])

    # search
    def search(**q):
        r = c.get("/users/%s/search" % uid, query=q)
        return r, sorted(e["id"] for e in r.json.get("results", [])) if r.status == 200 else None
    res, ids = search(subject="upload")
    check(res.status == 200 and ids == sorted([uid1, uid3, uid4]), "search subject", repr(ids))
    _, ids = search(**{"from": "JUERGEN@"})
    check(ids == [uid1], "search from (case-insensitive)", repr(ids))
    _, ids = search(to="carol@")
    check(ids == [uid1], "search to matches Cc", repr(ids))
    _, ids = search(query="see the attachments")
    check(ids == [uid1], "search query in text", repr(ids))
    _, ids = search(attachments="true")
    check(ids == [uid1], "search attachments", repr(ids))
    _, ids = search(minSize=len(raw), maxSize=len(raw))
    check(ids == [uid1], "search size range", repr(ids))
    _, ids = search(flagged="true")
    check(ids == [uid3], "search flagged", repr(ids))
    _, ids = search(mailbox=inbox, id="%d,%d" % (uid1, uid4))
    check(ids == sorted([uid1, uid4]), "search mailbox + id list", repr(ids))
    _, ids = search(dateend="2021-01-01T00:00:00Z")
    check(ids == [uid4], "search dateend on idate", repr(ids))
    _, ids = search(**{"or": '{"subject": "odd", "from": "zoe"}'}) if False else (None, None)
    res, ids = search(subject="nothing-like-this")
    check(res.status == 200 and ids == [] and res.json.get("total") == 0, "search without hits")
    check.status(c.get("/users/%s/search" % uid, query={"mailbox": "xyz"}), 400, "search bad mailbox")
    check.status(c.get("/users/%s/search" % NOID), 404, "search unknown user")
    r1 = c.get("/users/%s/search" % uid, query={"subject": "upload", "limit": 1}).json
    r2 = c.get("/users/%s/search" % uid, query={"subject": "upload", "limit": 1, "next": r1["nextCursor"]}).json
    check(r1.get("total") == 3 and r2["results"] and r2["results"][0]["id"] != r1["results"][0]["id"],
          "search paging", repr((r1, r2))[:300])

    # flags over PUT, seen over IMAP
    res = c.put(base + "/%d" % uid1, {"seen": False, "flagged": True})
    check(res.status == 200 and res.json.get("updated") == 1, "update one message", repr(res))
    check(imap_flags(imap, uid1) == {"\\Flagged"}, "API flags seen over IMAP", repr(imap_flags(imap, uid1)))
    res = c.put(base, {"message": "%d:*" % uid1, "seen": True})
    check(res.status == 200 and res.json.get("updated") == 5, "bulk update by range", repr(res))
    check(imap_flags(imap, uid1) == {"\\Flagged", "\\Seen"}, "bulk seen over IMAP")
    res = c.put(base + "/%d" % uid1, {"metaData": {"k": "v"}, "expires": "2030-01-01T00:00:00Z"})
    check.status(res, 200, "metaData and expires")
    m = c.get(base + "/%d" % uid1).json
    check(m.get("metaData") == {"k": "v"} and m.get("expires", "").startswith("2030-01-01"),
          "metaData and expires stored", repr((m.get("metaData"), m.get("expires"))))
    check.status(c.put(base + "/%d" % uid1, {"metaData": "[1]"}), 400, "metaData must be an object")
    res = c.put(base, {"message": "not-a-range", "seen": True})
    check(res.status == 404 and res.json.get("code") == "MessageNotFound", "malformed range", repr(res))
    check.status(c.put(base + "/999999", {"seen": True}), 404, "update unknown message")
    check.status(c.put(base + "/%d" % uid1, {"seen": "perhaps"}), 400, "update wrong type")
    check.status(c.put(base, {"seen": True}), 400, "bulk update without message")
    check(imap_flags(imap, uid1) == {"\\Flagged", "\\Seen"}, "refused updates changed nothing")

    # moveTo
    res = c.put(base + "/%d" % uid1, {"moveTo": NOID})
    check.status(res, 404, "move to unknown mailbox")
    check(c.get(base + "/%d" % uid1).status == 200, "refused move left the message")
    res = c.put(base + "/%d" % uid4, {"moveTo": work_id, "flagged": True})
    check.status(res, 200, "move message")
    pairs = res.json.get("id")
    check(res.json.get("mailbox") == work_id and isinstance(pairs, list) and len(pairs) == 1
          and pairs[0][0] == uid4, "move answer", repr(res))
    new_uid = pairs[0][1] if pairs else 0
    check.status(c.get(base + "/%d" % uid4), 404, "moved message gone from source")
    moved = c.get("/users/%s/mailboxes/%s/messages/%d" % (uid, work_id, new_uid))
    check(moved.status == 200 and moved.json.get("subject") == "Text upload" and moved.json.get("flagged"),
          "moved message in target with its update", repr(moved)[:200])
    imap.cmd("SELECT Work/Archive")
    check(imap_fetch_body(imap, new_uid) == plain_message("Text upload"), "moved message over IMAP")
    imap.cmd("SELECT INBOX")

    # delete one, then all
    before = message_count(c, uid, inbox)
    check.status(c.delete(base + "/999999"), 404, "delete unknown message")
    check.status(c.delete("/users/%s/mailboxes/%s/messages/%d" % (uid2, inbox, uid3)), 404,
                 "delete through another user")
    check(message_count(c, uid, inbox) == before, "refused deletes changed nothing")
    check.status(c.delete(base + "/%d" % uid3), 200, "delete message")
    check.status(c.get(base + "/%d" % uid3), 404, "deleted message gone")
    check(imap_fetch_body(imap, uid3) is None, "deleted message gone over IMAP")
    res = c.delete(base)
    check(res.status == 200 and res.json.get("deleted") == before - 1 and res.json.get("errors") == 0,
          "delete all messages", repr(res))
    check(message_count(c, uid, inbox) == 0, "mailbox empty")
    check.status(c.delete("/users/%s/mailboxes/%s/messages" % (uid, NOID)), 404, "delete all unknown mailbox")
    counters = c.get("/users/%s/mailboxes/%s" % (uid, inbox)).json
    check(counters.get("total") == 0 and counters.get("unseen") == 0, "counters after delete", repr(counters))
    imap.close()
    return trash


# ---------------------------------------------------------------- submission

def queued(c, uid, mailbox, msg_id):
    """{queueId: set of recipients} of a stored message (its zone-queue entries)."""
    m = c.get("/users/%s/mailboxes/%s/messages/%d" % (uid, mailbox, msg_id)).json
    return {q["queueId"]: {e["recipient"] for e in q["entries"]} for q in m.get("outbound", [])}


def submission(check, c, uid, uid2):
    boxes = mailboxes_by_path(c, uid)
    sent, drafts, inbox = boxes["Sent Mail"]["id"], boxes["Drafts"]["id"], boxes["INBOX"]["id"]
    sub = "/users/%s/submit" % uid
    res = c.post(sub, {"from": {"name": "Someone", "address": "evil@other.org"},
                       "to": [{"name": "Rcpt", "address": "rcpt@example.net"}],
                       "cc": [{"address": "cc@example.net"}], "bcc": [{"address": "bcc@example.net"}],
                       "subject": "Submitted", "text": "Hello there", "html": "<b>Hello</b>"})
    check.status(res, 200, "submit")
    msg = res.json.get("message", {})
    qid = msg.get("queueId") or ""
    check(msg.get("mailbox") == sent and isinstance(msg.get("id"), int), "submit stored in Sent", repr(res))
    check(re.fullmatch(r"[0-9a-f]{18}", qid) is not None, "queue id format", repr(qid))
    check(queued(c, uid, sent, msg.get("id", 0)) == {qid: {"rcpt@example.net", "cc@example.net",
                                                          "bcc@example.net"}},
          "zone-queue entries for every recipient", repr(queued(c, uid, sent, msg.get("id", 0))))
    eml = c.get("/users/%s/mailboxes/%s/messages/%d/message.eml" % (uid, sent, msg.get("id", 0))).body
    check(b"Bcc:" not in eml and b"From: Someone <alice@example.com>\r\n" in eml,
          "sent copy: no Bcc, From forced to the user's address", repr(eml[:300]))
    m = c.get("/users/%s/mailboxes/%s/messages/%d" % (uid, sent, msg.get("id", 0))).json
    check(m.get("seen") is True and m.get("subject") == "Submitted", "sent copy seen")

    res = c.post(sub, {"to": [{"address": "later@example.net"}], "subject": "Only stored",
                       "uploadOnly": True, "isDraft": True})
    check(res.status == 200 and res.json["message"].get("queueId") is False and
          res.json["message"].get("mailbox") == drafts, "uploadOnly draft: stored, not queued", repr(res))
    before = message_count(c, uid, sent)
    check.status(c.post(sub, {"to": "rcpt@example.net"}), 400, "submit with a bad to")
    check.status(c.post(sub, {"to": [{"address": "no-at-sign"}], "text": "x"}), 400, "submit bad address")
    check.status(c.post(sub, {"text": "x", "bogus": True}), 400, "submit unknown key")
    check.status(c.post(sub, {"text": "x", "mailbox": NOID}), 404, "submit to unknown mailbox")
    check.status(c.post("/users/%s/submit" % NOID, {"text": "x"}), 404, "submit unknown user")
    check(message_count(c, uid, sent) == before, "refused submits stored nothing")

    # the queued message is taken back
    out = "/users/%s/outbound/" % uid
    res = c.delete("/users/%s/outbound/%s" % (uid2, qid))
    check(res.status == 200 and res.json.get("success") is False and
          res.json.get("code") == "NotEnoughPrivileges", "another user cannot unqueue", repr(res))
    check(len(queued(c, uid, sent, msg.get("id", 0)).get(qid, ())) == 3, "refused unqueue changed nothing")
    check.status(c.delete(out + "zz-not-hex-zzzzzzzz"), 400, "malformed queue id")
    res = c.delete(out + qid)
    check(res.status == 200 and res.json.get("success") is True and res.json.get("deleted") == 3,
          "delete outbound", repr(res))
    check(queued(c, uid, sent, msg.get("id", 0)) == {}, "queue entries gone")
    res = c.delete(out + qid)
    check(res.json.get("success") is False and res.json.get("code") == "NoSuchQueueEntry",
          "second delete: no such entry", repr(res))

    # forward a stored message
    raw = plain_message("Forward me")
    up = c.post("/users/%s/mailboxes/%s/messages" % (uid, inbox), raw=raw).json["message"]["id"]
    fwd = "/users/%s/mailboxes/%s/messages/%d/forward" % (uid, inbox, up)
    res = c.post(fwd, {"addresses": ["fwd1@example.net", "fwd2@example.net"]})
    check.status(res, 200, "forward stored message")
    fqid = res.json.get("queueId")
    check(res.json.get("forwarded") == [{"seq": "001", "type": "mail", "value": "fwd1@example.net"},
                                        {"seq": "002", "type": "mail", "value": "fwd2@example.net"}],
          "forwarded list", repr(res))
    check(queued(c, uid, inbox, up) == {fqid: {"fwd1@example.net", "fwd2@example.net"}},
          "forward queued for the targets", repr(queued(c, uid, inbox, up)))
    res = c.post(fwd, {})
    check(res.status == 200 and res.json.get("forwarded") == [], "forward without targets")
    check.status(c.post("/users/%s/mailboxes/%s/messages/999999/forward" % (uid, inbox),
                        {"addresses": ["x@example.net"]}), 404, "forward unknown message")
    check.status(c.post(fwd, {"addresses": "x@example.net,"}), 200, "addresses as a string list")
    check.status(c.post(fwd, {"target": 0}), 400, "forward target out of range")

    # send a stored draft
    draft_raw = ("From: alice@example.com\r\nTo: Dora <dora@example.net>\r\nSubject: Draft to send\r\n"
                 "Message-ID: <draft-1@example.com>\r\n\r\nDraft body\r\n").encode()
    res = c.post("/users/%s/mailboxes/%s/messages" % (uid, drafts),
                 {"raw": base64.b64encode(draft_raw).decode(), "draft": True})
    duid = res.json["message"]["id"]
    check.status(c.post("/users/%s/mailboxes/%s/messages/%d/submit" % (uid, inbox, up), {}), 400,
                 "submit a message that is not a draft")
    res = c.post("/users/%s/mailboxes/%s/messages/%d/submit" % (uid, drafts, duid), {})
    check.status(res, 200, "submit stored draft")
    sqid = res.json.get("queueId")
    smsg = res.json.get("message") or {}
    check(smsg.get("mailbox") == sent and smsg.get("size") == len(draft_raw), "draft moved to Sent", repr(res))
    check.status(c.get("/users/%s/mailboxes/%s/messages/%d" % (uid, drafts, duid)), 404, "draft gone")
    sm = c.get("/users/%s/mailboxes/%s/messages/%d" % (uid, sent, smsg.get("id", 0))).json
    check(sm.get("draft") is False and sm.get("seen") is True, "sent draft flags", repr(sm)[:200])
    check(queued(c, uid, sent, smsg.get("id", 0)) == {sqid: {"dora@example.net"}}, "draft queued")
    check(c.get("/users/%s/mailboxes/%s/messages/%d/message.eml" % (uid, sent, smsg.get("id", 0))).body
          == draft_raw, "sent draft byte-identical")
    check.status(c.post("/users/%s/mailboxes/%s/messages/999999/submit" % (uid, drafts), {}), 404,
                 "submit unknown draft")


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    uid = create_user(stack, "alice", "alice-secret")
    uid2 = create_user(stack, "bob", "bob-secret")
    api = ApiServer(wd_api, stack)
    server = Server(wd_server, stack)
    try:
        c = api.client()
        work_id = mailboxes(check, c, uid, uid2)
        messages(check, c, uid, uid2, server.port, work_id)
        submission(check, c, uid, uid2)
    finally:
        server.stop()
        code = api.stop()
        check(code == 0, "wd-api exit code", str(code))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

"""One user cannot reach another user's data by naming its ids under the
user's own path: wd-api with access control on, users A (alice) and B
(bobsecret) made through the API, B given data of every kind (mailboxes,
messages with an attachment, addresses, a forwarded address, filters,
application passwords, stored files, an autoreply, auth log events, a queued
submission, a draft, TOTP set up).

Every route of GET /api-methods that has :user and another id parameter is
called with :user = A (with A's user token, with "me", and with the root
token) and B's ids in the other parameters (and in body fields that name a
mailbox, message or reference). Each call must be refused (4xx; WildDuck's
200 {success: false} for deleteOutboundMessage) and its answer must hold
nothing of B's (the marker "bobsecret" that all of B's texts carry, B's
user id, thread ids, queue id, unless the request itself named them).
B's data, read through root and over IMAP as B, is the same before and
after. A over IMAP and POP3 sees nothing of B's; A's update stream carries
none of B's events, also when resumed from one of B's event ids.

Checks that fail on files owned by others are marked [OTHER-OWNER file]
in their message (see OWNERS)."""

import base64
import hashlib
import json
import os
import poplib
import re
import smtplib
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, Conn, EventStream, Server, Stack, skip_without_stack  # noqa: E402

ROOT = "root-token-for-isolation-tests"
ZERO = "000000000000000000000000"
MARK = "bobsecret"

# which source file answers a route (for marking failures in files this test
# does not own)
OWNERS = (("/authlog", "routes-auth.c"), ("/2fa", "routes-2fa.c"),
          ("/addresses", "routes-addresses.c"), ("/addressregister", "routes-addresses.c"),
          ("/filters", "routes-filters.c"), ("/asps", "routes-asps.c"),
          ("/storage", "routes-storage.c"), ("/autoreply", "routes-autoreply.c"),
          ("/submit", "routes-submit.c"), ("/forward", "routes-submit.c"),
          ("/outbound", "routes-submit.c"), ("/messages", "routes-messages.c"),
          ("/search", "routes-messages.c"), ("/mailboxes", "routes-mailboxes.c"),
          ("/updates", "routes-updates.c"), ("/users", "routes-users.c"))
MINE = {"routes-mailboxes.c", "routes-messages.c", "routes-submit.c", "routes-storage.c",
        "routes-asps.c", "routes-autoreply.c"}


def owner(path):
    for part, name in OWNERS:
        if part in path:
            return name
    return "?"


def tag(path):
    name = owner(path)
    return "" if name in MINE else " [OTHER-OWNER %s]" % name


def attachment_message(to, subject):
    blob = base64.b64encode((MARK + " attachment bytes\n").encode() * 20).decode()
    return ("From: Sender <sender@example.org>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain\r\n\r\n%s body text\r\n"
            "--b1\r\nContent-Type: application/octet-stream; name=\"%s-attachment.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"%s-attachment.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n" %
            (to, subject, subject.replace(" ", "-"), subject, MARK, MARK, blob)).encode()


def plain_message(to, subject):
    return ("From: Sender <sender@example.org>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\n\r\nBody of %s\r\n" %
            (to, subject, subject.replace(" ", "-"), subject)).encode()


def ok_json(check, res, what):
    check(res.status == 200 and res.json.get("success") is True, what, repr(res))
    try:
        return res.json
    except ValueError:
        return {}


def by_path(c, uid):
    return {m["path"]: m["id"] for m in c.get("/users/%s/mailboxes" % uid,
                                               query={"showHidden": "true"}).json["results"]}


# ---------------------------------------------------------------- setup

class World:
    pass


def setup(check, root, server):
    w = World()
    w.a = ok_json(check, root.post("/users", {"username": "alice", "password": "secret-alice",
                                              "address": "alice@example.com"}),
                  "create user A").get("id", ZERO)
    w.b = ok_json(check, root.post("/users", {"username": MARK, "password": "secret-bob",
                                              "address": MARK + "@example.com",
                                              "name": MARK + " name"}),
                  "create user B").get("id", ZERO)
    # B: a custom mailbox, a hidden one
    w.b_custom = ok_json(check, root.post("/users/%s/mailboxes" % w.b,
                                          {"path": "BobSecretBox"}), "B mailbox").get("id", ZERO)
    w.b_hidden = ok_json(check, root.post("/users/%s/mailboxes" % w.b,
                                          {"path": "BobSecretHidden", "hidden": True}),
                         "B hidden mailbox").get("id", ZERO)
    boxes = by_path(root, w.b)
    w.b_inbox, w.b_sent, w.b_drafts = boxes["INBOX"], boxes["Sent Mail"], boxes["Drafts"]
    w.a_boxes = by_path(root, w.a)
    w.a_inbox = w.a_boxes["INBOX"]
    # messages: LMTP to both (B's with an attachment), an upload into B's box
    with smtplib.LMTP("127.0.0.1", server.ports["lmtp"]) as lmtp:
        lmtp.sendmail("sender@example.org", [MARK + "@example.com"],
                      attachment_message(MARK + "@example.com", MARK + " subject one"))
        lmtp.sendmail("sender@example.org", [MARK + "@example.com"],
                      plain_message(MARK + "@example.com", MARK + " subject two"))
        lmtp.sendmail("sender@example.org", ["alice@example.com"],
                      plain_message("alice@example.com", "alice own message"))
    ok_json(check, root.post("/users/%s/mailboxes/%s/messages" % (w.b, w.b_custom),
                             raw=attachment_message(MARK + "@example.com",
                                                    MARK + " subject three")),
            "upload into B's box")
    draft = ok_json(check, root.post("/users/%s/mailboxes/%s/messages" % (w.b, w.b_drafts),
                                     {"raw": base64.b64encode(plain_message(
                                         "x@example.net", MARK + " draft")).decode(),
                                      "draft": True}), "B draft")
    w.b_draft_uid = draft.get("message", {}).get("id", 0)
    sub = ok_json(check, root.post("/users/%s/submit" % w.b, {
        "to": [{"address": "rcpt@example.net"}], "subject": MARK + " submitted",
        "text": MARK + " text"}), "B submit")
    w.b_queue = sub.get("message", {}).get("queueId") or "0" * 18
    # addresses, forwarded address, filter, asp, storage, autoreply, 2FA, authlog
    w.b_alias = ok_json(check, root.post("/users/%s/addresses" % w.b,
                                         {"address": MARK + ".alias@example.com"}),
                        "B alias").get("id", ZERO)
    w.b_addresses = [a["id"] for a in root.get("/users/%s/addresses" % w.b).json["results"]]
    w.a_address = root.get("/users/%s/addresses" % w.a).json["results"][0]["id"]
    w.fwd = ok_json(check, root.post("/addresses/forwarded", {
        "address": MARK + ".fwd@example.com", "targets": ["keep@example.net"]}),
        "forwarded address").get("id", ZERO)
    w.b_filter = ok_json(check, root.post("/users/%s/filters" % w.b, {
        "name": MARK + " filter", "query": {"subject": MARK},
        "action": {"mailbox": w.b_custom, "seen": True}}), "B filter").get("id", ZERO)
    w.a_filter = ok_json(check, root.post("/users/%s/filters" % w.a, {
        "name": "alice filter", "query": {"subject": "x"}, "action": {"seen": True}}),
        "A filter").get("id", ZERO)
    w.b_asp = ok_json(check, root.post("/users/%s/asps" % w.b, {"description": MARK + " asp"}),
                      "B asp").get("id", ZERO)
    w.b_file = ok_json(check, root.post("/users/%s/storage" % w.b, {
        "filename": MARK + "-file.txt", "content": MARK + " stored content"}),
        "B file").get("id", ZERO)
    ok_json(check, root.put("/users/%s/autoreply" % w.b, {
        "status": True, "subject": MARK + " away", "text": MARK + " is away"}), "B autoreply")
    ok_json(check, root.post("/users/%s/2fa/totp/setup" % w.b, {"issuer": MARK + " issuer"}),
            "B totp setup")
    ok_json(check, root.post("/authenticate", {"username": MARK, "password": "secret-bob",
                                               "ip": "192.0.2.99", "sess": MARK + "-sess"}),
            "B authenticates")
    root.post("/authenticate", {"username": MARK, "password": "wrong"})
    w.b_events = [e["id"] for e in root.get("/users/%s/authlog" % w.b).json["results"]]
    check(len(w.b_events) >= 2, "B has auth log events", repr(w.b_events))
    # B's messages: (mailbox, uid, thread)
    w.b_messages = []
    for mb in (w.b_inbox, w.b_custom, w.b_sent, w.b_drafts):
        for m in root.get("/users/%s/mailboxes/%s/messages" % (w.b, mb)).json["results"]:
            w.b_messages.append((mb, m["id"], m.get("thread")))
    check(len(w.b_messages) == 5, "B has 5 messages", repr(w.b_messages))
    w.b_threads = [t for _, _, t in w.b_messages if t]
    w.a_uid = root.get("/users/%s/mailboxes/%s/messages" % (w.a, w.a_inbox)).json["results"][0]["id"]
    res = root.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                      "token": True})
    w.token = res.json.get("token", "")
    check(res.status == 200 and len(w.token) == 40, "A's token", repr(res))
    return w


# ---------------------------------------------------------------- snapshots

def digest(res):
    return (res.status, hashlib.sha256(res.body).hexdigest())


def api_snapshot(root, w):
    b = w.b
    snap = {}

    def get(path, **query):
        res = root.get(path, query=query or None)
        # the rate limit windows count down on their own
        text = re.sub(r'"ttl":\d+', '"ttl":N', res.body.decode("utf-8", "replace"))
        snap[path + json.dumps(query, sort_keys=True)] = (res.status, text)
        return res

    get("/users/%s" % b)
    boxes = get("/users/%s/mailboxes" % b, counters="true", sizes="true", showHidden="true")
    for mb in boxes.json.get("results", []):
        get("/users/%s/mailboxes/%s" % (b, mb["id"]))
        lst = get("/users/%s/mailboxes/%s/messages" % (b, mb["id"]), limit=250,
                  includeHeaders="subject,to")
        for m in lst.json.get("results", []):
            base = "/users/%s/mailboxes/%s/messages/%d" % (b, mb["id"], m["id"])
            full = get(base)
            src = root.get(base + "/message.eml")
            snap[base + "/message.eml"] = digest(src)
            for att in full.json.get("attachments", []) if full.status == 200 else []:
                res = root.get(base + "/attachments/" + att["id"])
                snap[base + "/attachments/" + att["id"]] = digest(res)
    for a in get("/users/%s/addresses" % b).json.get("results", []):
        get("/users/%s/addresses/%s" % (b, a["id"]))
    get("/addresses/forwarded/%s" % w.fwd)
    for f in get("/users/%s/filters" % b).json.get("results", []):
        get("/users/%s/filters/%s" % (b, f["id"]))
    for a in get("/users/%s/asps" % b, showAll="true").json.get("results", []):
        get("/users/%s/asps/%s" % (b, a["id"]))
    for f in get("/users/%s/storage" % b).json.get("results", []):
        snap["file " + f["id"]] = digest(root.get("/users/%s/storage/%s" % (b, f["id"])))
    get("/users/%s/autoreply" % b)
    get("/users/%s/authlog" % b, limit=250)
    return snap


def imap_snapshot(server):
    conn = Conn(server.ports["imap"], tls=True)
    _, tagged = conn.cmd("LOGIN %s secret-bob" % MARK)
    out = {"login": tagged.split(" ", 1)[1]}
    lines, _ = conn.cmd('LIST "" "*"')
    out["list"] = sorted(lines)
    names = [re.search(r'"([^"]*)"$|(\S+)$', l).group(0).strip('"') for l in lines]
    for name in names:
        lines, tagged = conn.cmd('STATUS "%s" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN '
                                 'HIGHESTMODSEQ)' % name)
        out["status " + name] = (lines, tagged.split(" ", 1)[1])
        _, tagged = conn.cmd('EXAMINE "%s"' % name)
        lines, _ = conn.cmd("UID FETCH 1:* (FLAGS RFC822.SIZE)")
        out["fetch " + name] = sorted(lines)
    conn.cmd("LOGOUT")
    conn.close()
    return out


# ---------------------------------------------------------------- the walk

def leaks(w, res, request_text):
    """B's things in an answer that the request itself did not name."""
    body = res.body.decode("utf-8", "replace").lower()
    req = request_text.lower()
    found = []
    for s in [MARK, w.b, w.b_queue] + w.b_threads:
        s = s.lower()
        if s and s in body and s not in req:
            found.append(s)
    return found


def substitutions(w, route):
    """Lists of {param: value} with B's ids for every path parameter but :user."""
    params = [p[1:] for p in route.split("/") if p.startswith(":") and p != ":user"]
    if "message" in params:
        cases = [{"mailbox": mb, "message": str(uid)} for mb, uid, _ in w.b_messages]
        if "attachment" in params:
            for c in cases:
                c["attachment"] = "ATT00001"
        return cases
    values = {
        "mailbox": [w.b_inbox, w.b_custom, w.b_hidden, w.b_sent, w.b_drafts],
        "event": w.b_events[:2],
        "address": w.b_addresses + [w.fwd, MARK + "@example.com"],
        "id": w.b_addresses + [w.fwd],
        "filter": [w.b_filter],
        "asp": [w.b_asp],
        "file": [w.b_file],
        "queueId": [w.b_queue],
    }
    if len(params) != 1 or params[0] not in values:
        return None
    return [{params[0]: v} for v in values[params[0]]]


def bodies(w, name):
    """Request bodies (with B's ids where a field names something) per route."""
    raw = base64.b64encode(plain_message("x@example.net", "injected by alice")).decode()
    return {
        "updateMailbox": [{"path": "Hijacked", "subscribed": False, "hidden": True}],
        "updateMessagePathParams": [{"seen": True, "flagged": True, "moveTo": w.a_inbox},
                                    {"deleted": True, "draft": True}],
        "updateMessage": [{"message": "1:*", "seen": True, "moveTo": w.a_inbox},
                          {"message": "1:*", "flagged": True}],
        "uploadMessage": [{"raw": raw}],
        "forwardStoredMessage": [{"addresses": ["thief@example.net"]}],
        "submitStoredMessage": [{}],
        "updateUserAddress": [{"name": "hijacked", "main": True}],
        "updateFilter": [{"name": "hijacked", "disabled": True}],
    }.get(name, [{}])


def refused(res, name):
    if 400 <= res.status < 500:
        return True
    # WildDuck answers deleteOutboundMessage for a queue entry of someone
    # else with 200 {success: false}
    if name == "deleteOutboundMessage" and res.status == 200:
        try:
            return res.json.get("success") is False
        except ValueError:
            return False
    return False


def walk(check, api, root, w):
    user = api.client(w.token)
    methods = root.get("/api-methods").json.get("methods", [])
    routes = 0
    calls = 0
    for m in methods:
        path, name, method = m["path"], m["name"], m["method"]
        if ":user" not in path:
            continue
        cases = substitutions(w, path)
        if cases is None:
            continue
        routes += 1
        for case in cases:
            for who, client, uid in (("A token", user, w.a), ("A token me", user, "me"),
                                     ("root as A", root, w.a)):
                url = "/".join(uid if p == ":user" else case.get(p[1:], p) if p.startswith(":")
                               else p for p in path.split("/"))
                query = {"markAsSeen": "true"} if name == "getMessage" else None
                for body in bodies(w, name) if method in ("POST", "PUT") else [None]:
                    res = client.request(method, url, body=body, query=query)
                    calls += 1
                    what = "%s %s %s" % (who, method, url)
                    check(refused(res, name), "B's ids under A's path refused" + tag(path),
                          "%s body=%s -> %r" % (what, json.dumps(body), res))
                    found = leaks(w, res, url + json.dumps(body))
                    check(not found, "answer holds nothing of B's" + tag(path),
                          "%s -> %r in %r" % (what, found, res))
    check(routes >= 20, "routes with :user and another id walked", str(routes))
    return routes, calls


def body_fields(check, api, root, w):
    """Routes with :user only whose bodies or queries name a mailbox, message
    or reference of B's, and the routes without :user that take an id."""
    user = api.client(w.token)
    b_uid = [u for mb, u, _ in w.b_messages if mb == w.b_inbox][0]
    calls = 0

    def expect(client, method, url, body=None, query=None, allow=(), what=""):
        nonlocal calls
        calls += 1
        res = client.request(method, url, body=body, query=query)
        text = url + json.dumps(body) + json.dumps(query)
        good = 400 <= res.status < 500 or res.status in allow
        check(good, (what or "B's id in a body refused") + tag(url),
              "%s %s %s %s -> %r" % (method, url, json.dumps(body), json.dumps(query), res))
        found = leaks(w, res, text)
        check(not found, "answer holds nothing of B's" + tag(url),
              "%s %s -> %r in %r" % (method, url, found, res))
        return res

    for client, a in ((user, w.a), (user, "me"), (root, w.a)):
        inbox_msgs = "/users/%s/mailboxes/%s/messages" % (a, w.a_inbox)
        expect(client, "PUT", inbox_msgs, {"message": str(w.a_uid), "moveTo": w.b_custom},
               what="move A's message into B's mailbox refused")
        expect(client, "PUT", "%s/%d" % (inbox_msgs, w.a_uid), {"moveTo": w.b_inbox},
               what="move A's message into B's mailbox refused")
        expect(client, "POST", "/users/%s/filters" % a,
               {"query": {"subject": "x"}, "action": {"mailbox": w.b_custom}},
               what="filter into B's mailbox refused")
        expect(client, "PUT", "/users/%s/filters/%s" % (a, w.a_filter),
               {"action": {"mailbox": w.b_custom}}, what="filter into B's mailbox refused")
        expect(client, "POST", "/users/%s/submit" % a,
               {"mailbox": w.b_custom, "to": [{"address": "x@example.net"}], "text": "x"},
               what="submit stored into B's mailbox refused")
        expect(client, "POST", "/users/%s/submit" % a,
               {"mailbox": w.b_drafts, "uploadOnly": True, "isDraft": True, "text": "x"},
               what="draft stored into B's mailbox refused")
        # a reference to a message of B's: ignored as WildDuck does (B's
        # message is not flagged, nothing of it is copied into A's message)
        res = expect(client, "POST", "/users/%s/submit" % a,
                     {"to": [{"address": "x@example.net"}], "text": "reply text",
                      "reference": {"mailbox": w.b_inbox, "id": b_uid, "action": "forward"}},
                     allow=(200,), what="reference to B's message")
        if res.status == 200:
            msg = res.json.get("message", {})
            if msg.get("mailbox") and msg.get("id"):
                src = root.get("/users/%s/mailboxes/%s/messages/%d/message.eml" %
                               (w.a, msg["mailbox"], msg["id"])).body
                check(MARK.encode() not in src.lower(), "A's reply holds nothing of B's message",
                      repr(src[:400]))
                qid = msg.get("queueId")
                if qid:
                    root.delete("/users/%s/outbound/%s" % (w.a, qid))
        # the same reference kept in a draft of A's, then the draft sent
        res = expect(client, "POST", "/users/%s/submit" % a,
                     {"to": [{"address": "x@example.net"}], "text": "draft reply",
                      "isDraft": True, "uploadOnly": True,
                      "reference": {"mailbox": w.b_inbox, "id": b_uid, "action": "forward"}},
                     allow=(200,), what="draft with a reference to B's message")
        msg = res.json.get("message", {}) if res.status == 200 else {}
        if msg.get("mailbox") and msg.get("id"):
            res = expect(client, "POST", "/users/%s/mailboxes/%s/messages/%d/submit" %
                         (a, msg["mailbox"], msg["id"]), {}, allow=(200,),
                         what="sending A's draft that refers to B's message")
            if res.status == 200 and res.json.get("queueId"):
                root.delete("/users/%s/outbound/%s" % (w.a, res.json["queueId"]))
        res = expect(client, "GET", "/users/%s/search" % a, query={"mailbox": w.b_inbox},
                     allow=(200,), what="search in B's mailbox")
        if res.status == 200:
            check(res.json.get("results") == [], "search in B's mailbox finds nothing",
                  repr(res))
        for query in ({"q": MARK}, {"subject": MARK}, {"thread": (w.b_threads or [ZERO])[0]},
                      {"mailbox": w.b_custom, "id": "1:*"}, {"query": MARK}):
            res = expect(client, "GET", "/users/%s/search" % a, query=query, allow=(200,),
                         what="search for B's messages")
            if res.status == 200:
                check(res.json.get("results") == [], "search finds none of B's messages",
                      "%r -> %r" % (query, res))
        expect(client, "GET", "/users/%s/mailboxes/resolve" % a, query={"path": "BobSecretBox"},
               what="resolve B's mailbox path")
        expect(client, "POST", "/users/%s/addresses" % a, {"address": MARK + ".alias@example.com"},
               what="claim B's address")
        expect(client, "PUT", "/users/%s/addresses/%s" % (a, w.a_address),
               {"address": MARK + "@example.com"}, what="rename onto B's address")
        expect(client, "PUT", "/users/%s/addresses/%s" % (a, w.a_address),
               {"address": MARK + ".fwd@example.com"}, what="rename onto the forwarded address")
        # listings under A's own path
        for path in ("/users/%s" % a, "/users/%s/mailboxes" % a, "/users/%s/filters" % a,
                     "/users/%s/asps" % a, "/users/%s/storage" % a, "/users/%s/addresses" % a,
                     "/users/%s/autoreply" % a, "/users/%s/authlog" % a,
                     "/users/%s/addressregister?query=bob" % a,
                     "/users/%s/mailboxes/%s/messages" % (a, w.a_inbox)):
            res = client.get(path, query={"showHidden": "true"} if path.endswith("mailboxes")
                             else None)
            calls += 1
            check(res.status == 200 and not leaks(w, res, path), "A's listing holds nothing of B's"
                  + tag(path), "%s -> %r" % (path, res))

    # routes without :user: a user token gets nothing of B's
    for method, url, body in (("GET", "/addresses/forwarded/%s" % w.fwd, None),
                              ("PUT", "/addresses/forwarded/%s" % w.fwd, {"name": "hijacked"}),
                              ("DELETE", "/addresses/forwarded/%s" % w.fwd, None),
                              ("GET", "/addresses/resolve/%s" % w.b_alias, None),
                              ("GET", "/addresses/resolve/%s.alias@example.com" % MARK, None),
                              ("GET", "/users/resolve/%s" % MARK, None),
                              ("GET", "/users", None), ("GET", "/addresses", None),
                              ("GET", "/filters", None)):
        res = expect(user, method, url, body, allow=(200,) if method == "GET" and
                     url in ("/filters", "/addresses", "/users") else (),
                     what="user token on a route without :user")
    return calls


def updates(check, api, root, server, w):
    """A's stream gets A's events only, also resumed from one of B's ids.
    Deliveries follow the stream's start at once: ObjectIds made by two
    processes in the same second do not sort by time, and the stream must
    still see an entry that sorts below its starting point (updates.c reads
    from a reorder floor)."""
    b_stream = EventStream(api.port, "/users/%s/updates" % w.b, token=ROOT)
    b_stream.next_event(5)
    with smtplib.LMTP("127.0.0.1", server.ports["lmtp"]) as lmtp:
        lmtp.sendmail("sender@example.org", [MARK + "@example.com"],
                      plain_message(MARK + "@example.com", MARK + " subject streamed"))
    try:
        b_ev = b_stream.wait_for(lambda e: e.get("data", {}).get("command") == "EXISTS", 10)
    except (TimeoutError, OSError, EOFError):
        b_ev = {}
    b_stream.close()
    b_event_id = b_ev.get("id")
    check(b_event_id is not None, "B's stream shows B's delivery")
    a_stream = EventStream(api.port, "/users/me/updates", token=w.token)
    check(a_stream.status == 200, "A's update stream opens", str(a_stream.status))
    a_stream.next_event(5)
    with smtplib.LMTP("127.0.0.1", server.ports["lmtp"]) as lmtp:
        lmtp.sendmail("sender@example.org", [MARK + "@example.com"],
                      plain_message(MARK + "@example.com", MARK + " subject streamed two"))
        lmtp.sendmail("sender@example.org", ["alice@example.com"],
                      plain_message("alice@example.com", "alice streamed"))
    seen = []
    try:
        while True:
            ev = a_stream.next_event(10)
            seen.append(ev)
            if ev.get("data", {}).get("command") == "EXISTS":
                break
    except (TimeoutError, OSError, EOFError) as e:
        check(False, "A's stream got A's delivery", repr(e))
    text = json.dumps(seen).lower()
    check(w.b_inbox not in text and MARK not in text, "A's stream holds none of B's events",
          text[:500])
    check(seen and seen[-1].get("data", {}).get("mailbox") == w.a_inbox,
          "A's stream shows A's delivery", repr(seen[-1:]))
    a_stream.close()
    # resumed from B's event id: still only A's entries
    resume_from = b_event_id or ZERO
    for client_token, path, header in (
            (w.token, "/users/me/updates", resume_from), (ROOT, "/users/%s/updates" % w.a,
                                                          resume_from),
            (w.token, "/users/me/updates?Last-Event-ID=" + resume_from, None)):
        resumed = EventStream(api.port, path, token=client_token, last_event_id=header)
        check(resumed.status == 200, "A's stream resumed from B's event id opens",
              "%s %d" % (path, resumed.status))
        got = []
        try:
            end = time.time() + 3
            while time.time() < end:
                got.append(resumed.next_event(max(0.1, end - time.time())))
        except (TimeoutError, OSError, EOFError):
            pass
        resumed.close()
        text = json.dumps(got).lower()
        check(w.b_inbox not in text and w.b_custom not in text and MARK not in text,
              "resumed from B's event id: none of B's events" + tag("/updates"), text[:500])
        check(w.a_inbox in text, "resumed from B's event id: A's later delivery shown",
              "%s: %s" % (path, text[:300]))


def imap_pop3_as_a(check, server, w):
    conn = Conn(server.ports["imap"], tls=True)
    _, tagged = conn.cmd("LOGIN alice secret-alice")
    check(" OK" in tagged, "A logs in over IMAP", tagged)
    lines, _ = conn.cmd('LIST "" "*"')
    check(not any("bobsecret" in l.lower() for l in lines), "A's LIST shows none of B's boxes",
          repr(lines))
    for cmd in ('SELECT "BobSecretBox"', 'EXAMINE "BobSecretHidden"',
                'STATUS "BobSecretBox" (MESSAGES)', 'SELECT "%s"' % w.b_custom):
        lines, tagged = conn.cmd(cmd)
        check(" NO " in tagged or " BAD " in tagged, "IMAP %s refused for A" % cmd, tagged)
        check(not any(MARK in l.lower() for l in lines), "IMAP %s answers nothing of B's" % cmd,
              repr(lines))
    conn.cmd("EXAMINE INBOX")
    uids = ",".join(str(u) for _, u, _ in w.b_messages) + ",1:*"
    lines, tagged = conn.cmd("UID FETCH %s (FLAGS BODY.PEEK[])" % uids)
    data = " ".join(lines) + conn.buf.decode("utf-8", "replace")
    check(" OK" in tagged and MARK not in data.lower(), "A's UID FETCH of B's uids: nothing of B's",
          data[:400])
    lines, tagged = conn.cmd('UID COPY 1:* "BobSecretBox"')
    check(" NO " in tagged or " BAD " in tagged, "A cannot copy into B's box name", tagged)
    conn.cmd("LOGOUT")
    conn.close()

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    pop = poplib.POP3_SSL("127.0.0.1", server.ports["pop3"], context=ctx, timeout=20)
    pop.user("alice")
    pop.pass_("secret-alice")
    count, _ = pop.stat()
    check(count >= 1, "A's POP3 mailbox", str(count))
    texts = []
    for i in range(1, count + 1):
        texts.append(b"\n".join(pop.top(i, 100)[1]).lower())
    for n in (count + 1, count + 5):
        try:
            pop.top(n, 0)
            check(False, "POP3 TOP beyond A's messages refused", str(n))
        except poplib.error_proto:
            check(True, "POP3 TOP beyond A's messages refused")
    pop.rset()
    pop.quit()
    check(not any(MARK.encode() in t for t in texts), "A's POP3 shows nothing of B's",
          repr(texts)[:300])


def compare(check, before, after, what):
    diff = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
    for k in sorted(diff)[:20]:
        b, a = str(before.get(k)), str(after.get(k))
        at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        check(False, what + " unchanged" + tag(k.split("{")[0]),
              "%s: ...%r -> ...%r" % (k, b[max(0, at - 150):at + 150],
                                      a[max(0, at - 150):at + 150]))
    check(not diff, what + " unchanged", "%d differences" % len(diff))


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    api = ApiServer(wd_api, stack, "--api.accessControl.enabled=true",
                    "--api.accessToken=" + ROOT)
    server = Server(wd_server, stack, "--lmtp.enabled=true")
    try:
        root = api.client(ROOT)
        w = setup(check, root, server)
        updates(check, api, root, server, w)
        w.b_messages = []
        for mb in (w.b_inbox, w.b_custom, w.b_sent, w.b_drafts):
            for m in root.get("/users/%s/mailboxes/%s/messages" % (w.b, mb)).json["results"]:
                w.b_messages.append((mb, m["id"], m.get("thread")))
        a_before = root.get("/users/%s/mailboxes/%s/messages" % (w.a, w.a_inbox)).body
        imap_before = imap_snapshot(server)
        before = api_snapshot(root, w)
        routes, calls = walk(check, api, root, w)
        calls += body_fields(check, api, root, w)
        imap_pop3_as_a(check, server, w)
        after = api_snapshot(root, w)
        imap_after = imap_snapshot(server)
        compare(check, before, after, "B's data through the API")
        compare(check, imap_before, imap_after, "B's data over IMAP")
        a_after = root.get("/users/%s/mailboxes/%s/messages" % (w.a, w.a_inbox)).body
        check(a_after == a_before, "A's INBOX unchanged by the refused moves",
              "%r -> %r" % (a_before[:300], a_after[:300]))
        # control: a reference to A's own message still marks it
        res = root.post("/users/%s/submit" % w.a, {
            "to": [{"address": "x@example.net"}], "text": "own reply",
            "reference": {"mailbox": w.a_inbox, "id": w.a_uid, "action": "reply"}})
        own = root.get("/users/%s/mailboxes/%s/messages/%d" % (w.a, w.a_inbox, w.a_uid)).json
        check(res.status == 200 and own.get("answered") is True,
              "a reference to A's own message marks it answered", repr(own)[:300])
        print("walked %d routes with :user and another id, %d calls" % (routes, calls))
    finally:
        server.stop()
        code = api.stop()
        check(code == 0, "wd-api exit code", str(code))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

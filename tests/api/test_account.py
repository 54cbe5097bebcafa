"""wd-api's authentication and account settings over real HTTP: /preauth,
/authenticate (and its user tokens on every :user route), the auth log, TOTP
and custom 2FA, application passwords, filters (also applied by a real LMTP
delivery through wd-server), autoreplies and file storage."""

import base64
import hashlib
import hmac
import json
import os
import smtplib
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, Conn, Server, Stack, skip_without_stack  # noqa: E402

ZERO = "000000000000000000000000"
ROOT = "root-token-for-account-tests"


def create_user(stack, name):
    out = stack.run_wdctl("user", "create", name, "--password", "secret-" + name,
                          "--address", name + "@example.com")
    return out.strip().split()[-1]


def totp(seed, when=None):
    key = base64.b32decode(seed + "=" * (-len(seed) % 8), casefold=True)
    counter = int((when if when is not None else time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 15
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


def code(res):
    try:
        return res.json.get("code")
    except ValueError:
        return None


# ---- /preauth, /authenticate, authlog ----

def authentication(check, c, uid):
    res = c.post("/preauth", {"username": "alice"})
    check.status(res, 200, "preauth")
    body = res.json
    check(body.get("id") == uid and body.get("username") == "alice" and
          body.get("address") == "alice@example.com" and body.get("scope") == "master" and
          body.get("require2fa") is False, "preauth answer", repr(body))
    res = c.post("/preauth", {"username": "alice@example.com", "scope": "imap"})
    check(res.status == 200 and res.json.get("scope") == "imap", "preauth by address", repr(res))
    res = c.post("/preauth", {"username": "nobody"})
    check(res.status == 403 and code(res) == "AuthFailed", "preauth unknown user", repr(res))
    check.status(c.post("/preauth", {}), 400, "preauth without username")
    check.status(c.post("/preauth", {"username": "alice", "scope": "web"}), 400,
                 "preauth unknown scope")

    res = c.post("/authenticate", {"username": "alice", "password": "secret-alice"})
    check.status(res, 200, "authenticate")
    body = res.json
    check(body.get("id") == uid and body.get("username") == "alice" and
          body.get("address") == "alice@example.com" and body.get("scope") == "master" and
          body.get("require2fa") is False and body.get("requirePasswordChange") is False and
          "token" not in body, "authenticate answer", repr(body))
    res = c.post("/authenticate", {"username": "alice@example.com", "password": "secret-alice",
                                   "ip": "192.0.2.7", "sess": "s-1", "protocol": "Webmail"})
    check.status(res, 200, "authenticate by address with ip/sess/protocol")
    res = c.post("/authenticate", {"username": "alice", "password": "wrong"})
    check(res.status == 403 and code(res) == "AuthFailed", "wrong password", repr(res))
    res = c.post("/authenticate", {"username": "nobody", "password": "wrong"})
    check(res.status == 403 and code(res) == "AuthFailed", "unknown user", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                   "scope": "imap", "token": True})
    check.status(res, 400, "token only for the master scope")
    res = c.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                   "scope": "imap"})
    check.status(res, 200, "imap scope with the account password (no 2FA)")
    check.status(c.post("/authenticate", {"username": "alice"}), 400, "password required")
    check.status(c.post("/authenticate", {"username": "alice", "password": "x" * 257}), 400,
                 "password too long")
    check.status(c.post("/authenticate", {"username": "alice", "password": "p", "bogus": 1}),
                 400, "unknown key")

    # the auth log: newest first, paged, filtered
    res = c.get("/users/%s/authlog" % uid)
    check.status(res, 200, "authlog")
    body = res.json
    results = body.get("results", [])
    check(body.get("total", 0) >= 3 and len(results) >= 3, "authlog entries", repr(body)[:300])
    check(all("id" in r and "user" not in r and "_id" not in r for r in results),
          "authlog entries shaped as WildDuck's")
    ids = [r["id"] for r in results]
    check(ids == sorted(ids, reverse=True), "authlog newest first", repr(ids))
    check(any(r.get("result") == "fail" and r.get("action") == "authentication" for r in results),
          "failed login logged")
    check(any(r.get("ip") == "192.0.2.7" and r.get("sess") == "s-1" and
              r.get("protocol") == "Webmail" for r in results), "ip/sess/protocol logged",
          repr(results)[:500])
    res = c.get("/users/%s/authlog" % uid, query={"filterip": "192.0.2.7"})
    check(res.status == 200 and res.json["results"] and
          all(r.get("ip") == "192.0.2.7" for r in res.json["results"]), "authlog by ip",
          repr(res))
    res = c.get("/users/%s/authlog" % uid, query={"action": "no such action"})
    check(res.status == 200 and res.json["results"] == [] and res.json["total"] == 0,
          "authlog by action", repr(res))
    # paging: one per page, forwards then back
    total = body["total"]
    res = c.get("/users/%s/authlog" % uid, query={"limit": 1})
    first = res.json
    check(len(first["results"]) == 1 and first["previousCursor"] is False and
          isinstance(first["nextCursor"], str) and first["page"] == 1, "authlog page 1",
          repr(first))
    seen = [first["results"][0]["id"]]
    nxt = first["nextCursor"]
    pages = 1
    prev = None
    while nxt and pages < 50:
        res = c.get("/users/%s/authlog" % uid, query={"limit": 1, "next": nxt, "page": pages + 1})
        page = res.json
        seen += [r["id"] for r in page["results"]]
        prev = page["previousCursor"]
        nxt = page["nextCursor"]
        pages += 1
    check(seen == ids[:len(seen)] and len(seen) == total, "authlog pages walk every entry",
          "%r vs %r" % (seen, ids))
    res = c.get("/users/%s/authlog" % uid, query={"limit": 1, "previous": prev})
    check(res.status == 200 and res.json["results"][0]["id"] == seen[-2], "previous page",
          repr(res))
    check.status(c.get("/users/%s/authlog" % uid, query={"next": "garbage!"}), 400, "bad cursor")
    check.status(c.get("/users/%s/authlog" % uid, query={"limit": 251}), 400, "limit over 250")
    check.status(c.get("/users/%s/authlog" % ZERO), 404, "authlog unknown user")
    check.status(c.get("/users/nothex/authlog"), 400, "authlog bad user id")
    event = c.get("/users/%s/authlog/%s" % (uid, ids[0]))
    check(event.status == 200 and event.json.get("id") == ids[0] and
          event.json.get("action") == results[0].get("action"), "authlog event", repr(event))
    res = c.get("/users/%s/authlog/%s" % (uid, ZERO))
    check(res.status == 404 and code(res) == "EventNotFound", "unknown event", repr(res))
    check.status(c.get("/users/%s/authlog/xyz" % uid), 400, "bad event id")


# ---- TOTP and custom 2FA ----

def two_factor(check, c, uid):
    base = "/users/%s/2fa" % uid
    check.status(c.post(base + "/totp/setup", {}), 400, "totp setup needs issuer")
    res = c.post(base + "/totp/check", {"token": "123456"})
    check(res.status == 400 and code(res) == "TotpDisabled", "check without TOTP", repr(res))
    res = c.post(base + "/totp/enable", {"token": "123456"})
    check(res.status == 400 and code(res) == "TotpDisabled", "enable without setup", repr(res))
    res = c.post(base + "/totp/setup", {"issuer": "Account Test", "label": "alice mail"})
    check.status(res, 200, "totp setup")
    seed = res.json.get("seed", "")
    qr = res.json.get("qrcode", "")
    check(len(seed) == 32, "seed is 32 base32 characters", repr(res))
    check(qr.startswith("data:image/png;base64,") or
          (qr.startswith("otpauth://totp/") and "secret=" + seed in qr), "qrcode", qr[:80])
    if qr.startswith("data:image/png;base64,"):
        png = base64.b64decode(qr.split(",", 1)[1])
        check(png[:8] == b"\x89PNG\r\n\x1a\n", "qrcode is a PNG")
    res = c.post(base + "/totp/enable", {"token": "12345"})
    check.status(res, 400, "token of 5 digits")
    wrong = "%06d" % ((int(totp(seed)) + 500000) % 1000000)
    res = c.post(base + "/totp/enable", {"token": wrong})
    check(res.status == 400 and code(res) == "InvalidToken", "enable with a wrong code", repr(res))
    res = c.post(base + "/totp/enable", {"token": totp(seed)})
    check.status(res, 200, "totp enable")
    res = c.post(base + "/totp/setup", {"issuer": "x"})
    check(res.status == 400 and code(res) == "TotpEnabled", "setup while on", repr(res))
    res = c.post(base + "/totp/enable", {"token": totp(seed)})
    check(res.status == 400 and code(res) == "TotpEnabled", "enable while on", repr(res))
    res = c.post("/preauth", {"username": "alice"})
    check(res.json.get("require2fa") == ["totp"], "preauth lists totp", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": "secret-alice"})
    check(res.status == 200 and res.json.get("require2fa") == ["totp"],
          "authenticate requires totp", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                   "scope": "imap"})
    check(res.status == 403 and code(res) == "InvalidAuthScope",
          "imap with the account password refused under 2FA", repr(res))
    res = c.post(base + "/totp/check", {"token": wrong})
    check(res.status == 403 and code(res) == "InvalidToken", "check wrong code", repr(res))
    # a code of the previous step (unused so far) passes once
    earlier = totp(seed, time.time() - 30)
    res = c.post(base + "/totp/check", {"token": earlier})
    check.status(res, 200, "check valid code")
    res = c.post(base + "/totp/check", {"token": earlier})
    check(res.status == 403 and code(res) == "RateLimitedError", "code used twice", repr(res))
    check.status(c.post("/users/%s/2fa/totp/check" % ZERO, {"token": "123456"}), 404,
                 "check unknown user")
    # custom 2FA on top
    res = c.put(base + "/custom", {})
    check.status(res, 200, "custom on")
    res = c.put(base + "/custom", {})
    check(res.status == 400 and code(res) == "CustomEnabled", "custom twice", repr(res))
    res = c.post("/preauth", {"username": "alice"})
    check(sorted(res.json.get("require2fa") or []) == ["custom", "totp"], "both methods",
          repr(res))
    res = c.delete(base + "/custom")
    check.status(res, 200, "custom off")
    res = c.delete(base + "/custom")
    check(res.status == 400 and code(res) == "CustomDisabled", "custom off twice", repr(res))
    res = c.delete(base + "/totp")
    check.status(res, 200, "totp off")
    res = c.delete(base + "/totp")
    check(res.status == 400 and code(res) == "TotpDisabled", "totp off twice", repr(res))
    res = c.post("/preauth", {"username": "alice"})
    check(res.json.get("require2fa") is False, "no 2FA left", repr(res))
    # all off at once
    check.status(c.put(base + "/custom", {}), 200, "custom on again")
    check.status(c.delete(base), 200, "disable all 2FA")
    res = c.post("/preauth", {"username": "alice"})
    check(res.json.get("require2fa") is False, "DELETE /2fa clears every method", repr(res))
    check.status(c.delete("/users/%s/2fa" % ZERO), 404, "disable 2FA unknown user")
    check.status(c.put("/users/%s/2fa/custom" % ZERO, {}), 404, "custom unknown user")
    actions = [r.get("action") for r in c.get("/users/%s/authlog" % uid,
                                                query={"limit": 100}).json["results"]]
    for a in ("enable 2fa totp", "check 2fa totp", "disable 2fa totp", "enable 2fa custom",
              "disable 2fa custom", "disable 2fa"):
        check(a in actions, "auth log has " + a, repr(actions))


# ---- application passwords ----

def app_passwords(check, c, uid):
    base = "/users/%s/asps" % uid
    res = c.get(base)
    check(res.status == 200 and res.json.get("results") == [], "no asps yet", repr(res))
    res = c.post(base, {"description": "Phone", "scopes": ["imap", "smtp"]})
    check.status(res, 200, "create asp")
    asp = res.json.get("id")
    password = res.json.get("password", "")
    check(len(password) == 16 and password.isalpha() and password.islower(),
          "16-letter password", repr(res))
    res = c.post(base, {"description": "Laptop"})
    check.status(res, 200, "create asp with every scope")
    laptop = res.json["id"]
    res = c.post(base, {"description": "Temp", "ttl": 3600})
    temp = res.json.get("id")
    res = c.get(base)
    listed = {a["id"]: a for a in res.json.get("results", [])}
    check(set(listed) == {asp, laptop}, "listing skips TTL entries", repr(res))
    check(listed[asp]["scopes"] == ["imap", "smtp"] and listed[asp]["description"] == "Phone" and
          listed[asp]["lastUse"] == {"time": False, "event": False} and
          "password" not in listed[asp] and "created" in listed[asp], "asp shape",
          repr(listed[asp]))
    check(listed[laptop]["scopes"] == ["imap", "pop3", "smtp"], "* shown as every scope")
    res = c.get(base, query={"showAll": "true"})
    check(len(res.json.get("results", [])) == 3 and
          any(a["id"] == temp and "expires" in a for a in res.json["results"]),
          "showAll lists TTL entries", repr(res))
    # the password works for IMAP scope, not for master
    res = c.post("/authenticate", {"username": "alice", "password": password, "scope": "imap"})
    check(res.status == 200 and res.json.get("id") == uid, "asp logs in for imap", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": password, "scope": "pop3"})
    check(res.status == 403, "asp without pop3 scope", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": password})
    check(res.status == 403, "asp is not a master password", repr(res))
    res = c.get(base + "/" + asp)
    check(res.status == 200 and res.json.get("id") == asp and
          res.json["lastUse"]["time"] is not False and len(res.json["lastUse"]["event"]) == 24,
          "get asp with last use", repr(res))
    res = c.get(base + "/" + ZERO)
    check(res.status == 404 and code(res) == "AspNotFound", "unknown asp", repr(res))
    check.status(c.get(base + "/nothex"), 400, "bad asp id")
    check.status(c.post(base, {}), 400, "description required")
    check.status(c.post(base, {"description": "x", "scopes": ["master"]}), 400, "master scope")
    check.status(c.post(base, {"description": "x", "scopes": ["imap", "imap"]}), 400,
                 "duplicate scopes")
    check.status(c.post(base, {"description": "x", "scopes": 5}), 400, "scopes not a list")
    res = c.post(base, {"description": "comma", "scopes": "pop3,imap"})
    check.status(res, 200, "scopes as a comma list (as WildDuck)")
    res = c.get(base + "/" + res.json.get("id", ZERO))
    check(res.json.get("scopes") == ["imap", "pop3"], "scopes sorted", repr(res))
    c.delete(base + "/" + res.json.get("id", ZERO))
    check.status(c.post("/users/%s/asps" % ZERO, {"description": "x"}), 404, "asp unknown user")
    check.status(c.get(base, query={"showAll": "maybe"}), 400, "showAll not a boolean")
    before = c.get(base, query={"showAll": "true"}).json
    check.status(c.post(base, {"description": "x", "password": "abcdefghijklmnop"}), 400,
                 "pregenerated password refused")
    check(c.get(base, query={"showAll": "true"}).json == before, "refused create left nothing")
    res = c.delete(base + "/" + asp)
    check.status(res, 200, "delete asp")
    res = c.delete(base + "/" + asp)
    check(res.status == 404 and code(res) == "AspNotFound", "delete twice", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": password, "scope": "imap"})
    check.status(res, 403, "deleted asp no longer logs in")
    actions = [r.get("action") for r in c.get("/users/%s/authlog" % uid,
                                                query={"limit": 100}).json["results"]]
    check("create asp" in actions and "delete asp" in actions, "asp changes logged",
          repr(actions))
    c.delete(base + "/" + laptop)
    c.delete(base + "/" + temp)


# ---- filters ----

def mailbox_id(c, uid, path):
    res = c.get("/users/%s/mailboxes" % uid)
    for m in res.json.get("results", []):
        if m.get("path") == path:
            return m["id"]
    return None


def filters(check, c, uid, other):
    base = "/users/%s/filters" % uid
    junk = mailbox_id(c, uid, "Junk")
    check(junk is not None, "Junk mailbox id from the mailboxes API")
    res = c.get(base)
    check(res.status == 200 and res.json.get("results") == [] and
          res.json.get("limits") == {"allowed": 400, "used": 0}, "no filters yet", repr(res))
    res = c.post(base, {"name": "Bills", "query": {"from": "  billing   dept ",
                                                   "subject": "invoice", "ha": True,
                                                   "size": -5000},
                        "action": {"seen": True, "mailbox": junk, "flag": False},
                        "metaData": {"k": 1}})
    check.status(res, 200, "create filter")
    fid = res.json.get("id", ZERO)
    res = c.get(base + "/" + fid)
    check.status(res, 200, "get filter")
    f = res.json
    check(f.get("id") == fid and f.get("name") == "Bills" and f.get("disabled") is False and
          f.get("query") == {"from": "billing dept", "subject": "invoice", "ha": True,
                             "size": -5000} and
          f.get("action") == {"seen": True, "flag": False, "mailbox": junk} and
          f.get("metaData") == {"k": 1} and "created" in f, "filter fields", repr(f))
    res = c.post(base, {"query": {"to": "me@example.com", "text": "hello"},
                        "action": {"targets": ["fwd@example.net", "https://hooks.example.com/x",
                                               "smtp://mx.example.com:25"], "delete": True}})
    check.status(res, 200, "create forwarding filter")
    fid2 = res.json.get("id", ZERO)
    res = c.get(base)
    body = res.json
    check(body.get("limits") == {"allowed": 400, "used": 2}, "limits used", repr(body))
    listed = {x["id"]: x for x in body.get("results", [])}
    check(listed.get(fid, {}).get("query") == [["from", "(billing dept)"],
                                                ["subject", "(invoice)"], ["has attachment"],
                                                ["smaller", 5000]] and
          listed[fid].get("action") == [["mark as read"], ["do not flag it"],
                                        ["move to folder", '"Junk"']] and
          "metaData" not in listed[fid], "filter strings", repr(listed.get(fid)))
    check(listed.get(fid2, {}).get("action") == [["delete it"], ["forward to",
          "fwd@example.net, hooks.example.com, smtp://mx.example.com:25"]],
          "forward strings", repr(listed.get(fid2)))
    res = c.get(base, query={"metaData": "true"})
    check(any(x.get("metaData") == {"k": 1} for x in res.json.get("results", [])),
          "metaData on request", repr(res))
    res = c.get("/filters", query={"forward": "hooks.example"})
    check(res.status == 200 and [x["id"] for x in res.json.get("results", [])] == [fid2] and
          res.json["results"][0].get("user") == uid and
          "https://hooks.example.com/x" in res.json["results"][0].get("targets", []),
          "all filters by forward target", repr(res))
    c.post("/users/%s/filters" % other, {"query": {"subject": "x"}, "action": {"seen": True}})
    res = c.get("/filters", query={"limit": 2})
    check(res.status == 200 and res.json.get("total") == 3 and len(res.json["results"]) == 2 and
          res.json.get("nextCursor"), "all filters paged", repr(res))
    res2 = c.get("/filters", query={"limit": 2, "next": res.json.get("nextCursor")})
    check(len(res2.json.get("results", [])) == 1 and res2.json.get("nextCursor") is False,
          "all filters page 2", repr(res2))
    # update: change, clear, add
    res = c.put(base + "/" + fid, {"query": {"from": "", "listId": "list.example"},
                                   "action": {"mailbox": "", "spam": True}, "disabled": True,
                                   "name": "Renamed"})
    check.status(res, 200, "update filter")
    f = c.get(base + "/" + fid).json
    check(f.get("query") == {"subject": "invoice", "listId": "list.example", "ha": True,
                             "size": -5000} and
          f.get("action") == {"seen": True, "flag": False, "spam": True} and
          f.get("disabled") is True and f.get("name") == "Renamed", "updated filter", repr(f))
    check.status(c.put(base + "/" + fid, {}), 200, "update without changes")
    # refused input changes nothing
    before = c.get(base + "/" + fid).json
    for bad, what in (({"query": {"subject": "x" * 256}}, "subject too long"),
                      ({"query": {"unknown": "x"}}, "unknown query key"),
                      ({"action": {"seen": "perhaps"}}, "action not a boolean"),
                      ({"action": {"targets": ["not a target"]}}, "bad target"),
                      ({"action": {"mailbox": "xyz"}}, "bad mailbox id"),
                      ({"query": {"size": "big"}}, "size not a number"),
                      ({"query": "subject"}, "query not an object"),
                      ({"metaData": "[1]"}, "metaData not an object"),
                      ({"bogus": 1}, "unknown key")):
        res = c.put(base + "/" + fid, bad)
        check(res.status == 400 and code(res) == "InputValidationError", what, repr(res))
    res = c.put(base + "/" + fid, {"action": {"mailbox": ZERO}})
    check(res.status == 404 and code(res) == "NoSuchMailbox", "mailbox of nobody", repr(res))
    other_inbox = mailbox_id(c, other, "INBOX")
    res = c.put(base + "/" + fid, {"action": {"mailbox": other_inbox}})
    check(res.status == 404 and code(res) == "NoSuchMailbox", "another user's mailbox",
          repr(res))
    check(c.get(base + "/" + fid).json == before, "refused updates changed nothing")
    res = c.post(base, {"query": {"subject": "x"}, "action": {"mailbox": ZERO}})
    check(res.status == 404 and code(res) == "NoSuchMailbox", "create with unknown mailbox",
          repr(res))
    check.status(c.post(base, {"query": {"subject": "x"}}), 400, "action required")
    check.status(c.post(base, {"action": {"seen": True}}), 400, "query required")
    check(c.get(base).json["limits"]["used"] == 2, "refused creates stored nothing")
    check.status(c.get(base + "/" + ZERO), 404, "unknown filter")
    check.status(c.put(base + "/" + ZERO, {"name": "x"}), 404, "update unknown filter")
    check.status(c.get(base + "/nothex"), 400, "bad filter id")
    check.status(c.get("/users/%s/filters/%s" % (other, fid)), 404,
                 "filter under another user")
    check.status(c.get("/users/%s/filters" % ZERO), 404, "filters of unknown user")
    check.status(c.post("/users/%s/filters" % ZERO, {"query": {}, "action": {}}), 404,
                 "create for unknown user")
    actions = [r.get("action") for r in c.get("/users/%s/authlog" % uid,
                                                query={"limit": 100}).json["results"]]
    check("filter added" in actions and "filter forward added" in actions, "filters logged",
          repr(actions))
    res = c.delete(base + "/" + fid2)
    check.status(res, 200, "delete filter")
    res = c.delete(base + "/" + fid2)
    check(res.status == 404 and code(res) == "FilterNotFound", "delete twice", repr(res))
    c.delete(base + "/" + fid)
    check(c.get(base).json.get("results") == [], "filters gone")


def imap_status(server, user, password, mailbox, items):
    conn = Conn(server.ports["imap"], tls=True)
    conn.cmd("LOGIN %s %s" % (user, password))
    lines, tagged = conn.cmd('STATUS "%s" (%s)' % (mailbox, items))
    conn.cmd("LOGOUT")
    conn.close()
    return " ".join(lines), tagged


def filter_on_delivery(check, c, server, uid):
    conn = Conn(server.ports["imap"], tls=True)
    conn.cmd("LOGIN alice secret-alice")
    _, tagged = conn.cmd('CREATE "Bills"')
    conn.cmd("LOGOUT")
    conn.close()
    check("OK" in tagged, "IMAP CREATE Bills", tagged)
    bills = mailbox_id(c, uid, "Bills")
    res = c.post("/users/%s/filters" % uid, {"query": {"subject": "invoice"},
                                             "action": {"mailbox": bills, "seen": True}})
    check.status(res, 200, "filter to Bills")
    msg = ("From: shop@example.org\r\nTo: alice@example.com\r\nSubject: {s}\r\n"
           "Message-ID: <{m}@example.org>\r\n\r\nbody\r\n")
    with smtplib.LMTP("127.0.0.1", server.ports["lmtp"]) as lmtp:
        lmtp.sendmail("shop@example.org", ["alice@example.com"],
                      msg.format(s="Your Invoice 42", m="a1").encode())
        lmtp.sendmail("shop@example.org", ["alice@example.com"],
                      msg.format(s="Hello", m="a2").encode())
    status, _ = imap_status(server, "alice", "secret-alice", "Bills", "MESSAGES UNSEEN")
    check("MESSAGES 1" in status and "UNSEEN 0" in status,
          "matching delivery filed into Bills and seen", status)
    status, _ = imap_status(server, "alice", "secret-alice", "INBOX", "MESSAGES")
    check("MESSAGES 1" in status, "other delivery in INBOX", status)
    c.delete("/users/%s/filters/%s" % (uid, res.json.get("id", ZERO)))


# ---- autoreply ----

def autoreply(check, c, uid):
    base = "/users/%s/autoreply" % uid
    res = c.get(base)
    check(res.status == 200 and res.json.get("status") is False and res.json.get("start") is False
          and res.json.get("subject") == "" and res.json.get("created") is False,
          "no autoreply yet", repr(res))
    res = c.put(base, {"status": True, "name": "Alice", "subject": "Away", "text": " Back soon ",
                       "html": "<p>Back soon</p>", "start": "2020-01-01T00:00:00Z", "end": False})
    check.status(res, 200, "set autoreply")
    aid = res.json.get("id")
    check(isinstance(aid, str) and len(aid) == 24, "autoreply id", repr(res))
    res = c.get(base)
    a = res.json
    check(a.get("status") is True and a.get("name") == "Alice" and a.get("subject") == "Away" and
          a.get("text") == "Back soon" and a.get("html") == "<p>Back soon</p>" and
          a.get("start") == "2020-01-01T00:00:00.000Z" and a.get("end") is False and
          isinstance(a.get("created"), str) and a["created"].endswith(".000Z"),
          "autoreply read back", repr(a))
    user = c.get("/users/%s" % uid)
    if user.status == 200:
        check(user.json.get("autoreply") is True, "users.autoreply on", repr(user.json)[:300])
    res = c.put(base, {"subject": "Still away", "end": "2099-01-01"})
    check(res.status == 200 and res.json.get("id") == aid, "update keeps the document",
          repr(res))
    a = c.get(base).json
    check(a.get("subject") == "Still away" and a.get("status") is True and
          a.get("end") == "2099-01-01T00:00:00.000Z" and a.get("name") == "Alice",
          "partial update", repr(a))
    before = c.get(base).json
    for bad, what in (({"start": "not a date"}, "bad start"), ({"status": "maybe"}, "bad status"),
                      ({"name": "n" * 129}, "name too long"), ({"bogus": True}, "unknown key"),
                      ({"end": True}, "end true")):
        check.status(c.put(base, bad), 400, what)
    check(c.get(base).json == before, "refused updates changed nothing")
    check.status(c.put("/users/%s/autoreply" % ZERO, {"status": True}), 404,
                 "autoreply unknown user")
    check.status(c.get("/users/%s/autoreply" % ZERO), 404, "get autoreply unknown user")
    res = c.delete(base)
    check.status(res, 200, "delete autoreply")
    a = c.get(base).json
    check(a.get("status") is False and a.get("subject") == "", "autoreply gone", repr(a))
    user = c.get("/users/%s" % uid)
    if user.status == 200:
        check(user.json.get("autoreply") is False, "users.autoreply off")
    c.put(base, {"status": False, "subject": "off"})


# ---- storage ----

def storage(check, c, uid, other):
    base = "/users/%s/storage" % uid
    blob = bytes(range(256)) * 2000  # 512000 bytes: two GridFS chunks
    res = c.post(base, raw=blob, content_type="application/octet-stream",
                 query={"filename": "data.bin", "cid": "cid-1"})
    check.status(res, 200, "upload raw")
    f1 = res.json.get("id", ZERO)
    res = c.post(base, {"filename": "hello.txt", "encoding": "base64",
                        "content": base64.b64encode(b"Hello, world!\n").decode()})
    check.status(res, 200, "upload base64 JSON")
    f2 = res.json.get("id", ZERO)
    res = c.post(base, {"content": "plain text content", "contentType": "text/csv"})
    check.status(res, 200, "upload JSON text")
    f3 = res.json.get("id", ZERO)
    res = c.get(base + "/" + f1)
    check(res.status == 200 and res.body == blob and
          res.headers.get("Content-Type") == "application/octet-stream", "download raw",
          "%d bytes" % len(res.body))
    res = c.get(base + "/" + f2)
    check(res.status == 200 and res.body == b"Hello, world!\n" and
          res.headers.get("Content-Type", "").startswith("text/plain"), "download decoded",
          repr(res))
    res = c.get(base)
    body = res.json
    check(res.status == 200 and body.get("total") == 3, "list files", repr(body)[:300])
    files = {x["id"]: x for x in body.get("results", [])}
    check(files.get(f1, {}).get("size") == len(blob) and files[f1].get("cid") == "cid-1" and
          files[f1].get("md5") == hashlib.md5(blob).hexdigest() and
          files[f1].get("filename") == "data.bin", "file entry", repr(files.get(f1)))
    check(files.get(f3, {}).get("filename", "").startswith("upload-") and
          files[f3]["filename"].endswith(".csv") and files[f3].get("contentType") == "text/csv",
          "made-up file name", repr(files.get(f3)))
    names = [x["filename"] for x in body["results"]]
    check(names == sorted(names), "listed by name", repr(names))
    res = c.get(base, query={"query": "hello"})
    check([x["id"] for x in res.json.get("results", [])] == [f2], "partial name match",
          repr(res))
    res = c.get(base, query={"limit": 2})
    check(len(res.json["results"]) == 2 and res.json.get("nextCursor"), "files page 1",
          repr(res))
    res2 = c.get(base, query={"limit": 2, "next": res.json["nextCursor"]})
    check([x["filename"] for x in res.json["results"] + res2.json["results"]] == names,
          "files page 2", repr(res2))
    check.status(c.post(base, {"filename": "x"}), 400, "content required")
    check.status(c.post(base, {"content": "!!!", "encoding": "base64"}), 400, "bad base64")
    check.status(c.post(base, {"content": "x", "encoding": "hex"}), 400, "unknown encoding")
    check(c.get(base).json.get("total") == 3, "refused uploads stored nothing")
    check.status(c.get("/users/%s/storage/%s" % (other, f1)), 404, "file under another user")
    check.status(c.delete("/users/%s/storage/%s" % (other, f1)), 404,
                 "delete under another user")
    check.status(c.get(base + "/" + ZERO), 404, "unknown file")
    check.status(c.get(base + "/nothex"), 400, "bad file id")
    check.status(c.get("/users/%s/storage" % ZERO), 404, "storage of unknown user")
    res = c.delete(base + "/" + f1)
    check.status(res, 200, "delete file")
    check.status(c.get(base + "/" + f1), 404, "deleted file gone")
    check.status(c.delete(base + "/" + f1), 404, "delete twice")
    c.delete(base + "/" + f2)
    c.delete(base + "/" + f3)


# ---- user tokens on every :user route ----

def snapshot(root, uid):
    out = {}
    for path in ("/users/%s" % uid, "/users/%s/filters" % uid, "/users/%s/asps" % uid,
                 "/users/%s/autoreply" % uid, "/users/%s/mailboxes" % uid,
                 "/users/%s/addresses" % uid, "/users/%s/storage" % uid):
        res = root.get(path)
        body = res.json if res.body[:1] == b"{" else res.body
        if isinstance(body, dict):
            body.pop("limits", None)
            for m in body.get("results", []) if isinstance(body.get("results"), list) else []:
                if isinstance(m, dict):
                    m.pop("lastUse", None)
        out[path] = (res.status, json.dumps(body, sort_keys=True, default=str))
    return out


def user_tokens(check, api_bin, stack, uid, other):
    api = ApiServer(api_bin, stack, "--api.accessControl.enabled=true",
                    "--api.accessToken=" + ROOT)
    try:
        root = api.client(ROOT)
        anon = api.client()
        res = anon.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                          "token": True})
        check(res.status == 403 and code(res) == "InvalidToken",
              "authenticate needs a token under access control", repr(res))
        res = root.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                          "token": True})
        token = res.json.get("token", "")
        check(res.status == 200 and len(token) == 40, "user token issued", repr(res))
        user = api.client(token)
        for path in ("/users/me", "/users/%s" % uid, "/users/me/filters", "/users/me/asps",
                     "/users/me/autoreply", "/users/me/authlog", "/users/me/storage",
                     "/users/%s/filters" % uid):
            check.status(user.get(path), 200, "user token reads own " + path)
        res = user.get("/users/me/filters")
        check(res.status == 200 and "limits" in res.json, "me resolves", repr(res))
        res = user.post("/users/me/filters", {"query": {"subject": "mine"},
                                              "action": {"seen": True}})
        check.status(res, 200, "user token writes own filter")
        check(any(f["id"] == res.json.get("id") for f in
                  root.get("/users/%s/filters" % uid).json.get("results", [])),
              "own filter stored")
        res = user.get("/users/me/asps")
        check.status(res, 200, "user token lists own asps")
        # every :user route with the other user's id
        methods = root.get("/api-methods").json.get("methods", [])
        before = snapshot(root, other)
        tried = 0
        for m in methods:
            path = m["path"]
            if ":user" not in path:
                continue
            url = "/".join(other if p == ":user" else (ZERO if p.startswith(":") else p)
                           for p in path.split("/"))
            body = {} if m["method"] in ("POST", "PUT") else None
            res = user.request(m["method"], url, body=body)
            tried += 1
            check(res.status == 403, "user token refused on another user's data",
                  "%s %s -> %r" % (m["method"], url, res))
        check(tried >= 20, "every :user route tried", str(tried))
        check(snapshot(root, other) == before, "other user's data unchanged")
        # the root token works everywhere
        check.status(root.get("/users/%s/filters" % other), 200, "root reads any user")
        check.status(root.get("/api-methods"), 200, "root on meta routes")
        check.status(api.client("f" * 40).get("/users/me"), 403, "unknown user token")
        res = api.client("wrong-token").get("/users/%s" % uid)
        check(res.status == 403 and code(res) == "InvalidToken", "wrong token", repr(res))
        # user tokens are not root: no listings of everyone
        res = user.get("/users")
        check(res.status == 200 and [r["id"] for r in res.json.get("results", [])] == [uid],
              "user token lists only itself", repr(res))
        for path in ("/addresses", "/filters"):
            res = user.get(path)
            owners = {r.get("user") for r in res.json.get("results", [])}
            check(res.status == 200 and owners <= {uid}, "user token lists only its own " + path,
                  repr(res))
            everyone = {r.get("user") for r in root.get(path).json.get("results", [])}
            check(other in everyone or path == "/filters", "root lists everyone's " + path,
                  repr(everyone))
        # DELETE /authenticate revokes the token it came with
        res = root.post("/authenticate", {"username": "alice", "password": "secret-alice",
                                          "token": True})
        second = api.client(res.json.get("token", ""))
        check.status(second.get("/users/me"), 200, "second token works")
        check.status(second.delete("/authenticate"), 200, "revoke token")
        res = second.get("/users/me/filters")
        check(res.status == 403 and code(res) == "InvalidToken", "revoked token refused",
              repr(res))
        check.status(user.get("/users/me/filters"), 200, "first token unaffected")
        # a password change ends older tokens
        res = root.put("/users/%s" % uid, {"password": "new-secret-alice"})
        if res.status == 200:
            res = user.get("/users/me/filters")
            check(res.status == 403 and code(res) == "InvalidToken",
                  "token ended by a password change", repr(res))
            res = root.post("/authenticate", {"username": "alice",
                                              "password": "new-secret-alice", "token": True})
            fresh = api.client(res.json.get("token", ""))
            check.status(fresh.get("/users/me/filters"), 200, "new token after the change")
            root.put("/users/%s" % uid, {"password": "secret-alice"})
            user = api.client(root.post("/authenticate", {
                "username": "alice", "password": "secret-alice", "token": True}).json["token"])
        # enabling a first 2FA method ends older tokens too
        check.status(user.get("/users/me/filters"), 200, "token before 2FA")
        seed = root.post("/users/%s/2fa/totp/setup" % uid, {"issuer": "t"}).json.get("seed", "")
        check.status(root.post("/users/%s/2fa/totp/enable" % uid, {"token": totp(seed)}), 200,
                     "enable totp under access control")
        res = user.get("/users/me/filters")
        check(res.status == 403 and code(res) == "InvalidToken", "token ended by enabling 2FA",
              repr(res))
        root.delete("/users/%s/2fa" % uid)
    finally:
        code_ = api.stop()
        check(code_ == 0, "wd-api (access control) exit code", str(code_))
        check(not api.errors(), "wd-api (access control) log clean", "".join(api.errors()))


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    uid = create_user(stack, "alice")
    other = create_user(stack, "bob")
    api = ApiServer(wd_api, stack)
    server = Server(wd_server, stack, "--lmtp.enabled=true")
    try:
        c = api.client()
        authentication(check, c, uid)
        two_factor(check, c, uid)
        app_passwords(check, c, uid)
        filters(check, c, uid, other)
        filter_on_delivery(check, c, server, uid)
        autoreply(check, c, uid)
        storage(check, c, uid, other)
    finally:
        server.stop()
        code_ = api.stop()
        check(code_ == 0, "wd-api exit code", str(code_))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
    user_tokens(check, wd_api, stack, uid, other)
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

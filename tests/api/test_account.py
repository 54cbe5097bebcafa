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
from apiserver import ApiServer, Check, Server, Stack, skip_without_stack  # noqa: E402

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


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    uid = create_user(stack, "alice")
    create_user(stack, "bob")
    api = ApiServer(wd_api, stack)
    try:
        c = api.client()
        authentication(check, c, uid)
        two_factor(check, c, uid)
        app_passwords(check, c, uid)
    finally:
        code_ = api.stop()
        check(code_ == 0, "wd-api exit code", str(code_))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

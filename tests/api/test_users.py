"""wd-api's users, addresses, forwarded addresses and domain aliases over real
HTTP (WildDuck's users.js, addresses.js, domainaliases.js): every endpoint's
answers and refusals, refused requests changing nothing, a user created over
the API logging in over IMAP to wd-server with the API's password, password
changes and suspension seen by IMAP, LOGOUT ending an IMAP session, and user
tokens (POST /authenticate) limited to their own account."""

import imaplib
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, Conn, Server, Stack, skip_without_stack  # noqa: E402

ROOT = "root-token-for-users-tests"
MISSING = "0123456789abcdef01234567"


def code(res):
    try:
        return res.json.get("code")
    except ValueError:
        return None


def imap_login(port, user, password):
    """True when LOGIN succeeds."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
    try:
        m.login(user, password)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def users_total(c):
    return c.get("/users").json["total"]


def user_doc(c, uid):
    return c.get("/users/" + uid).json


def test_create(check, c, anon):
    before = users_total(c)
    check.status(anon.post("/users", {"username": "x", "password": "p"}), 403, "create without token")
    refused = [
        ({"password": "p"}, "username required"),
        ({"username": "bad name", "password": "p"}, "username grammar"),
        ({"username": "u1", "password": "p", "bogus": 1}, "unknown key"),
        ({"username": "u1", "password": 123}, "password of the wrong type"),
        ({"username": "u1", "password": "p", "address": "a*@example.com"}, "* in address"),
        ({"username": "u1", "password": "p", "targets": ["ftp://x.test"]}, "unknown target type"),
        ({"username": "u1", "password": "p", "metaData": "[1]"}, "metaData not an object"),
        ({"username": "u1", "password": "p", "disabledScopes": ["web"]}, "unknown scope"),
        ({"username": "u1", "password": "p", "spamLevel": 101}, "spamLevel range"),
        ({"username": "u1", "password": "p", "quota": -1}, "negative quota"),
        ({"username": "u1", "password": "$unknown$hash", "hashedPassword": True}, "bad hash"),
        ({"username": "u1", "password": "p", "mailboxes": {"sent": "a//b"}}, "bad mailbox name"),
    ]
    for body, what in refused:
        res = c.post("/users", body)
        check(res.status == 400, what, repr(res))
    res = c.post("/users", {
        "username": "Alice", "password": "alice-pass-1", "address": "alice@example.com",
        "name": "Alice A", "quota": 5000000, "tags": ["Beta", "alpha", "beta", " "],
        "targets": ["fwd@remote.test", "https://hook.test/x"], "metaData": {"k": "v"},
        "internalData": '{"i": 1}', "disabledScopes": ["pop3"], "spamLevel": 30,
        "recipients": 77, "imapMaxConnections": 3, "mailboxes": {"sent": "Saadetud"},
        "fromWhitelist": ["Other@Example.com", "*@wild.test"], "language": "et",
        "retention": 86400000})
    check.status(res, 200, "create alice")
    alice = res.json.get("id", "")
    check(len(alice) == 24, "create returns id", repr(res))
    res = c.post("/users", {"username": "alice", "password": "x"})
    check(res.status == 400 and code(res) == "UserExistsError", "duplicate username", repr(res))
    res = c.post("/users", {"username": "other", "password": "x", "address": "alice@example.com"})
    check(res.status == 400 and code(res) == "AddressExistsError", "duplicate address", repr(res))
    check(users_total(c) == before + 1, "refused creations wrote nothing")
    res = c.post("/users", {"username": "bob", "password": "bob-pass", "address": "bob@old.test"})
    check.status(res, 200, "create bob")
    bob = res.json.get("id")
    hashed = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
    res = c.post("/users", {"username": "carol", "password": hashed, "hashedPassword": True,
                            "emptyAddress": True})
    check.status(res, 200, "create carol with a hashed password, no address")
    carol = res.json.get("id")
    res = c.post("/users", {"username": "dave", "password": False})
    check.status(res, 200, "create dave without a password")
    dave = res.json.get("id")
    return alice, bob, carol, dave


def test_read(check, c, alice, carol, dave):
    u = user_doc(c, alice)
    check(u.get("username") == "alice" and u.get("name") == "Alice A", "user fields", repr(u))
    check(u.get("address") == "alice@example.com", "main address")
    check(u.get("tags") == ["alpha", "Beta"], "tags trimmed, de-duplicated, sorted", repr(u.get("tags")))
    check(u.get("targets") == ["fwd@remote.test", "https://hook.test/x"], "targets", repr(u.get("targets")))
    check(u.get("metaData") == {"k": "v"} and u.get("internalData") == {"i": 1}, "metadata parsed")
    check(u.get("disabledScopes") == ["pop3"], "disabledScopes")
    check(u.get("spamLevel") == 30 and u.get("language") == "et", "spamLevel, language")
    check(u.get("retention") == 86400000, "retention")
    check(u.get("fromWhitelist") == ["other@example.com", "*@wild.test"], "fromWhitelist",
          repr(u.get("fromWhitelist")))
    lim = u.get("limits", {})
    check(lim.get("quota") == {"allowed": 5000000, "used": 0}, "quota limits", repr(lim.get("quota")))
    check(lim.get("recipients", {}).get("allowed") == 77, "recipients limit")
    check(lim.get("forwards", {}).get("allowed") == 2000, "forwards default")
    check(lim.get("imapMaxConnections", {}).get("allowed") == 3, "imapMaxConnections")
    check(lim.get("filters") == {"allowed": 400, "used": 0}, "filters limit", repr(lim.get("filters")))
    check(u.get("hasPasswordSet") is True and u.get("activated") is True and
          u.get("disabled") is False and u.get("suspended") is False, "state flags")
    check(u.get("enabled2fa") == [] and u.get("autoreply") is False, "2fa, autoreply")
    check(user_doc(c, carol).get("address") == "", "emptyAddress")
    check(user_doc(c, dave).get("hasPasswordSet") is False, "password false: none set")
    check.status(c.get("/users/" + MISSING), 404, "unknown user")
    check(code(c.get("/users/" + MISSING)) == "UserNotFound", "UserNotFound code")
    check.status(c.get("/users/zzz"), 400, "malformed user id")
    check.status(c.get("/users/" + alice, query={"bogus": 1}), 400, "unknown query key")
    # resolve
    for name in ("alice", "a.lice", "ALICE"):
        res = c.get("/users/resolve/" + name)
        check(res.status == 200 and res.json.get("id") == alice, "resolve " + name, repr(res))
    check.status(c.get("/users/resolve/nobody"), 404, "resolve unknown")
    check.status(c.get("/users/resolve/alice@example.com"), 404,
                 "resolve takes usernames, not addresses (as WildDuck)")
    check.status(c.get("/users/resolve/bad%20name"), 404, "resolve bad name")


def test_list(check, c, alice):
    res = c.get("/users")
    check.status(res, 200, "list users")
    body = res.json
    check(body.get("total") == 4 and len(body.get("results", [])) == 4, "four users", repr(body))
    check(body.get("page") == 1 and body.get("previousCursor") is False and
          body.get("nextCursor") is False, "one page")
    a = [r for r in body["results"] if r["id"] == alice]
    check(len(a) == 1 and a[0].get("quota") == {"allowed": 5000000, "used": 0} and
          a[0].get("hasPasswordSet") is True and a[0].get("tags") == ["alpha", "Beta"] and
          "metaData" not in a[0], "listing entry", repr(a))
    res = c.get("/users", query={"query": "ALI", "metaData": "true"})
    check(res.json.get("total") == 1 and res.json["results"][0]["id"] == alice and
          res.json["results"][0].get("metaData") == {"k": "v"}, "query and metaData", repr(res))
    check(c.get("/users", query={"query": "example.com"}).json.get("total") == 1,
          "query matches address")
    check(c.get("/users", query={"tags": "BETA,zzz"}).json.get("total") == 1, "tags filter")
    check(c.get("/users", query={"requiredTags": "alpha,zzz"}).json.get("total") == 0,
          "requiredTags filter")
    check(c.get("/users", query={"forward": "hook.test"}).json.get("total") == 1, "forward filter")
    # paging
    seen = []
    res = c.get("/users", query={"limit": 3})
    p1 = res.json
    seen += [r["id"] for r in p1["results"]]
    check(len(p1["results"]) == 3 and p1["nextCursor"] and p1["previousCursor"] is False,
          "first page of 3", repr(p1))
    p2 = c.get("/users", query={"limit": 3, "next": p1["nextCursor"], "page": 2}).json
    seen += [r["id"] for r in p2["results"]]
    check(len(p2["results"]) == 1 and p2["nextCursor"] is False and p2["previousCursor"] and
          p2["page"] == 2, "second page", repr(p2))
    check(len(set(seen)) == 4 and seen == sorted(seen), "pages cover all users in id order")
    p0 = c.get("/users", query={"limit": 3, "previous": p2["previousCursor"], "page": 2}).json
    check([r["id"] for r in p0["results"]] == seen[:3], "previous page", repr(p0))
    check.status(c.get("/users", query={"next": "garbage!"}), 400, "bad cursor")
    check.status(c.get("/users", query={"limit": 0}), 400, "limit 0")
    check.status(c.get("/users", query={"limit": 251}), 400, "limit over 250")


def test_update(check, c, alice, imap_port):
    res = c.put("/users/" + alice, {"name": "Alice B", "spamLevel": 80, "tags": ["x"],
                                     "metaData": {"n": 2}, "quota": 6000000})
    check.status(res, 200, "update settings")
    u = user_doc(c, alice)
    check(u.get("name") == "Alice B" and u.get("spamLevel") == 80 and u.get("tags") == ["x"] and
          u.get("metaData") == {"n": 2} and u["limits"]["quota"]["allowed"] == 6000000,
          "settings updated", repr(u))
    refused = [
        ({}, 400, "NoUpdates", "nothing to update"),
        ({"name": "Z", "bogus": True}, 400, "InputValidationError", "unknown key"),
        ({"name": "Z", "spamLevel": 101}, 400, "InputValidationError", "spamLevel range"),
        ({"name": "Z", "targets": ["nope"]}, 400, "InputValidationError", "bad target"),
        ({"name": "Z", "metaData": "not json"}, 400, "InputValidationError", "bad metaData"),
        ({"name": "Z", "password": "new-pass", "existingPassword": "wrong"}, 403, "AuthFail",
         "wrong existing password"),
    ]
    for body, status, err, what in refused:
        res = c.put("/users/" + alice, body)
        check(res.status == status and code(res) == err, "update refused: " + what, repr(res))
    check(user_doc(c, alice).get("name") == "Alice B", "refused updates changed nothing")
    check(imap_login(imap_port, "alice", "alice-pass-1"), "old password still works")
    check.status(c.put("/users/" + MISSING, {"name": "x"}), 404, "update unknown user")
    # password change by root, seen by IMAP
    res = c.put("/users/" + alice, {"password": "alice-pass-2", "existingPassword": "alice-pass-1"})
    check.status(res, 200, "password change")
    check(imap_login(imap_port, "alice", "alice-pass-2"), "IMAP login with the new password")
    check(not imap_login(imap_port, "alice", "alice-pass-1"), "old password refused")
    # suspension
    check.status(c.put("/users/" + alice, {"suspended": True}), 200, "suspend")
    check(user_doc(c, alice).get("suspended") is True, "suspended flag")
    check(not imap_login(imap_port, "alice", "alice-pass-2"), "suspended user cannot log in")
    check.status(c.put("/users/" + alice, {"suspended": False}), 200, "unsuspend")
    check(imap_login(imap_port, "alice", "alice-pass-2"), "login after unsuspension")
    # disabledScopes imap
    check.status(c.put("/users/" + alice, {"disabledScopes": ["imap"]}), 200, "disable imap")
    check(not imap_login(imap_port, "alice", "alice-pass-2"), "imap scope disabled")
    check.status(c.put("/users/" + alice, {"disabledScopes": []}), 200, "enable imap")
    check(imap_login(imap_port, "alice", "alice-pass-2"), "imap scope enabled again")


def test_logout(check, c, alice, imap_port):
    conn = Conn(imap_port, tls=True)
    _, tagged = conn.cmd("LOGIN alice alice-pass-2")
    check(" OK" in tagged, "IMAP session for logout", tagged)
    _, tagged = conn.cmd("SELECT INBOX")
    check(" OK" in tagged, "SELECT", tagged)
    check.status(c.put("/users/" + alice + "/logout", {"reason": "Bye from test"}), 200, "logout")
    check(conn.closed(10), "IMAP session ended by the LOGOUT event")
    conn.close()
    check.status(c.put("/users/" + MISSING + "/logout", {}), 404, "logout unknown user")
    check.status(c.put("/users/" + alice + "/logout", {"bogus": 1}), 400, "logout unknown key")


def test_quota(check, c, alice, imap_port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", imap_port, ssl_context=ctx, timeout=20)
    m.login("alice", "alice-pass-2")
    msg = b"From: a@b.test\r\nSubject: q\r\n\r\n" + b"x" * 1000 + b"\r\n"
    typ, _ = m.append("INBOX", None, None, msg)
    check(typ == "OK", "APPEND for quota")
    m.logout()
    used = user_doc(c, alice)["limits"]["quota"]["used"]
    check(used >= len(msg), "storageUsed counted by wd-server", str(used))
    res = c.post("/users/" + alice + "/quota/reset", {})
    check.status(res, 200, "quota reset")
    check(res.json.get("storageUsed") == used and res.json.get("previousStorageUsed") == used,
          "recount equals the message sizes", repr(res))
    check.status(c.post("/users/" + MISSING + "/quota/reset", {}), 404, "quota reset unknown user")
    check.status(c.post("/users/zz/quota/reset", {}), 400, "quota reset bad id")
    res = c.post("/quota/reset", {})
    check(res.status == 200 and res.json.get("users") == 4, "quota reset for all users", repr(res))
    check.status(c.post("/quota/reset", {"x": 1}), 400, "quota reset unknown key")


def test_password_reset(check, c, alice, imap_port):
    res = c.post("/users/" + alice + "/password/reset", {})
    check.status(res, 200, "password reset")
    temp = res.json.get("password", "")
    check(len(temp) == 12 and res.json.get("validAfter"), "temporary password", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": temp})
    check(res.status == 200 and res.json.get("requirePasswordChange") is True,
          "temporary password authenticates (master scope)", repr(res))
    check(not imap_login(imap_port, "alice", temp), "temporary password not for IMAP")
    check(imap_login(imap_port, "alice", "alice-pass-2"), "account password still works")
    res = c.post("/users/" + alice + "/password/reset", {"validAfter": "2999-01-01T00:00:00Z"})
    check(res.status == 200 and res.json.get("validAfter", "").startswith("2999-01-01"),
          "reset with validAfter", repr(res))
    res = c.post("/authenticate", {"username": "alice", "password": res.json.get("password")})
    check(res.status == 403, "temporary password before validAfter refused", repr(res))
    check.status(c.post("/users/" + MISSING + "/password/reset", {}), 404, "reset unknown user")
    check.status(c.post("/users/" + alice + "/password/reset", {"validAfter": "nope"}), 400,
                 "reset bad date")


def test_user_token(check, api, c, alice, bob):
    res = c.post("/authenticate", {"username": "alice", "password": "alice-pass-2", "token": True})
    if res.status != 200 or "token" not in res.json:
        check(False, "user token from /authenticate", repr(res))
        return
    u = api.client(res.json["token"])
    res = u.get("/users/me")
    check(res.status == 200 and res.json.get("id") == alice, "user token reads itself", repr(res))
    check("internalData" not in res.json and "tags" not in res.json and
          "disabledScopes" not in res.json, "user token: filtered fields", repr(res.json))
    check.status(u.get("/users/" + bob), 403, "user token cannot read another user")
    check.status(u.put("/users/" + bob, {"name": "x"}), 403, "user token cannot update another")
    res = u.get("/users")
    check(res.status == 200 and [r["id"] for r in res.json.get("results", [])] == [alice],
          "user token lists only itself", repr(res))
    check.status(u.post("/users", {"username": "evil", "password": "x"}), 403, "user token: no create")
    check.status(u.delete("/users/" + bob), 403, "user token: no delete")
    check.status(u.post("/users/me/password/reset", {}), 403, "user token: no password reset")
    check.status(u.get("/domainaliases"), 403, "user token: no domain aliases")
    check.status(u.put("/users/me", {"name": "Own Name"}), 200, "user token updates itself")
    check(user_doc(c, alice).get("name") == "Own Name", "own update stored")
    res = u.put("/users/me", {"password": "alice-pass-3"})
    check(res.status == 400, "own password change needs existingPassword", repr(res))
    res = u.put("/users/me", {"password": "alice-pass-3", "existingPassword": "wrong"})
    check(res.status == 403 and code(res) == "AuthFail", "wrong existingPassword", repr(res))
    res = u.post("/users/me/addresses", {"address": "mine@example.com"})
    check.status(res, 200, "user token adds its own address")
    other = c.post("/authenticate", {"username": "alice", "password": "alice-pass-2",
                                     "token": True}).json.get("token")
    check.status(api.client(other).get("/users/me"), 200, "second token of the same user")
    res = u.put("/users/me", {"password": "alice-pass-3", "existingPassword": "alice-pass-2"})
    check.status(res, 200, "own password change")
    check(u.get("/users/me").status == 200,
          "the token that changed the password goes on (WildDuck's accessToken.update)")
    check(api.client(other).get("/users/me").status == 403,
          "other tokens end with the password change (authVersion)")


def test_addresses(check, c, alice, bob):
    base = "/users/%s/addresses" % alice
    res = c.post(base, {"address": "Al.Ias@Example.com", "name": "Alias", "tags": ["t1"],
                        "metaData": {"m": 1}})
    check.status(res, 200, "add address")
    aid = res.json.get("id")
    refused = [
        ({"address": "a+b@example.com"}, "plus"),
        ({"address": "w*@example.com"}, "wildcard not allowed"),
        ({"address": "*x*@example.com", "allowWildcard": True}, "two wildcards"),
        ({"address": "x*@example.com", "allowWildcard": True, "main": True}, "wildcard main"),
        ({"address": "al.ias@example.com", "x": 1}, "unknown key"),
        ({"address": "noat"}, "no @"),
        ({"address": "z@example.com", "metaData": 5}, "bad metaData"),
    ]
    count = len(c.get(base).json["results"])
    for body, what in refused:
        check.status(c.post(base, body), 400, "add address refused: " + what)
    res = c.post(base, {"address": "alias@example.com"})
    check(res.status == 400 and code(res) == "AddressExistsError", "duplicate addrview", repr(res))
    check(len(c.get(base).json["results"]) == count, "refused additions wrote nothing")
    check.status(c.post("/users/%s/addresses" % MISSING, {"address": "q@example.com"}), 404,
                 "add address to unknown user")
    res = c.post(base, {"address": "*@wild.test", "allowWildcard": True})
    check.status(res, 200, "wildcard address")
    wid = res.json.get("id")
    res = c.get(base)
    check.status(res, 200, "list user addresses")
    rows = {r["address"]: r for r in res.json.get("results", [])}
    # the address keeps its dots (addrview drops them), as WildDuck stores it
    check(rows.get("alice@example.com", {}).get("main") is True and
          rows.get("al.ias@example.com", {}).get("main") is False and
          rows.get("al.ias@example.com", {}).get("name") == "Alias" and
          rows.get("al.ias@example.com", {}).get("tags") == ["t1"], "address rows", repr(rows))
    res = c.get(base + "/" + aid)
    check(res.status == 200 and res.json.get("metaData") == {"m": 1} and
          res.json.get("address") == "al.ias@example.com", "get one address", repr(res))
    check.status(c.get(base + "/" + MISSING), 404, "get unknown address")
    check.status(c.get("/users/%s/addresses/%s" % (bob, aid)), 404, "address of another user")
    check.status(c.get(base + "/xyz"), 400, "bad address id")
    # update
    main_id = rows["alice@example.com"]["id"]
    check.status(c.put(base + "/" + aid, {"main": False}), 400, "cannot unset main")
    res = c.put(base + "/" + wid, {"main": True})
    check(res.status == 400 and code(res) == "WildcardNotPermitted", "wildcard as main", repr(res))
    res = c.put(base + "/" + wid, {"address": "other@wild.test"})
    check(res.status == 400 and code(res) == "ChangeNotAllowed", "rename wildcard", repr(res))
    res = c.put(base + "/" + aid, {"address": "alice@example.com"})
    check(res.status == 400 and code(res) == "AddressExistsError", "rename onto existing", repr(res))
    check(c.get(base + "/" + aid).json.get("address") == "al.ias@example.com",
          "refused rename changed nothing")
    res = c.put(base + "/" + aid, {"address": "alias2@example.com", "name": "New", "main": True})
    check.status(res, 200, "rename and make main")
    check(user_doc(c, alice).get("address") == "alias2@example.com", "main address moved")
    check.status(c.put(base + "/" + main_id, {"main": True}), 200, "main back")
    check(user_doc(c, alice).get("address") == "alice@example.com", "main address back")
    check.status(c.put(base + "/" + MISSING, {"name": "x"}), 404, "update unknown address")
    # delete
    res = c.delete(base + "/" + main_id)
    check(res.status == 400 and code(res) == "NotPermitted", "cannot delete main", repr(res))
    check.status(c.delete(base + "/" + wid), 200, "delete wildcard address")
    check.status(c.get(base + "/" + wid), 404, "deleted address gone")
    check.status(c.delete(base + "/" + wid), 404, "delete again")
    # listing and resolve
    res = c.get("/addresses")
    check(res.status == 200 and res.json.get("total", 0) >= 4, "list all addresses", repr(res))
    addrs = [r["address"] for r in res.json["results"]]
    check(addrs == sorted(addrs, key=lambda a: a.replace(".", "")), "addrview order", repr(addrs))
    res = c.get("/addresses", query={"query": "alias2"})
    check(res.json.get("total") == 1 and res.json["results"][0]["user"] == alice, "address query")
    p1 = c.get("/addresses", query={"limit": 2}).json
    p2 = c.get("/addresses", query={"limit": 2, "next": p1["nextCursor"]}).json
    check(len(p1["results"]) == 2 and p2["results"] and
          p2["results"][0]["address"] not in [r["address"] for r in p1["results"]],
          "address paging", repr((p1, p2)))
    res = c.get("/addresses/resolve/ALIAS2@example.com")
    check(res.status == 200 and res.json.get("user") == alice and res.json.get("id") == aid,
          "resolve address", repr(res))
    check(c.get("/addresses/resolve/" + aid).json.get("user") == alice, "resolve by id")
    check.status(c.get("/addresses/resolve/nobody@example.com"), 404, "resolve unknown")
    c.post(base, {"address": "*@catch.test", "allowWildcard": True})
    check.status(c.get("/addresses/resolve/any@catch.test"), 404, "wildcard needs allowWildcard")
    res = c.get("/addresses/resolve/any@catch.test", query={"allowWildcard": "true"})
    check(res.status == 200 and res.json.get("address") == "*@catch.test", "wildcard resolve",
          repr(res))
    # address register
    res = c.get("/users/%s/addressregister" % alice, query={"query": "fr"})
    check(res.status == 200 and res.json.get("results") == [], "empty address register", repr(res))
    check.status(c.get("/users/%s/addressregister" % alice), 400, "addressregister needs query")
    check.status(c.get("/users/%s/addressregister" % MISSING, query={"query": "a"}), 404,
                 "addressregister unknown user")
    return aid


def test_forwarded(check, c, alice):
    res = c.post("/addresses/forwarded", {
        "address": "fwd@example.com", "name": "Fwd", "targets": ["t1@remote.test",
                                                                  "smtp://mx.remote.test:25",
                                                                  "alias2@example.com"],
        "forwards": 50, "autoreply": {"status": True, "subject": "Away", "text": "Gone"},
        "tags": ["f"]})
    check.status(res, 200, "create forwarded")
    fid = res.json.get("id")
    refused = [
        ({"address": "self@example.com", "targets": ["se.lf@example.com"]}, "forward to self"),
        ({"address": "x@example.com", "targets": ["gopher://x"]}, "unknown target type"),
        ({"address": "x+y@example.com", "targets": []}, "plus"),
        ({"address": "x@example.com", "autoreply": {"bogus": 1}}, "bad autoreply key"),
        ({"address": "x@example.com", "autoreply": {"start": "never"}}, "bad autoreply date"),
        ({"targets": ["a@b.test"]}, "address required"),
    ]
    total = c.get("/addresses").json["total"]
    for body, what in refused:
        check.status(c.post("/addresses/forwarded", body), 400, "forwarded refused: " + what)
    res = c.post("/addresses/forwarded", {"address": "alice@example.com", "targets": ["a@b.test"]})
    check(res.status == 400 and code(res) == "AddressExistsError", "forwarded duplicate", repr(res))
    check(c.get("/addresses").json["total"] == total, "refused forwarded wrote nothing")
    res = c.get("/addresses/forwarded/" + fid)
    body = res.json
    check(res.status == 200 and body.get("targets") == ["t1@remote.test", "smtp://mx.remote.test:25",
                                                        "alias2@example.com"] and
          body.get("limits", {}).get("forwards", {}).get("allowed") == 50 and
          body.get("autoreply", {}).get("subject") == "Away" and
          body.get("autoreply", {}).get("status") is True and body.get("tags") == ["f"] and
          body.get("forwardedDisabled") is False and body.get("name") == "Fwd",
          "get forwarded", repr(body))
    res = c.get("/addresses/resolve/fwd@example.com")
    check(res.status == 200 and res.json.get("targets") and "user" not in res.json,
          "resolve forwarded", repr(res))
    res = c.put("/addresses/forwarded/" + fid, {"targets": ["t2@remote.test"],
                                                "forwardedDisabled": True,
                                                "autoreply": {"status": False}})
    check.status(res, 200, "update forwarded")
    body = c.get("/addresses/forwarded/" + fid).json
    check(body.get("targets") == ["t2@remote.test"] and body.get("forwardedDisabled") is True and
          body.get("autoreply", {}).get("status") is False and
          body.get("autoreply", {}).get("subject") == "Away", "forwarded updated", repr(body))
    res = c.put("/addresses/forwarded/" + fid, {"targets": ["fwd@example.com"]})
    check.status(res, 400, "update forwarded: forward to self")
    res = c.put("/addresses/forwarded/" + fid, {"address": "Alice@example.com"})
    check(res.status == 400 and code(res) == "AddressExistsError", "forwarded rename onto existing",
          repr(res))
    check(c.get("/addresses/forwarded/" + fid).json.get("targets") == ["t2@remote.test"],
          "refused update changed nothing")
    user_addr = c.get("/users/%s/addresses" % alice).json["results"][0]["id"]
    check.status(c.get("/addresses/forwarded/" + user_addr), 404, "user address is not forwarded")
    check.status(c.put("/addresses/forwarded/" + user_addr, {"name": "x"}), 404,
                 "update a user address as forwarded")
    check.status(c.delete("/addresses/forwarded/" + user_addr), 404,
                 "delete a user address as forwarded")
    check.status(c.get("/addresses/forwarded/nothex"), 400, "forwarded bad id")
    check.status(c.delete("/addresses/forwarded/" + fid), 200, "delete forwarded")
    check.status(c.get("/addresses/forwarded/" + fid), 404, "deleted forwarded gone")


def test_rename_domain(check, c, bob):
    check.status(c.put("/addresses/renameDomain", {"oldDomain": "old.test"}), 400,
                 "renameDomain needs newDomain")
    res = c.put("/addresses/renameDomain", {"oldDomain": "old.test", "newDomain": "New.Test"})
    check(res.status == 200 and res.json.get("modifiedAddresses") == 1 and
          res.json.get("modifiedUsers") == 1, "renameDomain", repr(res))
    check(user_doc(c, bob).get("address") == "bob@new.test", "main address renamed")
    check.status(c.get("/addresses/resolve/bob@new.test"), 200, "renamed address resolves")
    res = c.put("/addresses/renameDomain", {"oldDomain": "none.test", "newDomain": "x.test"})
    check(res.status == 200 and res.json.get("modifiedAddresses") == 0, "renameDomain no match")


def test_domainaliases(check, c, alice):
    res = c.post("/domainaliases", {"alias": "Alias.Test", "domain": "example.com"})
    check.status(res, 200, "create domain alias")
    did = res.json.get("id")
    res = c.post("/domainaliases", {"alias": "alias.test", "domain": "other.test"})
    check(res.status == 400 and code(res) == "AliasExists", "duplicate alias", repr(res))
    check.status(c.post("/domainaliases", {"alias": "a.test"}), 400, "alias needs domain")
    check.status(c.post("/domainaliases", {"alias": "a.test", "domain": "b.test", "z": 1}), 400,
                 "alias unknown key")
    c.post("/domainaliases", {"alias": "second.test", "domain": "example.com"})
    res = c.get("/domainaliases")
    check(res.status == 200 and res.json.get("total") == 2 and
          [r["alias"] for r in res.json["results"]] == ["alias.test", "second.test"],
          "list aliases", repr(res))
    check(c.get("/domainaliases", query={"query": "second"}).json.get("total") == 1, "alias query")
    p1 = c.get("/domainaliases", query={"limit": 1}).json
    p2 = c.get("/domainaliases", query={"limit": 1, "next": p1["nextCursor"]}).json
    check(p1["results"][0]["alias"] == "alias.test" and p2["results"][0]["alias"] == "second.test"
          and p2["nextCursor"] is False, "alias paging", repr((p1, p2)))
    res = c.get("/domainaliases/resolve/ALIAS.test")
    check(res.status == 200 and res.json.get("id") == did, "resolve alias", repr(res))
    check.status(c.get("/domainaliases/resolve/none.test"), 404, "resolve unknown alias")
    res = c.get("/domainaliases/" + did)
    check(res.status == 200 and res.json.get("alias") == "alias.test" and
          res.json.get("domain") == "example.com" and res.json.get("created"), "get alias", repr(res))
    res = c.get("/addresses/resolve/alice@alias.test")
    check(res.status == 200 and res.json.get("user") == alice, "address through alias", repr(res))
    check.status(c.get("/domainaliases/" + MISSING), 404, "get unknown alias")
    check.status(c.get("/domainaliases/xyz"), 400, "bad alias id")
    check.status(c.delete("/domainaliases/" + did), 200, "delete alias")
    check.status(c.get("/domainaliases/" + did), 404, "deleted alias gone")
    check.status(c.delete("/domainaliases/" + did), 404, "delete alias again")
    check.status(c.get("/addresses/resolve/alice@alias.test"), 404, "alias no longer resolves")


def test_delete(check, c, bob, imap_port):
    check(imap_login(imap_port, "bob", "bob-pass"), "bob logs in before deletion")
    res = c.delete("/users/" + bob)
    check(res.status == 200 and res.json.get("code") == "TaskScheduled" and
          res.json.get("addresses", {}).get("deleted") == 1, "delete user", repr(res))
    check.status(c.get("/users/" + bob), 404, "deleted user gone")
    check.status(c.get("/addresses/resolve/bob@new.test"), 404, "deleted user's address gone")
    check(not imap_login(imap_port, "bob", "bob-pass"), "deleted user cannot log in")
    check.status(c.delete("/users/" + bob), 404, "delete again")
    check.status(c.delete("/users/nothex"), 400, "delete bad id")


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    api = ApiServer(wd_api, stack, "--api.accessToken=" + ROOT)
    server = None
    try:
        c = api.client(ROOT)
        anon = api.client()
        alice, bob, carol, dave = test_create(check, c, anon)
        server = Server(wd_server, stack)
        check(imap_login(server.port, "alice", "alice-pass-1"),
              "user created over the API logs in over IMAP")
        check(imap_login(server.port, "alice@example.com", "alice-pass-1"), "login by address")
        check(not imap_login(server.port, "alice", "wrong"), "wrong password refused")
        check(imap_login(server.port, "carol", "password"), "hashed password from the API works")
        test_read(check, c, alice, carol, dave)
        test_list(check, c, alice)
        test_update(check, c, alice, server.port)
        test_logout(check, c, alice, server.port)
        test_quota(check, c, alice, server.port)
        test_password_reset(check, c, alice, server.port)
        test_addresses(check, c, alice, bob)
        test_forwarded(check, c, alice)
        test_rename_domain(check, c, bob)
        test_domainaliases(check, c, alice)
        test_user_token(check, api, c, alice, bob)
        test_delete(check, c, bob, server.port)
    finally:
        if server is not None:
            code_ = server.stop()
            check(code_ == 0, "wd-server exit code", str(code_))
        code_ = api.stop()
        check(code_ == 0, "wd-api exit code", str(code_))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
        stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

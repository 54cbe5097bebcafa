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
        mailboxes(check, c, uid, uid2)
    finally:
        server.stop()
        code = api.stop()
        check(code == 0, "wd-api exit code", str(code))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

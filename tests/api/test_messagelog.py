"""The message log (WildDuck 1.x) over real HTTP and a real LMTP delivery:
GET /users/:user/mailboxes/:mailbox/messages/:message/events (getMessageEvents)
shows the STORE entry delivery wrote, the FORWARD of a filter's targets and
the AUTOREPLY, all tied to the stored message; a message that did not come
through delivery has no events; bad ids and other users' messages are
refused."""

import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import ApiServer, Check, Server, Stack, skip_without_stack  # noqa: E402

ZERO = "000000000000000000000000"

MESSAGE = ("From: Sender <sender@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
           "Message-ID: <{mid}@example.org>\r\n{extra}\r\nHello.\r\n")


def code(res):
    try:
        return res.json.get("code")
    except ValueError:
        return None


def lmtp_send(port, to, subject, mid, extra=""):
    """One LMTP transaction to one recipient: the DATA reply (code, text)."""
    raw = MESSAGE.format(to=to, subject=subject, mid=mid, extra=extra).encode()
    with smtplib.LMTP("127.0.0.1", port) as lmtp:
        lmtp.ehlo_or_helo_if_needed()
        lmtp.mail("sender@example.org")
        lmtp.rcpt(to)
        c, text = lmtp.data(raw)
    return c, text.decode(errors="replace")


def create_user(check, c, name):
    res = c.post("/users", {"username": name, "password": "secret-" + name,
                            "address": name + "@example.com"})
    check.status(res, 200, "create user " + name)
    return res.json.get("id", ZERO)


def inbox_of(c, uid):
    res = c.get("/users/%s/mailboxes" % uid)
    return {m["path"]: m["id"] for m in res.json["results"]}["INBOX"]


def uid_by_subject(c, uid, mailbox):
    res = c.get("/users/%s/mailboxes/%s/messages" % (uid, mailbox), query={"limit": 100})
    return {m["subject"]: m["id"] for m in res.json.get("results", [])}


def events(c, uid, mailbox, msg):
    return c.get("/users/%s/mailboxes/%s/messages/%s/events" % (uid, mailbox, msg))


def delivered(check, c, server, carol):
    port = server.ports["lmtp"]
    res = c.post("/users/%s/filters" % carol,
                 {"query": {"subject": "forward me"},
                  "action": {"targets": ["fwd@example.net"]}})
    check.status(res, 200, "forwarding filter")
    res = c.put("/users/%s/autoreply" % carol, {"status": True, "subject": "Away",
                                                "text": "Back soon"})
    check.status(res, 200, "autoreply on")

    status, text = lmtp_send(port, "carol@example.com", "please forward me", "m1")
    check(status == 250 and "stored as" in text, "first delivery stored", text)
    stored1 = text.split()[-1]
    status, text = lmtp_send(port, "carol@example.com", "just stored", "m2")
    check(status == 250, "second delivery stored", text)
    stored2 = text.split()[-1]
    received = ("Received: from mx.example.net (mx.example.net [192.0.2.7])\r\n"
                "\tby mail.example.com with ESMTPS id 18c0ffee42a-queue\r\n"
                "\tfor <carol@example.com>;\r\n"
                "\tMon, 01 Jan 2024 10:00:00 +0000\r\n")
    status, text = lmtp_send(port, "carol@example.com", "relayed", "m3", extra=received)
    check(status == 250, "third delivery stored", text)
    stored3 = text.split()[-1]

    inbox = inbox_of(c, carol)
    uids = uid_by_subject(c, carol, inbox)
    check(len(uids) == 3, "three messages in INBOX", repr(uids))
    check(stored1 != stored2 != stored3, "three stored copies", text)
    msg = c.get("/users/%s/mailboxes/%s/messages/%d" % (carol, inbox,
                                                          uids.get("please forward me", 0))).json
    outbound = [o.get("queueId") for o in msg.get("outbound") or []]
    check(len(outbound) == 2, "forward and autoreply queued", repr(msg.get("outbound")))

    # the forwarded one: STORE, FORWARD, AUTOREPLY in that order
    res = events(c, carol, inbox, uids.get("please forward me", 0))
    check.status(res, 200, "events of the forwarded message")
    body = res.json
    check(body.get("success") is True and body.get("id") == stored1, "events answer id",
          repr(body)[:300])
    evs = body.get("events", [])
    actions = [e.get("action") for e in evs]
    check(actions == ["STORE", "FORWARD", "AUTOREPLY"], "events in time order", repr(actions))
    by = {e.get("action"): e for e in evs}
    st = by.get("STORE", {})
    check(st.get("id") == stored1 and st.get("stored") == stored1,
          "STORE keyed by the message id without a queue id", repr(st))
    check(st.get("origin") == "127.0.0.1", "STORE origin is the LMTP client", repr(st))
    check(st.get("messageId") == "<m1@example.org>" and st.get("from") == "sender@example.org"
          and st.get("to") == ["carol@example.com"] and st.get("transtype") == "LMTP",
          "STORE message-id, from, to, transtype", repr(st))
    check(isinstance(st.get("time"), str) and st.get("time", "").endswith("Z"),
          "STORE time is a date", repr(st.get("time")))
    check("targets" not in st and "src" not in st, "absent fields left out", repr(st))
    fw = by.get("FORWARD", {})
    check(len(outbound) > 0 and fw.get("id") == outbound[0] and fw.get("stored") == stored1,
          "FORWARD keyed by its queue id, pointing at the stored copy",
          repr(fw) + repr(outbound))
    check(fw.get("targets") == [{"type": "mail", "value": "fwd@example.net"}],
          "FORWARD targets", repr(fw.get("targets")))
    check(fw.get("from") == "sender@example.org" and fw.get("to") == ["carol@example.com"],
          "FORWARD from and to", repr(fw))
    ar = by.get("AUTOREPLY", {})
    check(len(outbound) > 1 and ar.get("id") == outbound[-1] and ar.get("stored") == stored1 and
          ar.get("to") == ["sender@example.org"] and ar.get("from") == "",
          "AUTOREPLY to the sender", repr(ar) + repr(outbound))

    # not forwarded, no second autoreply within the interval: STORE only
    res = events(c, carol, inbox, uids.get("just stored", 0))
    evs = res.json.get("events", [])
    check(res.status == 200 and res.json.get("id") == stored2 and
          [e.get("action") for e in evs] == ["STORE"] and evs[0].get("stored") == stored2 and
          evs[0].get("messageId") == "<m2@example.org>",
          "plain delivery: one STORE found by parentId", repr(res))

    # a Received: header with a queue id keys the STORE entry (meta.queueId)
    res = events(c, carol, inbox, uids.get("relayed", 0))
    evs = res.json.get("events", [])
    check(len(evs) == 1 and evs[0].get("id") == "18c0ffee42a-queue" and
          evs[0].get("stored") == stored3 and evs[0].get("transtype") == "ESMTPS",
          "STORE keyed by the Received: queue id", repr(res))
    check(evs and evs[0].get("origin") == "mx.example.net", "STORE origin from Received:",
          repr(evs))
    return inbox, uids


def refused(check, c, carol, dave, inbox, uids):
    uid1 = uids.get("please forward me", 0)
    base = "/users/%s/mailboxes/%s/messages" % (carol, inbox)
    res = events(c, dave, inbox, uid1)
    check(res.status == 404 and code(res) == "NoSuchMessage", "another user's message",
          repr(res))
    dave_inbox = inbox_of(c, dave)
    res = events(c, dave, dave_inbox, uid1)
    check(res.status == 404 and code(res) == "NoSuchMessage", "uid not in the user's mailbox",
          repr(res))
    res = events(c, carol, dave_inbox, uid1)
    check(res.status == 404 and code(res) == "NoSuchMessage", "another user's mailbox",
          repr(res))
    res = events(c, carol, ZERO, uid1)
    check(res.status == 404 and code(res) == "NoSuchMessage", "unknown mailbox", repr(res))
    res = events(c, carol, inbox, 999999)
    check(res.status == 404 and code(res) == "NoSuchMessage", "unknown message", repr(res))
    res = events(c, ZERO, inbox, uid1)
    check(res.status == 404 and code(res) == "UserNotFound", "unknown user", repr(res))
    for what, path in (("malformed user", "/users/zzz/mailboxes/%s/messages/%d/events"
                        % (inbox, uid1)),
                       ("malformed mailbox", base.replace(inbox, "12345") + "/%d/events" % uid1),
                       ("uid 0", base + "/0/events"),
                       ("uid not a number", base + "/abc/events"),
                       ("uid too large", base + "/4294967296/events"),
                       ("unknown query key", base + "/%d/events?bogus=1" % uid1)):
        res = c.get(path)
        check(res.status == 400 and code(res) == "InputValidationError", what, repr(res))
    check.status(c.post(base + "/%d/events" % uid1, {}), 405, "POST not allowed")
    # nothing changed by the refusals
    res = events(c, carol, inbox, uid1)
    check(len(res.json.get("events", [])) == 3, "events unchanged", repr(res))


def uploaded(check, c, dave):
    inbox = inbox_of(c, dave)
    raw = MESSAGE.format(to="dave@example.com", subject="uploaded", mid="up1", extra="")
    res = c.post("/users/%s/mailboxes/%s/messages" % (dave, inbox), raw=raw)
    check.status(res, 200, "upload")
    uid = res.json.get("message", {}).get("id", 0)
    res = events(c, dave, inbox, uid)
    check(res.status == 200 and res.json.get("events") == [] and
          isinstance(res.json.get("id"), str) and len(res.json.get("id")) == 24,
          "uploaded message: no events", repr(res))


def documented(check, c):
    doc = c.get("/openapi.json").json
    op = doc.get("paths", {}).get(
        "/users/{user}/mailboxes/{mailbox}/messages/{message}/events", {}).get("get", {})
    check(op.get("operationId") == "getMessageEvents", "route in openapi.json", repr(op)[:300])
    params = {p.get("name"): p for p in op.get("parameters", [])}
    check(set(params) >= {"user", "mailbox", "message"} and
          all(params[n].get("description") for n in ("user", "mailbox", "message")),
          "parameters described", repr(params)[:300])


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    check = Check()
    api = ApiServer(wd_api, stack)
    server = Server(wd_server, stack, "--lmtp.enabled=true")
    try:
        c = api.client()
        carol = create_user(check, c, "carol")
        dave = create_user(check, c, "dave")
        inbox, uids = delivered(check, c, server, carol)
        refused(check, c, carol, dave, inbox, uids)
        uploaded(check, c, dave)
        documented(check, c)
    finally:
        server.stop()
        code_ = api.stop()
        check(code_ == 0, "wd-api exit code", str(code_))
        check(not api.errors(), "wd-api log clean", "".join(api.errors()))
        check(not [l for l in server.log if "message log" in l],
              "no message log warnings", "".join(server.log[-20:]))
    stack.cleanup()
    check.done()


if __name__ == "__main__":
    main()

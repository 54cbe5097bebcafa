"""Several instances on one stack (issue 11, "MongoDB at scale"): three
wd-server processes and two wd-api processes on the same database and
Redis, on ports of their own, with the clients spread over them. What one
instance writes, every other one reads at once and announces:

- LMTP deliveries through server 1 reach an IDLE session on server 2 and
  the message list of api 2;
- APPENDs racing through all three servers into one mailbox get distinct
  UIDs, every one listed by each server in the same order, and the counters
  of both APIs agree;
- flags stored through server 3 are seen by api 1's unseen counter and by
  the IDLE session on server 2; a message uploaded through api 1 is fetched
  byte-identical through server 3;
- an expunge through server 1 reaches the EventSource stream of api 2 and
  POP3 on server 3;
- the second user's mailbox stays empty on every instance.

usage: test_multi_instance.py WD_SERVER WD_API WDCTL   (exit 77 without the stack)"""

import imaplib
import os
import poplib
import re
import smtplib
import ssl
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "api"))
from imapserver import Conn, Results, Server, Stack, check, skip_without_stack  # noqa: E402
from apiserver import ApiServer, EventStream  # noqa: E402

PASSWORD = "multi instance pass"
DOMAIN = "multi.example"
PLAIN = ["--imap.secure=false", "--imap.insecureAuth=true", "--pop3.secure=false",
         "--pop3.insecureAuth=true"]


def message(i, tag):
    return (b"From: sender@example.com\r\nTo: alice@%s\r\nSubject: %s %d\r\n"
            b"Message-ID: <%s-%d@example.com>\r\n\r\nbody of %s %d\r\n"
            % (DOMAIN.encode(), tag.encode(), i, tag.encode(), i, tag.encode(), i))


def imap(port):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    check(m.login("alice", PASSWORD)[0] == "OK", "login on %d" % port)
    return m


def idle_session(port):
    c = Conn(port)
    _, ok = c.cmd('LOGIN alice "%s"' % PASSWORD)
    check(" OK " in ok, ok)
    lines, ok = c.cmd("SELECT INBOX")
    check(" OK " in ok, ok)
    c.send("I1 IDLE\r\n")
    check(c.line().startswith("+"), "IDLE continuation")
    return c


def idle_wait(c, pattern, timeout=10):
    """Lines from an IDLE session until one matches (None after timeout)."""
    end = time.time() + timeout
    c.sock.settimeout(1)
    while time.time() < end:
        try:
            line = c.line()
        except OSError:  # socket.timeout: keep waiting
            continue
        if re.search(pattern, line):
            return line
    return None


def uids(port):
    m = imap(port)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("SEARCH", None, "ALL")
    m.logout()
    return [int(x) for x in data[0].split()]


class Cluster:
    def __init__(self, wd_server, wd_api, stack):
        self.servers = [Server(wd_server, stack, *PLAIN, "--lmtp.enabled=true")]
        self.servers += [Server(wd_server, stack, *PLAIN) for _ in range(2)]
        self.apis = [ApiServer(wd_api, stack) for _ in range(2)]
        ports = [s.port for s in self.servers] + [a.port for a in self.apis]
        check(len(set(ports)) == 5, "five instances on five ports: %r" % ports)
        self.alice = self.apis[0].client().get("/users/resolve/alice").json["id"]
        self.bob = self.apis[1].client().get("/users/resolve/bob").json["id"]

    def inbox(self, api_index, user=None):
        c = self.apis[api_index].client()
        user = user or self.alice
        res = c.get("/users/%s/mailboxes" % user, query={"counters": "true"}).json
        return next(m for m in res["results"] if m["path"] == "INBOX")

    def stop(self):
        for s in self.servers + self.apis:
            s.stop()


def t_lmtp_reaches_idle_and_api(cl):
    watcher = idle_session(cl.servers[1].port)
    with smtplib.LMTP("127.0.0.1", cl.servers[0].ports["lmtp"]) as lmtp:
        for i in range(5):
            refused = lmtp.sendmail("sender@example.com", ["alice@" + DOMAIN], message(i, "lmtp"))
            check(refused == {}, refused)
    check(idle_wait(watcher, r"^\* 5 EXISTS") is not None, "server 2 IDLE saw 5 EXISTS")
    watcher.close()
    inbox = cl.inbox(1)
    res = cl.apis[1].client().get("/users/%s/mailboxes/%s/messages" % (cl.alice, inbox["id"])).json
    subjects = sorted(m["subject"] for m in res["results"])
    check(subjects == sorted("lmtp %d" % i for i in range(5)), "api 2 lists them: %r" % subjects)


def t_racing_appends(cl):
    per_server = 15
    appended = {i: [] for i in range(3)}
    errors = []

    def run(index):
        try:
            m = imap(cl.servers[index].port)
            for i in range(per_server):
                typ, data = m.append("INBOX", None, None, message(i, "race%d" % index))
                found = re.search(rb"APPENDUID \d+ (\d+)", data[0])
                if typ != "OK" or not found:
                    errors.append((index, typ, data))
                    continue
                appended[index].append(int(found.group(1)))
            m.logout()
        except Exception as e:  # reported below
            errors.append((index, repr(e)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    check(not errors, "appends failed: %r" % errors[:3])
    every = sorted(u for v in appended.values() for u in v)
    check(len(every) == 3 * per_server and len(set(every)) == len(every),
          "distinct APPENDUIDs: %r" % every)
    listed = [uids(s.port) for s in cl.servers]
    check(listed[0] == listed[1] == listed[2], "three servers list the same UIDs")
    check(set(every) <= set(listed[0]) and len(listed[0]) == 5 + 3 * per_server,
          "every appended UID listed, %d in all" % len(listed[0]))
    check(listed[0] == sorted(listed[0]), "ascending")
    counts = [(cl.inbox(i)["total"], cl.inbox(i)["unseen"]) for i in range(2)]
    check(counts[0] == counts[1] == (5 + 3 * per_server, 5 + 3 * per_server),
          "both APIs count %r" % counts)


def t_flags_and_upload_across(cl):
    watcher = idle_session(cl.servers[1].port)
    m = imap(cl.servers[2].port)
    m.select("INBOX")
    typ, _ = m.store("1:*", "+FLAGS.SILENT", "(\\Seen)")
    check(typ == "OK", "STORE on server 3")
    check(idle_wait(watcher, r"^\* \d+ FETCH \(.*\\Seen") is not None, "server 2 IDLE saw \\Seen")
    check(cl.inbox(0)["unseen"] == 0, "api 1 unseen 0 after server 3's STORE")
    raw = message(99, "uploaded")
    inbox = cl.inbox(0)
    res = cl.apis[0].client().post("/users/%s/mailboxes/%s/messages" % (cl.alice, inbox["id"]),
                                   raw=raw)
    check(res.status == 200, "upload through api 1: %r" % res)
    uid = res.json["message"]["id"]
    check(idle_wait(watcher, r"^\* %d EXISTS" % (inbox["total"] + 1)) is not None,
          "server 2 IDLE saw the upload")
    watcher.close()
    m.noop()  # server 3's session learns of the new message
    typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
    body = next(d[1] for d in data if isinstance(d, tuple))
    check(body == raw, "server 3 fetches api 1's upload byte-identical")
    m.logout()


def t_expunge_reaches_stream_and_pop3(cl):
    inbox = cl.inbox(1)
    stream = EventStream(cl.apis[1].port, "/users/%s/updates" % cl.alice)
    check(stream.status == 200, "stream on api 2")
    stream.next_event(10)  # the first comment or event: the stream is live
    m = imap(cl.servers[0].port)
    m.select("INBOX")
    m.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    typ, data = m.expunge()
    check(typ == "OK" and data[0] == b"1", "EXPUNGE on server 1: %r" % data)
    m.logout()
    event = stream.wait_for(lambda e: e.get("data", {}).get("command") == "EXPUNGE", 10)
    check(event is not None and event["data"].get("mailbox") == inbox["id"],
          "api 2 stream got the EXPUNGE: %r" % event)
    pop = poplib.POP3("127.0.0.1", cl.servers[2].ports["pop3"], timeout=30)
    pop.user("alice")
    pop.pass_(PASSWORD)
    count, _ = pop.stat()
    check(count == inbox["total"] - 1, "POP3 on server 3 counts %d, expected %d"
          % (count, inbox["total"] - 1))
    pop.quit()


def t_other_user_untouched(cl):
    for i in range(2):
        inbox = cl.inbox(i, cl.bob)
        check(inbox["total"] == 0, "bob's INBOX empty on api %d" % (i + 1))
    for s in cl.servers:
        m = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
        m.login("bob", PASSWORD)
        typ, data = m.select("INBOX", readonly=True)
        check(data[0] == b"0", "bob's INBOX empty on server %d" % s.port)
        m.logout()


def main():
    skip_without_stack()
    wd_server, wd_api, wdctl = sys.argv[1:4]
    stack = Stack(wdctl)
    stack.run_wdctl("user", "create", "alice", "--address", "alice@" + DOMAIN,
                    "--password", PASSWORD)
    stack.run_wdctl("user", "create", "bob", "--address", "bob@" + DOMAIN,
                    "--password", PASSWORD)
    results = Results()
    cl = Cluster(wd_server, wd_api, stack)
    try:
        for name, fn in (("LMTP on 1 → IDLE on 2, api 2", t_lmtp_reaches_idle_and_api),
                         ("APPENDs racing through 1, 2, 3", t_racing_appends),
                         ("flags on 3, upload on api 1", t_flags_and_upload_across),
                         ("EXPUNGE on 1 → stream on api 2, POP3 on 3", t_expunge_reaches_stream_and_pop3),
                         ("bob untouched everywhere", t_other_user_untouched)):
            results.run(name, fn, cl)
    finally:
        cl.stop()
        stack.cleanup()
    results.exit()


if __name__ == "__main__":
    main()

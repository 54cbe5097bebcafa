"""The two-account world of the isolation tests (suite `isolation`).

wd-api (access control on, a root token) and wd-server (IMAP, POP3, LMTP on
loopback) run on a database of their own on the test stack. Through the API:

  A  "alice"      alice@example.com, a catch-all *@shared.test, mailboxes
                  INBOX (2 messages) and "Shared" (1 message, UID 1)
  B  MARK         MARK@example.com, MARK@shared.test, MARK@bücher.test;
                  INBOX (3 messages, one \\Flagged, one \\Seen), "Shared"
                  (5 messages, UIDs 1-5: the same name and UIDs that A has
                  and more), MARK_BOX (2 messages), subscriptions
  C  "carol"      disabled;  D "dave" suspended;  E "erin": disabledScopes
                  imap;  a forwarded address fwd@example.com

Everything of B's carries the marker MARK ("zqxbob") in its subject, body,
mailbox name or address; A's carry "alicemark". A response to A that holds
MARK although the request did not name it is a leak.

B's state is read by snapshot(): B's own IMAP session lists every mailbox
(subscribed or not), and for each the STATUS counters, HIGHESTMODSEQ, and
every message's UID, FLAGS, MODSEQ, size and a digest of its bytes, plus the
quota root. Tests compare it before and after each group of attempts."""

import base64
import hashlib
import os
import re
import smtplib
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients"))
sys.path.insert(0, os.path.join(HERE, "..", "api"))
from imapserver import Conn, Server, Stack, skip_without_stack  # noqa: E402,F401
from apiserver import ApiServer  # noqa: E402

ROOT = "root-token-for-isolation"
MARK = "zqxbob"
MARK_BOX = "ZqxbobOnly"
A_PASS = "secret-alice"
B_PASS = "secret-bob"
OTHER_PASS = "secret-other"


def message(to, subject, body=None, extra=""):
    body = body or ("Body of " + subject)
    mid = re.sub(r"[^A-Za-z0-9]", "-", subject)
    return ("From: Sender <sender@example.org>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n%s"
            "\r\n%s\r\n" % (to, subject, mid, extra, body)).encode()


class Checks:
    """Counts checks; prints failures (and passes with -v); exit status."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.verbose = "-v" in sys.argv

    def __call__(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            if self.verbose:
                print("ok   " + what, flush=True)
        else:
            self.failed += 1
            print("FAIL %s %s" % (what, str(detail)[:600]), flush=True)
        return bool(cond)

    def done(self, name):
        print("%s: %d checks passed, %d failed" % (name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class World:
    def __init__(self, wd_api, wd_server, wdctl, *server_args):
        self.stack = Stack(wdctl)
        self.api = ApiServer(wd_api, self.stack, "--api.accessControl.enabled=true",
                             "--api.accessToken=" + ROOT)
        self.server = Server(wd_server, self.stack, "--lmtp.enabled=true",
                             "--imap.maxConnections=50", *server_args)
        self.root = self.api.client(ROOT)

    # -------------------------------------------------------------- setup

    def ok(self, res, what):
        if res.status != 200 or res.json.get("success") is not True:
            raise RuntimeError("%s: %r" % (what, res))
        return res.json

    def create_user(self, username, password, address, **fields):
        body = {"username": username, "password": password, "address": address}
        body.update(fields)
        return self.ok(self.root.post("/users", body), "create " + username)["id"]

    def add_address(self, user, address):
        body = {"address": address, "allowWildcard": "*" in address}
        return self.ok(self.root.post("/users/%s/addresses" % user, body),
                       "address " + address)["id"]

    def mailboxes(self, user):
        res = self.root.get("/users/%s/mailboxes" % user, query={"showHidden": "true"})
        return {m["path"]: m["id"] for m in res.json["results"]}

    def upload(self, user, mailbox, raw, **flags):
        body = {"raw": base64.b64encode(raw).decode()}
        body.update(flags)
        return self.ok(self.root.post("/users/%s/mailboxes/%s/messages" % (user, mailbox), body),
                       "upload")["message"]["id"]

    def lmtp(self, rcpts, raw):
        with smtplib.LMTP("127.0.0.1", self.server.ports["lmtp"]) as lmtp:
            lmtp.sendmail("sender@example.org", rcpts, raw)

    def populate(self):
        self.a = self.create_user("alice", A_PASS, "alice@example.com")
        self.b = self.create_user(MARK, B_PASS, MARK + "@example.com", name=MARK + " name")
        self.add_address(self.a, "*@shared.test")
        self.add_address(self.b, MARK + "@shared.test")
        self.add_address(self.b, MARK + "@bücher.test")
        self.ok(self.root.post("/users/%s/mailboxes" % self.a, {"path": "Shared"}), "A Shared")
        self.ok(self.root.post("/users/%s/mailboxes" % self.b, {"path": "Shared"}), "B Shared")
        self.ok(self.root.post("/users/%s/mailboxes" % self.b, {"path": MARK_BOX}), "B box")
        self.a_boxes = self.mailboxes(self.a)
        self.b_boxes = self.mailboxes(self.b)
        for i in range(3):
            self.lmtp([MARK + "@example.com"], message(MARK + "@example.com",
                                                       "%s inbox %d" % (MARK, i)))
        for i in range(2):
            self.lmtp(["alice@example.com"], message("alice@example.com",
                                                     "alicemark inbox %d" % i))
        for i in range(5):
            self.upload(self.b, self.b_boxes["Shared"],
                        message(MARK + "@example.com", "%s shared %d" % (MARK, i)),
                        flagged=(i == 2), unseen=(i != 3))
        self.upload(self.a, self.a_boxes["Shared"],
                    message("alice@example.com", "alicemark shared 0"))
        for i in range(2):
            self.upload(self.b, self.b_boxes[MARK_BOX],
                        message(MARK + "@example.com", "%s only %d" % (MARK, i)))
        # B's INBOX flags: 1 flagged, 2 seen
        inbox = self.b_boxes["INBOX"]
        self.ok(self.root.put("/users/%s/mailboxes/%s/messages/1" % (self.b, inbox),
                              {"flagged": True}), "flag")
        self.ok(self.root.put("/users/%s/mailboxes/%s/messages/2" % (self.b, inbox),
                              {"seen": True}), "seen")
        self.c = self.create_user("carol", OTHER_PASS, "carol@example.com")
        self.ok(self.root.put("/users/%s" % self.c, {"disabled": True}), "disable carol")
        self.d = self.create_user("dave", OTHER_PASS, "dave@example.com")
        self.ok(self.root.put("/users/%s" % self.d, {"suspended": True}), "suspend dave")
        self.e = self.create_user("erin", OTHER_PASS, "erin@example.com",
                                  disabledScopes=["imap"])
        self.fwd = self.ok(self.root.post("/addresses/forwarded", {
            "address": "fwd@example.com", "targets": ["elsewhere@example.net"]}),
            "forwarded")["id"]

    # ---------------------------------------------------------- sessions

    def imap(self, user="alice", password=A_PASS):
        c = Conn(self.server.ports["imap"], tls=True)
        _, tagged = c.cmd('LOGIN "%s" "%s"' % (user, password))
        if " OK " not in tagged:
            raise RuntimeError("login %s: %s" % (user, tagged))
        return c

    def messages(self, user):
        """{subject: [(mailbox path, flags)]} of every message of `user`."""
        out = {}
        for path, mid in self.mailboxes(user).items():
            res = self.root.get("/users/%s/mailboxes/%s/messages" % (user, mid),
                                query={"limit": "250"})
            for m in res.json.get("results", []):
                out.setdefault(m.get("subject", ""), []).append(path)
        return out

    def snapshot(self):
        """B's state as B's own IMAP session sees it."""
        c = self.imap(MARK, B_PASS)
        out = {}
        lines, _ = c.cmd('LIST "" "*"')
        out["list"] = sorted(lines)
        out["lsub"] = sorted(c.cmd('LSUB "" "*"')[0])
        out["quota"] = c.cmd("GETQUOTAROOT INBOX")[0]
        names = []
        for line in lines:
            m = re.search(r'"((?:[^"\\]|\\.)*)"$', line) or re.search(r"(\S+)$", line)
            names.append(m.group(1))
        for name in names:
            lines, tagged = c.cmd('STATUS "%s" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN '
                                  'HIGHESTMODSEQ)' % name)
            out["status " + name] = (lines, tagged.split(" ", 1)[1])
            c.cmd('EXAMINE "%s"' % name)
            lines, _ = c.cmd("UID FETCH 1:* (FLAGS RFC822.SIZE MODSEQ BODY.PEEK[])")
            out["fetch " + name] = [hashlib.sha256(l.encode()).hexdigest() for l in lines]
        c.cmd("LOGOUT")
        c.close()
        return out

    def stop(self):
        """(wd-server's, wd-api's) exit status: 0 unless a sanitizer or a
        crash said otherwise."""
        codes = (self.server.stop(), self.api.stop())
        self.stack.cleanup()
        return codes


def diff(before, after):
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def leaked(response, request):
    """MARK in the response although the request did not name it."""
    if isinstance(request, bytes):
        request = request.decode("utf-8", "replace")
    return MARK in response.lower() and MARK not in request.lower()

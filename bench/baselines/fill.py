#!/usr/bin/env python3
"""The same users and the same mailbox content on every benchmark server.

    python3 bench/baselines/fill.py --kind KIND --imap-port P [options]

KIND says how users are created:
  ours, dovecot-wildduck   wdctl user create (our database: WD_MONGO_URL, WD_REDIS_URL,
                           WD_FERRETDB_SQLITE as scripts/stack.sh prints them; database
                           name WD_BENCH_DB, default wdbench_ours; wdctl from --build)
  wildduck                 POST /users on WildDuck's API (--api-port, default 20080)
  dovecot-maildir          lines in the passwd-file (--passwd-file, default
                           var/bench/dovecot-maildir/users; Dovecot rereads it)
Users are user1..userN (--users), address userI@DOMAIN, password passI (or --password
for all). A user that exists already is kept (its password is not changed).

Then every user gets the same corpus of --messages messages in INBOX, by IMAP APPEND
(default) or by LMTP (--via lmtp --lmtp-port P; the servers then add trace headers).
The corpus is deterministic for a --seed: message i has a fixed Date, Message-ID,
subject and body; the size mix is about 55 % short text (0.5-4 KB), 25 % longer
text/HTML alternatives (8-60 KB), 15 % with one of three shared attachments (24 KB,
120 KB, 600 KB of fixed bytes, so the same attachment occurs in many messages, as
WildDuck's attachment deduplication expects) and 5 % with a unique 1-2 MB attachment.
About 60 % are appended with \\Seen, 5 % also \\Flagged; INTERNALDATE is the Date.
Only To: differs between users. Prints a JSON summary line.

    fill.py --kind wildduck --imap-port 20143 --users 10 --messages 200
    fill.py --kind dovecot-maildir --imap-port 20243 --users 10 --messages 200
"""

import argparse
import base64
import concurrent.futures
import email.utils
import imaplib
import json
import os
import random
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
         "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
         "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est "
         "meeting invoice report quarterly budget schedule project release server mailbox "
         "delivery attachment review draft").split()
EPOCH = 1700000000  # Date of message 0: 2023-11-14
SHARED = (("report.pdf", "application/pdf", 24 * 1024),
          ("photo.jpg", "image/jpeg", 120 * 1024),
          ("archive.zip", "application/zip", 600 * 1024))


def text(rng, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        out.append(line)
        n += len(line) + 2
    return "\r\n".join(out) + "\r\n"


def b64(data):
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def fixed_bytes(seed, size):
    return random.Random(seed).randbytes(size)


class Corpus:
    """Deterministic messages; message(i, rcpt) returns the same bytes for the same
    (seed, i) except for the To: line."""

    def __init__(self, seed, count):
        self.seed, self.count = seed, count
        self.shared = [(name, ctype, b64(fixed_bytes("%d/%s" % (seed, name), size)))
                       for name, ctype, size in SHARED]
        self.cache = {}

    def _parts(self, i):
        if i in self.cache:
            return self.cache[i]
        rng = random.Random("%d/%d" % (self.seed, i))
        kind = rng.random()
        date = EPOCH + i * 3607 + rng.randint(0, 3600)
        subject = "%s %s #%d" % (rng.choice(WORDS).capitalize(), rng.choice(WORDS), i)
        sender = "%s.%s@example.net" % (rng.choice(WORDS), rng.choice(WORDS))
        head = ("From: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <bench-%d-%d@example.net>\r\n"
                "MIME-Version: 1.0\r\n" % (sender, subject, email.utils.formatdate(date), self.seed, i))
        boundary = "=_bench_%d_%d" % (self.seed, i)
        if kind < 0.55:
            body = ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                    + text(rng, rng.randint(500, 4000)))
        elif kind < 0.80:
            plain = text(rng, rng.randint(4000, 30000))
            html = "<html><body><p>" + plain.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
            body = ("Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                    "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                    "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s--%s--\r\n"
                    % (boundary, boundary, plain, boundary, html, boundary))
        else:
            if kind < 0.95:
                name, ctype, data = self.shared[rng.randrange(len(self.shared))]
            else:
                size = rng.randint(1024 * 1024, 2 * 1024 * 1024)
                name, ctype, data = ("data-%d.bin" % i, "application/octet-stream",
                                     b64(fixed_bytes("%d/big/%d" % (self.seed, i), size)))
            body = ("Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                    "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                    "--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
                    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n%s--%s--\r\n"
                    % (boundary, boundary, text(rng, rng.randint(300, 2000)), boundary, ctype,
                       name, name, data, boundary))
        flags = []
        if rng.random() < 0.6:
            flags.append("\\Seen")
        if rng.random() < 0.05:
            flags.append("\\Flagged")
        parts = (head, body, date, flags)
        if len(self.cache) < 64:
            self.cache[i] = parts
        return parts

    def message(self, i, rcpt):
        head, body, date, flags = self._parts(i)
        return (head + "To: " + rcpt + "\r\n" + body).encode(), date, flags


# ---- users ----

def users_ours(args, names):
    mongo = os.environ.get("WD_MONGO_URL")
    redis = os.environ.get("WD_REDIS_URL")
    if not mongo or not redis:
        raise SystemExit("set WD_MONGO_URL and WD_REDIS_URL (scripts/stack.sh start prints them)")
    mongo = mongo.rsplit("/", 1)[0] + "/" + os.environ.get("WD_BENCH_DB", "wdbench_ours")
    wdctl = [os.path.join(args.build, "tools", "wdctl"), "--dbs.mongo=" + mongo, "--dbs.redis=" + redis]
    if os.environ.get("WD_FERRETDB_SQLITE"):
        wdctl.append("--dbs.ferretdbSqlite=" + os.environ["WD_FERRETDB_SQLITE"])
    listed = subprocess.run(wdctl + ["user", "list"], capture_output=True, text=True, check=True).stdout
    existing = {w for line in listed.splitlines() for w in line.split()}
    created = 0
    for name, address, password in names:
        if name in existing:
            continue
        subprocess.run(wdctl + ["user", "create", name, "--address", address, "--password", password],
                       capture_output=True, text=True, check=True)
        created += 1
    return created


def users_wildduck(args, names):
    created = 0
    for name, address, password in names:
        req = urllib.request.Request(
            "http://127.0.0.1:%d/users" % args.api_port, method="POST",
            data=json.dumps({"username": name, "password": password, "address": address}).encode(),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                answer = json.load(res)
        except urllib.error.HTTPError as e:
            answer = json.load(e)
        if answer.get("success"):
            created += 1
        elif answer.get("code") not in ("UserExistsError", "AddressExistsError"):
            raise SystemExit("WildDuck POST /users %s: %r" % (name, answer))
    return created


def users_maildir(args, names):
    path = args.passwd_file
    existing = set()
    if os.path.exists(path):
        with open(path) as f:
            existing = {line.split(":", 1)[0] for line in f if line.strip()}
    home = os.path.join(os.path.dirname(os.path.abspath(path)), "mail")
    lines = ["%s:{PLAIN}%s:65534:65534::%s/%s::\n" % (n, p, home, n)
             for n, _, p in names if n not in existing]
    with open(path, "a") as f:
        f.write("".join(lines))
    return len(lines)


# ---- mail ----

def fill_user(args, corpus, name, address, password):
    count = bytes_ = 0
    if args.via == "lmtp":
        lmtp = smtplib.LMTP("127.0.0.1", args.lmtp_port, timeout=120)
        for i in range(args.messages):
            raw, _, _ = corpus.message(i, address)
            refused = lmtp.sendmail("sender@example.net", [address], raw)
            if refused:
                raise RuntimeError("LMTP %s: %r" % (address, refused))
            count += 1
            bytes_ += len(raw)
        lmtp.quit()
        return count, bytes_
    m = imaplib.IMAP4("127.0.0.1", args.imap_port, timeout=120)
    try:
        m.login(name, password)
        for i in range(args.messages):
            raw, date, flags = corpus.message(i, address)
            typ, data = m.append("INBOX", "(%s)" % " ".join(flags), imaplib.Time2Internaldate(date), raw)
            if typ != "OK":
                raise RuntimeError("APPEND %s #%d: %s %r" % (name, i, typ, data))
            count += 1
            bytes_ += len(raw)
        typ, data = m.select("INBOX", readonly=True)
        if typ != "OK" or int(data[0]) < args.messages:
            raise RuntimeError("%s: INBOX has %r messages after APPEND" % (name, data))
    finally:
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return count, bytes_


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", required=True, choices=("ours", "dovecot-wildduck", "wildduck", "dovecot-maildir"))
    ap.add_argument("--imap-port", type=int, required=True)
    ap.add_argument("--api-port", type=int, default=20080)
    ap.add_argument("--lmtp-port", type=int)
    ap.add_argument("--via", choices=("imap", "lmtp"), default="imap")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--first-user", type=int, default=1)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--password", help="one password for every user (default passN)")
    ap.add_argument("--domain", default="bench.test")
    ap.add_argument("--jobs", type=int, default=4, help="users filled in parallel")
    ap.add_argument("--build", default=os.environ.get("WD_BUILD_DIR", os.path.join(REPO, "build")))
    ap.add_argument("--passwd-file", default=os.path.join(os.environ.get("WD_BENCH_VAR", os.path.join(REPO, "var", "bench")), "dovecot-maildir", "users"))
    ap.add_argument("--no-mail", action="store_true", help="create users only")
    args = ap.parse_args()
    if args.via == "lmtp" and not args.lmtp_port:
        ap.error("--via lmtp needs --lmtp-port")

    names = [("user%d" % i, "user%d@%s" % (i, args.domain), args.password or "pass%d" % i)
             for i in range(args.first_user, args.first_user + args.users)]
    create = {"ours": users_ours, "dovecot-wildduck": users_ours,
              "wildduck": users_wildduck, "dovecot-maildir": users_maildir}[args.kind]
    started = time.time()
    created = create(args, names)
    if args.kind == "dovecot-maildir":
        time.sleep(1.1)  # passwd-file changes are noticed by mtime (1 s resolution)
    corpus = Corpus(args.seed, args.messages)
    total = [0, 0]
    if not args.no_mail:
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for count, size in pool.map(lambda u: fill_user(args, corpus, *u), names):
                total[0] += count
                total[1] += size
    print(json.dumps({"kind": args.kind, "users": len(names), "created": created,
                      "messages": total[0], "bytes": total[1], "via": args.via,
                      "seed": args.seed, "seconds": round(time.time() - started, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""fetchmail (Debian's) collecting mail from wd-server's POP3 engine into an
MDA that writes each message to a file; the files are compared with the
imported messages byte for byte.

  1. implicit TLS, `keep` with UIDL: every message is fetched and stays in
     INBOX, unseen (fetchmail reads kept messages with "TOP n 99999999",
     which leaves them unread, as on WildDuck); a second run fetches nothing;
     a new message is the only one fetched by the third run;
  2. without `keep` (fetchall): every message is fetched again and ends in
     Trash (\\Seen), INBOX is empty;
  3. the plain listener with STLS required (sslproto): the same bytes.

fetchmail runs with --invisible (no Received header of its own) and
"no stripcr" (CR kept). Known fetchmail rewriting that is not ours: the
empty line that ends a header written with bare LFs comes out as CRLF.

usage: test_fetchmail.py WD_SERVER WDCTL DB_TOOL   (exit 77 without the stack
or without fetchmail)"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402
from test_pop3_server import MESSAGES, PASSWORD, Db, expected_retr, make_user  # noqa: E402

NEW = b"From: b@example.com\r\nSubject: new one\r\n\r\narrived later\r\n"


def expected_fetchmail(raw):
    data = expected_retr(raw)
    head, sep, body = data.partition(b"\n\n")
    if sep and not head.endswith(b"\r"):
        return head + b"\n\r\n" + body  # fetchmail's CRLF after a bare-LF header
    return data


class Fetchmail:
    def __init__(self, tmp, name):
        self.dir = os.path.join(tmp, name)
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out)
        self.mda = os.path.join(self.dir, "mda.sh")
        with open(self.mda, "w") as f:
            # one file per message, named in delivery order
            f.write('#!/bin/sh\nn=$(ls "$1" | wc -l)\nexec cat > "$1/$(printf %04d $n)"\n')
        os.chmod(self.mda, 0o755)
        self.count = 0

    def run(self, port, options, server_options="ssl no sslcertck"):
        rc = os.path.join(self.dir, "rc%d" % self.count)
        self.count += 1
        with open(rc, "w") as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 service %d protocol POP3 auth password uidl\n'
                    '  user "%s" there with password "%s" is "root" here\n'
                    '  %s\n  mda "%s %s"\n  no stripcr no rewrite %s\n'
                    % (port, self.user, PASSWORD, server_options, self.mda, self.out,
                       options))
        os.chmod(rc, 0o600)
        res = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "--invisible", "-N", "-d0",
                              "--pidfile", os.path.join(self.dir, "pid"),
                              "--idfile", os.path.join(self.dir, "ids")],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, HOME=self.dir))
        # 0: mail delivered, 1: no mail
        check(res.returncode in (0, 1), "fetchmail exit %d: %s%s" % (
            res.returncode, res.stdout[-1500:], res.stderr[-1500:]))
        return res.returncode

    def files(self):
        return [open(os.path.join(self.out, n), "rb").read() for n in sorted(os.listdir(self.out))]


def t_keep_then_fetchall(port, fm, stack, db):
    fm.user = "fiona"
    ids = [m[1] for m in db.messages("fiona")]
    check(fm.run(port, "keep") == 0, "first run")
    got = fm.files()
    check(len(got) == len(MESSAGES), len(got))
    for i, (data, raw) in enumerate(zip(got, MESSAGES)):
        check(data == expected_fetchmail(raw), "message %d differs (%d bytes, %d expected)"
              % (i + 1, len(data), len(raw)))
    inbox = db.messages("fiona")
    check([m[1] for m in inbox] == ids and all("\\Seen" not in m[2] for m in inbox), inbox)
    check(db.messages("fiona", "Trash") == [], "Trash after keep")
    # nothing new: fetchmail's UIDL list says it has them all
    check(fm.run(port, "keep") == 1, "second run fetched something")
    check(len(fm.files()) == len(MESSAGES), "files after second run")
    # one new message: only that one
    path = os.path.join(fm.dir, "new.eml")
    with open(path, "wb") as f:
        f.write(NEW)
    stack.run_wdctl("message", "import", "fiona", "INBOX", path)
    check(fm.run(port, "keep") == 0, "third run")
    got = fm.files()
    check(len(got) == len(MESSAGES) + 1 and got[-1] == NEW, [len(g) for g in got])
    # without keep, everything: fetched again and moved to Trash
    shutil.rmtree(fm.out)
    os.makedirs(fm.out)
    check(fm.run(port, "fetchall") == 0, "fetchall run")
    got = fm.files()
    check(got == [expected_fetchmail(m) for m in MESSAGES] + [NEW], [len(g) for g in got])
    check(db.messages("fiona") == [], "INBOX after fetchall")
    trash = db.messages("fiona", "Trash")
    check(len(trash) == len(MESSAGES) + 1 and all("\\Seen" in m[2] for m in trash), trash)


def t_stls(plain_port, fm, db):
    fm.user = "gus"
    check(fm.run(plain_port, "keep fetchall", "sslproto TLS1.2+ no sslcertck") == 0, "run")
    got = fm.files()
    check(got == [expected_fetchmail(m) for m in MESSAGES], [len(g) for g in got])
    check(len(db.messages("gus")) == len(MESSAGES), "kept")


def main():
    skip_without_stack()
    if shutil.which("fetchmail") is None:
        print("fetchmail not installed: skipping")
        sys.exit(77)
    wd_server, wdctl, db_tool = sys.argv[1], sys.argv[2], sys.argv[3]
    stack = Stack(wdctl)
    db = Db(db_tool, stack)
    res = Results()
    make_user(stack, stack.tmp.name, "fiona")
    make_user(stack, stack.tmp.name, "gus")
    pop3 = ["--pop3.host=127.0.0.1", "--pop3.port=0"]
    server = Server(wd_server, stack, *pop3)
    plain = Server(wd_server, stack, *pop3, "--pop3.secure=false")
    try:
        res.run("fetchmail keep, then fetchall", t_keep_then_fetchall, server.ports["pop3"],
                Fetchmail(stack.tmp.name, "a"), stack, db)
        res.run("fetchmail over STLS", t_stls, plain.ports["pop3"],
                Fetchmail(stack.tmp.name, "b"), db)
    finally:
        for srv in (server, plain):
            code = srv.stop()
            if code != 0 or any("runtime error" in l or "Sanitizer" in l for l in srv.log):
                res.failed.append("server exit %s" % code)
                print("".join(srv.log[-30:]))
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""mbsync (isync, Debian) against wd-server: a two-way sync of a mailbox tree
to a Maildir and back (a local folder is created on the server with its
message byte-identical, the server's INBOX message lands in the Maildir),
a second sync that changes nothing, then a local flag change and deletion
reaching the server.

usage: test_mbsync.py WD_SERVER WDCTL   (exit 77 without the stack or mbsync)"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imapserver import Conn, Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "correct horse"
REMOTE = b"From: r@example.com\r\nSubject: remote\r\nMessage-ID: <r1@example.com>\r\n\r\nfrom the server\r\n"
LOCAL = b"From: l@example.com\r\nSubject: local\r\nMessage-ID: <l1@example.com>\r\n\r\nfrom the maildir\r\n"


def mbsync(rc):
    r = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "mbsync failed: %s %s" % (r.stdout[-800:], r.stderr[-800:]))


def maildir_files(path):
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.join(d, name)] = f.read()
    return out


def t_sync(port, stack, tmp):
    md = os.path.join(tmp, "mail")
    for box in ("INBOX", "Local"):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, box, sub), exist_ok=True)
    with open(os.path.join(md, "Local", "cur", "1.local:2,S"), "wb") as f:
        f.write(LOCAL)
    rc = os.path.join(tmp, "mbsyncrc")
    with open(rc, "w") as f:
        f.write("IMAPAccount a\nHost localhost\nPort %d\nUser alice\nPass \"%s\"\n"
                "SSLType IMAPS\nCertificateFile %s\n\nIMAPStore remote\nAccount a\n\n"
                "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
                "Channel c\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n"
                "Expunge Both\nSyncState *\n" % (port, PASSWORD, stack.cert, md, md))
    mbsync(rc)
    # the server's message is in the Maildir, byte-identical
    # (mbsync stores LF line ends and adds its X-TUID header)
    inbox = maildir_files(os.path.join(md, "INBOX"))
    got = [re.sub(rb"X-TUID: [^\n]*\n", b"", v) for v in inbox.values()]
    check(got == [REMOTE.replace(b"\r\n", b"\n")], inbox)
    # the local folder and message are on the server
    c = Conn(port, tls=True)
    c.cmd('LOGIN alice "%s"' % PASSWORD)
    lines, ok = c.cmd("SELECT Local")
    check("* 1 EXISTS" in lines, lines)
    lines, ok = c.cmd("FETCH 1 (FLAGS RFC822.SIZE)")
    check("\\Seen" in lines[0], lines)
    size = int(re.search(r"RFC822.SIZE (\d+)", lines[0]).group(1))
    check(size in (len(LOCAL), len(LOCAL) + len("X-TUID: 123456789012\r\n")), (size, len(LOCAL)))
    lines, ok = c.cmd("SEARCH SUBJECT local BODY maildir")
    check(lines == ["* SEARCH 1"], lines)
    check(os.path.isdir(os.path.join(md, "Trash")), os.listdir(md))
    # a second sync changes nothing on either side
    before = {k: v for k, v in maildir_files(os.path.join(md, "INBOX")).items()}
    lines, _ = c.cmd("STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    mbsync(rc)
    check(maildir_files(os.path.join(md, "INBOX")) == before, "maildir changed")
    lines2, _ = c.cmd("STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    check(lines == lines2, (lines, lines2))
    # flag locally, delete locally: the server follows
    name = list(inbox)[0]
    os.rename(name, os.path.join(md, "INBOX", "cur", os.path.basename(name).split(":")[0] + ":2,FS"))
    os.remove(list(maildir_files(os.path.join(md, "Local")))[0])
    mbsync(rc)
    c.cmd("SELECT INBOX")
    lines, ok = c.cmd("FETCH 1 (FLAGS)")
    check("\\Flagged" in lines[0] and "\\Seen" in lines[0], lines)
    lines, ok = c.cmd("SELECT Local")
    check("* 0 EXISTS" in lines, lines)
    c.close()


def main():
    skip_without_stack()
    if shutil.which("mbsync") is None:
        print("mbsync not installed: skipping")
        sys.exit(77)
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    stack.user("alice", PASSWORD)
    tmp = tempfile.mkdtemp(prefix="wd-mbsync-")
    path = os.path.join(tmp, "r.eml")
    with open(path, "wb") as f:
        f.write(REMOTE)
    stack.run_wdctl("message", "import", "alice", "INBOX", path)
    server = Server(wd_server, stack, "--imap.secure=true")
    try:
        res.run("mbsync two-way", t_sync, server.port, stack, tmp)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

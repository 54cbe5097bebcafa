#!/usr/bin/env python3
"""IMAP: user A tries to reach user B's mailboxes and messages, and fails.

World: world.py (A "alice", B "zqxbob"; both have INBOX and "Shared", B has
more messages under the same UIDs and a mailbox ZqxbobOnly).

1. Mailbox names. Every command that takes a mailbox name (SELECT, EXAMINE,
   STATUS, APPEND, COPY, MOVE, RENAME both ways, DELETE, CREATE, SUBSCRIBE,
   UNSUBSCRIBE, LIST/LSUB reference and pattern, GETQUOTAROOT, GETQUOTA, and
   the ACL commands the server does not offer) is sent with each trick name:
   B's mailbox name in other cases, B's mailbox and user ObjectIds, B's
   username as a path prefix ("zqxbob/INBOX", "~zqxbob", "#shared/...",
   "Other Users/...", "#user/..."), "..", ".", "/" and "//" forms,
   wildcards "%" and "*", NUL, CR, TAB and spaces inside literals,
   modified UTF-7 variants (non-canonical encodings of ASCII, a Cyrillic
   look-alike), a 60 KB name, INBOX in other cases. Each answer: refused
   (NO/BAD), or A's own mailbox (CREATE makes A's own, STATUS shows A's
   counts), never a word of B's; LIST answers name only A's mailboxes.
2. UIDs and sequence numbers that exist only in B's mailbox of the same
   name: UID FETCH/STORE/COPY/MOVE/EXPUNGE, FETCH/STORE beyond A's count,
   SEARCH (ALL, UID ranges, B's subjects and bodies, Message-IDs), QRESYNC
   with B's UIDVALIDITY and UIDs, extreme UIDs.
3. IDLE: B's deliveries, flag changes and expunges wake nothing in A's
   IDLE; A's own delivery does (the control).
4. Sessions across changes of B: B renames and deletes a mailbox named like
   A's selected one; B is deleted while both are logged in: B's session
   ends, A's goes on; a new user with B's name sees none of old B's mail.

B's snapshot (every mailbox, counter, flag, MODSEQ and message digest, as B
sees them) is compared after each group. Exit 0 when every check passed.

usage: test_imap_isolation.py WD_API WD_SERVER WDCTL [-v]  (77 without the stack)"""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import (A_PASS, B_PASS, MARK, MARK_BOX, Checks, World, diff, message,  # noqa: E402
                   skip_without_stack)


def send_cmd(conn, verb, args):
    """`tag verb args...`: str args go as they are (atoms, quoted strings),
    bytes args as synchronising literals. Returns (untagged, tagged)."""
    tag = conn.tag()
    line = ("%s %s" % (tag, verb)).encode()
    for a in args:
        if isinstance(a, bytes):
            conn.send(line + b" {%d}\r\n" % len(a))
            cont = conn.line()
            if not cont.startswith("+"):
                # refused before the literal was sent: that is the answer
                if cont.startswith(tag + " "):
                    return [], cont
                lines = [cont]
                more, tagged = conn.until(tag)
                return lines + more, tagged
            line = a
        else:
            line += b" " + a.encode()
    conn.send(line + b"\r\n")
    return conn.until(tag)


def quoted(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def name_arg(name):
    """A name as the client sends it: quoted when it can be, else a literal."""
    if isinstance(name, bytes):
        return name
    if any(c in name for c in "\r\n\0") or len(name) > 1000 or not name.isascii():
        return name.encode()
    return quoted(name)


def status_of(resp):
    m = re.match(r"\S+ (OK|NO|BAD)\b", resp)
    return m.group(1) if m else "?"


class ImapIsolation:
    def __init__(self, w, check):
        self.w = w
        self.check = check
        self.a = w.imap()
        self.calls = 0

    def a_names(self):
        lines, _ = self.a.cmd('LIST "" "*"')
        return set(self.list_names(lines))

    @staticmethod
    def list_names(lines):
        out = []
        for line in lines:
            if not line.startswith("* LIST") and not line.startswith("* LSUB"):
                continue
            m = re.search(r'"((?:[^"\\]|\\.)*)"$', line) or re.search(r"(\S+)$", line)
            out.append(m.group(1))
        return out

    def no_leak(self, what, request_names, lines, tagged):
        text = "\n".join(lines + [tagged]).lower()
        for n in request_names:
            if isinstance(n, bytes):
                n = n.decode("utf-8", "replace")
            text = text.replace(n.lower(), "")
        self.check(MARK not in text, "%s: nothing of B's in the answer" % what,
                   (lines[:5], tagged))

    def run(self, verb, args, what, names, allowed=("NO", "BAD")):
        self.calls += 1
        lines, tagged = send_cmd(self.a, verb, args)
        st = status_of(tagged)
        self.check(st in allowed, "%s: answered %s" % (what, "/".join(allowed)),
                   (lines[:5], tagged))
        self.no_leak(what, names, lines, tagged)
        return st, lines, tagged

    def snapshot_same(self, before, what):
        after = self.w.snapshot()
        d = diff(before, after)
        self.check(not d, "B unchanged after " + what, d[:5])
        return after

    # ------------------------------------------------------------ names

    def trick_names(self):
        w = self.w
        bid = w.b
        mb = w.b_boxes
        names = [
            MARK_BOX, MARK_BOX.upper(), MARK_BOX.lower(), mb[MARK_BOX], mb["INBOX"],
            mb["Shared"], bid, bid + "/INBOX", bid + "/" + MARK_BOX,
            MARK + "/INBOX", MARK + "/" + MARK_BOX, MARK.upper() + "/INBOX",
            MARK + "@example.com/INBOX", "/" + MARK_BOX, MARK_BOX + "/", "//" + MARK_BOX,
            "/" + MARK + "/INBOX", "../" + MARK + "/INBOX", "../" + MARK_BOX,
            "./" + MARK_BOX, MARK_BOX + "/.", "INBOX/../" + MARK_BOX, "Shared/../" + MARK_BOX,
            "~" + MARK + "/INBOX", "~" + MARK, "#shared/" + MARK + "/INBOX",
            "#shared/" + MARK_BOX, "#user/" + MARK + "/" + MARK_BOX, "#public/" + MARK_BOX,
            "Other Users/" + MARK + "/INBOX", "Shared Folders/" + MARK + "/" + MARK_BOX,
            "%", "*", "Zqx%", "Zqx*", "*" + MARK_BOX[1:], "%/%", "*/*",
            # modified UTF-7: "Z" and the whole name encoded (not canonical),
            # an unterminated shift, "&-" (a literal "&") spliced in
            "&AFo-qxbobOnly", "&AFoAcQB4AGIAbwBiAE8AbgBsAHk-", "&AFo", "Zqxbob&-Only",
            "ZqxbobOnl&AHk-",
            # a Cyrillic "O" that looks like B's name
            "Zqxbob\u041enly",
            MARK_BOX.encode() + b"\x00", b"\x00" + MARK_BOX.encode(),
            MARK_BOX.encode() + b"\r", MARK_BOX.encode() + b"\t", b" " + MARK_BOX.encode(),
            MARK_BOX.encode() + b" ", MARK_BOX.encode() + b"\x00/INBOX",
            ("Zqxbob" + "x" * 60000).encode(),
            "Shared\x00".encode(), "Shared/" + MARK_BOX,
        ]
        return names

    def mailbox_names(self):
        check = self.check
        before = self.w.snapshot()
        a_names = self.a_names()
        check("Shared" in a_names and "INBOX" in a_names and MARK_BOX not in a_names,
              "A's own mailboxes", a_names)
        self.a.cmd("CREATE TempA")
        a_names.add("TempA")
        self.a.cmd('SELECT "Shared"')
        for name in self.trick_names():
            arg = name_arg(name)
            label = repr(name)[:60]
            n = [name]
            for verb in ("SELECT", "EXAMINE"):
                self.run(verb, [arg], "%s %s" % (verb, label), n)
            # a failed SELECT leaves nothing selected: select Shared again
            self.a.cmd('SELECT "Shared"')
            self.run("STATUS", [arg, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"],
                     "STATUS " + label, n)
            self.run("APPEND", [arg, b"Subject: appended by alice\r\n\r\nx\r\n"],
                     "APPEND " + label, n)
            self.run("UID COPY", ["1", arg], "UID COPY " + label, n)
            self.run("UID MOVE", ["1", arg], "UID MOVE " + label, n)
            self.run("DELETE", [arg], "DELETE " + label, n)
            self.run("RENAME", [arg, '"Stolen"'], "RENAME %s to Stolen" % label, n)
            self.run("SUBSCRIBE", [arg], "SUBSCRIBE " + label, n, ("NO", "BAD"))
            self.run("UNSUBSCRIBE", [arg], "UNSUBSCRIBE " + label, n, ("NO", "BAD", "OK"))
            self.run("GETQUOTAROOT", [arg], "GETQUOTAROOT " + label, n)
            for verb, extra in (("GETACL", []), ("SETACL", ['"alice"', '"lrswipkxtecda"'])):
                self.run(verb, [arg] + extra, "%s %s" % (verb, label), n, ("BAD",))
            # LIST/LSUB: whatever the reference and pattern, only A's names
            for verb, args in (("LIST", ['""', arg]), ("LIST", [arg, '"*"']),
                               ("LSUB", ['""', arg]),
                               ("LIST", ['(SUBSCRIBED)', '""', arg,
                                         'RETURN (STATUS (MESSAGES))'])):
                st, lines, tagged = self.run(verb, args, "%s %s" % (verb, label), n,
                                             ("OK", "NO", "BAD"))
                listed = set(self.list_names(lines))
                check(listed <= a_names, "%s %s lists only A's mailboxes" % (verb, label),
                      listed - a_names)
                counts = [l for l in lines if l.startswith("* STATUS")]
                check(all("MESSAGES 5" not in l and "MESSAGES 3" not in l for l in counts),
                      "%s %s: no STATUS of B's" % (verb, label), counts)
            # RENAME A's mailbox to the trick name and CREATE it: either
            # refused, or A gets a mailbox of her own under that name
            for verb, args in (("RENAME", ['"TempA"', arg]), ("CREATE", [arg])):
                st, _, _ = self.run(verb, args, "%s %s" % (verb, label), n,
                                    ("OK", "NO", "BAD"))
                if st == "OK":
                    lines, tagged = send_cmd(self.a, "STATUS", [arg, "(MESSAGES)"])
                    check(" OK " in tagged and len(lines) == 1 and
                          lines[0].endswith("(MESSAGES 0)"),
                          "%s %s made A's own empty mailbox" % (verb, label), (lines, tagged))
                    if verb == "RENAME":
                        _, t = send_cmd(self.a, "RENAME", [arg, '"TempA"'])
                        check(" OK " in t, "rename back to TempA", t)
                    else:
                        _, t = send_cmd(self.a, "DELETE", [arg])
                        check(" OK " in t, "delete A's " + label, t)
        # GETQUOTA of any root: A's own or refused
        for root in ('""', quoted(MARK), quoted(self.w.b), quoted("#user/" + MARK)):
            self.run("GETQUOTA", [root], "GETQUOTA " + root, [root], ("OK", "NO", "BAD"))
        # the ones A may open are A's: her Shared has 1 message, INBOX 2
        for name, count in (("Shared", 1), ("INBOX", 2), ("inbox", 2), ("InBoX", 2),
                            ("iNbOx", 2)):
            lines, tagged = self.a.cmd("EXAMINE %s" % quoted(name))
            check(" OK " in tagged and "* %d EXISTS" % count in lines,
                  "EXAMINE %s is A's (%d messages)" % (name, count), (lines, tagged))
        self.a.cmd("DELETE TempA")
        a_names.discard("TempA")
        check(self.a_names() == a_names, "A's mailbox list back as before",
              self.a_names() ^ a_names)
        self.snapshot_same(before, "the mailbox-name attempts")

    # ------------------------------------------------------------ UIDs

    def uids(self):
        check = self.check
        before = self.w.snapshot()
        a = self.a
        a_inbox_before = self.w.messages(self.w.a)
        for box, mine, b_has in (("Shared", 1, 5), ("INBOX", 2, 3)):
            lines, tagged = a.cmd("SELECT %s" % box)
            check("* %d EXISTS" % mine in lines, "A's %s has %d" % (box, mine), lines)
            beyond = "%d:%d" % (mine + 1, b_has)
            attempts = [
                ("UID FETCH %s (UID FLAGS RFC822.SIZE BODY.PEEK[])" % beyond, ("OK",), 0),
                ("UID FETCH %s (BODY.PEEK[HEADER.FIELDS (SUBJECT)])" % b_has, ("OK",), 0),
                ("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])", ("OK",), mine),
                ("FETCH %s (UID BODY.PEEK[])" % beyond, ("OK", "NO", "BAD"), 0),
                ("FETCH 1:* (UID FLAGS)", ("OK",), mine),
                ("UID FETCH %s (FLAGS) (CHANGEDSINCE 0)" % beyond, ("OK",), 0),
                # (the seqset code reads UID 4294967295 as "*": A's last)
                ("UID FETCH 4294967295 (FLAGS)", ("OK",), None),
                ("UID FETCH 0 (FLAGS)", ("BAD",), 0),
                ("UID FETCH 4294967296 (FLAGS)", ("BAD",), 0),
                ("UID STORE %s +FLAGS (\\Deleted \\Seen $Hijacked)" % beyond, ("OK",), 0),
                ("UID STORE %s FLAGS ()" % beyond, ("OK",), 0),
                ("STORE %s +FLAGS (\\Deleted)" % beyond, ("OK", "NO", "BAD"), 0),
                ("UID STORE %s (UNCHANGEDSINCE 1) +FLAGS (\\Deleted)" % beyond, ("OK",), 0),
                ("UID COPY %s INBOX" % beyond, ("OK", "NO"), 0),
                ("UID COPY %s Shared" % beyond, ("OK", "NO"), 0),
                ("COPY %s INBOX" % beyond, ("OK", "NO", "BAD"), 0),
                ("UID MOVE %s INBOX" % beyond, ("OK", "NO"), 0),
                ("MOVE %s Trash" % beyond, ("OK", "NO", "BAD"), 0),
                ("UID EXPUNGE %s" % beyond, ("OK",), 0),
                ("UID SEARCH UID %s" % beyond, ("OK",), 0),
                ("UID SEARCH SUBJECT %s" % MARK, ("OK",), 0),
                ("UID SEARCH BODY %s" % MARK, ("OK",), 0),
                ("UID SEARCH TEXT %s" % MARK, ("OK",), 0),
                ("UID SEARCH HEADER Message-ID %s" % MARK, ("OK",), 0),
                ("UID SEARCH OR FLAGGED SEEN", ("OK",), 0),
                ("SEARCH RETURN (ALL COUNT) ALL", ("OK",), mine),
                ("UID SEARCH ALL", ("OK",), mine),
            ]
            for cmd, allowed, expect in attempts:
                self.calls += 1
                lines, tagged = a.cmd(cmd)
                st = status_of(tagged)
                check(st in allowed, "%s %s: answered %s" % (box, cmd, "/".join(allowed)),
                      (lines[:4], tagged))
                self.no_leak("%s %s" % (box, cmd), [MARK] if MARK in cmd else [], lines, tagged)
                fetches = [l for l in lines if re.match(r"\* \d+ FETCH", l)]
                if "FETCH" in cmd.split()[:2] or "STORE" in cmd.split()[:2]:
                    check((expect is None or len(fetches) == expect) and
                          all(int(re.search(r"\* (\d+)", l).group(1)) <= mine for l in fetches),
                          "%s %s: %s FETCH answers, A's own" % (box, cmd, expect), lines[:6])
                if "SEARCH" in cmd:
                    found = " ".join(l for l in lines if "SEARCH" in l)
                    nums = [int(x) for x in re.findall(r"\b(\d+)\b", found.split(")")[-1])]
                    if "COUNT" in cmd:
                        check("COUNT %d" % mine in found, "%s %s: COUNT %d" % (box, cmd, mine),
                              found)
                    elif expect == 0 and "OR FLAGGED" not in cmd:
                        check(nums == [], "%s %s: nothing found" % (box, cmd), found)
                    elif expect:
                        check(sorted(nums) == list(range(1, mine + 1)),
                              "%s %s: A's UIDs" % (box, cmd), found)
                    else:
                        check(all(n <= mine for n in nums), "%s %s: A's only" % (box, cmd),
                              found)
                if "COPY" in cmd or "MOVE" in cmd:
                    check("COPYUID" not in tagged and not any("COPYUID" in l for l in lines),
                          "%s %s: nothing copied" % (box, cmd), (lines, tagged))
                if "EXPUNGE" in cmd:
                    check(not any("EXPUNGE" in l or "VANISHED" in l for l in lines),
                          "%s %s: nothing expunged" % (box, cmd), lines)
            lines, tagged = a.cmd("NOOP")
            check(not any(re.match(r"\* \d+ (EXISTS|EXPUNGE)", l) for l in lines),
                  "%s: A's view unchanged" % box, lines)
        # QRESYNC with B's UIDVALIDITY and UIDs
        b_shared = before["status Shared"][0][0]
        b_uidvalidity = re.search(r"UIDVALIDITY (\d+)", b_shared).group(1)
        a.cmd("ENABLE QRESYNC")
        for uv in (b_uidvalidity, "1"):
            self.calls += 1
            lines, tagged = a.cmd("SELECT Shared (QRESYNC (%s 1 1:5))" % uv)
            check(" OK " in tagged and "* 1 EXISTS" in lines,
                  "QRESYNC with UIDVALIDITY %s: A's Shared" % uv, (lines, tagged))
            self.no_leak("QRESYNC " + uv, [], lines, tagged)
            fetch = [l for l in lines if "FETCH" in l]
            check(all(l.startswith("* 1 FETCH") for l in fetch), "QRESYNC: only A's UID 1",
                  fetch)
        a.cmd("UNSELECT")
        check(self.w.messages(self.w.a) == a_inbox_before, "A's messages unchanged")
        self.snapshot_same(before, "the UID attempts")

    # ------------------------------------------------------------ IDLE

    def idle(self):
        check = self.check
        w = self.w
        a = self.a
        a.cmd("SELECT INBOX")
        # a second A session idles in Shared
        a2 = w.imap()
        a2.cmd("SELECT Shared")
        b = w.imap(MARK, B_PASS)
        b.cmd("SELECT Shared")
        for c in (a, a2):
            c.send("idle IDLE\r\n")
            check(c.line().startswith("+"), "A idles")
        # B: a delivery to INBOX, an append to Shared, flags, an expunge
        w.lmtp([MARK + "@example.com"], message(MARK + "@example.com", MARK + " while idle"))
        b.cmd('APPEND Shared {%d+}\r\n%s' % (10, "Subject: x"))
        b.cmd("UID STORE 1:* +FLAGS (\\Answered)")
        b.cmd("UID STORE 6 +FLAGS (\\Deleted)")
        b.cmd("UID EXPUNGE 6")
        got = []
        end = time.time() + 3
        for c in (a, a2):
            c.sock.settimeout(max(0.2, end - time.time()))
            try:
                while True:
                    got.append(c.line())
            except (socket.timeout, TimeoutError):
                pass
        check(got == [], "B's changes wake nothing in A's IDLE", got)
        # control: A's own delivery reaches A's IDLE
        w.lmtp(["alice@example.com"], message("alice@example.com", "alicemark while idle"))
        a.sock.settimeout(15)
        line = a.line()
        check(re.match(r"\* 3 EXISTS", line), "A's own delivery wakes A's IDLE", line)
        for c in (a, a2):
            c.sock.settimeout(20)
            c.send("DONE\r\n")
            _, tagged = c.until("idle")
            check(" OK " in tagged, "IDLE done", tagged)
        a2.cmd("LOGOUT")
        a2.close()
        b.cmd("LOGOUT")
        b.close()

    # ------------------------------------------------ B changes, B deleted

    def b_goes_away(self):
        check = self.check
        w = self.w
        a = self.a
        lines, _ = a.cmd("SELECT Shared")
        check("* 1 EXISTS" in lines, "A selects Shared", lines)
        b = w.imap(MARK, B_PASS)
        b.cmd("SELECT INBOX")
        _, t = b.cmd("RENAME Shared SharedGone")
        check(" OK " in t, "B renames Shared", t)
        _, t = b.cmd("CREATE Shared")
        _, t2 = b.cmd("DELETE Shared")
        check(" OK " in t and " OK " in t2, "B creates and deletes a new Shared", (t, t2))
        lines, tagged = a.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        text = "\n".join(lines)
        check(" OK " in tagged and "alicemark shared 0" in text and MARK not in text,
              "A's selected Shared untouched by B's rename/delete", lines)
        lines, tagged = a.cmd("STATUS Shared (MESSAGES)")
        check(any("MESSAGES 1)" in l for l in lines), "A's Shared still 1 message", lines)
        # B is deleted while both sessions are open
        res = w.root.delete("/users/%s" % w.b)
        check(res.status == 200, "B deleted through the API", res)
        b.sock.settimeout(10)
        ended = False
        try:
            lines, tagged = b.cmd("UID FETCH 1:* (BODY.PEEK[])")
            data = "\n".join(lines)
            ended = " OK " not in tagged
            check(MARK not in data.lower() or ended,
                  "B's session after B's deletion reads nothing", (lines[:3], tagged))
            lines, tagged = b.cmd("APPEND INBOX {5+}\r\nx: y")
            check(" OK " not in tagged, "B's session cannot append after deletion", tagged)
        except (EOFError, ConnectionError, socket.timeout, TimeoutError):
            ended = True
        print("B's session after B's deletion: %s" % ("ended" if ended else "open, reads nothing"))
        b.close()
        # the name is taken again by a new user: sees nothing of old B's
        new_b = w.create_user(MARK, "secret-new", MARK + "@example.com")
        check(new_b != w.b, "new user id", new_b)
        n = w.imap(MARK, "secret-new")
        lines, tagged = n.cmd('LIST "" "*"')
        check(not any(MARK_BOX in l for l in lines), "new B has none of old B's mailboxes",
              lines)
        lines, _ = n.cmd("SELECT INBOX")
        check("* 0 EXISTS" in lines, "new B's INBOX is empty", lines)
        lines, _ = n.cmd("UID FETCH 1:* (BODY.PEEK[])")
        check(not any(MARK + " inbox" in l for l in lines), "new B reads none of old B's mail",
              lines[:3])
        n.cmd("LOGOUT")
        n.close()
        # old B's password no longer logs in
        c = w.server.ports["imap"]
        from imapserver import Conn
        o = Conn(c, tls=True)
        _, t = o.cmd('LOGIN "%s" "%s"' % (MARK, B_PASS))
        check(" NO " in t, "old B's password refused", t)
        o.close()
        lines, tagged = a.cmd("UID FETCH 1:* (UID FLAGS)")
        check(" OK " in tagged and len(lines) == 1, "A's session goes on", (lines, tagged))
        a.cmd("LOGOUT")


def main():
    skip_without_stack()
    wd_api, wd_server, wdctl = [a for a in sys.argv[1:] if a != "-v"][:3]
    check = Checks()
    w = World(wd_api, wd_server, wdctl)
    start = time.time()
    try:
        w.populate()
        t = ImapIsolation(w, check)
        for step in (t.mailbox_names, t.uids, t.idle, t.b_goes_away):
            s = time.time()
            step()
            print("%-16s %.1fs  (%d checks so far)" % (step.__name__, time.time() - s,
                                                     check.passed + check.failed), flush=True)
        print("%d IMAP commands of A aimed at B" % t.calls)
    finally:
        code = w.stop()
        check(code == (0, 0), "wd-server and wd-api exit status 0", code)
    print("total %.1fs" % (time.time() - start))
    check.done("imap-isolation")


if __name__ == "__main__":
    main()

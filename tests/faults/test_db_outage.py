#!/usr/bin/env python3
"""Fault injection: the database goes away under IMAP and LMTP load, and
comes back, while wd-server keeps running (suite `faults`).

Load: two IMAP clients read a mailbox that nothing changes (alice: SELECT,
UID FETCH of every message's size and subject, STATUS, UID SEARCH, NOOP in a
loop) and one LMTP client delivers to another user (bob). Two outages:

  stopped  FerretDB is stopped (connections refused) for 6 s and started
           again;
  frozen   FerretDB is frozen with SIGSTOP for 8 s (it accepts connections
           and answers nothing: a stuck database), then resumed. Before the
           bounded database timeout (dbs.timeout) every worker thread sat in
           libmongoc's 5-minute socket timeout and nothing answered.

Asserted for both: every IMAP command is answered, in bounded time, either
with the right data (OK: exactly the messages that exist, whole counts, no
EXPUNGE, no empty FETCH) or with `NO [UNAVAILABLE]`; every LMTP transaction
ends in 250 or a 4xx (never 5xx); a 250 means the message is stored, once
and whole; after the database returns both protocols work again without
restarting wd-server, and the time that takes is measured. A FETCH whose
response for a message had begun when the database failed ends the session
with `* BYE FETCH response could not be completed` (the literal cannot be
taken back): counted, accepted as a temporary error, never wrong data.

Every other LMTP message has an attachment (one shared content); after the
outages `wdctl gc --settle-minutes 0` and then `wdctl check` find nothing
(a store cut between its attachment and its insert gives its references
back, or leaves counters gc repairs).

Then, with FerretDB frozen, 60 clients send LOGIN and vanish: their queued
jobs must be skipped, not run (each would wait for dbs.timeout), so a new
client's LOGIN is answered within a few database timeouts.

usage: test_db_outage.py WD_SERVER WDCTL"""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultstack import (PASSWORD, SUBJECT, ByeError, Conn, Results, Server, addr, check,  # noqa: E402
                        fetch_all, imap_login, lmtp_session, message, setup, stop_server,
                        wdctl_lines)

BASELINE = 30
# dbs.timeout for this test's server: the bound of every database wait
DB_TIMEOUT_S = 3
# an answer must come within this (queued jobs wait for the ones before them)
ANSWER_BOUND_S = 25


class Observed:
    def __init__(self):
        self.lock = threading.Lock()
        self.errors = []       # wrong data, wrong replies: the test fails
        self.ok = self.unavailable = self.bye_mid_fetch = 0
        self.slowest = 0.0
        self.last_ok = 0.0     # time of the last OK with data (IMAP)
        self.lmtp_acked = {}   # (n, attempt) -> bytes
        self.lmtp_temp = 0
        self.lmtp_last_ok = 0.0
        self.stop = threading.Event()

    def error(self, text):
        with self.lock:
            self.errors.append(text)


def timed(obs, conn, command):
    start = time.time()
    untagged, tagged = conn.cmd(command)
    took = time.time() - start
    with obs.lock:
        obs.slowest = max(obs.slowest, took)
    if took > ANSWER_BOUND_S:
        obs.error("%s took %.1fs" % (command, took))
    return untagged, tagged


def verdict(obs, command, tagged):
    """True for OK; NO [UNAVAILABLE] counts as a temporary error; anything
    else is recorded as a failure."""
    parts = tagged.split(" ", 2)
    if len(parts) >= 2 and parts[1] == "OK":
        return True
    if len(parts) >= 3 and parts[1] == "NO" and parts[2].startswith("[UNAVAILABLE]"):
        with obs.lock:
            obs.unavailable += 1
        return False
    obs.error("%s: %s" % (command, tagged))
    return False


def imap_reader(obs, port, baseline):
    """Reads alice's mailbox in a loop and checks every OK answer."""
    conn = None
    selected = False
    while not obs.stop.is_set():
        try:
            if conn is None:
                conn = Conn(port, tls=True)
                _, tagged = timed(obs, conn, 'LOGIN alice "%s"' % PASSWORD)
                if not verdict(obs, "LOGIN", tagged):
                    conn.close()
                    conn = None
                    time.sleep(0.2)
                    continue
                selected = False
            if not selected:
                untagged, tagged = timed(obs, conn, "SELECT INBOX")
                if not verdict(obs, "SELECT", tagged):
                    time.sleep(0.2)
                    continue
                exists = [l for l in untagged if l.endswith(" EXISTS")]
                if exists != ["* %d EXISTS" % len(baseline)]:
                    obs.error("SELECT: %s" % exists)
                selected = True
            start = time.time()
            tag = conn.tag()
            try:
                got = fetch_all(conn, "RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
                ok = True
            except AssertionError as e:  # the tagged line was not OK
                ok = False
                verdict(obs, "FETCH", re.sub(r"^b?'|'$", "", str(e)))
            except ByeError as e:
                # a message's response already begun when the database
                # failed cannot be taken back: the documented way out is
                # BYE (server/imap/imap-fetch.c), never a wrong literal
                if "FETCH response could not be completed" not in str(e):
                    obs.error("FETCH: %s" % e)
                with obs.lock:
                    obs.bye_mid_fetch += 1
                conn.close()
                conn = None
                continue
            with obs.lock:
                obs.slowest = max(obs.slowest, time.time() - start)
            if ok:
                want = {uid: subj for uid, (subj, size) in baseline.items()}
                if sorted(got) != sorted(want):
                    obs.error("FETCH returned UIDs %s, not %s" % (sorted(got)[:5], sorted(want)[:5]))
                for uid, (text, literals) in got.items():
                    m = SUBJECT.search(literals[0]) if literals else None
                    size = re.search(rb"RFC822.SIZE (\d+)", text)
                    if (uid not in want or m is None or m.group(0) != want[uid] or
                            size is None or int(size.group(1)) != baseline[uid][1]):
                        obs.error("FETCH uid %d wrong: %r %r" % (uid, text[:120], literals[:1]))
                        break
                with obs.lock:
                    obs.ok += 1
                    obs.last_ok = time.time()
            del tag
            for command in ("STATUS INBOX (MESSAGES UIDNEXT)", "UID SEARCH ALL", "NOOP"):
                untagged, tagged = timed(obs, conn, command)
                for line in untagged:
                    if re.match(r"\* \d+ (EXPUNGE|EXISTS)", line) and \
                            line != "* %d EXISTS" % len(baseline):
                        obs.error("%s: %s" % (command, line))
                if not verdict(obs, command, tagged):
                    continue
                if command.startswith("STATUS"):
                    if "MESSAGES %d " % len(baseline) not in untagged[-1]:
                        obs.error("STATUS: %s" % untagged)
                elif command.startswith("UID SEARCH"):
                    found = [l for l in untagged if l.startswith("* SEARCH")]
                    uids = sorted(int(x) for x in found[0].split()[2:]) if found else []
                    if uids != sorted(baseline):
                        obs.error("SEARCH ALL: %s" % found)
        except (OSError, EOFError) as e:
            # a connection closed by the server is not a temporary error
            obs.error("IMAP connection lost: %s after %s" % (e, conn.last if conn else None))
            conn = None
            time.sleep(0.5)
    if conn is not None:
        conn.close()


def lmtp_writer(obs, port, run):
    """Delivers to bob in a loop; message n of outage `run` is attempt `run`."""
    n = 0
    c = None
    while not obs.stop.is_set():
        try:
            if c is None:
                c = lmtp_session(port)
            n += 1
            # every other message with an attachment (one shared content): a
            # store cut between its GridFS write and its insert must leave
            # nothing that gc does not repair
            att = SHARED_ATTACHMENT if n % 2 == 0 else None
            body = message(n, run, att, filler=n % 5).replace(addr("alice").encode(),
                                                            addr("bob").encode())
            start = time.time()
            code, text = c.deliver("sender@outside.example", addr("bob"), body)
            took = time.time() - start
            with obs.lock:
                obs.slowest = max(obs.slowest, took)
            if took > ANSWER_BOUND_S:
                obs.error("LMTP transaction took %.1fs" % took)
            if code == 250:
                with obs.lock:
                    obs.lmtp_acked[(n, run)] = body
                    obs.lmtp_last_ok = time.time()
            elif 400 <= code < 500:
                with obs.lock:
                    obs.lmtp_temp += 1
                time.sleep(0.2)
            else:
                obs.error("LMTP %d %s" % (code, text))
        except (OSError, EOFError) as e:
            obs.error("LMTP connection lost: %s" % e)
            c = None
            time.sleep(0.5)
    if c is not None:
        c.close()


def outage(pstack, server, baseline, how, seconds, report, acked):
    run = 1 if how == "stopped" else 2
    obs = Observed()
    threads = [threading.Thread(target=imap_reader, args=(obs, server.port, baseline), daemon=True)
               for _ in range(2)]
    threads.append(threading.Thread(target=lmtp_writer, args=(obs, server.ports["lmtp"], run),
                                    daemon=True))
    for t in threads:
        t.start()
    try:
        end = time.time() + 30
        while time.time() < end and not (obs.ok > 1 and len(obs.lmtp_acked) > 1):
            time.sleep(0.05)
        check(obs.ok > 0 and obs.lmtp_acked, "no successful load before the outage")
        if how == "stopped":
            pstack.stop_ferretdb()
            time.sleep(seconds)
            pstack.start()
        else:
            pstack.freeze_ferretdb(True)
            time.sleep(seconds)
            pstack.freeze_ferretdb(False)
        back = time.time()
        # recovery: an IMAP FETCH and an LMTP delivery succeed after the return
        end = back + 60
        while time.time() < end and (obs.last_ok < back or obs.lmtp_last_ok < back):
            time.sleep(0.05)
        imap_recovery = obs.last_ok - back if obs.last_ok >= back else None
        lmtp_recovery = obs.lmtp_last_ok - back if obs.lmtp_last_ok >= back else None
        time.sleep(1)
    finally:
        obs.stop.set()
        for t in threads:
            t.join(ANSWER_BOUND_S + 30)
        acked.update(obs.lmtp_acked)
    check(not any(t.is_alive() for t in threads), "a client is stuck")
    check(not obs.errors, "%d wrong answers, first: %s" % (len(obs.errors), obs.errors[:5]))
    check(imap_recovery is not None, "IMAP did not recover within 60 s")
    check(lmtp_recovery is not None, "LMTP did not recover within 60 s")
    check(obs.unavailable > 0 or obs.lmtp_temp > 0, "the outage was not noticed")
    report[how] = dict(outage_s=seconds, imap_ok=obs.ok, imap_unavailable=obs.unavailable,
                       imap_bye_mid_fetch=obs.bye_mid_fetch,
                       lmtp_acked=len(obs.lmtp_acked), lmtp_4xx=obs.lmtp_temp,
                       slowest_answer_s=round(obs.slowest, 1),
                       imap_recovery_s=round(imap_recovery, 2),
                       lmtp_recovery_s=round(lmtp_recovery, 2))


ABANDONED = 60
SHARED_ATTACHMENT = bytes(range(256)) * 200


def t_abandoned_jobs(pstack, server, report):
    """Clients that give up while the database is stuck must not keep the
    worker threads busy: their LOGINs are queued behind the stuck ones; a
    job whose session has closed is skipped when its turn comes. Measured:
    how long a new client's LOGIN takes to be answered (NO [UNAVAILABLE]
    while frozen). Running every abandoned job would take about
    ABANDONED / threads x dbs.timeout (60 / 4 x 3 s)."""
    pstack.freeze_ferretdb(True)
    try:
        conns = []
        for _ in range(ABANDONED):
            c = Conn(server.port, tls=True)
            c.send('a1 LOGIN alice "%s"\r\n' % PASSWORD)
            conns.append(c)
        time.sleep(0.5)
        for c in conns:
            c.close()
        time.sleep(0.5)
        c = Conn(server.port, tls=True, timeout=120)
        start = time.time()
        _, tagged = c.cmd('LOGIN alice "%s"' % PASSWORD)
        took = time.time() - start
        c.close()
    finally:
        pstack.freeze_ferretdb(False)
    report["abandoned"] = dict(connections=ABANDONED, login_answer_s=round(took, 1),
                               answer=tagged)
    check(" NO [UNAVAILABLE]" in tagged or " OK " in tagged, tagged)
    bound = 4 * DB_TIMEOUT_S + 3
    check(took < bound, "a new LOGIN waited %.1f s behind %d abandoned ones (bound %d s)" %
          (took, ABANDONED, bound))
    c = imap_login(server.port)  # and it works again
    c.close()


def check_bob(port, acked):
    """Every acknowledged delivery to bob is stored once and whole."""
    conn = imap_login(port, "bob")
    _, tagged = conn.cmd("SELECT INBOX")
    check(" OK" in tagged, tagged)
    stored = fetch_all(conn, "BODY.PEEK[]")
    conn.cmd("LOGOUT")
    conn.close()
    copies = {}
    for uid, (text, literals) in stored.items():
        m = SUBJECT.search(literals[0])
        check(m is not None, "uid %d: %r" % (uid, literals[0][:200]))
        key = (int(m.group(1)), int(m.group(2)))
        if key in acked:
            check(literals[0].endswith(acked[key]), "uid %d: not whole" % uid)
        copies[key] = copies.get(key, 0) + 1
    lost = [k for k in acked if copies.get(k, 0) != 1]
    check(not lost, "acknowledged but stored %s times: %s" %
          ([copies.get(k, 0) for k in lost[:5]], lost[:5]))
    return len(stored)


def main():
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    pstack, stack = setup("db", wdctl, users=("alice", "bob"))
    res = Results()
    server = None
    report = {}
    try:
        server = Server(wd_server, stack, "--lmtp.enabled=true", "--dbs.timeout=%d" % DB_TIMEOUT_S)
        c = lmtp_session(server.ports["lmtp"])
        for n in range(BASELINE):
            code, text = c.deliver("sender@outside.example", addr("alice"), message(n, 0))
            check(code == 250, text)
        c.close()
        conn = imap_login(server.port)
        conn.cmd("SELECT INBOX")
        baseline = {}
        for uid, (text, literals) in fetch_all(conn, "RFC822.SIZE BODY.PEEK[]").items():
            baseline[uid] = (SUBJECT.search(literals[0]).group(0), len(literals[0]))
        conn.close()
        check(len(baseline) == BASELINE, "baseline %d" % len(baseline))
        acked = {}

        def run(how, seconds):
            outage(pstack, server, baseline, how, seconds, report, acked)

        res.run("FerretDB stopped and restarted under load", run, "stopped", 6)
        res.run("FerretDB frozen (SIGSTOP) and resumed under load", run, "frozen", 8)
        res.run("jobs of vanished clients skipped while frozen", t_abandoned_jobs, pstack,
                server, report)
        res.run("every acknowledged delivery stored once", lambda: report.update(
            bob_stored=check_bob(server.port, acked), bob_acked=len(acked)))

        def t_counters():
            code, out = wdctl_lines(stack, "gc", "--settle-minutes", "0")
            check(code == 0, out)
            report["gc"] = [l for l in out.splitlines() if l.startswith("interrupted")]
            code, out = wdctl_lines(stack, "check")
            check(code == 0 and "0 problems found" in out, "wdctl check after gc (exit %d):\n%s"
                  % (code, out))

        res.run("wdctl gc, then wdctl check finds nothing", t_counters)
        print("figures: %s" % report, flush=True)
        if res.failed:
            print("server warnings:\n" + "".join(
                l for l in server.log if (" warning " in l or " error " in l or " imap" in l)
                and "index " not in l)[-8000:])
    finally:
        if server is not None:
            stop_server(server, res)
        stack.cleanup()
        pstack.destroy()
    res.exit()


if __name__ == "__main__":
    main()

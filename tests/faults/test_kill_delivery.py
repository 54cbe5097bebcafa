#!/usr/bin/env python3
"""Fault injection: wd-server killed with SIGKILL in the middle of a
500-message LMTP delivery run (suite `faults`).

Four LMTP clients deliver numbered messages (every fourth with an
attachment, most of them sharing one of three contents, so GridFS reference
counts are exercised) until 150 have been acknowledged; then the server gets
SIGKILL while deliveries are in flight. A new wd-server is started on the
same database and the clients deliver what was not acknowledged, as an MTA
would retry (each retry is a new attempt with its own subject), up to 500
acknowledged messages. Then:

  - every attempt that got 250 is in INBOX exactly once; an attempt that got
    no reply may be there (the store finished, the reply was lost) but at
    most once; messages lost = acknowledged and missing = 0;
  - nothing half-written is visible: every stored message's BODY[] is the
    delivered message whole (plus the trace headers), RFC822.SIZE is its
    length, EXISTS and STATUS MESSAGES equal the number of messages FETCH
    returns;
  - `wdctl gc --settle-minutes 0` (nothing is delivering now, so every
    counter is settled) followed by `wdctl check` finds no problem
    (attachment references, quota), and GETQUOTAROOT reports the sum of the
    stored sizes; before gc learnt to repair what a killed store leaves,
    check found storageUsed too high by the in-flight message;
  - the restarted server serves everything (the FETCHes above go through it).

usage: test_kill_delivery.py WD_SERVER WDCTL"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultstack import (SUBJECT, Results, Server, addr, check, fetch_all,  # noqa: E402
                        imap_login, lmtp_session, message, setup, stop_server, wdctl_lines)

TOTAL = 500
KILL_AFTER = 150
CLIENTS = 4


class Run:
    """Shared state of the delivery clients."""

    def __init__(self):
        self.lock = threading.Lock()
        self.todo = list(range(TOTAL))       # message numbers not acknowledged yet
        self.attempts = {}                   # n -> next attempt number
        self.sent = {}                       # (n, attempt) -> bytes
        self.acked = set()                   # (n, attempt) with 250
        self.unacked = set()                 # (n, attempt) without a reply
        self.refused = []                    # (n, attempt, reply) 4xx/5xx
        self.blobs = [random.Random(i).randbytes(30000) for i in range(3)]

    def take(self):
        with self.lock:
            if not self.todo:
                return None
            n = self.todo.pop(0)
            attempt = self.attempts.get(n, 0) + 1
            self.attempts[n] = attempt
            att = None
            if n % 4 == 0:
                att = self.blobs[n % 3] if n % 8 == 0 else random.Random(n).randbytes(8000)
            body = message(n, attempt, att, filler=n % 7)
            self.sent[(n, attempt)] = body
            return n, attempt, body

    def result(self, n, attempt, code, text):
        with self.lock:
            if code == 250:
                self.acked.add((n, attempt))
                return
            if code is None:
                self.unacked.add((n, attempt))
            else:
                self.refused.append((n, attempt, text))
            self.todo.append(n)


def client(run, port, stop_at=None):
    """Deliver until nothing is left, the connection breaks, or `stop_at`
    acknowledged messages exist (then the server is killed under us)."""
    try:
        c = lmtp_session(port)
    except OSError:
        return
    while True:
        job = run.take()
        if job is None:
            break
        n, attempt, body = job
        try:
            code, text = c.deliver("sender@outside.example", addr("alice"), body)
        except (OSError, EOFError):
            run.result(n, attempt, None, "connection lost")
            return
        run.result(n, attempt, code, text)
        if code != 250:
            time.sleep(0.2)
    c.close()


def deliver_phase(run, port, kill_server=None):
    threads = [threading.Thread(target=client, args=(run, port)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    killed_at = None
    if kill_server is not None:
        while len(run.acked) < KILL_AFTER and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        kill_server.proc.kill()  # SIGKILL with deliveries in flight
        killed_at = len(run.acked)
    for t in threads:
        t.join(300)
    return killed_at


def t_kill_and_verify(wd_server, stack, res_servers, report):
    run = Run()
    lmtp = ["--lmtp.enabled=true"]
    first = Server(wd_server, stack, *lmtp)
    res_servers.append(first)
    start = time.time()
    killed_at = deliver_phase(run, first.ports["lmtp"], kill_server=first)
    first.proc.wait(10)
    check(first.proc.returncode == -9, "first server exit %s" % first.proc.returncode)
    in_flight = len(run.unacked)
    check(killed_at is not None and killed_at < TOTAL, "killed after %s acks" % killed_at)

    restart = time.time()
    second = Server(wd_server, stack, *lmtp)
    res_servers.append(second)
    restart_s = time.time() - restart
    deliver_phase(run, second.ports["lmtp"])
    elapsed = time.time() - start
    check(not run.todo, "messages never acknowledged: %s" % run.todo[:10])
    check(len(run.acked) == TOTAL, "acknowledged %d of %d" % (len(run.acked), TOTAL))

    # everything through the restarted server
    conn = imap_login(second.port)
    untagged, tagged = conn.cmd("SELECT INBOX")
    check(" OK" in tagged, tagged)
    exists = [int(l.split()[1]) for l in untagged if l.endswith(" EXISTS")][0]
    stored = fetch_all(conn, "RFC822.SIZE BODY.PEEK[]")
    check(len(stored) == exists, "EXISTS %d, FETCH returned %d" % (exists, len(stored)))
    untagged, tagged = conn.cmd("STATUS INBOX (MESSAGES)")
    check("MESSAGES %d)" % exists in untagged[0], "STATUS %s, EXISTS %d" % (untagged, exists))
    copies = {}
    for uid, (text, literals) in stored.items():
        check(len(literals) == 1, "uid %d: no body: %r" % (uid, text[:200]))
        body = literals[0]
        m = SUBJECT.search(body)
        check(m is not None, "uid %d: not one of ours: %r" % (uid, body[:300]))
        key = (int(m.group(1)), int(m.group(2)))
        check(key in run.sent, "uid %d: never sent %s" % (uid, key))
        check(body.endswith(run.sent[key]),
              "uid %d (%s): stored message is not the delivered one whole" % (uid, key))
        size = int(text.split(b"RFC822.SIZE ")[1].split()[0].rstrip(b")"))
        check(size == len(body), "uid %d: RFC822.SIZE %d, BODY[] %d bytes" % (uid, size, len(body)))
        copies[key] = copies.get(key, 0) + 1
    conn.cmd("LOGOUT")
    conn.close()
    lost = [k for k in run.acked if copies.get(k, 0) == 0]
    doubled = [k for k in run.acked if copies.get(k, 0) > 1]
    extra = [k for k in copies if k not in run.acked and k not in run.unacked]
    stored_unacked = [k for k in run.unacked if copies.get(k, 0) > 0]
    check(not lost, "acknowledged but not stored: %s" % lost[:10])
    check(not doubled, "acknowledged and stored more than once: %s" % doubled[:10])
    check(not extra, "stored but refused: %s" % extra[:10])
    check(all(copies[k] == 1 for k in stored_unacked), "an unacknowledged attempt twice")

    # what the kill left behind is what a gc pass repairs
    code, out = wdctl_lines(stack, "gc", "--settle-minutes", "0")
    check(code == 0, "wdctl gc: %s" % out)
    gc_out = out
    code, out = wdctl_lines(stack, "check")
    check(code == 0 and "0 problems found" in out, "wdctl check after gc (exit %d):\n%s\n"
          "(gc said: %s)" % (code, out, gc_out))
    # and the quota IMAP reports is the sum of what is stored
    conn = imap_login(second.port)
    untagged, tagged = conn.cmd("GETQUOTAROOT INBOX")
    check(" OK" in tagged, tagged)
    quota = [l for l in untagged if l.startswith("* QUOTA ")]
    used_kib = int(quota[0].split("STORAGE ")[1].split()[0])
    total = sum(len(literals[0]) for _, literals in stored.values())
    check(used_kib == (total + 1023) // 1024, "quota %d KiB, messages %d bytes: %s" %
          (used_kib, total, quota))
    conn.close()
    report.update(sent=sum(run.attempts.values()), acked=len(run.acked),
                  killed_after=killed_at, in_flight=in_flight,
                  stored_unacked=len(stored_unacked), refused=len(run.refused),
                  stored=len(stored), lost=len(lost),
                  gc=[l for l in gc_out.splitlines() if l.startswith("interrupted")], restart_s=round(restart_s, 2),
                  elapsed_s=round(elapsed, 1))


def main():
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    pstack, stack = setup("kill", wdctl)
    res = Results()
    servers, report = [], {}
    try:
        res.run("SIGKILL during a 500-message LMTP run", t_kill_and_verify, wd_server, stack,
                servers, report)
        print("figures: %s" % report, flush=True)
    finally:
        for srv in servers:
            if srv.proc.poll() is None:
                stop_server(srv, res)
        stack.cleanup()
        pstack.destroy()
    res.exit()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fault injection: Redis stopped and started again while wd-server runs
(suite `faults`).

Two wd-server instances on one private stack: `polling` with
imap.syncPollSeconds=3 and `notified` with imap.syncPollSeconds=120, each
with an IDLE client on alice's INBOX. Messages are delivered over LMTP.

  - Redis up: the `notified` IDLE client sees a delivery at once (wd_events);
  - Redis down: LMTP delivers (250), IMAP logs in, SELECTs and FETCHes, POP3
    logs in, STATs and RETRs; the `polling` IDLE client sees a delivery
    within its poll interval (periodic sync is all it has);
  - Redis back: without restarting anything the `notified` IDLE client sees
    deliveries within 5 s again, three in a row (its poll interval is 120 s,
    so only notifications can be that fast); the time until then is
    measured.

usage: test_redis_outage.py WD_SERVER WDCTL"""

import os
import poplib
import re
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultstack import (PASSWORD, Results, Server, addr, check, fetch_all,  # noqa: E402
                        imap_login, lmtp_session, message, setup, stop_server)

POLL_S = 3
# "at once": far below the 120 s poll of the `notified` instance, with room
# for a loaded CI machine
QUICK_S = 5


class Idler:
    """An IMAP client idling in INBOX; `wait_exists` measures how long a new
    message takes to show up."""

    def __init__(self, port):
        self.conn = imap_login(port)
        untagged, tagged = self.conn.cmd("SELECT INBOX")
        check(" OK" in tagged, tagged)
        self.exists = [int(l.split()[1]) for l in untagged if l.endswith(" EXISTS")][0]
        self.conn.send("i1 IDLE\r\n")
        check(self.conn.line().startswith("+ "), "IDLE refused")

    def wait_exists(self, count, timeout):
        """Seconds until `* count EXISTS` arrives, or None after timeout."""
        start = time.time()
        self.conn.sock.settimeout(0.2)
        while time.time() - start < timeout:
            try:
                line = self.conn.line()
            except (TimeoutError, OSError):
                continue
            m = re.match(r"\* (\d+) EXISTS", line)
            if m:
                self.exists = int(m.group(1))
                if self.exists >= count:
                    return time.time() - start
            elif re.match(r"\* \d+ EXPUNGE", line) or line.startswith("* BYE"):
                raise AssertionError("IDLE: %s" % line)
        return None

    def done(self):
        self.conn.sock.settimeout(20)
        self.conn.send("DONE\r\n")
        _, tagged = self.conn.until("i1")
        check(" OK" in tagged, tagged)
        self.conn.close()


class Deliverer:
    def __init__(self, port):
        self.port = port
        self.n = 0

    def one(self):
        self.n += 1
        c = lmtp_session(self.port)
        code, text = c.deliver("sender@outside.example", addr("alice"), message(self.n, 1))
        c.cmd("QUIT")
        c.close()
        check(code == 250, "LMTP %d %s" % (code, text))
        return time.time()


def pop3_check(port, expected):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    p = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=20)
    p.user("alice")
    p.pass_(PASSWORD)
    count, _ = p.stat()
    check(count == expected, "POP3 STAT %d, expected %d" % (count, expected))
    lines = p.retr(count)[1]
    check(any(b"fault msg" in l for l in lines), "POP3 RETR: %r" % lines[:5])
    p.quit()


def t_redis_outage(pstack, polling, notified, report):
    lmtp = Deliverer(polling.ports["lmtp"])
    idle_p, idle_n = Idler(polling.port), Idler(notified.port)
    count = idle_p.exists

    # Redis up: notifications
    lmtp.one()
    count += 1
    t = idle_n.wait_exists(count, 10)
    check(t is not None and t < QUICK_S, "with Redis: notified IDLE after %s s" % t)
    check(idle_p.wait_exists(count, POLL_S + 5) is not None, "polling IDLE saw nothing")
    report["notified_latency_s"] = round(t, 2)

    pstack.stop_redis()
    down = time.time()
    # LMTP, IMAP, POP3 keep working
    latencies = []
    for i in range(3):
        time.sleep(i * 0.7)  # different phases of the poll timer
        lmtp.one()
        count += 1
        t = idle_p.wait_exists(count, POLL_S + 5)
        check(t is not None, "without Redis: the IDLE client did not see delivery %d within "
              "%d s" % (i, POLL_S + 5))
        latencies.append(round(t, 2))
    report["idle_poll_latencies_s"] = latencies
    conn = imap_login(polling.port)
    untagged, tagged = conn.cmd("SELECT INBOX")
    check(" OK" in tagged and "* %d EXISTS" % count in untagged, (untagged, tagged))
    got = fetch_all(conn, "BODY.PEEK[]", "%d" % count)
    check(len(got) == 1, "FETCH without Redis: %d" % len(got))
    conn.cmd("LOGOUT")
    conn.close()
    pop3_check(polling.ports["pop3"], count)
    report["down_s"] = round(time.time() - down, 1)

    pstack.start()
    up = time.time()
    # notifications again: three deliveries in a row each seen within
    # QUICK_S by an instance that polls every 120 s
    quick = 0
    recovered = None
    while time.time() - up < 30 and quick < 3:
        sent = lmtp.one()
        count += 1
        t = idle_n.wait_exists(count, QUICK_S)
        if t is not None:
            quick += 1
            if recovered is None:
                recovered = sent - up
        else:
            quick = 0
            recovered = None
    check(quick == 3, "notifications did not come back within 30 s of Redis' restart")
    report["notify_recovery_s"] = round(recovered, 2)
    check(idle_p.wait_exists(count, POLL_S + 5) is not None, "polling IDLE fell behind")
    idle_p.done()
    idle_n.done()
    report["delivered"] = lmtp.n


def main():
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    pstack, stack = setup("redis", wdctl)
    res = Results()
    servers = []
    report = {}
    try:
        common = ["--lmtp.enabled=true", "--imap.fullSyncSeconds=3600"]
        servers.append(Server(wd_server, stack, *common, "--imap.syncPollSeconds=%d" % POLL_S))
        servers.append(Server(wd_server, stack, *common, "--imap.syncPollSeconds=120"))
        res.run("Redis stopped and restarted", t_redis_outage, pstack, servers[0], servers[1],
                report)
        print("figures: %s" % report, flush=True)
    finally:
        for srv in servers:
            stop_server(srv, res)
        stack.cleanup()
        pstack.destroy()
    res.exit()


if __name__ == "__main__":
    main()

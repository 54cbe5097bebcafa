"""Redis Sentinel (issue 11): wd-server finds the Redis master through the
sentinels of a redis-sentinel:// URL and follows failovers while it keeps
serving.

The test runs its own Redis pair (a master and a replica) and a sentinel
(Debian's redis-sentinel, or redis-server --sentinel), all on loopback, and
two wd-servers on the shared database with
dbs.redis = redis-sentinel://127.0.0.1:<sentinel>/wdmaster/3:
  1. an LMTP delivery through server 1 reaches an IDLE session on server 2
     (notifications go through the master the sentinel named);
  2. `SENTINEL FAILOVER` swaps master and replica: IMAP commands on both
     servers keep answering OK during it, and a delivery afterwards reaches
     the IDLE session again, published on the new master;
  3. the new master is killed (SIGKILL): the sentinel promotes the other
     one; deliveries keep being stored, and once the failover is done a
     delivery reaches IDLE again — no restart of wd-server.
Pub/sub keeps nothing for a subscriber that is reconnecting (the sentinel
drops clients of the servers it reconfigures): what is published in that
gap reaches IDLE at its next poll (imap.syncPollSeconds), so the deliveries
that check notifications wait until server 2 is subscribed again.

usage: test_redis_sentinel.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import imaplib
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from imapserver import Conn, Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "sentinel test pass"
DOMAIN = "sentinel.example"
MASTER = "wdmaster"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def redis_cli(port, *args):
    res = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                         capture_output=True, text=True, timeout=10)
    return res.stdout.strip()


def wait_until(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out: " + what)


class RedisSet:
    """A master, a replica and one sentinel (quorum 1)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wd-sentinel-")
        self.ports = [free_port(), free_port()]
        self.sentinel_port = free_port()
        self.procs = {}
        for i, port in enumerate(self.ports):
            self.start_redis(port, None if i == 0 else self.ports[0])
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor %s 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 5000\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.sentinel_port, self.dir, MASTER, self.ports[0], MASTER, MASTER, MASTER))
        binary = shutil.which("redis-sentinel")
        cmd = [binary, conf] if binary else ["redis-server", conf, "--sentinel"]
        self.procs["sentinel"] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL)
        wait_until(lambda: self.master_port() == self.ports[0], 20, "sentinel sees the master")
        wait_until(lambda: "slave0" in redis_cli(self.ports[0], "INFO", "replication"), 20,
                   "replica attached")

    def start_redis(self, port, master_port):
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--dbfilename", "dump-%d.rdb" % port]
        if master_port:
            args += ["--replicaof", "127.0.0.1", str(master_port)]
        self.procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis_cli(port, "PING") == "PONG", 20, "redis on %d" % port)

    def master_port(self):
        out = redis_cli(self.sentinel_port, "SENTINEL", "get-master-addr-by-name", MASTER).split()
        return int(out[1]) if len(out) == 2 else None

    def url(self):
        return "redis-sentinel://127.0.0.1:%d/%s/3" % (self.sentinel_port, MASTER)

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def deliver(port, tag):
    raw = (b"From: s@example.com\r\nTo: alice@%s\r\nSubject: %s\r\nMessage-ID: <%s@example.com>\r\n"
           b"\r\nbody\r\n" % (DOMAIN.encode(), tag.encode(), tag.encode()))
    with smtplib.LMTP("127.0.0.1", port) as lmtp:
        refused = lmtp.sendmail("s@example.com", ["alice@" + DOMAIN], raw)
    check(refused == {}, "delivery %s: %r" % (tag, refused))


class Idle:
    def __init__(self, port):
        self.conn = Conn(port)
        _, ok = self.conn.cmd('LOGIN alice "%s"' % PASSWORD)
        check(" OK " in ok, ok)
        _, ok = self.conn.cmd("SELECT INBOX")
        check(" OK " in ok, ok)
        self.conn.send("I1 IDLE\r\n")
        check(self.conn.line().startswith("+"), "IDLE")

    def wait_exists(self, n, timeout):
        end = time.time() + timeout
        self.conn.sock.settimeout(0.5)
        while time.time() < end:
            try:
                line = self.conn.line()
            except OSError:
                continue
            if line == "* %d EXISTS" % n:
                return time.time()
        return None


def imap_ok(port):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    ok = m.login("alice", PASSWORD)[0] == "OK" and m.select("INBOX")[0] == "OK" \
        and m.noop()[0] == "OK"
    m.logout()
    return ok


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1:3]
    stack = Stack(wdctl)
    stack.run_wdctl("user", "create", "alice", "--address", "alice@" + DOMAIN,
                    "--password", PASSWORD)
    redis = RedisSet()
    results = Results()
    servers = []
    try:
        plain = ["--imap.secure=false", "--imap.insecureAuth=true", "--dbs.redis=" + redis.url(),
                 "--imap.syncPollSeconds=30"]
        servers = [Server(wd_server, stack, *plain, "--lmtp.enabled=true"),
                   Server(wd_server, stack, *plain)]
        lmtp = servers[0].ports["lmtp"]
        idle = Idle(servers[1].port)
        count = [0]

        def delivered_and_seen(tag, timeout):
            deliver(lmtp, tag)
            count[0] += 1
            start = time.time()
            seen = idle.wait_exists(count[0], timeout)
            check(seen is not None, "IDLE on server 2 saw %d EXISTS within %d s" % (count[0], timeout))
            print("   %s: EXISTS %.2f s after the delivery" % (tag, seen - start))

        def baseline():
            delivered_and_seen("before", 10)
            check(any("subscribed to wd_events at 127.0.0.1:%d" % redis.ports[0] in l
                      for l in servers[1].log), "server 2 subscribed at the master the sentinel named")

        def subscription_state(mark):
            """The port of server 2's wd_events subscription after log line
            `mark`, or None while it is lost (or not yet re-made)."""
            state = None
            for line in servers[1].log[mark:]:
                m = re.search(r"subscribed to wd_events at 127\.0\.0\.1:(\d+)", line)
                if m:
                    state = int(m.group(1))
                elif "lost the wd_events subscription" in line:
                    state = None
            return state

        def graceful_failover():
            old = redis.master_port()
            check(redis_cli(redis.sentinel_port, "SENTINEL", "FAILOVER", MASTER) == "OK",
                  "SENTINEL FAILOVER accepted")
            new = [None]

            def switched():
                new[0] = redis.master_port()
                return new[0] is not None and new[0] != old
            end = time.time() + 20
            while time.time() < end and not switched():
                check(all(imap_ok(s.port) for s in servers), "IMAP answers during the failover")
            check(switched(), "the sentinel names the other master")
            wait_until(lambda: redis_cli(new[0], "ROLE").startswith("master"), 20, "new master")
            # the sentinel may drop server 2's subscription (CLIENT KILL on
            # reconfiguration): deliver once it is subscribed again, anywhere
            # (a demoted master still forwards what the new one publishes)
            def subscribed():
                if subscription_state(0) is None:
                    return False
                time.sleep(1.5)
                return subscription_state(0) is not None
            wait_until(subscribed, 30, "server 2 subscribed after the failover")
            delivered_and_seen("after-failover", 10)

        def master_killed():
            old = redis.master_port()
            mark = len(servers[1].log)
            redis.procs[old].send_signal(signal.SIGKILL)
            redis.procs[old].wait()
            # mail is stored whatever Redis does meanwhile
            deliver(lmtp, "during-outage")
            count[0] += 1
            wait_until(lambda: redis.master_port() not in (None, old), 30, "promotion after kill")
            new = redis.master_port()
            check(all(imap_ok(s.port) for s in servers), "IMAP answers after the master died")
            seen = idle.wait_exists(count[0], 35)  # by notification or the journal poll
            check(seen is not None, "the delivery during the outage reached IDLE")
            # Pub/sub has no memory: what is published while a subscriber
            # reconnects reaches its sessions only at their next poll
            # (imap.syncPollSeconds). The sentinel drops the promoted
            # server's clients too, so wait until server 2 is subscribed at
            # the new master for good, then a notification must arrive.
            def settled():
                if subscription_state(mark) != new:
                    return False
                time.sleep(1.5)
                return subscription_state(mark) == new
            wait_until(settled, 30, "server 2 subscribed at the new master %d" % new)
            delivered_and_seen("after-kill", 10)

        results.run("baseline through the sentinel's master", baseline)
        results.run("SENTINEL FAILOVER, serving throughout", graceful_failover)
        results.run("master killed, promotion followed", master_killed)
    finally:
        for s in servers:
            s.stop()
        redis.stop()
        stack.cleanup()
    results.exit()


if __name__ == "__main__":
    main()

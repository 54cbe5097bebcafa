#!/usr/bin/env python3
"""bench/dovecot-open.py — a 100,000-message mailbox opened through Dovecot
with the wildduck storage, side by side with wd-server on the same data.

    WD_MONGO_URL=... WD_REDIS_URL=... [WD_FERRETDB_SQLITE=...] \\
    bench/dovecot-open.py BUILD_DIR [MESSAGES]

Fills (once) the INBOX of user "bench" in database bench_dvopen on the stack
with MESSAGES cloned messages (build/bench/dovecot-open-fill), then runs a
private Dovecot (tests/dovecot/dovecot_stack.py, static passdb, the shipped
conf.d/10-wildduck.conf) and wd-server, and times on each:

  STATUS INBOX from another connection, SELECT INBOX in a new connection
  (Dovecot: a new process importing the whole mailbox into its in-memory
  index), UID FETCH 1:* (FLAGS MODSEQ), UID SEARCH UNSEEN (index) and
  SUBJECT (pushed down to MongoDB), NOOP with nothing changed, NOOP after
  one change made elsewhere (the journal), and the imap process's memory
  (VmRSS, VmHWM from /proc) after SELECT and after the FETCH.

With a tmpfs-style INDEX= directory (the middle ground of
docs/dovecot-storage.md) it also times a first SELECT (import, index
written) and a second one in a new process (index read, journal applied).

Prints one table; nothing here is pass/fail."""

import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "dovecot"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "clients"))
from dovecot_stack import Dovecot, static_authdbs  # noqa: E402
from imapserver import Stack  # noqa: E402

PASSWORD = "bench-password-1"
DB = "bench_dvopen"


class Imap:
    def __init__(self, port, tls=False):
        sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.sock, self.buf, self.n = sock, b"", 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text):
        """(seconds, untagged line count, tagged line)."""
        self.n += 1
        tag = b"b%d" % self.n
        t = time.time()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        count = 0
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if b" OK" not in line[:12]:
                    raise RuntimeError("%s -> %r" % (text, line))
                return time.time() - t, count, line.decode()
            count += 1


def memory(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def cpu_seconds(pid):
    """User + system CPU time of a process (the imap process's own work,
    as opposed to the time spent waiting for the database)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def imap_pid(dv, mark):
    """The mail process of the newest login in Dovecot's log."""
    line = dv.wait_log(r"imap-login: Info: Login: user=<bench>.*mpid=(\d+)", mark)
    return int(re.search(r"mpid=(\d+)", line).group(1))


class Rows(list):
    """The table, also printed as it grows (a run takes many minutes)."""

    def append(self, row):
        super().append(row)
        print("  %-18s %-48s %8.3f s  %s" % row, flush=True)


def fill(build, stack, count):
    base = os.environ["WD_MONGO_URL"].rsplit("/", 1)[0]
    stack.mongo = base + "/" + DB
    try:
        stack.run_wdctl("user", "create", "bench", "--password", PASSWORD)
    except RuntimeError as e:
        if "exists" not in str(e):
            raise
        stack.run_wdctl("user", "passwd", "bench", stdin=PASSWORD + "\n")
    t = time.time()
    out = subprocess.run([os.path.join(build, "bench", "dovecot-open-fill"), stack.mongo,
                          stack.redis, "bench", str(count)], check=True,
                         capture_output=True, text=True).stdout
    print("fill: %s (%.0f s)" % (out.strip(), time.time() - t))


def settings(stack, index=None):
    with open(os.path.join(HERE, "..", "conf.d", "10-wildduck.conf")) as f:
        conf = f.read()
    if index:
        conf = conf.replace("\nmail_location = wildduck:\n",
                            "\nmail_location = wildduck::INDEX=%s/%%u\n" % index)
    plugin = "plugin {\n  wildduck_mongo = %s\n  wildduck_redis = %s\n}\n" % (
        stack.mongo, stack.redis)
    return static_authdbs(PASSWORD) + conf + plugin


def drop_counters(stack):
    """Forget WildDuck's cached counters of the bench INBOX, so the first
    STATUS of each server pays for the count."""
    url = stack.redis.split("://", 1)[1]
    host, port_db = url.split(":", 1)
    port, db = port_db.split("/", 1)
    keys = subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", db, "--scan",
                           "--pattern", "*"], capture_output=True, text=True).stdout.split()
    for key in keys:
        if key.startswith(("total:", "unseen:")):
            subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", db, "DEL", key],
                           capture_output=True)


def run_dovecot(dv, wd_port, label, rows):
    status = Imap(dv.ports["imap"])
    status.cmd('LOGIN bench "%s"' % PASSWORD)
    rows.append((label, "STATUS INBOX (MESSAGES UNSEEN), not selected",
                 status.cmd("STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)")[0],
                 "counters absent: one pass"))
    rows.append((label, "STATUS INBOX again",
                 status.cmd("STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)")[0],
                 "WildDuck's counters in Redis"))
    mark = dv.log_mark()
    c = Imap(dv.ports["imap"])
    t_login = c.cmd('LOGIN bench "%s"' % PASSWORD)[0]
    pid = imap_pid(dv, mark)
    base = memory(pid)
    c.cmd("ENABLE CONDSTORE")
    cpu = cpu_seconds(pid)
    t, _, tagged = c.cmd("SELECT INBOX")
    rss = memory(pid)
    rows.append((label, "SELECT INBOX, new process", t,
                 "imap CPU %.2f s; RSS %d MB (HWM %d), %d MB before"
                 % (cpu_seconds(pid) - cpu, rss[0], rss[1], base[0])))
    cpu = cpu_seconds(pid)
    t, n, _ = c.cmd("UID FETCH 1:* (FLAGS MODSEQ)")
    rss = memory(pid)
    rows.append((label, "UID FETCH 1:* (FLAGS MODSEQ)", t,
                 "%d responses, imap CPU %.2f s; RSS %d MB (HWM %d)"
                 % (n, cpu_seconds(pid) - cpu, rss[0], rss[1])))
    t, _, _ = c.cmd("UID FETCH 99990:* (RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])")
    rows.append((label, "UID FETCH last 11 (size, date, header)", t, ""))
    rows.append((label, "UID SEARCH UNSEEN (index)", c.cmd("UID SEARCH UNSEEN")[0], ""))
    rows.append((label, "UID SEARCH SUBJECT digest (MongoDB)",
                 c.cmd("UID SEARCH SUBJECT digest")[0], ""))
    rows.append((label, "NOOP, nothing changed", c.cmd("NOOP")[0], ""))
    other = Imap(wd_port, tls=True)
    other.cmd('LOGIN bench "%s"' % PASSWORD)
    other.cmd("SELECT INBOX")
    other.cmd("UID STORE 5 +FLAGS (\\Answered)")
    rows.append((label, "NOOP after a change on wd-server", c.cmd("NOOP")[0], ""))
    other.cmd("UID STORE 5 -FLAGS (\\Answered)")
    other.cmd("LOGOUT")
    c.cmd("LOGOUT")
    status.cmd("LOGOUT")
    del t_login


class WdServer:
    """wd-server on loopback ports. Not tests/clients' Server: creating
    WildDuck's indexes over a 100,000-document collection takes minutes on
    FerretDB, longer than that helper waits for startup."""

    def __init__(self, binary, stack):
        self.proc = subprocess.Popen(
            [binary, "--config=" + stack.config] + stack.overrides() + [
                "--imap.host=127.0.0.1", "--imap.port=0", "--pop3.host=127.0.0.1",
                "--pop3.port=0", "--log.level=info"],
            stderr=subprocess.PIPE, text=True)
        self.ports = {}
        for line in self.proc.stderr:
            m = re.search(r"(\w+) listening on [^ ]*:(\d+)", line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
            if re.search(r"\d+ worker threads", line):
                break
        if "imap" not in self.ports:
            raise RuntimeError("wd-server did not start")
        # keep reading its log so it never blocks on a full pipe
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def run_wdserver(wd, rows):
    c = Imap(wd.ports["imap"], tls=True)
    c.cmd('LOGIN bench "%s"' % PASSWORD)
    rows.append(("wd-server", "STATUS INBOX (MESSAGES UNSEEN), not selected",
                 c.cmd("STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)")[0], ""))
    c.cmd("ENABLE CONDSTORE")
    rows.append(("wd-server", "SELECT INBOX", c.cmd("SELECT INBOX")[0], ""))
    t, n, _ = c.cmd("UID FETCH 1:* (FLAGS MODSEQ)")
    rows.append(("wd-server", "UID FETCH 1:* (FLAGS MODSEQ)", t, "%d responses" % n))
    rows.append(("wd-server", "UID SEARCH UNSEEN", c.cmd("UID SEARCH UNSEEN")[0], ""))
    rows.append(("wd-server", "UID SEARCH SUBJECT digest", c.cmd("UID SEARCH SUBJECT digest")[0],
                 ""))
    rows.append(("wd-server", "NOOP, nothing changed", c.cmd("NOOP")[0], ""))
    c.cmd("LOGOUT")


def main():
    if len(sys.argv) < 2 or not os.environ.get("WD_MONGO_URL"):
        print(__doc__)
        sys.exit(2)
    build = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    os.environ.setdefault("WD_BUILD_DIR", build)
    stack = Stack(os.path.join(build, "tools", "wdctl"))
    fill(build, stack, count)
    rows = Rows()
    wd = WdServer(os.path.join(build, "server", "wd-server"), stack)
    try:
        run_wdserver(wd, rows)
        drop_counters(stack)
        with Dovecot(settings=settings(stack)) as dv:
            run_dovecot(dv, wd.ports["imap"], "dovecot", rows)
        index = tempfile.mkdtemp(prefix="wd-dv-index-")
        os.chmod(index, 0o777)
        with Dovecot(settings=settings(stack, index)) as dv:
            for attempt in ("first", "second"):
                c = Imap(dv.ports["imap"])
                c.cmd('LOGIN bench "%s"' % PASSWORD)
                rows.append(("dovecot INDEX=dir", "SELECT INBOX, %s process" % attempt,
                             c.cmd("SELECT INBOX")[0], ""))
                c.cmd("LOGOUT")  # each connection is a new imap process
        subprocess.run(["rm", "-rf", index])
    finally:
        wd.stop()
        stack.cleanup()
    print("\n%d messages (FerretDB %s, load %s)" % (count, "SQLite", os.getloadavg()[0]))
    print("| server | operation | seconds | notes |\n|---|---|---|---|")
    for server, op, t, note in rows:
        print("| %s | %s | %.3f | %s |" % (server, op, t, note))


if __name__ == "__main__":
    main()

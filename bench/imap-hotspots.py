#!/usr/bin/env python3
"""bench/imap-hotspots.py — time wd-server's metadata commands on a big INBOX
and split each one into our CPU and the database's.

    WD_MONGO_URL=... WD_REDIS_URL=... WD_FERRETDB_SQLITE=... [WD_STACK_DIR=...] \\
    bench/imap-hotspots.py BUILD_DIR DATABASE [--wrap "valgrind --tool=callgrind ..."]

DATABASE holds user "bench" (password bench-password-1) with a big INBOX,
made by bench/dovecot-open-fill (see bench/HOTSPOTS.md). Starts wd-server
on it (optionally under a wrapper such as callgrind), and for each command
prints the wall time, the CPU seconds wd-server and FerretDB spent on it
(FerretDB's pid from $WD_STACK_DIR/ferretdb/ferretdb.pid), and wd-server's
VmRSS afterwards. Nothing here is pass/fail."""

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time

PASSWORD = "bench-password-1"


def cpu_seconds(pid):
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Imap:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3600)
        self.buf, self.n = b"", 0
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
        """(seconds, untagged lines, last untagged line, tagged line)"""
        self.n += 1
        tag = b"h%d" % self.n
        t = time.time()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        count, last = 0, b""
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if b" OK" not in line[:12]:
                    raise RuntimeError("%s -> %r" % (text, line))
                return time.time() - t, count, lines, line.decode()
            count += 1
            if len(lines) < 20:
                lines.append(line.decode(errors="replace"))


def main():
    if len(sys.argv) < 3 or not os.environ.get("WD_MONGO_URL"):
        print(__doc__)
        sys.exit(2)
    build, db = sys.argv[1], sys.argv[2]
    wrap = []
    if len(sys.argv) > 4 and sys.argv[3] == "--wrap":
        wrap = shlex.split(sys.argv[4])
    mongo = os.environ["WD_MONGO_URL"].rsplit("/", 1)[0] + "/" + db
    stack_dir = os.environ.get("WD_STACK_DIR", "")
    fpid = 0
    try:
        with open(os.path.join(stack_dir, "ferretdb", "ferretdb.pid")) as f:
            fpid = int(f.read().strip())
    except (OSError, ValueError):
        pass
    tmp = tempfile.mkdtemp(prefix="imap-hotspots-")
    conf = os.path.join(tmp, "empty.toml")
    open(conf, "w").close()
    cert, key = os.path.join(tmp, "server.crt"), os.path.join(tmp, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    args = wrap + [os.path.join(build, "server", "wd-server"), "--config=" + conf,
                   "--dbs.mongo=" + mongo, "--dbs.redis=" + os.environ["WD_REDIS_URL"],
                   "--imap.host=127.0.0.1", "--imap.port=0", "--imap.secure=false",
                   "--imap.starttls=false", "--imap.insecureAuth=true",
                   "--pop3.host=127.0.0.1", "--pop3.port=0", "--tls.cert=" + cert,
                   "--tls.key=" + key, "--log.level=info"]
    if os.environ.get("WD_FERRETDB_SQLITE"):
        args.append("--dbs.ferretdbSqlite=" + os.environ["WD_FERRETDB_SQLITE"])
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    port = None
    for line in proc.stderr:
        m = re.search(r"imap listening on [^ ]*:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        raise RuntimeError("wd-server did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    pid = proc.pid
    if wrap:  # the wrapper execs nothing: find the real child by name
        pid = proc.pid

    rows = []

    def run(conn, text, label=None):
        c0, f0 = cpu_seconds(pid), cpu_seconds(fpid)
        t, n, lines, tagged = conn.cmd(text)
        row = (label or text, t, cpu_seconds(pid) - c0, cpu_seconds(fpid) - f0, n,
               rss_kib(pid))
        rows.append(row)
        print("  %-58s %8.3f s  wd %7.3f s  db %7.3f s  %7d lines  RSS %d KiB" % row,
              flush=True)
        return lines, tagged

    try:
        s = Imap(port)
        s.cmd('LOGIN bench "%s"' % PASSWORD)
        run(s, "STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)")
        c = Imap(port)
        c.cmd('LOGIN bench "%s"' % PASSWORD)
        c.cmd("ENABLE CONDSTORE")
        lines, _ = run(c, "SELECT INBOX")
        hms = 0
        for line in lines:
            m = re.search(r"HIGHESTMODSEQ (\d+)", line)
            if m:
                hms = int(m.group(1))
        run(c, "UID FETCH 1:* (FLAGS)")
        run(c, "FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE %d)" % max(hms - 10, 1))
        run(c, "UID SEARCH UNSEEN")
        run(c, "UID SEARCH SUBJECT digest")
        run(c, "FETCH 1:100 (ENVELOPE)")
        run(c, "STORE 5 +FLAGS (\\Answered)")
        run(c, "STORE 5 -FLAGS (\\Answered)")
        run(c, "NOOP")
        run(s, "STATUS INBOX (MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)", "STATUS again")
        c.cmd("LOGOUT")
        s.cmd("LOGOUT")
    finally:
        proc.terminate()
        proc.wait(120)
        subprocess.run(["rm", "-rf", tmp])
    print("| command | wall s | wd-server CPU s | FerretDB CPU s | lines | RSS KiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.3f | %.3f | %.3f | %d | %d |" % r)


if __name__ == "__main__":
    main()

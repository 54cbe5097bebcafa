#!/usr/bin/env python3
"""bench/imap-idle-memory.py — wd-server's memory per idle IMAP connection.

    WD_MONGO_URL=... WD_REDIS_URL=... [WD_FERRETDB_SQLITE=...] \\
    bench/imap-idle-memory.py BUILD_DIR DATABASE N [--tls]

DATABASE holds user "bench" (password bench-password-1) with a small INBOX
(bench/dovecot-open-fill DATABASE ... bench 10). Starts wd-server (plain
listener, or implicit TLS with --tls), opens N connections that each LOGIN,
SELECT INBOX and IDLE, and prints wd-server's VmRSS before and after and
the difference per connection; then the same after the connections close.
Needs `ulimit -n` above N + 100 (wd-server inherits it). Nothing here is
pass/fail."""

import os
import re
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

PASSWORD = "bench-password-1"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    if len(sys.argv) < 4 or not os.environ.get("WD_MONGO_URL"):
        print(__doc__)
        sys.exit(2)
    build, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tls = "--tls" in sys.argv[4:]
    mongo = os.environ["WD_MONGO_URL"].rsplit("/", 1)[0] + "/" + db
    tmp = tempfile.mkdtemp(prefix="imap-idle-")
    conf = os.path.join(tmp, "empty.toml")
    open(conf, "w").close()
    cert, key = os.path.join(tmp, "server.crt"), os.path.join(tmp, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    args = [os.path.join(build, "server", "wd-server"), "--config=" + conf,
            "--dbs.mongo=" + mongo, "--dbs.redis=" + os.environ["WD_REDIS_URL"],
            "--imap.host=127.0.0.1", "--imap.port=0", "--imap.secure=%s" % str(tls).lower(),
            "--imap.starttls=false", "--imap.insecureAuth=true",
            "--imap.maxConnections=%d" % (n + 10), "--pop3.host=127.0.0.1", "--pop3.port=0",
            "--tls.cert=" + cert, "--tls.key=" + key, "--log.level=info"]
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
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def open_conn():
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        if tls:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        return s

    def expect(s, buf, token):
        while token not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        return buf.split(token, 1)[1]

    # one warm-up session, so one-time allocations are not counted
    s = open_conn()
    b = expect(s, b"", b"\r\n")
    s.sendall(b'a LOGIN bench "%s"\r\na SELECT INBOX\r\n' % PASSWORD.encode())
    b = expect(s, b, b"a OK")
    b = expect(s, b, b"a OK")
    s.sendall(b"a LOGOUT\r\n")
    s.close()
    time.sleep(1)
    before = rss_kib(proc.pid)
    conns = []
    t = time.time()
    try:
        for i in range(n):
            s = open_conn()
            b = expect(s, b"", b"\r\n")
            s.sendall(b'a LOGIN bench "%s"\r\n' % PASSWORD.encode())
            b = expect(s, b, b"a OK")
            s.sendall(b"b SELECT INBOX\r\n")
            b = expect(s, b, b"b OK")
            s.sendall(b"c IDLE\r\n")
            b = expect(s, b, b"+ idling")
            conns.append(s)
        opened = time.time() - t
        time.sleep(3)
        after = rss_kib(proc.pid)
        per = (after - before) * 1024 / n
        print("%s: %d idle connections opened in %.1f s; wd-server VmRSS %d KiB -> %d KiB: "
              "%.0f bytes per connection" % ("TLS" if tls else "plain", n, opened, before,
                                             after, per), flush=True)
        for s in conns:
            try:
                s.sendall(b"DONE\r\nd LOGOUT\r\n")
            except OSError:
                pass
        for s in conns:
            s.close()
        conns = []
        time.sleep(3)
        print("after closing them: VmRSS %d KiB" % rss_kib(proc.pid))
    finally:
        for s in conns:
            s.close()
        proc.terminate()
        proc.wait(60)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()

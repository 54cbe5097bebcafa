"""Helpers for the client tests: start wd-server against the test stack,
create users with wdctl, and talk IMAP over raw sockets.

Each test process uses its own database (wdtest_cli_<pid>_<random>) on the
shared FerretDB and Redis (WD_MONGO_URL / WD_REDIS_URL), and its own
loopback ports (wd-server binds port 0 and logs the port it got)."""

import os
import random
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zlib


def skip_without_stack():
    if not os.environ.get("WD_MONGO_URL") or not os.environ.get("WD_REDIS_URL"):
        print("WD_MONGO_URL / WD_REDIS_URL not set: skipping")
        sys.exit(77)


class Stack:
    """A unique database on the shared stack plus a TLS key pair."""

    def __init__(self, wdctl):
        self.wdctl = wdctl
        base = os.environ["WD_MONGO_URL"].rsplit("/", 1)[0]
        self.db = "wdtest_cli_%d_%06x" % (os.getpid(), random.getrandbits(24))
        self.mongo = base + "/" + self.db
        self.redis = os.environ["WD_REDIS_URL"]
        self.tmp = tempfile.TemporaryDirectory(prefix="wd-cli-")
        self.cert = os.path.join(self.tmp.name, "server.crt")
        self.key = os.path.join(self.tmp.name, "server.key")
        # built-in defaults only; everything the tests need is overridden
        self.config = os.path.join(self.tmp.name, "empty.toml")
        open(self.config, "w").close()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)

    def overrides(self):
        args = ["--dbs.mongo=" + self.mongo, "--dbs.redis=" + self.redis,
                "--tls.cert=" + self.cert, "--tls.key=" + self.key]
        sqlite = os.environ.get("WD_FERRETDB_SQLITE")
        if sqlite:
            args.append("--dbs.ferretdbSqlite=" + sqlite)
        return args

    def run_wdctl(self, *args, stdin=None):
        res = subprocess.run([self.wdctl, "--config=" + self.config] + self.overrides() + list(args),
                             capture_output=True, text=True, input=stdin, timeout=60)
        if res.returncode != 0:
            raise RuntimeError("wdctl %s failed: %s" % (" ".join(args), res.stderr))
        return res.stdout

    def user(self, name, password):
        self.run_wdctl("user", "create", name, "--password", password)

    def cleanup(self):
        self.tmp.cleanup()


class Server:
    """A wd-server process. Each service logs "<name> listening on
    host:port" at startup: `ports` maps the names ("imap", "pop3", "lmtp")
    to the ports they got, `port` is IMAP's. Ready once main logged its
    last startup line ("N worker threads")."""

    def __init__(self, binary, stack, *extra):
        self.args = [binary, "--config=" + stack.config] + stack.overrides() + [
            "--imap.host=127.0.0.1", "--imap.port=0", "--log.level=info",
            # every listener on loopback, on a port of its own
            "--pop3.host=127.0.0.1", "--pop3.port=0",
            "--lmtp.host=127.0.0.1", "--lmtp.port=0",
            "--workers.threads=4"] + list(extra)
        self.proc = subprocess.Popen(self.args, stderr=subprocess.PIPE, text=True,
                                     errors="replace")  # a non-UTF-8 log line must not stop the reader
        self.log = []
        self.port = None
        self.ports = {}
        ready = threading.Event()

        def reader():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"(\w+) listening on [^ ]*:(\d+)", line)
                if m:
                    self.ports[m.group(1)] = int(m.group(2))
                    self.port = self.ports.get("imap")
                if re.search(r"\d+ worker threads", line):
                    ready.set()
            ready.set()

        self.thread = threading.Thread(target=reader, daemon=True)
        self.thread.start()
        if not ready.wait(60) or self.port is None:
            self.proc.kill()
            raise RuntimeError("wd-server did not start:\n" + "".join(self.log))

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError("wd-server did not stop on SIGTERM")
        self.thread.join(5)
        return code


class Conn:
    """A raw IMAP connection: send lines, read responses up to a tag."""

    def __init__(self, port, tls=False, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = self._wrap(self.sock)
        self.buf = b""
        self.inflate = None
        self.deflate = None
        self.tagn = 0
        self.greeting = self.line()

    @staticmethod
    def _wrap(sock):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx.wrap_socket(sock, server_hostname="localhost")

    def starttls(self):
        self.sock = self._wrap(self.sock)

    def compress(self):
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        if self.inflate is not None:
            chunk = self.inflate.decompress(chunk)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def closed(self, timeout=10):
        """True when the server closes the connection within timeout."""
        end = time.time() + timeout
        try:
            while time.time() < end:
                self.sock.settimeout(max(0.1, end - time.time()))
                self._fill()
        except (EOFError, ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False
        return False

    def tag(self):
        self.tagn += 1
        return "t%d" % self.tagn

    def cmd(self, text, tag=None):
        """Send `tag text` and return (untagged lines, tagged line)."""
        tag = tag or self.tag()
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Results:
    def __init__(self):
        self.failed = []
        self.passed = 0

    def run(self, name, fn, *args):
        start = time.time()
        try:
            fn(*args)
            self.passed += 1
            print("ok   %-40s %.1fs" % (name, time.time() - start), flush=True)
        except Exception as e:  # report and go on with the next test
            self.failed.append(name)
            print("FAIL %-40s %s: %s" % (name, type(e).__name__, e), flush=True)

    def exit(self):
        print("%d passed, %d failed %s" % (self.passed, len(self.failed), self.failed))
        sys.exit(1 if self.failed else 0)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)

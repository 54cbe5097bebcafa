"""Shared helpers of the `limits` suite: the server's memory from
/proc/<pid>/status, a raw LMTP connection, a PROXY v1 header (so one test
can speak from many client addresses), and a minimal Redis client for
looking at (and ageing) WildDuck's auth counters.

The IMAP helpers (Stack, Server, Conn) come from tests/clients/imapserver.py."""

import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
from imapserver import Conn, Results, Server, Stack, check, skip_without_stack  # noqa: E402,F401

PASSWORD = "correct horse"
MIB = 1024 * 1024


def status_kib(pid, field):
    """VmRSS / VmHWM (peak RSS) of a process in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class Memory:
    """RSS before a test step and the growth of the peak (VmHWM) after it.

    The peak is reset to the current RSS first (writing 5 to clear_refs,
    Linux >= 4.0), so the growth of the peak is the most the step made the
    server hold at any moment (an upper bound: other work of the same
    process counts too)."""

    def __init__(self, server):
        self.pid = server.proc.pid
        self.sanitized = sanitized_binary(server.proc.args[0])
        with open("/proc/%d/clear_refs" % self.pid, "w") as f:
            f.write("5")
        self.rss0 = status_kib(self.pid, "VmRSS")
        self.hwm0 = status_kib(self.pid, "VmHWM")

    def peak_growth_mib(self):
        hwm = status_kib(self.pid, "VmHWM")
        return max(0, hwm - max(self.hwm0, self.rss0)) / 1024.0

    def rss_mib(self):
        return status_kib(self.pid, "VmRSS") / 1024.0

    def within(self, bound_mib):
        """Whether the peak grew by less than bound_mib. In a sanitizer
        build ASan's quarantine keeps freed memory (hundreds of MiB), so
        there the figure is printed and the bound not applied."""
        if self.sanitized:
            print("     (sanitizer build: memory bound %d MiB not applied)" % bound_mib,
                  flush=True)
            return True
        return self.peak_growth_mib() < bound_mib

    def report(self, what):
        print("     memory %-34s rss %.1f MiB, peak grew %.1f MiB" %
              (what, self.rss_mib(), self.peak_growth_mib()), flush=True)


_sanitized = {}


def sanitized_binary(path):
    """Whether the binary was built with AddressSanitizer (-Dsanitize=true)."""
    if path not in _sanitized:
        with open(path, "rb") as f:
            _sanitized[path] = b"__asan_init" in f.read()
    return _sanitized[path]


def proxy_v1(ip, port=40000):
    return ("PROXY TCP4 %s 127.0.0.1 %d 143\r\n" % (ip, port)).encode()


def random_test_ip():
    """An address from 198.18.0.0/15 (benchmarking range), new per run, so
    per-address counters in the shared Redis never collide between runs."""
    n = random.getrandbits(17)
    return "198.%d.%d.%d" % (18 + (n >> 16), (n >> 8) & 0xff, max(1, n & 0xff))


class Lmtp:
    """A raw LMTP connection: send bytes, read whole replies."""

    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; had %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One reply, all its lines: (code, text of the last line)."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return int(lines[-1][:3]), lines[-1]

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def deliver(self, sender, rcpts, message):
        """MAIL, RCPT per address, DATA with dot-stuffing: the per-recipient
        replies after the data (or the DATA refusal)."""
        code, text = self.cmd("MAIL FROM:<%s>" % sender)
        check(code == 250, "MAIL: %s" % text)
        for r in rcpts:
            code, text = self.cmd("RCPT TO:<%s>" % r)
            check(code == 250, "RCPT %s: %s" % (r, text))
        code, text = self.cmd("DATA")
        if code != 354:
            return [(code, text)]
        body = message.replace(b"\r\n.", b"\r\n..")
        if body.startswith(b"."):
            body = b"." + body
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body + b".\r\n")
        return [self.reply() for _ in rcpts]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Redis:
    """Just enough RESP for the auth counters (the tests' Redis database)."""

    def __init__(self, url):
        rest = url.split("://", 1)[1]
        hostport, _, db = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=10)
        self.buf = b""
        if db:
            self.cmd("SELECT", db)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("redis closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise ValueError("bad reply %r" % line)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def close(self):
        self.sock.close()


def imap_login(port, user, password=PASSWORD):
    c = Conn(port)
    _, tagged = c.cmd('LOGIN "%s" "%s"' % (user, password))
    check(" OK" in tagged, "LOGIN %s: %s" % (user, tagged))
    return c


def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()

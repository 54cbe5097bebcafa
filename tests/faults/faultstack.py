"""Helpers for the fault-injection tests (suite `faults`): a private
FerretDB + Redis that a test may stop, freeze and restart, wd-server
processes that it may kill, and small LMTP / IMAP helpers.

Every test starts its OWN stack (scripts/stack.sh with a WD_STACK_DIR under
the meson build directory and free loopback ports), because CI runs all
suites in parallel against one shared stack, which a test that stops its
database would break for everyone else. The stack is stopped and its
directory removed when the test ends, whatever happens.

The wd-server, Stack and Conn helpers of tests/clients/imapserver.py are
reused: this module points WD_MONGO_URL / WD_REDIS_URL at the private stack
before they read them."""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
import imapserver  # noqa: E402
from imapserver import Results, Server, check  # noqa: E402,F401

SOURCE = os.environ.get("WD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK_SH = os.path.join(SOURCE, "scripts", "stack.sh")
PASSWORD = "correct horse"
DOMAIN = "faults.example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ferretdb_available():
    binary = os.environ.get("WD_FERRETDB") or os.path.join(SOURCE, ".tools", "bin", "ferretdb")
    return os.access(binary, os.X_OK) and shutil.which("redis-server") is not None


class PrivateStack:
    """FerretDB + Redis of this test alone, through scripts/stack.sh."""

    def __init__(self, name):
        base = os.environ.get("WD_BUILD_DIR") or os.getcwd()
        self.dir = os.path.join(base, "faults-stack", "%s-%d" % (name, os.getpid()))
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.env = dict(os.environ, WD_STACK_DIR=self.dir, WD_MONGO_PORT=str(free_port()),
                        WD_REDIS_PORT=str(free_port()))
        atexit.register(self.destroy)
        out = self._stack("start")
        urls = dict(l.split("=", 1) for l in out.splitlines() if l.startswith("WD_"))
        self.mongo_url, self.redis_url = urls["WD_MONGO_URL"], urls["WD_REDIS_URL"]
        self.sqlite = urls["WD_FERRETDB_SQLITE"]
        # what imapserver.Stack reads: a database of its own on OUR stack
        os.environ["WD_MONGO_URL"] = self.mongo_url
        os.environ["WD_REDIS_URL"] = self.redis_url
        os.environ["WD_FERRETDB_SQLITE"] = self.sqlite

    def _stack(self, command):
        res = subprocess.run(["bash", STACK_SH, command], env=self.env, capture_output=True,
                             text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError("stack.sh %s failed: %s" % (command, res.stderr))
        return res.stdout

    def _pid(self, name):
        path = os.path.join(self.dir, name, name + ".pid")
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _stop(self, name):
        """SIGTERM to our own FerretDB or Redis (its pid file, written by
        stack.sh for this directory), then wait until it is gone."""
        pid = self._pid(name)
        check(pid is not None, "no %s pid file" % name)
        os.kill(pid, signal.SIGTERM)
        end = time.time() + 15
        while os.path.exists("/proc/%d" % pid) and time.time() < end:
            time.sleep(0.05)
        if os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def stop_ferretdb(self):
        self._stop("ferretdb")

    def stop_redis(self):
        self._stop("redis")

    def freeze_ferretdb(self, frozen=True):
        """SIGSTOP / SIGCONT: a database that accepts connections and then
        answers nothing (a stuck server, a full disk, a network black hole)."""
        os.kill(self._pid("ferretdb"), signal.SIGSTOP if frozen else signal.SIGCONT)

    def start(self):
        """Start what is not running (stack.sh start is idempotent)."""
        self._stack("start")

    def destroy(self):
        pid = self._pid("ferretdb")
        if pid is not None and os.path.exists("/proc/%d" % pid):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        try:
            self._stack("stop")
        except Exception as e:  # report, but always remove the directory
            print("stack.sh stop: %s" % e)
        shutil.rmtree(self.dir, ignore_errors=True)


def setup(name, wdctl, users=("alice",)):
    """A private stack, a database on it, and users with addresses."""
    if not ferretdb_available():
        print("FerretDB or redis-server not installed (scripts/install-deps.sh): skipping")
        sys.exit(77)
    pstack = PrivateStack(name)
    stack = imapserver.Stack(wdctl)
    for user in users:
        stack.run_wdctl("user", "create", user, "--address", addr(user), "--password", PASSWORD)
    return pstack, stack


def addr(user):
    return "%s@%s" % (user, DOMAIN)


def server_bad_lines(server):
    """Log lines that show a bug: sanitizer reports, assertion failures."""
    return [l for l in server.log if "Sanitizer" in l or "runtime error" in l or
            "assert" in l.lower() or "LeakSanitizer" in l]


def stop_server(server, res, name="wd-server"):
    """Stop with SIGTERM; a non-zero exit (a sanitizer's leak report) or a
    bug in the log is a failure of the test."""
    try:
        code = server.stop(60)
    except RuntimeError as e:
        res.failed.append("%s: %s" % (name, e))
        return
    bad = server_bad_lines(server)
    if code != 0 or bad:
        res.failed.append("%s exit %s" % (name, code))
        print("%s exited with %s; log ends:\n%s" % (name, code, "".join(server.log[-60:])))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Lmtp:
    """A raw LMTP connection: commands, whole replies, a whole transaction."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return int(lines[-1][:3]), lines[-1]

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def deliver(self, sender, rcpt, message):
        """One transaction for one recipient: the reply to DATA's end (or
        the first refusal before it) as (code, text)."""
        code, text = self.cmd("MAIL FROM:<%s>" % sender)
        if code != 250:
            return code, text
        code, text = self.cmd("RCPT TO:<%s>" % rcpt)
        if code != 250:
            self.cmd("RSET")
            return code, text
        code, text = self.cmd("DATA")
        if code != 354:
            return code, text
        self.send(stuffed(message))
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def stuffed(message):
    """Dot-stuffed (RFC 5321 §4.5.2) and ended with CRLF "." CRLF."""
    lines = message.split(b"\r\n")
    out = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)
    return out + b".\r\n" if out.endswith(b"\r\n") else out + b"\r\n.\r\n"


def lmtp_session(port):
    c = Lmtp(port)
    code, text = c.cmd("LHLO faults.test")
    check(code == 250, text)
    return c


class Conn(imapserver.Conn):
    """imapserver's raw IMAP connection that remembers its last lines (what
    the server said before it closed)."""

    def __init__(self, *args, **kwargs):
        self.last = []
        super().__init__(*args, **kwargs)

    def line(self):
        line = super().line()
        self.last = self.last[-4:] + [line]
        return line


def imap_login(port, user="alice"):
    c = Conn(port, tls=True)
    _, tagged = c.cmd("LOGIN %s \"%s\"" % (user, PASSWORD))
    check(" OK" in tagged, tagged)
    return c


FETCH_LITERAL = re.compile(rb"\{(\d+)\}$")


class ByeError(Exception):
    """The server ended the session with an untagged BYE."""


def fetch_all(conn, items, uid_range="1:*"):
    """UID FETCH returning {uid: (attribute text, [literals])}; literals are
    read by their announced lengths, so binary bodies come back whole."""
    tag = conn.tag()
    conn.send("%s UID FETCH %s (%s)\r\n" % (tag, uid_range, items))
    result = {}
    while True:
        line = _raw_line(conn)
        if line.startswith(tag.encode() + b" "):
            check(b" OK" in line, line)
            return result
        conn.last = conn.last[-4:] + [line.decode("utf-8", "replace")]
        if line.startswith(b"* BYE"):
            raise ByeError(line.decode("utf-8", "replace"))
        text, literals = line, []
        while True:
            m = FETCH_LITERAL.search(line)
            if not m:
                break
            literals.append(_raw_bytes(conn, int(m.group(1))))
            line = _raw_line(conn)
            text += b" " + line
        m = re.search(rb"UID (\d+)", text)
        if text.startswith(b"* ") and b" FETCH " in text and m:
            result[int(m.group(1))] = (text, literals)


def _raw_line(conn):
    while b"\r\n" not in conn.buf:
        conn._fill()
    line, conn.buf = conn.buf.split(b"\r\n", 1)
    return line


def _raw_bytes(conn, n):
    while len(conn.buf) < n:
        conn._fill()
    data, conn.buf = conn.buf[:n], conn.buf[n:]
    return data


def message(n, attempt, attachment=None, filler=0):
    """A test message named by its number and delivery attempt, optionally
    with a base64 attachment (shared contents are de-duplicated in GridFS,
    so their reference counts matter)."""
    subject = "fault msg %d attempt %d" % (n, attempt)
    head = ("From: Sender <sender@outside.example>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <m%d.a%d@outside.example>\r\n" % (addr("alice"), subject, n, attempt))
    text = ("message %d, attempt %d\r\n" % (n, attempt)) + ("filler line %d\r\n" % n) * filler
    if attachment is None:
        return (head + "\r\n" + text).encode()
    import base64
    enc = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (head + "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
            "--b%d\r\nContent-Type: text/plain\r\n\r\n%s"
            "--b%d\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"a%d.bin\"\r\n\r\n"
            % (n, n, text, n, n)).encode() + enc + ("--b%d--\r\n" % n).encode()


SUBJECT = re.compile(rb"fault msg (\d+) attempt (\d+)")


def wdctl_lines(stack, *args):
    """wdctl's output and exit code (check exits 3 when problems remain)."""
    res = subprocess.run([stack.wdctl, "--config=" + stack.config] + stack.overrides() +
                         list(args), capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout + res.stderr

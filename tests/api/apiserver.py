"""Helpers for the wd-api tests (suite `api`): start wd-api (and, when a test
needs it, wd-server) on the test stack, and talk HTTP with http.client.

Each test process has its own database on the shared stack (imapserver.Stack),
so tests never see each other's users. wd-api binds port 0 and logs
"api listening on host:port"; ApiServer reads the port from that line."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
from imapserver import Stack, Server, Conn, skip_without_stack  # noqa: E402,F401


class ApiServer:
    """A wd-api process on the stack; `port` is where it listens."""

    def __init__(self, binary, stack, *extra):
        self.args = [binary, "--config=" + stack.config] + stack.overrides() + [
            "--api.host=127.0.0.1", "--api.port=0", "--api.threads=4",
            "--log.level=info"] + list(extra)
        self.proc = subprocess.Popen(self.args, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def reader():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"api listening on [^ ]*:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.thread = threading.Thread(target=reader, daemon=True)
        self.thread.start()
        if not ready.wait(60) or self.port is None:
            self.proc.kill()
            raise RuntimeError("wd-api did not start:\n" + "".join(self.log))

    def client(self, token=None):
        return Client(self.port, token)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError("wd-api did not stop on SIGTERM")
        self.thread.join(5)
        if code != 0:  # show why (a sanitizer report, a crash)
            print("wd-api exited with %s; its log ends:\n%s" % (code, "".join(self.log[-80:])))
        return code

    def errors(self):
        """Log lines that show a bug (not the expected warnings)."""
        return [l for l in self.log if " error " in l or "handler" in l or "answered twice" in l]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Client:
    """HTTP requests to wd-api. `token` goes in X-Access-Token unless the
    call gives headers of its own."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token

    def request(self, method, path, body=None, query=None, headers=None, raw=None,
                content_type=None, timeout=60):
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        hdrs = {}
        if self.token:
            hdrs["X-Access-Token"] = self.token
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            hdrs["Content-Type"] = content_type or "message/rfc822"
        elif body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            hdrs["Content-Type"] = content_type or "application/json"
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            res = conn.getresponse()
            return Response(res.status, dict(res.getheaders()), res.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Check:
    """Counts checks; prints failures; exits non-zero at the end when any
    failed."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def __call__(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s %s" % (what, detail), flush=True)
        return cond

    def status(self, res, status, what):
        return self(res.status == status, what, "expected %d, got %r" % (status, res))

    def done(self):
        print("%d checks passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class EventStream:
    """A raw EventSource reader on its own socket: events() yields dicts
    {"data": parsed JSON, "id": str} and comments as {"comment": text}."""

    def __init__(self, port, path, token=None, last_event_id=None, timeout=20):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        hdrs = {"Accept": "text/event-stream"}
        if token:
            hdrs["X-Access-Token"] = token
        if last_event_id:
            hdrs["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=hdrs)
        self.res = self.conn.getresponse()
        self.status = self.res.status
        self.headers = dict(self.res.getheaders())
        self.buf = b""

    def _chunk(self):
        data = self.res.read1(65536)
        if not data:
            raise EOFError("stream closed")
        self.buf += data

    def next_event(self, timeout=10):
        self.conn.sock.settimeout(timeout)
        while b"\n\n" not in self.buf:
            self._chunk()
        block, self.buf = self.buf.split(b"\n\n", 1)
        event = {}
        data = []
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith("id: "):
                event["id"] = line[4:]
            elif line.startswith("event: "):
                event["event"] = line[7:]
        if data:
            event["data"] = json.loads("\n".join(data))
        return event

    def wait_for(self, pred, timeout=10):
        """The first event for which pred(event) is true, skipping others."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no matching event")
            ev = self.next_event(left)
            if pred(ev):
                return ev

    def close(self):
        self.conn.close()

#!/usr/bin/env python3
"""Slow clients (suite `limits`):

  - a client that does not read (IMAP FETCH of 40 MB, POP3 RETR of a large
    message): the server stops producing output at its high watermark
    (64 KiB queued), and closes the connection when the output has not
    drained within imap.writeTimeout / pop3.writeTimeout (3 s here, 300 s
    by default); its memory stays bounded meanwhile;
  - a client that writes one byte at a time: before login the session ends
    at imap.unauthenticatedTimeout with "* BYE Autologout; idle for too
    long" however much it trickles (the timer is not reset by input); an
    LMTP client trickling its message gets "421 4.4.2 Timeout reading the
    message" at lmtp.dataTimeout, and one trickling a command line "421
    4.4.2 Idle timeout" at lmtp.timeout.

usage: test_slow_clients.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from limitslib import (MIB, PASSWORD, Conn, Lmtp, Memory, Results, Server, Stack,  # noqa: E402
                       check, imap_login, skip_without_stack)

WRITE_TIMEOUT = 3


def big_message(size):
    head = (b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n"
            b"Message-ID: <big@example.com>\r\n\r\n")
    line = b"0123456789" * 7 + b"\r\n"
    return head + line * ((size - len(head)) // len(line))


def small_rcvbuf_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(("127.0.0.1", port))
    return s


def server_side_established(sock):
    """Whether the server's end of our connection is still ESTABLISHED
    (/proc/net/tcp: the row from the server's port to ours). Reading
    the socket would drain it, which is what the test must not do."""
    local = ":%04X" % sock.getpeername()[1]  # the server's end
    remote = ":%04X" % sock.getsockname()[1]
    with open("/proc/net/tcp") as f:
        rows = [r.split() for r in f.read().splitlines()[1:]]
    return any(r[1].endswith(local) and r[2].endswith(remote) and r[3] == "01" for r in rows)


def seconds_until_server_closes(sock, limit):
    start = time.time()
    while time.time() - start < limit:
        if not server_side_established(sock):
            return time.time() - start
        time.sleep(0.2)
    return None


def check_not_reading_closed(server, sock, mem, what):
    # the deadline starts once the kernel's socket buffers are full and 64
    # KiB more are queued, which on a loaded machine can take a while
    took = seconds_until_server_closes(sock, WRITE_TIMEOUT + 30)
    mem.report(what)
    check(took is not None, "server kept a non-reading client for %d s" % (WRITE_TIMEOUT + 30))
    print("     closed %.1f s after the commands (writeTimeout %d s)" % (took, WRITE_TIMEOUT),
          flush=True)
    check(took >= WRITE_TIMEOUT - 0.5, "closed too early (%.1f s)" % took)
    check(mem.within(32), "non-reading client grew memory by %.1f MiB" %
          mem.peak_growth_mib())
    sock.close()


def t_imap_not_reading(server):
    s = small_rcvbuf_socket(server.port)
    f = s.makefile("rb")
    f.readline()  # greeting
    s.sendall(b"a LOGIN alice \"%s\"\r\n" % PASSWORD.encode())
    check(f.readline().startswith(b"a OK"), "login")
    mem = Memory(server)
    # 20 FETCHes of a 2 MB message, never read
    s.sendall(b"b SELECT INBOX\r\n" + b"".join(b"f%d FETCH 1 BODY[]\r\n" % i for i in range(20)))
    check_not_reading_closed(server, s, mem, "IMAP client not reading")
    other = imap_login(server.port, "alice")
    _, ok = other.cmd("NOOP")
    check(" OK " in ok, ok)
    other.close()


def t_pop3_not_reading(server):
    s = small_rcvbuf_socket(server.ports["pop3"])
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER alice\r\n")
    f.readline()
    s.sendall(("PASS %s\r\n" % PASSWORD).encode())
    resp = f.readline()
    check(resp.startswith(b"+OK"), resp)
    mem = Memory(server)
    s.sendall(b"RETR 1\r\n" * 20)
    check_not_reading_closed(server, s, mem, "POP3 client not reading")


def t_imap_trickle_before_login(port):
    c = Conn(port)
    start = time.time()
    lines = []
    try:
        for b in b"a LOGIN alice \"" + b"x" * 100:
            c.sock.sendall(bytes([b]))
            time.sleep(0.2)
            if time.time() - start > 10:
                break
    except OSError:
        pass
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    took = time.time() - start
    check(any(x.startswith("* BYE Autologout") for x in lines), lines)
    check(took < 6, "trickling client kept %.1f s" % took)


def t_lmtp_trickle(server):
    port = server.ports["lmtp"]
    c = Lmtp(port)
    c.cmd("LHLO client.example")
    check(c.cmd("MAIL FROM:<a@example.com>")[0] == 250, "MAIL")
    check(c.cmd("RCPT TO:<alice@limits.example>")[0] == 250, "RCPT")
    check(c.cmd("DATA")[0] == 354, "DATA")
    start = time.time()
    try:
        for b in b"Subject: slow\r\n\r\n" + b"x" * 100:
            c.sock.sendall(bytes([b]))
            time.sleep(0.2)
            if time.time() - start > 10:
                break
    except OSError:
        pass
    code, text = c.reply()
    took = time.time() - start
    check(code == 421 and "4.4.2" in text and "Timeout reading the message" in text, text)
    check(took < 6, "trickling DATA kept %.1f s" % took)
    c.close()
    # a trickled command line: the idle timer
    c = Lmtp(port)
    start = time.time()
    try:
        for b in b"LHLO " + b"x" * 100:
            c.sock.sendall(bytes([b]))
            time.sleep(0.2)
            if time.time() - start > 10:
                break
    except OSError:
        pass
    code, text = c.reply()
    check(code == 421 and "Idle timeout" in text, text)
    c.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    stack.run_wdctl("user", "create", "alice", "--address", "alice@limits.example",
                    "--password", PASSWORD)
    path = os.path.join(stack.tmp.name, "big.eml")
    with open(path, "wb") as f:
        f.write(big_message(2 * MIB))
    stack.run_wdctl("message", "import", "alice", "INBOX", path)
    server = Server(wd_server, stack, "--imap.secure=false", "--imap.starttls=false",
                    "--imap.insecureAuth=true", "--imap.writeTimeout=%d" % WRITE_TIMEOUT,
                    "--imap.unauthenticatedTimeout=2",
                    "--pop3.secure=false", "--pop3.insecureAuth=true",
                    "--pop3.writeTimeout=%d" % WRITE_TIMEOUT,
                    "--lmtp.enabled=true", "--lmtp.timeout=2", "--lmtp.dataTimeout=2")
    try:
        res.run("IMAP client not reading", t_imap_not_reading, server)
        res.run("POP3 client not reading", t_pop3_not_reading, server)
        res.run("IMAP trickle before login", t_imap_trickle_before_login, server.port)
        res.run("LMTP trickle", t_lmtp_trickle, server)
    finally:
        code = server.stop()
        stack.cleanup()
    check(code == 0, "wd-server exit status %s" % code)
    res.exit()


if __name__ == "__main__":
    main()

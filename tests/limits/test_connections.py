#!/usr/bin/env python3
"""Connection and login limits of wd-server (suite `limits`):

  - imap.maxConnections per user: the next LOGIN gets NO [LIMIT];
  - imap.maxConnectionsPerIp / pop3.maxConnectionsPerIp: the next
    connection from that address gets "* BYE [UNAVAILABLE]" / "-ERR
    [SYS/TEMP]" and is closed, other addresses are served, a closed
    connection frees its slot; a flood of refused connections leaves the
    server's memory where it was;
  - auth failures per user (auth_user:<id>, 12 in 120 s, WildDuck's key and
    numbers) and per address (auth_ip:<ip>, auth.ipFailures in 300 s): the
    lock answers NO [LIMIT] / -ERR [AUTH] "Too many failed logins, try again
    in N seconds" even to the right password, and lifts when the counter's
    window ends (the test shortens the key's TTL instead of waiting).

Client addresses come from PROXY v1 headers (imap.proxy / pop3.proxy), so
the test can speak from many addresses over loopback.

usage: test_connections.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from limitslib import (PASSWORD, Conn, Memory, Redis, Results, Server, Stack, check,  # noqa: E402
                       proxy_v1, random_test_ip, skip_without_stack, wait_until)


class ProxyConn(Conn):
    """An IMAP connection that first says which client address it is."""

    def __init__(self, port, ip, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(proxy_v1(ip))
        self.buf = b""
        self.inflate = None
        self.deflate = None
        self.tagn = 0
        self.greeting = self.line()


def pop3_connect(port, ip):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(proxy_v1(ip))
    f = s.makefile("rb")
    return s, f, f.readline().decode().rstrip()


def login(c, user, password=PASSWORD):
    _, tagged = c.cmd('LOGIN "%s" "%s"' % (user, password))
    return tagged


def t_per_user(port):
    ip = random_test_ip()
    conns = [ProxyConn(port, ip) for _ in range(3)]
    for c in conns:
        check(" OK " in login(c, "limited"), "login")
    extra = ProxyConn(port, ip)
    no = login(extra, "limited")
    check("NO [LIMIT] Too many simultaneous connections" in no, no)
    conns[0].cmd("LOGOUT")
    check(conns[0].closed(), "LOGOUT did not close")
    check(wait_until(lambda: " OK " in login(extra, "limited"), 10), "slot not freed")
    for c in conns[1:] + [extra]:
        c.close()


def t_per_ip_imap(server):
    port = server.port
    a, b = random_test_ip(), random_test_ip()
    mem = Memory(server)
    held = [ProxyConn(port, a) for _ in range(4)]
    for c in held:
        check(c.greeting.startswith("* OK"), c.greeting)
    over = ProxyConn(port, a)
    check(over.greeting == "* BYE [UNAVAILABLE] Too many connections from your address",
          over.greeting)
    check(over.closed(), "refused connection left open")
    other = ProxyConn(port, b)
    check(other.greeting.startswith("* OK"), "another address: " + other.greeting)
    check(" OK " in login(other, "alice"), "login from another address")
    # a flood from one address: every one refused, the memory unchanged
    for _ in range(300):
        c = ProxyConn(port, a)
        check(c.greeting.startswith("* BYE [UNAVAILABLE]"), c.greeting)
        c.close()
    mem.report("300 refused connections")
    check(mem.within(8), "refused connections grew memory by %.1f MiB" %
          mem.peak_growth_mib())
    # loopback is not counted (a webmail on the same host)
    local = [ProxyConn(port, "127.0.0.1") for _ in range(6)]
    check(all(c.greeting.startswith("* OK") for c in local),
          [c.greeting for c in local])
    for c in local:
        c.close()
    # a closed connection frees its slot
    held.pop().close()

    def slot_free():
        c = ProxyConn(port, a)
        ok = c.greeting.startswith("* OK")
        held.append(c) if ok else c.close()
        return ok
    check(wait_until(slot_free, 10, 0.2), "slot not freed after close")
    for c in held + [other]:
        c.close()


def t_per_ip_pop3(port):
    ip = random_test_ip()
    held = [pop3_connect(port, ip) for _ in range(2)]
    for _, _, greeting in held:
        check(greeting.startswith("+OK"), greeting)
    s, f, greeting = pop3_connect(port, ip)
    check(greeting == "-ERR [SYS/TEMP] Too many connections from your address", greeting)
    check(f.readline() == b"", "refused POP3 connection left open")
    s.close()
    s, f, greeting = pop3_connect(port, random_test_ip())
    check(greeting.startswith("+OK"), "another address: " + greeting)
    s.close()
    for s, _, _ in held:
        s.close()


def age_key(redis, key):
    """The window of a counter ends now-ish: what waiting would do."""
    check(redis.cmd("EXISTS", key) == 1, "no counter %s" % key)
    redis.cmd("PEXPIRE", key, 300)
    check(wait_until(lambda: redis.cmd("EXISTS", key) == 0, 5), "counter did not expire")


def t_user_lockout(port, redis, victim_id):
    # 12 failures are answered as failures (and counted), the 13th is
    # refused; each from another address (the server also locks addresses)
    answers = []
    for i in range(13):
        c = ProxyConn(port, random_test_ip())
        answers.append(login(c, "victim", "wrong %d" % i))
        c.close()
    check(all(" NO [AUTHENTICATIONFAILED]" in a for a in answers[:12]), answers)
    check(" NO [LIMIT] Too many failed logins, try again in " in answers[12], answers[12])
    ttl = redis.cmd("TTL", "auth_user:" + victim_id)
    check(0 < ttl <= 120, "auth_user TTL %r" % ttl)
    # the right password is refused too, from any address
    other = ProxyConn(port, random_test_ip())
    no = login(other, "victim")
    check(" NO [LIMIT] " in no and "seconds" in no, no)
    age_key(redis, "auth_user:" + victim_id)
    ok = login(other, "victim")
    check(" OK " in ok, "after the window: " + ok)
    other.close()


def t_ip_lockout(port, pop3_port, redis):
    ip = random_test_ip()
    c = ProxyConn(port, ip)
    answers = [login(c, "nobody-%d" % i, "wrong") for i in range(5)]
    check(all(" NO " in a for a in answers), answers)
    # the address is locked, for every user, the right password too
    no = login(c, "alice")
    check(" NO [LIMIT] Too many failed logins, try again in " in no, no)
    ttl = redis.cmd("TTL", "auth_ip:" + ip)
    check(0 < ttl <= 300, "auth_ip TTL %r" % ttl)
    # POP3 from that address is locked as well (one counter)
    s, f, greeting = pop3_connect(pop3_port, ip)
    s.sendall(b"USER alice\r\n")
    f.readline()
    s.sendall(("PASS %s\r\n" % PASSWORD).encode())
    resp = f.readline().decode().rstrip()
    check(resp.startswith("-ERR [AUTH] Too many failed logins"), resp)
    s.close()
    # another address is not
    other = ProxyConn(port, random_test_ip())
    check(" OK " in login(other, "alice"), "another address locked too")
    age_key(redis, "auth_ip:" + ip)
    ok = login(c, "alice")
    check(" OK " in ok, "after the window: " + ok)
    c.close()
    other.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    ids = {}
    for user in ("alice", "victim", "limited"):
        ids[user] = stack.run_wdctl("user", "create", user, "--password", PASSWORD).split()[0]
    redis = Redis(stack.redis)
    server = Server(wd_server, stack, "--imap.secure=false", "--imap.starttls=false",
                    "--imap.insecureAuth=true", "--imap.proxy=true",
                    "--imap.maxConnections=3", "--imap.maxConnectionsPerIp=4",
                    "--pop3.secure=false", "--pop3.insecureAuth=true", "--pop3.proxy=true",
                    "--pop3.maxConnectionsPerIp=2", "--pop3.authFailureDelay=0",
                    "--auth.ipFailures=5")
    try:
        res.run("per-user connection limit", t_per_user, server.port)
        res.run("per-address limit (IMAP)", t_per_ip_imap, server)
        res.run("per-address limit (POP3)", t_per_ip_pop3, server.ports["pop3"])
        res.run("auth failures lock the user", t_user_lockout, server.port, redis,
                ids["victim"])
        res.run("auth failures lock the address", t_ip_lockout, server.port,
                server.ports["pop3"], redis)
    finally:
        code = server.stop()
        redis.close()
        stack.cleanup()
    check(code == 0, "wd-server exit status %s" % code)
    res.exit()


if __name__ == "__main__":
    start = time.time()
    main()

#!/usr/bin/env python3
"""IMAP input limits of wd-server (suite `limits`), each answered with a
clear error while the server's memory stays bounded:

  - a command line over 64 KiB: BAD, the session goes on; a line that does
    not end (4 MiB, or 1 GiB through COMPRESS: a few hundred KB of deflate
    that inflate to a gigabyte) is dropped up to 1 MiB and the session
    closes with "Line too long, closing the connection";
  - APPEND over imap.maxMB: a synchronising literal gets NO [TOOBIG] before
    it is sent; a non-synchronising one past the discard limit closes;
    LITERAL- (imap.literalPlus = false): a non-synchronising literal over
    4 KiB gets [TOOBIG];
  - more than 4096 arguments: BAD "Too many arguments"; lists nested more
    than 16 deep (ID, SEARCH parentheses): BAD "Lists nested too deeply".

usage: test_imap_input.py WD_SERVER WDCTL   (exit 77 without the stack)"""

import os
import socket
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from limitslib import (MIB, PASSWORD, Conn, Memory, Results, Server, Stack, check,  # noqa: E402
                       imap_login, skip_without_stack)


def t_long_line(server):
    mem = Memory(server)
    c = imap_login(server.port, "alice")
    c.send("a1 NOOP " + "x" * 100000 + "\r\n")
    resp = c.line()
    check(" BAD " in resp and "too long" in resp, resp)
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, "session unusable after a long line: " + ok)
    # a line that never ends: dropped up to 1 MiB, then closed
    c.send("a2 NOOP ")
    chunk = b"y" * 65536
    sent = 0
    try:
        while sent < 4 * MIB:
            c.sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    check(any("Line too long, closing the connection" in x for x in lines), lines)
    mem.report("endless line")
    check(mem.within(16), "endless line grew memory by %.1f MiB" %
          mem.peak_growth_mib())


def bomb_stream(total, chunk=MIB):
    """Raw deflate of `total` bytes of 'A' (no line end): one piece that
    inflates to `chunk` bytes, made by a fresh compressor and ended with a
    sync flush, repeated (a fresh compressor's blocks never refer to earlier
    data, so the pieces continue any deflate stream)."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = z.compress(b"A" * chunk) + z.flush(zlib.Z_SYNC_FLUSH)
    for _ in range(total // chunk):
        yield piece


def t_compress_bomb(server):
    mem = Memory(server)
    c = imap_login(server.port, "alice")
    _, ok = c.cmd("COMPRESS DEFLATE")
    check(" OK " in ok, ok)
    c.compress()
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    # the rest of the stream continues the client's deflate stream
    c.send("b1 NOOP ")
    compressed = 0
    errors = []

    def sender():
        nonlocal compressed
        try:
            for piece in bomb_stream(1024 * MIB):
                c.sock.sendall(piece)
                compressed += len(piece)
        except OSError as e:  # the server closed: expected
            errors.append(e)
    c.deflate = None  # the sender writes the stream itself from here
    t = threading.Thread(target=sender, daemon=True)
    start = time.time()
    t.start()
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, socket.timeout, zlib.error):
        pass
    took = time.time() - start
    t.join(60)
    print("     bomb: %d KiB sent of a 1 GiB line, closed after %.1f s" %
          (compressed // 1024, took), flush=True)
    check(any("Line too long, closing the connection" in x for x in lines), lines)
    mem.report("COMPRESS bomb")
    check(mem.within(16), "bomb grew memory by %.1f MiB" % mem.peak_growth_mib())
    # the server still answers others
    other = imap_login(server.port, "alice")
    _, ok = other.cmd("NOOP")
    check(" OK " in ok, ok)
    other.close()


def t_append_too_big(server):
    c = imap_login(server.port, "alice")
    c.send("c1 APPEND INBOX {%d}\r\n" % (2 * MIB))
    resp = c.line()
    check(resp.startswith("c1 NO [TOOBIG]"), resp)
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    # non-synchronising and past the discard limit: the data is on its way,
    # the connection cannot be kept
    mem = Memory(server)
    c.send("c2 APPEND INBOX {%d+}\r\n" % (64 * MIB))
    try:
        for _ in range(8):
            c.sock.sendall(b"z" * MIB)
    except OSError:
        pass
    lines = []
    try:
        while True:
            lines.append(c.line())
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    check(any(x.startswith("c2 ") and "[TOOBIG]" in x for x in lines), lines)
    mem.report("64 MiB literal refused")
    check(mem.within(16), "refused literal grew memory by %.1f MiB" %
          mem.peak_growth_mib())


def t_literal_minus(port):
    c = Conn(port)
    check("LITERAL-" in c.greeting, c.greeting)
    c.send("d1 LOGIN {5000+}\r\n" + "u" * 5000 + " x\r\n")
    resp = c.line()
    check(resp.startswith("d1 ") and "[TOOBIG]" in resp, resp)
    # the 5000 bytes were dropped, not read as commands
    _, ok = c.cmd("NOOP")
    check(" OK " in ok, ok)
    c.close()


def t_arguments_and_nesting(server):
    mem = Memory(server)
    c = imap_login(server.port, "alice")
    _, bad = c.cmd("ID (" + "\"k\" " * 5000 + ")")
    check(" BAD " in bad and "Too many arguments" in bad, bad)
    _, bad = c.cmd("ID " + "(" * 40 + ")" * 40)
    check(" BAD " in bad and "nested too deeply" in bad, bad)
    _, ok = c.cmd("SELECT INBOX")
    check(" OK " in ok, ok)
    _, bad = c.cmd("SEARCH " + "(" * 100 + "ALL" + ")" * 100)
    check(" BAD " in bad and "nested too deeply" in bad, bad)
    _, bad = c.cmd("SEARCH " + "OR ALL " * 3000 + "ALL")
    check(" BAD " in bad, bad)
    _, ok = c.cmd("SEARCH " + "(" * 10 + "ALL" + ")" * 10)
    check(" OK " in ok, "10 levels are fine: " + ok)
    mem.report("arguments and nesting")
    check(mem.within(8), "grew memory by %.1f MiB" % mem.peak_growth_mib())
    c.close()


def main():
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    stack.user("alice", PASSWORD)
    plain = ["--imap.secure=false", "--imap.starttls=false", "--imap.insecureAuth=true"]
    server = Server(wd_server, stack, "--imap.maxMB=1", "--imap.enableCompression=true",
                    *plain)
    minus = Server(wd_server, stack, "--imap.literalPlus=false", *plain)
    try:
        res.run("line too long", t_long_line, server)
        res.run("COMPRESS inflate bomb", t_compress_bomb, server)
        res.run("APPEND over maxMB", t_append_too_big, server)
        res.run("LITERAL- over 4 KiB", t_literal_minus, minus.port)
        res.run("arguments and nesting", t_arguments_and_nesting, server)
    finally:
        codes = [server.stop(), minus.stop()]
        stack.cleanup()
    check(codes == [0, 0], "wd-server exit status %s" % codes)
    res.exit()


if __name__ == "__main__":
    main()

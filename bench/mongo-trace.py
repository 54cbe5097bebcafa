#!/usr/bin/python3
"""bench/mongo-trace.py — count and time every database round trip of a server.

    /usr/bin/python3 bench/mongo-trace.py LISTEN_PORT UPSTREAM_PORT [LOG]

A MongoDB wire-protocol relay on 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT (FerretDB)
that writes one line per request: time, connection, round-trip milliseconds, command,
namespace and its filter/update (BSON decoded here, Python standard library only). Point a
server's dbs.mongo at LISTEN_PORT, do one LMTP delivery or one IMAP command, and the log
lists what it asked the database: bench/HOTSPOTS.md counts delivery's and the IMAP mix's
round trips with it, and which of them FerretDB answers by scanning (any filter but _id).
Handshakes (hello, ping, ...) are left out. Redis: `redis-cli -p PORT monitor`.
"""
import socket, struct, sys, threading, time, datetime

LP, UP = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
out = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else sys.stdout


def cstr(b, i):
    j = b.index(b"\0", i)
    return b[i:j].decode("utf-8", "replace"), j + 1


def doc(b, i, depth=0):
    n = struct.unpack_from("<i", b, i)[0]
    end = i + n - 1
    i += 4
    d = {}
    while i < end:
        t = b[i]; i += 1
        k, i = cstr(b, i)
        if t == 1: v = struct.unpack_from("<d", b, i)[0]; i += 8
        elif t in (2, 13, 14):
            l = struct.unpack_from("<i", b, i)[0]; v = b[i+4:i+3+l].decode("utf-8", "replace"); i += 4 + l
        elif t in (3, 4):
            l = struct.unpack_from("<i", b, i)[0]
            v = doc(b, i, depth+1) if depth < 6 else "{..}"
            if t == 4 and isinstance(v, dict): v = list(v.values())
            i += l
        elif t == 5:
            l = struct.unpack_from("<i", b, i)[0]; v = "Bin(%d)" % l; i += 5 + l
        elif t == 7: v = "OID(" + b[i:i+12].hex()[-6:] + ")"; i += 12
        elif t == 8: v = bool(b[i]); i += 1
        elif t == 9: v = "Date"; i += 8
        elif t in (10, 6, 127, 255): v = None
        elif t == 11: p, i = cstr(b, i); f, i = cstr(b, i); v = "/%s/%s" % (p, f)
        elif t == 16: v = struct.unpack_from("<i", b, i)[0]; i += 4
        elif t in (17, 18): v = struct.unpack_from("<q", b, i)[0]; i += 8
        elif t == 19: v = "Dec"; i += 16
        else: v = "?%d" % t; break
        d[k] = v
    return d


def summarize(body):
    flags = struct.unpack_from("<I", body, 0)[0]
    i, cmd, seqs = 4, None, {}
    end = len(body) - (4 if flags & 1 else 0)
    while i < end:
        kind = body[i]; i += 1
        if kind == 0:
            l = struct.unpack_from("<i", body, i)[0]; cmd = doc(body, i); i += l
        else:
            l = struct.unpack_from("<i", body, i)[0]
            ident, j = cstr(body, i + 4)
            cnt = 0
            while j < i + l:
                cnt += 1; j += struct.unpack_from("<i", body, j)[0]
            seqs[ident] = cnt; i += l
    return cmd, seqs


def recv_msg(s):
    h = b""
    while len(h) < 16:
        c = s.recv(16 - len(h))
        if not c: return None
        h += c
    ln = struct.unpack_from("<i", h, 0)[0]
    body = b""
    while len(body) < ln - 16:
        c = s.recv(min(1 << 20, ln - 16 - len(body)))
        if not c: return None
        body += c
    return h + body


def short(v, n=160):
    """repr(v), cut at n characters."""
    s = repr(v)
    return s if len(s) <= n else s[:n] + "…"


def handle(c, cid):
    u = socket.create_connection(("127.0.0.1", UP))
    try:
        while True:
            m = recv_msg(c)
            if m is None: return
            op = struct.unpack_from("<i", m, 12)[0]
            t0 = time.time()
            u.sendall(m)
            r = recv_msg(u)
            dt = (time.time() - t0) * 1000
            if r is None: return
            c.sendall(r)
            line = "op%d" % op
            if op == 2013:
                try:
                    cmd, seqs = summarize(m[16:])
                    name = next(iter(cmd))
                    if name in ("hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo"):
                        line = None
                    else:
                        rest = {k: v for k, v in cmd.items() if k not in (name, "$db", "lsid", "$clusterTime", "txnNumber", "$readPreference")}
                        line = "%s %s.%s %s %s" % (name, cmd.get("$db"), cmd[name], short(rest, 400), seqs or "")
                except Exception as e:
                    line = "parse error %r" % e
            if line:
                with lock:
                    out.write("%s c%d %7.2fms %s\n" % (datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3], cid, dt, line))
    except OSError:
        pass
    finally:
        c.close(); u.close()


ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", LP)); ls.listen(100)
n = 0
while True:
    c, _ = ls.accept(); n += 1
    threading.Thread(target=handle, args=(c, n), daemon=True).start()

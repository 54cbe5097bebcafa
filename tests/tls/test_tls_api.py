#!/usr/bin/env python3
"""TLS defaults of wd-api's HTTPS listener (api.secure, libmicrohttpd on
GnuTLS; suite `tls`): TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted (python
ssl and openssl s_client); the weak cipher families of test_tls_defaults.py
offered alone are refused, the ECDHE AEAD suites accepted; a request over
TLS 1.2 is answered.

Certificate reload: the files are rewritten in place and wd-api gets
SIGHUP: new connections present the new certificate while a keep-alive
HTTPS connection opened before goes on answering; a key that does not
match, and a certificate that is not PEM, are logged and the old
certificate stays.

usage: test_tls_api.py WD_API WDCTL"""

import os
import shutil
import ssl
import sys
import tempfile
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "api"))
from tlsprobe import sighup, client_context, handshake, make_cert, s_client  # noqa: E402
from test_tls_defaults import WEAK, Checks  # noqa: E402
from apiserver import ApiServer, Stack, skip_without_stack  # noqa: E402

STRONG = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
          "ECDHE-RSA-CHACHA20-POLY1305"]


def hup(server, check, want="certificates reloaded"):
    log = sighup(server, want)
    check(log is not None, "log after SIGHUP has %r" % want, "".join(server.log[-5:]))
    return log or []


def cn(api):
    res = handshake(api.port, client_context())
    return res[3] if res[0] else "error: " + res[1]


def reload(check, api, tmp, live_cert, live_key, conn):
    check(cn(api) == "api-server", "wd-api serves CN=api-server", cn(api))
    new_cert, new_key = make_cert(tmp, "api-second", "ec")
    shutil.copyfile(new_key, live_key)
    shutil.copyfile(new_cert, live_cert)
    hup(api, check, "certificates reloaded")
    seen = {cn(api) for _ in range(8)}
    check(seen == {"api-second"}, "after SIGHUP new connections get CN=api-second", seen)
    conn.request("GET", "/users")
    res = conn.getresponse()
    res.read()
    check(res.status in (200, 401, 403), "the keep-alive connection from before goes on",
          res.status)
    other_cert, _ = make_cert(tmp, "api-other", "ec")
    shutil.copyfile(other_cert, live_cert)
    log = hup(api, check, "TLS reload failed")
    check(any("keeping the current certificate" in l for l in log),
          "key not matching: logged, old kept", "".join(log))
    check(cn(api) == "api-second", "still CN=api-second", cn(api))
    with open(live_cert, "w") as f:
        f.write("not a certificate\n")
    hup(api, check, "TLS reload failed")
    check(cn(api) == "api-second" and api.proc.poll() is None,
          "a non-PEM file: still CN=api-second, still running", cn(api))


def main():
    skip_without_stack()
    wd_api, wdctl = sys.argv[1], sys.argv[2]
    check = Checks()
    stack = Stack(wdctl)
    tmp = tempfile.TemporaryDirectory(prefix="wd-tls-api-")
    cert, key = make_cert(tmp.name, "api-server", "rsa")
    live_cert = os.path.join(tmp.name, "live.crt")
    live_key = os.path.join(tmp.name, "live.key")
    shutil.copyfile(cert, live_cert)
    shutil.copyfile(key, live_key)
    cert, key = live_cert, live_key
    start = time.time()
    api = ApiServer(wd_api, stack, "--api.secure=true", "--tls.cert=" + cert,
                    "--tls.key=" + key)
    try:
        for version, want in (("TLSv1", False), ("TLSv1.1", False), ("TLSv1.2", True),
                              ("TLSv1.3", True)):
            res = handshake(api.port, client_context(version))
            check(res[0] == want and (not want or res[1] == version),
                  "wd-api %s %s" % (version, "accepted" if want else "refused"), res)
        for flag, want in (("-tls1", False), ("-tls1_1", False), ("-tls1_2", True),
                           ("-tls1_3", True)):
            done, out = s_client(api.port, flag, "-cipher", "ALL:@SECLEVEL=0")
            check(done == want, "wd-api openssl s_client %s" % flag, out[-300:])
        for family, spec in WEAK:
            try:
                ctx = client_context("TLSv1.2", spec)
            except ssl.SSLError:
                continue  # the library cannot offer it (test_tls_defaults.py counts these)
            res = handshake(api.port, ctx)
            check(not res[0], "wd-api %s refused" % family, res)
        for suite in STRONG:
            res = handshake(api.port, client_context("TLSv1.2", suite))
            check(res[0] and res[2] == suite, "wd-api %s accepted" % suite, res)
        ctx = client_context("TLSv1.2")
        conn = http.client.HTTPSConnection("127.0.0.1", api.port, context=ctx, timeout=20)
        conn.request("GET", "/users")
        res = conn.getresponse()
        res.read()
        check(res.status in (200, 401, 403), "a request over TLS 1.2 is answered", res.status)
        reload(check, api, tmp.name, live_cert, live_key, conn)
        conn.close()
    finally:
        code = api.stop()
        check(code == 0, "wd-api exit status", code)
        stack.cleanup()
        tmp.cleanup()
    print("%d checks passed, %d failed (%.1fs)" % (check.passed, check.failed,
                                                   time.time() - start))
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()

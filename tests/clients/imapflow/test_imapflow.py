#!/usr/bin/env python3
"""imapflow (Node) against wd-server: starts wd-server on a unique database of
the test stack with implicit TLS (a self-signed certificate) and
COMPRESS=DEFLATE enabled, creates the user with wdctl, and runs
test_imapflow.mjs, which prints every check and exits non-zero on any
failure (what it covers is described at its top). Then checks wd-server's
side: imapflow identified itself (ID), every session had its own id, no
error or sanitizer report in the log, and a clean exit on SIGTERM.

node and imapflow are required: without them the test fails (CI installs
them with scripts/install-deps.sh, into <repo>/.tools/node/node_modules, or
point WD_IMAPFLOW_MODULES at another node_modules folder). Without the stack
(WD_MONGO_URL / WD_REDIS_URL) it skips like the other client tests.

usage: test_imapflow.py WD_SERVER WDCTL"""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from imapserver import Results, Server, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "correct horse"
SCRIPT = os.path.join(HERE, "test_imapflow.mjs")
NODE_TIMEOUT = 150


def imapflow_modules():
    """The node_modules folder holding imapflow, or None."""
    candidates = [os.environ.get("WD_IMAPFLOW_MODULES")]
    if os.environ.get("WD_SOURCE_DIR"):
        candidates.append(os.path.join(os.environ["WD_SOURCE_DIR"], ".tools", "node", "node_modules"))
    candidates.append(os.path.join(HERE, "..", "..", "..", ".tools", "node", "node_modules"))
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "imapflow", "package.json")):
            return os.path.abspath(c)
    return None


def t_imapflow(node, modules, port):
    env = dict(os.environ, WD_IMAPFLOW_MODULES=modules)
    proc = subprocess.Popen([node, SCRIPT, str(port), "alice", PASSWORD], env=env)
    try:
        code = proc.wait(NODE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("test_imapflow.mjs did not finish in %d s" % NODE_TIMEOUT)
    check(code == 0, "test_imapflow.mjs exited with %d (see the FAIL lines above)" % code)


def t_server_log(log):
    text = "".join(log)
    check(re.search(r"imap: \S+: client imapflow \d", text), "no 'client imapflow' (ID) line in the log")
    # session ids name a session in the journal (a STORE's entry is skipped
    # by the session with the id that made it): they must be unique
    ids = re.findall(r"imap: (\S+): alice logged in", text)
    dups = sorted({i for i in ids if ids.count(i) > 1})
    check(ids and not dups, "%d logins, session ids used twice: %s" % (len(ids), dups))
    # any error, and any warning of the IMAP engine or the server (a padded
    # FETCH, a refused job, a failed COMPRESS); the store's warnings about
    # indexes FerretDB refuses are expected
    bad = [line for line in log
           if re.search(r"\] (error|fatal) |\] warning (imap|server):|"
                        r"AddressSanitizer|LeakSanitizer|runtime error:", line)]
    check(not bad, "errors in wd-server's log:\n" + "".join(bad[:20]))


def main():
    node = shutil.which("node")
    if node is None:
        print("FAIL: node (Node.js >= 20, imapflow's requirement) is not installed; install it, "
              "then scripts/install-deps.sh installs imapflow into .tools/node")
        sys.exit(1)
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"v(\d+)\.", version)
    if not m or int(m.group(1)) < 20:
        print("FAIL: node %s is too old: imapflow needs Node.js >= 20" % version)
        sys.exit(1)
    modules = imapflow_modules()
    if modules is None:
        print("FAIL: imapflow is not installed: run scripts/install-deps.sh (it installs imapflow "
              "into .tools/node), or set WD_IMAPFLOW_MODULES to a node_modules folder holding it")
        sys.exit(1)
    skip_without_stack()
    wd_server, wdctl = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    res = Results()
    try:
        stack.user("alice", PASSWORD)
        server = Server(wd_server, stack, "--imap.secure=true", "--imap.enableCompression=true")
        try:
            res.run("imapflow script", t_imapflow, node, modules, server.port)
        finally:
            code = server.stop()
        res.run("wd-server log", t_server_log, server.log)
        res.run("wd-server exit code", lambda: check(code == 0, "wd-server exited with %s" % code))
        if res.failed:
            print("--- wd-server log (last 40 lines):\n" + "".join(server.log[-40:]))
    finally:
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Debian's Dovecot with our plugins as a benchmark baseline: the storage plugin
(mail_location = wildduck:), the quota plugin, the LMTP delivery plugin and the
passdb/userdb module, all on the same database as wd-server.

    python3 bench/baselines/dovecot_wildduck.py [--build DIR] [--imap-port P]
        [--pop3-port P] [--lmtp-port P] [--ready-file F]

Runs one private instance through tests/dovecot/dovecot_stack.py (the `Dovecot`
class of the test suite: its own config, base_dir and logs in a temporary
directory; our auth module made loadable by a bind mount in a private mount
namespace, or by the harness' install fallback) and keeps it running until
SIGTERM or SIGINT, then stops it and removes the temporary directory.
bench/baselines/dovecot-wildduck.sh runs this in the background.

The configuration is the shipped conf.d snippets (auth-wildduck.conf.ext,
10-wildduck.conf, 90-wildduck-plugins.conf, 95-wildduck-lmtp.conf with its
protocol block on), pointed at the database by `plugin {}` keys and passdb/
userdb args, as tests/dovecot/test_storage.py does. Forwards and autoreplies
of LMTP deliveries are dropped (wildduck_lmtp_outbound = no): a benchmark has
no outbound queue to feed.

Database: WD_MONGO_URL and WD_REDIS_URL (the URLs scripts/stack.sh prints; the
database name in the Mongo URL is replaced by WD_BENCH_DB, default
wdbench_ours) and WD_FERRETDB_SQLITE when the stack is FerretDB.

When ready, writes a JSON line {"pid", "ports", "dir", "log", "auth_mode"} to
--ready-file (and stdout)."""

import argparse
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "dovecot"))

from dovecot_stack import Dovecot, plugins_from_build, wildduck_args  # noqa: E402


class _Stack:
    def __init__(self, mongo, redis):
        self.mongo, self.redis = mongo, redis


def read_conf(name):
    with open(os.path.join(REPO, "conf.d", name)) as f:
        return f.read()


def settings(stack, max_conn):
    args = wildduck_args(stack)
    auth = read_conf("auth-wildduck.conf.ext")
    old_user = "args = config=/etc/wildduck/wildduck.toml uid=vmail gid=vmail"
    old = "args = config=/etc/wildduck/wildduck.toml"
    if old_user not in auth or auth.count(old) != 2:
        raise SystemExit("conf.d/auth-wildduck.conf.ext changed: update dovecot_wildduck.py")
    auth = auth.replace(old_user, "args = %s uid=nobody gid=nogroup" % args).replace(old, "args = " + args)
    storage = read_conf("10-wildduck.conf")
    if "\nmail_location = wildduck:\n" not in storage:
        raise SystemExit("conf.d/10-wildduck.conf changed: update dovecot_wildduck.py")
    lmtp = read_conf("95-wildduck-lmtp.conf")
    block = "#protocol lmtp {\n#  mail_plugins = $mail_plugins wildduck_lmtp\n#}\n"
    if block not in lmtp:
        raise SystemExit("conf.d/95-wildduck-lmtp.conf changed: update dovecot_wildduck.py")
    lmtp = lmtp.replace(block, block.replace("#", ""))
    plugin = ["plugin {",
              "  wildduck_mongo = " + stack.mongo,
              "  wildduck_redis = " + stack.redis,
              "  wildduck_lmtp_outbound = no",
              "  quota = wildduck:User quota",
              "}"]
    sqlite = os.environ.get("WD_FERRETDB_SQLITE")
    if sqlite:
        plugin.insert(3, "  wildduck_ferretdb_sqlite = " + sqlite)
    return "\n".join([auth, storage, read_conf("90-wildduck-plugins.conf"), lmtp] + plugin + [
        "mail_plugins = $mail_plugins quota wildduck_quota",
        "protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n"
        "  mail_max_userip_connections = %d\n}" % max_conn,
        "protocol pop3 {\n  mail_max_userip_connections = %d\n}" % max_conn,
        "mail_max_userip_connections = %d" % max_conn,
        ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("WD_BUILD_DIR", os.path.join(REPO, "build")))
    ap.add_argument("--imap-port", type=int, default=20343)
    ap.add_argument("--pop3-port", type=int, default=20310)
    ap.add_argument("--lmtp-port", type=int, default=20324)
    ap.add_argument("--max-conn", type=int, default=100)
    ap.add_argument("--ready-file")
    opts = ap.parse_args()

    mongo = os.environ.get("WD_MONGO_URL")
    redis = os.environ.get("WD_REDIS_URL")
    if not mongo or not redis:
        raise SystemExit("set WD_MONGO_URL and WD_REDIS_URL (see scripts/stack.sh start)")
    mongo = mongo.rsplit("/", 1)[0] + "/" + os.environ.get("WD_BENCH_DB", "wdbench_ours")
    mail, auth = plugins_from_build(opts.build)
    if not mail or not auth:
        raise SystemExit("no Dovecot plugins in %s (build with ninja first)" % opts.build)

    dv = Dovecot(settings=settings(_Stack(mongo, redis), opts.max_conn),
                 mail_plugins=mail, auth_modules=auth, start=False)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        dv.ports = {"imap": opts.imap_port, "pop3": opts.pop3_port, "lmtp": opts.lmtp_port}
        dv._write_config()
        dv._start_once()  # fixed ports: no retry on other ports
        info = {"pid": os.getpid(), "dovecot_pid": dv.proc.pid, "ports": dv.ports,
                "dir": dv.tmpdir, "log": dv.log_path, "auth_mode": dv.mode, "mongo": mongo}
        line = json.dumps(info)
        print(line, flush=True)
        if opts.ready_file:
            tmp = opts.ready_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(line + "\n")
            os.replace(tmp, opts.ready_file)
        while not stopping:
            if dv.proc.poll() is not None:
                print("dovecot exited with %s:\n%s" % (dv.proc.returncode, dv.all_output()),
                      file=sys.stderr)
                return 1
            time.sleep(0.5)
        dv.stop()
        return 0
    finally:
        if opts.ready_file:
            try:
                os.unlink(opts.ready_file)
            except FileNotFoundError:
                pass
        dv.cleanup()


if __name__ == "__main__":
    sys.exit(main())

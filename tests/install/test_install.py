"""Install and service (issue 11 part 1), suite `install`:

- `meson install --destdir` of this build puts the binaries, the Dovecot
  plugins and their conf.d files, the systemd units with this build's
  paths, the sysusers entry, the configuration and the manual pages where
  an operator expects them;
- the manual pages render without warnings (man -l --warnings);
- the units pass `systemd-analyze verify` and their hardening scores
  `systemd-analyze security --offline` at most 2.5 ("OK");
- wd-server and wd-api speak the readiness protocol of Type=notify units:
  READY=1 on NOTIFY_SOCKET only once clients can connect, STOPPING=1 on
  SIGTERM, then a clean exit.

usage: test_install.py WD-SERVER WD-API WDCTL"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from imapserver import Stack, Server, Conn, Results, check, skip_without_stack  # noqa: E402
from apiserver import ApiServer  # noqa: E402

wd_server, wd_api, wdctl = sys.argv[1:4]
build = os.environ["WD_BUILD_DIR"]


def meson_install(destdir):
    res = subprocess.run(["meson", "install", "-C", build, "--destdir", destdir,
                          "--no-rebuild", "--quiet"], capture_output=True, text=True, timeout=300)
    check(res.returncode == 0, "meson install: " + res.stdout + res.stderr)
    installed = set()
    for root, _, files in os.walk(destdir):
        for name in files:
            installed.add(os.path.relpath(os.path.join(root, name), destdir))
    return installed


def prefix_of(installed):
    m = [p for p in installed if p.endswith("bin/wd-server")]
    check(len(m) == 1, "one wd-server installed: %r" % m)
    return m[0][:-len("bin/wd-server")].rstrip("/")


def test_files(destdir, installed):
    prefix = prefix_of(installed)
    sysconf = "etc" if prefix == "usr" else prefix + "/etc"
    expected = [prefix + "/bin/" + b for b in ("wd-server", "wd-api", "wdctl")]
    expected += [prefix + "/lib/systemd/system/" + u for u in ("wd-server.service", "wd-api.service")]
    expected += [prefix + "/lib/sysusers.d/wildduck-c.conf", sysconf + "/wildduck-c/wildduck.toml"]
    expected += [prefix + "/share/man/man8/" + m for m in ("wd-server.8", "wd-api.8", "wdctl.8")]
    for path in expected:
        check(path in installed, "installed: " + path)
    for b in ("wd-server", "wd-api", "wdctl"):
        check(os.access(os.path.join(destdir, prefix, "bin", b), os.X_OK), b + " executable")
    if any(p.endswith("lib05_wildduck_plugin.so") for p in installed):
        # the Dovecot plugins are built: their modules and conf.d come along
        for name in ("10-wildduck.conf", "95-wildduck-lmtp.conf", "auth-wildduck.conf.ext"):
            check("etc/dovecot/conf.d/" + name in installed, "Dovecot conf.d: " + name)
        check(any(p.endswith("auth/libauthdb_wildduck.so") for p in installed), "auth module")
    # the configuration installed is the documented one, and it loads
    with open(os.path.join(destdir, sysconf, "wildduck-c", "wildduck.toml")) as f:
        text = f.read()
    check("[imap]" in text and "[api]" in text, "wildduck.toml is conf.d/default.toml")
    res = subprocess.run([wdctl, "--config", os.path.join(destdir, sysconf, "wildduck-c", "wildduck.toml"),
                          "--help"], capture_output=True, text=True, timeout=30)
    check(res.returncode == 0, "wdctl --help with the installed configuration")


def test_man_pages(destdir, installed):
    for page in (p for p in installed if "/man8/" in p):
        res = subprocess.run(["man", "-l", "--warnings", os.path.join(destdir, page)],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
        check(res.returncode == 0 and res.stderr.strip() == "", "%s renders: %s" % (page, res.stderr))
        text = re.sub(r".\x08", "", res.stdout)  # grotty's overstrike bold
        check("SYNOPSIS" in text and "SEE ALSO" in text, page + " has its sections")


def test_units(destdir, installed):
    prefix = prefix_of(installed)
    unitdir = os.path.join(destdir, prefix, "lib", "systemd", "system")
    work = tempfile.mkdtemp(prefix="wd-units-")
    try:
        for unit in ("wd-server.service", "wd-api.service"):
            with open(os.path.join(unitdir, unit)) as f:
                text = f.read()
            binary = "wd-server" if unit.startswith("wd-server") else "wd-api"
            m = re.search(r"^ExecStart=(\S+) --config (\S+)$", text, re.M)
            check(m is not None and m.group(1) == "/" + prefix + "/bin/" + binary,
                  unit + " ExecStart is the installed binary: " + (m.group(1) if m else "none"))
            check("Type=notify" in text and "Restart=on-failure" in text, unit + " notify + restart")
            # verify against the staged tree: the binary where the unit will find it
            staged = text.replace(m.group(1), os.path.join(destdir, prefix, "bin", binary))
            path = os.path.join(work, unit)
            with open(path, "w") as f:
                f.write(staged)
            env = dict(os.environ, MANPATH=os.path.join(destdir, prefix, "share", "man") + ":")
            res = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                                 text=True, timeout=120, env=env)
            problems = [l for l in (res.stdout + res.stderr).splitlines() if unit in l]
            check(res.returncode == 0 and not problems, unit + " verify: " + "\n".join(problems))
            res = subprocess.run(["systemd-analyze", "security", "--offline=yes", path],
                                 capture_output=True, text=True, timeout=120)
            m = re.search(r"Overall exposure level for \S+: ([\d.]+)", res.stdout + res.stderr)
            check(m is not None, unit + " security score printed: " + res.stdout[-300:] + res.stderr[-300:])
            check(float(m.group(1)) <= 2.5, "%s exposure %s <= 2.5" % (unit, m.group(1)))
    finally:
        shutil.rmtree(work)


class NotifySocket:
    """A datagram socket in the place of systemd's NOTIFY_SOCKET."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wd-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir)


def with_notify_socket(start):
    """Starts a daemon with NOTIFY_SOCKET set (only for that process)."""
    notify = NotifySocket()
    os.environ["NOTIFY_SOCKET"] = notify.path
    try:
        daemon = start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    return notify, daemon


def test_server_readiness(stack):
    notify, server = with_notify_socket(lambda: Server(wd_server, stack, "--imap.secure=false"))
    try:
        state = notify.receive(30)
        check(state == "READY=1", "wd-server READY=1 (got %r)" % state)
        conn = Conn(server.port)  # ready means an IMAP client gets its greeting
        check(conn.greeting.startswith("* OK"), "IMAP greeting after READY: " + conn.greeting)
        conn.close()
        server.proc.send_signal(15)
        state = notify.receive(30)
        check(state == "STOPPING=1", "wd-server STOPPING=1 on SIGTERM (got %r)" % state)
        code = server.proc.wait(30)  # a second SIGTERM would stop at once
        check(code == 0, "wd-server exit status 0 (%s)" % code)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        notify.close()


def test_api_readiness(stack):
    notify, api = with_notify_socket(lambda: ApiServer(wd_api, stack))
    try:
        state = notify.receive(30)
        check(state == "READY=1", "wd-api READY=1 (got %r)" % state)
        status = api.client().get("/openapi.json").status
        check(status == 200, "HTTP answers after READY (%s)" % status)
        api.proc.send_signal(15)
        state = notify.receive(30)
        check(state == "STOPPING=1", "wd-api STOPPING=1 on SIGTERM (got %r)" % state)
        code = api.proc.wait(30)
        check(code == 0, "wd-api exit status 0 (%s)" % code)
    finally:
        if api.proc.poll() is None:
            api.proc.kill()
        notify.close()


def main():
    results = Results()
    destdir = tempfile.mkdtemp(prefix="wd-destdir-")
    try:
        installed = meson_install(destdir)
        results.run("installed files", test_files, destdir, installed)
        results.run("man pages", test_man_pages, destdir, installed)
        if shutil.which("systemd-analyze"):
            results.run("systemd units", test_units, destdir, installed)
        else:
            results.run("systemd units", check, False, "systemd-analyze is not installed")
    finally:
        shutil.rmtree(destdir)
    if not os.environ.get("WD_MONGO_URL") or not os.environ.get("WD_REDIS_URL"):
        if results.failed:
            results.exit()
        skip_without_stack()  # exits 77
    stack = Stack(wdctl)
    try:
        results.run("wd-server readiness", test_server_readiness, stack)
        results.run("wd-api readiness", test_api_readiness, stack)
    finally:
        stack.cleanup()
    results.exit()


if __name__ == "__main__":
    main()

"""A private Debian Dovecot with our plugins, for the `dovecot` test suite.

    from dovecot_stack import Dovecot, wildduck_args, plugins_from_build
    stack = Stack(wdctl)                   # tests/clients/imapserver.py: a unique database
    with Dovecot(settings=wildduck_passdb(stack) + "mail_location = ...\n") as dv:
        m = dv.imap()                      # imaplib.IMAP4 on dv.ports["imap"]
        dv.doveadm("user", "alice")        # doveadm -c <our dovecot.conf> user alice

What an instance is
-------------------
`/usr/sbin/dovecot -F -c <tmp>/dovecot.conf`, a master process of its own
with everything under one temporary directory (mode 0755, because the
dovecot and dovenull users must reach the sockets in it):

    <tmp>/dovecot.conf   generated: the base below, then the caller's text
    <tmp>/run/           base_dir (sockets, master.pid, login chroot)
    <tmp>/state/         state_dir
    <tmp>/log/dovecot.log  every log line (log_path = info_log_path)
    <tmp>/modules/       mail_plugin_dir: symlinks to Debian's mail plugins
                         (/usr/lib/dovecot/modules/*.so) and to ours
    <tmp>/authmods/      the auth module directory seen by the instance
    <tmp>/mail/          free for callers (mode 0777), e.g. a maildir

The base configuration listens on 127.0.0.1 only: IMAP, POP3 and LMTP on
free ports picked here (dv.ports), no TLS listeners, `ssl = no`, plaintext
logins allowed, mail processes as nobody:nogroup. The caller's `settings`
text is appended after it, so it adds passdb/userdb blocks, mail_location,
mail_plugins, plugin {} and protocol {} sections, and overrides any base
setting (in Dovecot's configuration the last value of a setting wins).

How our auth module becomes loadable
------------------------------------
Dovecot loads passdb/userdb drivers only from the directory compiled into
its auth binary, /usr/lib/dovecot/modules/auth. Two ways, chosen by
WD_DOVECOT_AUTH_MODE (default "auto": namespace when it works, else install):

  namespace  Dovecot runs inside a private mount namespace (`unshare -m`),
             where <tmp>/authmods, holding copies of Debian's auth modules
             plus symlinks to ours, is bind-mounted over that directory.
             Nothing outside the temporary directory changes. Needs root
             (or CAP_SYS_ADMIN); this is what runs here and in CI.
  install    our modules are copied into /usr/lib/dovecot/modules/auth and
             listed in .wildduck-c-test-installed there; they stay after the
             test (other instances may use them). Remove them with
             `python3 tests/dovecot/dovecot_stack.py --uninstall`, which
             deletes exactly the files that list names.

Stopping: SIGTERM to the master, which stops its children; login processes
that still serve a connection a test left open get SIGTERM 3 s later;
whatever is left after 20 s gets SIGKILL and the stop raises."""

import fcntl
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MODULE_DIR = "/usr/lib/dovecot/modules"
AUTH_MODULE_DIR = MODULE_DIR + "/auth"
INSTALL_LIST = AUTH_MODULE_DIR + "/.wildduck-c-test-installed"

HERE = os.path.dirname(os.path.abspath(__file__))
# the client tests' helpers (Stack: a unique database on the shared stack, wdctl)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugins_from_build(build_dir=None):
    """The Dovecot modules our build produced: (mail plugins, auth modules).
    Mail plugins are lib*_plugin.so in storage/dovecot and lmtp-plugin/dovecot,
    auth modules libauthdb_*.so in auth/dovecot."""
    build_dir = build_dir or os.environ.get("WD_BUILD_DIR", "build")
    mail, auth = [], []
    for sub in ("storage/dovecot", "lmtp-plugin/dovecot", "auth/dovecot"):
        d = os.path.join(build_dir, sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if re.fullmatch(r"libauthdb_\w+\.so", name):
                auth.append(path)
            elif re.fullmatch(r"lib\w+_plugin\.so", name):
                mail.append(path)
    return mail, auth


def wildduck_args(stack, *extra):
    """`args =` of our passdb/userdb for a tests/clients Stack: its database
    and Redis, and FerretDB's SQLite directory when the stack has one."""
    args = ["mongo=" + stack.mongo, "redis=" + stack.redis]
    sqlite = os.environ.get("WD_FERRETDB_SQLITE")
    if sqlite:
        args.append("dbs.ferretdbSqlite=" + sqlite)
    return " ".join(args + list(extra))


def wildduck_authdbs(stack, userdb_extra="uid=nobody gid=nogroup"):
    """passdb and userdb blocks with driver = wildduck for `stack`."""
    return ("passdb {\n  driver = wildduck\n  args = %s\n}\n"
            "userdb {\n  driver = wildduck\n  args = %s\n}\n"
            % (wildduck_args(stack), wildduck_args(stack, userdb_extra)))


def static_authdbs(password, mail_location=None):
    """A static passdb (every user, one password) and a static userdb."""
    text = ("passdb {\n  driver = static\n  args = password=%s\n}\n"
            "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup\n}\n" % password)
    if mail_location:
        text += "mail_location = %s\n" % mail_location
    return text


def _namespace_works():
    """True when this process may run a command in a private mount namespace
    with a bind mount over the auth module directory."""
    if os.environ.get("WD_DOVECOT_AUTH_MODE", "auto") == "install":
        return False
    probe = tempfile.mkdtemp(prefix="wd-dv-probe-")
    try:
        res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                              'mount --bind "$1" "$2"', "sh", probe, AUTH_MODULE_DIR],
                             capture_output=True, timeout=20)
        return res.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        os.rmdir(probe)


def install_auth_modules(paths):
    """The fallback: copy our auth modules into Dovecot's auth module
    directory and record their names (under a lock, so that parallel tests
    do not race). Returns the names installed or refreshed."""
    names = []
    with open(AUTH_MODULE_DIR + "/.wildduck-c-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        listed = set()
        if os.path.exists(INSTALL_LIST):
            with open(INSTALL_LIST) as f:
                listed = {line.strip() for line in f if line.strip()}
        for path in paths:
            name = os.path.basename(path)
            target = os.path.join(AUTH_MODULE_DIR, name)
            if os.path.exists(target) and name not in listed:
                raise RuntimeError("%s exists and was not installed by the test harness; "
                                   "use the namespace mode or remove it" % target)
            tmp = target + ".tmp%d" % os.getpid()
            shutil.copyfile(path, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            listed.add(name)
            names.append(name)
        with open(INSTALL_LIST, "w") as f:
            f.write("".join(n + "\n" for n in sorted(listed)))
    return names


def uninstall_auth_modules():
    """Removes what install_auth_modules() put into the module directory."""
    if not os.path.exists(INSTALL_LIST):
        return []
    with open(INSTALL_LIST) as f:
        names = [line.strip() for line in f if line.strip()]
    for name in names:
        if "/" in name or not name.startswith("libauthdb_"):
            continue
        try:
            os.unlink(os.path.join(AUTH_MODULE_DIR, name))
        except FileNotFoundError:
            pass
    os.unlink(INSTALL_LIST)
    try:
        os.unlink(AUTH_MODULE_DIR + "/.wildduck-c-test.lock")
    except FileNotFoundError:
        pass
    return names


class _SourceIMAP(imaplib.IMAP4):
    """imaplib.IMAP4 connecting from a chosen loopback source address."""

    def __init__(self, host, port, source, timeout):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


class _SourcePOP3(poplib.POP3):
    def __init__(self, host, port, source, timeout):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


class Dovecot:
    """One private Dovecot instance (see the module comment).

    settings      configuration text appended to the base
    mail_plugins  paths of mail plugin .so files to offer in mail_plugin_dir
                  (they are loaded only when `mail_plugins` names them)
    auth_modules  paths of libauthdb_*.so files to make loadable
    protocols     what `protocols =` says
    When both lists are None they come from plugins_from_build()."""

    def __init__(self, settings="", mail_plugins=None, auth_modules=None,
                 protocols=("imap", "pop3", "lmtp"), start=True, timeout=30):
        if mail_plugins is None and auth_modules is None:
            mail_plugins, auth_modules = plugins_from_build()
        self.mail_plugins = list(mail_plugins or [])
        self.auth_modules = list(auth_modules or [])
        self.protocols = list(protocols)
        self.settings = settings
        self.timeout = timeout
        self.proc = None
        self.tmpdir = tempfile.mkdtemp(prefix="wd-dovecot-")
        os.chmod(self.tmpdir, 0o755)
        self.path = lambda *p: os.path.join(self.tmpdir, *p)
        for sub in ("run", "state", "log", "modules", "authmods"):
            os.mkdir(self.path(sub))
        os.mkdir(self.path("mail"))
        os.chmod(self.path("mail"), 0o777)
        self.log_path = self.path("log", "dovecot.log")
        self.conf = self.path("dovecot.conf")
        self.ports = {p: free_port() for p in self.protocols if p in ("imap", "pop3", "lmtp")}
        self.mode = None
        self._prepare_modules()
        self._write_config()
        if start:
            self.start()

    # ---- files ----

    def _prepare_modules(self):
        for name in sorted(os.listdir(MODULE_DIR)):
            src = os.path.join(MODULE_DIR, name)
            if name.endswith(".so") and os.path.isfile(src):
                os.symlink(src, self.path("modules", name))
        for path in self.mail_plugins:
            link = self.path("modules", os.path.basename(path))
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.path.abspath(path), link)
        if not self.auth_modules:
            return
        self.mode = "namespace" if _namespace_works() else "install"
        if self.mode == "namespace":
            # copies, not symlinks: links into the directory we mount over would loop
            for name in sorted(os.listdir(AUTH_MODULE_DIR)):
                src = os.path.join(AUTH_MODULE_DIR, name)
                if name.endswith(".so") and os.path.isfile(src):
                    shutil.copy2(src, self.path("authmods", name))
            for path in self.auth_modules:
                dst = self.path("authmods", os.path.basename(path))
                if os.path.lexists(dst):
                    os.unlink(dst)
                os.symlink(os.path.abspath(path), dst)
        else:
            install_auth_modules(self.auth_modules)

    def base_config(self):
        lines = [
            "# generated by tests/dovecot/dovecot_stack.py",
            "base_dir = %s" % self.path("run"),
            "state_dir = %s" % self.path("state"),
            "instance_name = wd-test-%s" % os.path.basename(self.tmpdir),
            "listen = 127.0.0.1",
            "ssl = no",
            "log_path = %s" % self.log_path,
            "info_log_path = %s" % self.log_path,
            "log_timestamp = \"%Y-%m-%d %H:%M:%S \"",
            "protocols = %s" % " ".join(self.protocols),
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "mail_plugin_dir = %s" % self.path("modules"),
            # libmongoc's shared-memory counters (conf.d/10-wildduck.conf)
            "import_environment = $import_environment MONGOC_DISABLE_SHM=1",
            "mail_uid = nobody",
            "mail_gid = nogroup",
            "first_valid_uid = 1",
            "mail_location = maildir:%s/%%n" % self.path("mail"),
            "service imap-login {",
            "  inet_listener imap {\n    address = 127.0.0.1\n    port = %d\n  }" %
            self.ports.get("imap", 0),
            "  inet_listener imaps {\n    port = 0\n  }",
            "}",
            "service pop3-login {",
            "  inet_listener pop3 {\n    address = 127.0.0.1\n    port = %d\n  }" %
            self.ports.get("pop3", 0),
            "  inet_listener pop3s {\n    port = 0\n  }",
            "}",
            "service lmtp {",
            "  inet_listener lmtp {\n    address = 127.0.0.1\n    port = %d\n  }" %
            self.ports.get("lmtp", 0),
            "}",
            "service submission-login {",
            "  inet_listener submission {\n    port = 0\n  }",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def _write_config(self):
        with open(self.conf, "w") as f:
            f.write(self.base_config())
            f.write("# ---- caller's settings ----\n")
            f.write(self.settings)
            if not self.settings.endswith("\n"):
                f.write("\n")

    # ---- lifetime ----

    def command(self):
        cmd = [DOVECOT, "-F", "-c", self.conf]
        if self.mode != "namespace":
            return cmd
        # unshare execs sh, sh execs dovecot: proc.pid is the master's pid
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
                self.path("authmods"), AUTH_MODULE_DIR] + cmd

    def start(self, attempts=3):
        """Starts the master and waits until every port answers. The ports
        were free when picked; when another process took one meanwhile,
        Dovecot fails to bind and the start is retried on new ports."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except RuntimeError:
                if attempt + 1 == attempts or "Address already in use" not in self.all_output():
                    raise
                self.ports = {p: free_port() for p in self.ports}
                self._write_config()
                os.truncate(self.log_path, 0)

    def _start_once(self):
        self.out = open(self.path("log", "stdout.log"), "w")
        self.proc = subprocess.Popen(self.command(), stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + self.timeout
        waiting = set(self.ports.values())
        while waiting:
            if self.proc.poll() is not None:
                self.out.close()
                raise RuntimeError("dovecot exited with %s at startup:\n%s"
                                   % (self.proc.returncode, self.all_output()))
            if time.time() > deadline:
                self.kill()
                raise RuntimeError("dovecot did not listen within %d s:\n%s"
                                   % (self.timeout, self.all_output()))
            for port in list(waiting):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    waiting.discard(port)
                except OSError:
                    pass
            time.sleep(0.1)
        return self

    def stop(self, timeout=20):
        """Stops the instance; raises when it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError("dovecot did not stop on SIGTERM:\n" + self.log_tail())
        self._wait_children(timeout)
        self.out.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def _wait_children(self, timeout):
        """Dovecot's children share the master's process group. Most leave
        with the master; login processes keep serving connections a client
        left open, so those get SIGTERM after a moment, then SIGKILL."""
        pgid = self.proc.pid
        deadline = time.time() + timeout
        termed = False
        while True:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            if not termed and time.time() > deadline - timeout + 3:
                os.killpg(pgid, signal.SIGTERM)
                termed = True
            if time.time() > deadline:
                os.killpg(pgid, signal.SIGKILL)
                raise RuntimeError("dovecot's processes outlived the master by %d s" % timeout)
            time.sleep(0.1)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def cleanup(self):
        if self.proc is not None:
            self.kill()
            self.proc = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            if exc[0] is None or not os.environ.get("WD_DOVECOT_KEEP"):
                self.cleanup()
        return False

    # ---- logs ----

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """A position in the log; log_since(mark) is what came after it."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, mark=0, timeout=10):
        """Waits until a log line after `mark` matches the regex; returns it."""
        deadline = time.time() + timeout
        while True:
            m = re.search(pattern, self.log_since(mark))
            if m:
                return m.group(0)
            if time.time() > deadline:
                raise AssertionError("no log line matching %r within %d s:\n%s"
                                     % (pattern, timeout, self.log_since(mark)[-4000:]))
            time.sleep(0.1)

    def log_tail(self, lines=60):
        return "\n".join(self.log().splitlines()[-lines:])

    def all_output(self):
        try:
            with open(self.path("log", "stdout.log"), errors="replace") as f:
                out = f.read()
        except FileNotFoundError:
            out = ""
        return "--- stdout/stderr ---\n%s--- %s ---\n%s" % (out, self.log_path, self.log_tail())

    # ---- clients ----

    def imap(self, source="127.0.0.1", timeout=30):
        """imaplib connection (from `source`, any 127.0.0.0/8 address: Dovecot's
        auth penalty counts failures per client IP)."""
        return _SourceIMAP("127.0.0.1", self.ports["imap"], source, timeout)

    def pop3(self, source="127.0.0.1", timeout=30):
        return _SourcePOP3("127.0.0.1", self.ports["pop3"], source, timeout)

    def lmtp(self, timeout=30):
        return smtplib.LMTP("127.0.0.1", self.ports["lmtp"], timeout=timeout)

    def doveadm(self, *args, check=False, input=None, timeout=60):
        """`doveadm -c <conf> args...`; a CompletedProcess with text output."""
        res = subprocess.run([DOVEADM, "-c", self.conf] + list(args), capture_output=True,
                             text=True, input=input, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError("doveadm %s: exit %d\n%s%s" % (" ".join(args), res.returncode,
                                                              res.stdout, res.stderr))
        return res


def doveadm_fields(output):
    """`doveadm user` / `doveadm auth lookup` output as a dict (field -> value)."""
    fields = {}
    for line in output.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] != "field":
            fields[parts[0]] = parts[1]
        elif len(parts) == 1:
            fields.setdefault(parts[0], "")
    return fields


if __name__ == "__main__":
    if sys.argv[1:] == ["--uninstall"]:
        removed = uninstall_auth_modules()
        print("removed: %s" % (" ".join(removed) or "nothing"))
    else:
        print("usage: dovecot_stack.py --uninstall   (remove auth modules the harness installed)")
        sys.exit(2)

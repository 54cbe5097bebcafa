"""The harness itself (suite `dovecot`): Debian's Dovecot started from
dovecot_stack.py on private loopback ports with a static passdb and a
maildir, so that a failure of the plugin tests can be told apart from a
harness that does not work. Needs no WildDuck stack.

Checks: IMAP and POP3 logins (and a refused one), an LMTP delivery read back
over IMAP, `doveadm user`, the auth module directory the instance sees (our
modules next to Debian's, when a build made them), a clean stop that leaves
no process behind."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dovecot_stack import Dovecot, doveadm_fields, plugins_from_build, static_authdbs  # noqa: E402
from imapserver import Results, check  # noqa: E402


def t_imap(dv):
    m = dv.imap()
    typ, _ = m.login("alice", "harness-pw")
    check(typ == "OK", "login")
    typ, data = m.select("INBOX")
    check(typ == "OK" and data == [b"0"], "SELECT %r" % data)
    m.logout()
    m = dv.imap(source="127.0.0.9")
    try:
        m.login("alice", "wrong")
        raise AssertionError("wrong password accepted")
    except m.error as e:
        check("AUTHENTICATIONFAILED" in str(e), str(e))
    m.shutdown()
    dv.wait_log(r"imap-login: Info: (Disconnected|Aborted login).*auth failed.*rip=127\.0\.0\.9")


def t_pop3(dv):
    p = dv.pop3()
    p.user("bob")
    check(p.pass_("harness-pw").startswith(b"+OK"), "POP3 login")
    check(p.stat() == (0, 0), "STAT")
    p.quit()


def t_lmtp_then_imap(dv):
    with dv.lmtp() as l:
        l.ehlo("harness")  # smtplib.LMTP sends LHLO
        refused = l.sendmail("sender@example.org", ["carol@example.org"],
                             b"Subject: harness\r\n\r\nbody\r\n")
        check(refused == {}, "LMTP refused %r" % refused)
    m = dv.imap()
    m.login("carol@example.org", "harness-pw")
    typ, data = m.select("INBOX")
    check(data == [b"1"], "one message: %r" % data)
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    check(data[0][1].endswith(b"Subject: harness\r\n\r\nbody\r\n"), repr(data[0][1][-80:]))
    m.logout()


def t_doveadm_user(dv):
    res = dv.doveadm("user", "dave", check=True)
    fields = doveadm_fields(res.stdout)
    check(fields.get("uid") == "65534", res.stdout)
    check(fields.get("mail", "").startswith("maildir:"), res.stdout)


def t_auth_module_dir(dv):
    """The auth module directory this instance's auth process sees."""
    _, ours = plugins_from_build()
    if dv.mode != "namespace":
        check(dv.mode == "install" or not ours, "mode %r" % dv.mode)
        return
    ns = subprocess.run(["nsenter", "-t", str(dv.proc.pid), "-m", "ls",
                         "/usr/lib/dovecot/modules/auth"], capture_output=True, text=True)
    check(ns.returncode == 0, ns.stderr)
    seen = ns.stdout.split()
    for path in ours:
        check(os.path.basename(path) in seen, "%s not in %s" % (path, seen))
    check("libauthdb_imap.so" in seen, "Debian's modules are kept: %s" % seen)
    host = os.listdir("/usr/lib/dovecot/modules/auth")
    for path in ours:
        check(os.path.basename(path) not in host, "the host directory is untouched: %s" % host)


def main():
    res = Results()
    dv = Dovecot(settings=static_authdbs("harness-pw"))
    pgid = dv.proc.pid
    try:
        res.run("imap login", t_imap, dv)
        res.run("pop3 login", t_pop3, dv)
        res.run("lmtp then imap", t_lmtp_then_imap, dv)
        res.run("doveadm user", t_doveadm_user, dv)
        res.run("auth module dir", t_auth_module_dir, dv)

        def t_stop():
            code = dv.stop()
            check(code is not None, "stopped")
            try:
                os.killpg(pgid, 0)
                raise AssertionError("processes left in group %d" % pgid)
            except ProcessLookupError:
                pass
        res.run("clean stop", t_stop)
    finally:
        if res.failed:
            print(dv.all_output())
        dv.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

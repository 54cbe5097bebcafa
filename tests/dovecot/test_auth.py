"""passdb/userdb `wildduck` in Debian's Dovecot (suite `dovecot`).

A private Dovecot (dovecot_stack.py) authenticates against a unique WildDuck
database on the test stack through libauthdb_wildduck.so; mail itself is a
maildir here (the storage plugin is tested elsewhere). Users are made with
wdctl, account states set with dovecot-db-tool.

Checks, each against real logins (imaplib, poplib, smtplib.LMTP) or doveadm:
  - IMAP and POP3 logins with the account password, by username and by an
    address written with dots, a "+label" and upper case;
  - wrong passwords and unknown users: the same refusal;
  - application-specific passwords and their scopes; with TOTP on, the
    account password refused (WildDuck's reason reaches the client) and an
    app password accepted;
  - disabled and suspended accounts, disabledScopes;
  - WildDuck's failed-login limit (auth.userFailures) answered with [LIMIT];
  - userdb: `doveadm user` by username and address (uid, gid, home from the
    template, wildduck_user = the id), unknown users, iteration, LMTP
    recipients resolved as delivery resolves them;
  - `doveadm auth test/lookup`, services without a WildDuck scope refused,
    submission checked as WildDuck's smtp scope;
  - the authlog documents written for these logins (result, protocol, ip,
    source, requiredScope);
  - lookups run in auth-worker processes;
  - an unreachable database: a temporary failure, not a refusal.

Dovecot's auth penalty grows per client IP, so each refused login comes from
its own 127.0.x.y source address."""

import base64
import hashlib
import hmac
import itertools
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dovecot_stack import Dovecot, doveadm_fields, wildduck_args  # noqa: E402
from imapserver import Results, Stack, check, skip_without_stack  # noqa: E402

PASSWORD = "Correct horse 1"
_ips = ("127.0.%d.%d" % (i // 250 + 1, i % 250 + 1) for i in itertools.count())


def fresh_ip():
    return next(_ips)


def totp(seed_b32, t=None):
    key = base64.b32decode(seed_b32.upper() + "=" * (-len(seed_b32) % 8))
    counter = int((t or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


class Db:
    current = None

    def __init__(self, tool, stack):
        self.tool = tool
        self.url = stack.mongo
        Db.current = self

    def run(self, *args):
        res = subprocess.run([self.tool, self.url] + list(args), capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError("dovecot-db-tool %s: %s" % (" ".join(args), res.stderr))
        return res.stdout

    def set_user(self, user, field, value):
        self.run("set-user", user, field, json.dumps(value))

    def authlog(self, user):
        return [json.loads(line) for line in self.run("authlog", user).splitlines()]

    def user_id(self, user):
        return self.run("user-id", user).strip()


def imap_refused(dv, user, password, source=None):
    """Logs in expecting a refusal; returns the server's text."""
    m = dv.imap(source=source or fresh_ip())
    try:
        m.login(user, password)
    except m.error as e:
        return e.args[0].decode() if isinstance(e.args[0], bytes) else str(e.args[0])
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    raise AssertionError("login of %s accepted" % user)


def pop3_refused(dv, user, password):
    p = dv.pop3(source=fresh_ip())
    try:
        p.user(user)
        p.pass_(password)
    except Exception as e:  # poplib.error_proto
        return str(e.args[0].decode() if isinstance(e.args[0], bytes) else e.args[0])
    finally:
        p.close()
    raise AssertionError("POP3 login of %s accepted" % user)


# ---- logins ----

def t_imap_password(dv):
    m = dv.imap()
    typ, data = m.login("alice", PASSWORD)
    check(typ == "OK", "%s %r" % (typ, data))
    typ, data = m.select("INBOX")
    check(typ == "OK", "SELECT %r" % data)
    m.logout()
    dv.wait_log(r"imap\(alice\)<\d+><[^>]+>: Info: Disconnected: Logged out")


def t_imap_address(dv):
    mark = dv.log_mark()
    m = dv.imap()
    typ, _ = m.login("Alice.Smith+News@Example.ORG", PASSWORD)
    check(typ == "OK", typ)
    m.logout()
    # the mail process runs as the WildDuck username, not the login name
    dv.wait_log(r"imap\(alice\)<\d+><[^>]+>: Info: Disconnected: Logged out", mark)
    # without dots in the local part: the same address (WildDuck ignores dots)
    m = dv.imap()
    check(m.login("alicesmith@example.org", PASSWORD)[0] == "OK", "no dots")
    m.logout()


def t_pop3_password(dv):
    p = dv.pop3()
    p.user("alice")
    check(p.pass_(PASSWORD).startswith(b"+OK"), "POP3 PASS")
    check(p.stat() == (0, 0), "STAT")
    p.quit()
    p = dv.pop3()
    p.user("alice.smith@example.org")
    check(p.pass_(PASSWORD).startswith(b"+OK"), "POP3 by address")
    p.quit()


def t_wrong_password(dv):
    text = imap_refused(dv, "alice", "not the password")
    check(text == "[AUTHENTICATIONFAILED] Authentication failed.", text)
    unknown = imap_refused(dv, "nobody-here", "whatever")
    check(unknown == text, "unknown user answered %r" % unknown)
    text = pop3_refused(dv, "alice", "not the password")
    check(text.startswith("-ERR [AUTH]"), text)


def t_app_passwords(dv, stack):
    imap_asp = stack.run_wdctl("asp", "create", "gina", "--description", "mail app",
                               "--scope", "imap").split()[1]
    pop3_asp = stack.run_wdctl("asp", "create", "gina", "--description", "pop app",
                               "--scope", "pop3").split()[1]
    m = dv.imap()
    check(m.login("gina", imap_asp)[0] == "OK", "imap app password")
    m.logout()
    # an app password of another scope is refused, WildDuck's reason included
    text = imap_refused(dv, "gina", pop3_asp)
    check(text.startswith("[AUTHENTICATIONFAILED]") and "scope" in text, text)
    p = dv.pop3()
    p.user("gina")
    check(p.pass_(pop3_asp).startswith(b"+OK"), "pop3 app password")
    p.quit()
    text = pop3_refused(dv, "gina", imap_asp)
    check(text.startswith("-ERR [AUTH]") and "scope" in text, text)
    # 16 letters may be written with spaces and in upper case, as WildDuck allows
    spaced = " ".join(imap_asp[i:i + 4] for i in range(0, 16, 4)).upper()
    m = dv.imap()
    check(m.login("gina", spaced)[0] == "OK", "spaced app password %r" % spaced)
    m.logout()


def t_two_factor(dv, stack):
    seed = stack.run_wdctl("2fa", "totp", "setup", "gina").split("\n")[0].strip()
    stack.run_wdctl("2fa", "totp", "enable", "gina", totp(seed))
    text = imap_refused(dv, "gina", PASSWORD)
    check(text.startswith("[AUTHENTICATIONFAILED]") and "application-specific" in text, text)
    text = pop3_refused(dv, "gina", PASSWORD)
    check("application-specific" in text, text)
    asp = stack.run_wdctl("asp", "create", "gina", "--description", "after 2fa",
                          "--scope", "*").split()[1]
    m = dv.imap()
    check(m.login("gina", asp)[0] == "OK", "app password with 2FA on")
    m.logout()
    p = dv.pop3()
    p.user("gina")
    check(p.pass_(asp).startswith(b"+OK"), "pop3 app password with 2FA on")
    p.quit()


def t_disabled(dv, db):
    db.set_user("dan", "disabled", True)
    text = imap_refused(dv, "dan", PASSWORD)
    check(text == "[CONTACTADMIN] Account is not available", text)
    text = pop3_refused(dv, "dan", PASSWORD)
    check(text == "-ERR [AUTH] Account is not available", text)
    db.set_user("dan", "disabled", False)
    db.set_user("dan", "suspended", True)
    text = imap_refused(dv, "dan", PASSWORD)
    check(text == "[CONTACTADMIN] Account is not available", text)
    db.set_user("dan", "suspended", False)
    m = dv.imap()
    check(m.login("dan", PASSWORD)[0] == "OK", "enabled again")
    m.logout()


def t_disabled_scope(dv, db):
    db.set_user("sue", "disabledScopes", ["pop3"])
    text = pop3_refused(dv, "sue", PASSWORD)
    check(text == "-ERR [AUTH] POP3 access is disabled for this account", text)
    m = dv.imap()
    check(m.login("sue", PASSWORD)[0] == "OK", "imap still allowed")
    m.logout()


def t_rate_limit(dv):
    # the instance runs with auth.userFailures = 4
    for i in range(4):
        text = imap_refused(dv, "rita", "wrong %d" % i)
        check(text == "[AUTHENTICATIONFAILED] Authentication failed.", "%d: %s" % (i, text))
    text = imap_refused(dv, "rita", PASSWORD)
    check(text.startswith("[LIMIT] Too many failed logins, try again in "), text)


# ---- userdb ----

def t_doveadm_user(dv, db):
    alice_id = db.user_id("alice")
    res = dv.doveadm("user", "alice", check=True)
    f = doveadm_fields(res.stdout)
    check(f.get("uid") == "65534" and f.get("gid") == "65534", res.stdout)
    check(f.get("home") == "/srv/wd-homes/alice", res.stdout)
    check(f.get("wildduck_user") == alice_id, "%s vs %s" % (res.stdout, alice_id))
    check("wildduck_disabled" not in f, res.stdout)
    # by address: the canonical name comes back
    res = dv.doveadm("user", "-f", "user", "Alice.Smith@example.org", check=True)
    check(res.stdout.strip() == "alice", res.stdout)
    res = dv.doveadm("user", "-f", "wildduck_user", "alicesmith@example.org", check=True)
    check(res.stdout.strip() == alice_id, res.stdout)
    # unknown: doveadm's "user doesn't exist" exit code
    res = dv.doveadm("user", "nobody-here")
    check(res.returncode == 67, "exit %d %s%s" % (res.returncode, res.stdout, res.stderr))


def t_doveadm_user_list(dv):
    res = dv.doveadm("user", "*", check=True)
    names = set(res.stdout.split())
    check({"alice", "gina", "dan", "sue", "rita"} <= names, res.stdout)


def t_lmtp_recipients(dv):
    body = b"From: x@example.net\r\nSubject: to alice\r\n\r\nhello\r\n"
    with dv.lmtp() as lmtp:
        lmtp.ehlo("test")
        refused = lmtp.sendmail("x@example.net", ["Alice.Smith+shop@example.org"], body)
        check(refused == {}, "refused %r" % refused)
        try:
            lmtp.sendmail("x@example.net", ["nobody-here@example.org"], body)
            raise AssertionError("unknown recipient accepted")
        except Exception as e:
            check("550" in str(e) or "User doesn't exist" in str(e), str(e))
    m = dv.imap()
    m.login("alice", PASSWORD)
    typ, data = m.select("INBOX")
    check(data == [b"1"], "delivered to alice's INBOX: %r" % data)
    m.logout()


def t_doveadm_auth(dv):
    res = dv.doveadm("auth", "test", "-x", "service=imap", "alice.smith@example.org", PASSWORD)
    check(res.returncode == 0 and "auth succeeded" in res.stdout, res.stdout + res.stderr)
    check("user=alice" in res.stdout, res.stdout)
    # doveadm's own service has no WildDuck scope: refused
    res = dv.doveadm("auth", "test", "alice", PASSWORD)
    check(res.returncode != 0 and "auth failed" in res.stdout + res.stderr,
          res.stdout + res.stderr)
    # a lookup without password: exists (canonical name), disabled, unknown
    res = dv.doveadm("auth", "lookup", "alice.smith@example.org")
    check(res.returncode == 0 and "user      : alice" in res.stdout, res.stdout + res.stderr)
    res = dv.doveadm("auth", "lookup", "nobody-here")
    check(res.returncode != 0, res.stdout + res.stderr)


def t_submission_scope(dv, stack):
    """Dovecot's submission service is WildDuck's smtp scope."""
    smtp_asp = stack.run_wdctl("asp", "create", "alice", "--description", "mua",
                               "--scope", "smtp").split()[1]
    res = dv.doveadm("auth", "test", "-x", "service=submission", "alice", smtp_asp)
    check(res.returncode == 0 and "auth succeeded" in res.stdout, res.stdout + res.stderr)
    res = dv.doveadm("auth", "test", "-x", "service=submission", "alice", PASSWORD)
    check(res.returncode == 0, "account password for submission: " + res.stdout + res.stderr)
    res = dv.doveadm("auth", "test", "-x", "service=imap", "alice", smtp_asp)
    check(res.returncode != 0 and "auth failed" in res.stdout + res.stderr,
          "smtp app password for imap: " + res.stdout + res.stderr)
    smtp_log = [e for e in Db.current.authlog("alice") if e.get("protocol") == "SMTP"]
    check(any(e.get("result") == "success" and e.get("source") == "asp" for e in smtp_log),
          "authlog SMTP: %r" % smtp_log)


def t_auth_worker(dv):
    """The lookups ran in auth-worker processes (blocking driver)."""
    log = dv.log()
    check("auth-worker(" in log and "wildduck store: database server" in log, log[-3000:])


def t_authlog(db):
    entries = db.authlog("alice")
    ok = [e for e in entries if e.get("result") == "success" and e.get("protocol") == "IMAP"]
    check(ok and ok[0].get("source") == "master" and ok[0].get("ip") == "127.0.0.1",
          "IMAP success: %r" % entries)
    check(ok[0].get("requiredScope") == "imap", ok[0])
    check(any(e.get("result") == "success" and e.get("protocol") == "POP3" for e in entries),
          "POP3 success: %r" % entries)
    fails = [e for e in entries if e.get("result") == "fail" and e.get("protocol") == "IMAP"]
    check(fails and fails[0].get("ip", "").startswith("127.0."), "IMAP failure: %r" % entries)
    gina = db.authlog("gina")
    check(any(e.get("source") == "asp" and e.get("result") == "success" for e in gina),
          "app password success: %r" % gina)
    dan = db.authlog("dan")
    check({"disabled", "suspended"} <= {e.get("result") for e in dan}, "dan: %r" % dan)


def t_database_down(wdctl_stack):
    settings = ("passdb {\n  driver = wildduck\n  args = mongo=mongodb://127.0.0.1:9/"
                "x?serverSelectionTimeoutMS=300 redis=%s\n}\n"
                "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup\n}\n"
                % wdctl_stack.redis)
    with Dovecot(settings=settings + "auth_failure_delay = 0\n") as down:
        m = down.imap(source=fresh_ip())
        try:
            m.login("alice", PASSWORD)
            raise AssertionError("accepted without a database")
        except m.error as e:
            check("[UNAVAILABLE]" in str(e), str(e))
        down.wait_log(r"auth-worker\(\d+\): Error: .*WildDuck database unavailable")


def main():
    skip_without_stack()
    wdctl, db_tool = sys.argv[1], sys.argv[2]
    stack = Stack(wdctl)
    db = Db(db_tool, stack)
    stack.run_wdctl("user", "create", "alice", "--password", PASSWORD,
                    "--address", "alice.smith@example.org")
    for name in ("gina", "dan", "sue", "rita"):
        stack.user(name, PASSWORD)
    # the shipped conf.d snippet, pointed at the test database
    with open(os.path.join(os.environ.get("WD_SOURCE_DIR", "../.."),
                           "conf.d", "auth-wildduck.conf.ext")) as f:
        snippet = f.read()
    args = wildduck_args(stack) + " auth.userFailures=4"
    check(snippet.count("args = config=/etc/wildduck/wildduck.toml") == 2, "snippet's args")
    settings = snippet.replace(
        "args = config=/etc/wildduck/wildduck.toml uid=vmail gid=vmail",
        "args = %s uid=nobody gid=nogroup home=/srv/wd-homes/%%u" % args).replace(
        "args = config=/etc/wildduck/wildduck.toml", "args = " + args)
    settings += "auth_failure_delay = 0\n"
    res = Results()
    # mail: the harness's maildirs (mail_location of the base configuration)
    dv = Dovecot(settings=settings, start=False)
    try:
        dv.start()
        res.run("imap login, password", t_imap_password, dv)
        res.run("imap login by address", t_imap_address, dv)
        res.run("pop3 login, password", t_pop3_password, dv)
        res.run("wrong password, unknown user", t_wrong_password, dv)
        res.run("app passwords and scopes", t_app_passwords, dv, stack)
        res.run("2fa: account password refused", t_two_factor, dv, stack)
        res.run("disabled and suspended", t_disabled, dv, db)
        res.run("disabledScopes", t_disabled_scope, dv, db)
        res.run("failed-login limit", t_rate_limit, dv)
        res.run("doveadm user", t_doveadm_user, dv, db)
        res.run("doveadm user iteration", t_doveadm_user_list, dv)
        res.run("lmtp recipients", t_lmtp_recipients, dv)
        res.run("doveadm auth test/lookup", t_doveadm_auth, dv)
        res.run("submission = smtp scope", t_submission_scope, dv, stack)
        res.run("lookups in auth-worker", t_auth_worker, dv)
        res.run("authlog entries", t_authlog, db)
        res.run("clean stop", dv.stop)
        res.run("database unreachable", t_database_down, stack)
    finally:
        if res.failed:
            print(dv.all_output())
        dv.cleanup()
        stack.cleanup()
    res.exit()


if __name__ == "__main__":
    main()

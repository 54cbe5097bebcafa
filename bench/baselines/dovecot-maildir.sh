#!/usr/bin/env bash
# dovecot-maildir.sh — stock Debian Dovecot 2.3 with Maildir as a benchmark baseline: a
# private instance (its own config, base_dir, state and logs), never /etc/dovecot.
#
#   bench/baselines/dovecot-maildir.sh start    write config, users and certificate, start
#   bench/baselines/dovecot-maildir.sh stop     stop this instance (mail stays)
#   bench/baselines/dovecot-maildir.sh status   exit 0 when it runs and answers, else 3
#   bench/baselines/dovecot-maildir.sh reset    stop and delete all mail and users
#
# Runs as root (Dovecot's master must, to drop to the mail user). Everything lives in
# <repo>/var/bench/dovecot-maildir (git ignores var/):
#   dovecot.conf  generated on every start     run/    base_dir (sockets, master.pid)
#   users         passwd-file (passdb + userdb) state/  state_dir
#   mail/<user>/  Maildir++ of each user       log/dovecot.log
#   tls/          self-signed certificate (made once with openssl)
#
# Users: user1..userN (N = DOVECOT_USERS, default 10) with password passN, or every user
# with DOVECOT_PASSWORD when set, written to `users` when it does not exist yet.
# bench/baselines/fill.py adds more lines to that file; Dovecot rereads it when it changes.
# Mail is owned by nobody:nogroup (uid/gid columns of the passwd-file).
#
# WD_BENCH_VAR [<repo>/var/bench]: parent of that directory (a private benchmark run
# uses its own, e.g. bench/side-by-side.py).
# Ports (environment, defaults in brackets), all on 127.0.0.1:
#   DOVECOT_IMAP_PORT [20243]  IMAP, plaintext LOGIN allowed     DOVECOT_IMAPS_PORT [20293]
#   DOVECOT_POP3_PORT [20210]  POP3                              DOVECOT_POP3S_PORT [20295]
#   DOVECOT_LMTP_PORT [20224]  LMTP (TCP)
# DOVECOT_MAX_CONN [100]: mail_max_userip_connections (Debian's default is 10), so that
# a benchmark may open as many connections per user as on the other servers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${WD_BENCH_VAR:-$repo/var/bench}/dovecot-maildir
conf=$base/dovecot.conf
users=$base/users
imap_port=${DOVECOT_IMAP_PORT:-20243}
imaps_port=${DOVECOT_IMAPS_PORT:-20293}
pop3_port=${DOVECOT_POP3_PORT:-20210}
pop3s_port=${DOVECOT_POP3S_PORT:-20295}
lmtp_port=${DOVECOT_LMTP_PORT:-20224}
nusers=${DOVECOT_USERS:-10}
password=${DOVECOT_PASSWORD:-}
max_conn=${DOVECOT_MAX_CONN:-100}

say() { echo "dovecot-maildir.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for p in "$imap_port" "$imaps_port" "$pop3_port" "$pop3s_port" "$lmtp_port" "$nusers" "$max_conn"; do
  [[ "$p" =~ ^[0-9]+$ ]] || die "not a number: '$p'"
done
[[ "$password" =~ ^[A-Za-z0-9._-]*$ ]] || die "DOVECOT_PASSWORD: letters, digits and ._- only"
case "$base" in *[[:space:]]*) die "path '$base' contains spaces" ;; esac

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The master's pid when it runs with our config (pid file in our base_dir, /proc agrees).
our_pid() {
  local pid=""
  [ -f "$base/run/master.pid" ] && read -r pid <"$base/run/master.pid" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "dovecot.* -c $conf" || return 1
  echo "$pid"
}

write_users() {
  [ -f "$users" ] && return 0
  local i pw
  : >"$users.tmp"
  for i in $(seq 1 "$nusers"); do
    pw=${password:-pass$i}
    echo "user$i:{PLAIN}$pw:65534:65534::$base/mail/user$i::" >>"$users.tmp"
  done
  mv -f "$users.tmp" "$users"
}

write_cert() {
  [ -f "$base/tls/cert.pem" ] && return 0
  mkdir -p "$base/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
    -keyout "$base/tls/key.pem" -out "$base/tls/cert.pem" 2>/dev/null
  chmod 600 "$base/tls/key.pem"
}

write_config() {
  cat >"$conf.tmp" <<EOF
# Written by bench/baselines/dovecot-maildir.sh on every start; edits are overwritten.
base_dir = $base/run
state_dir = $base/state
instance_name = wd-bench-maildir
listen = 127.0.0.1
protocols = imap pop3 lmtp
log_path = $base/log/dovecot.log
info_log_path = $base/log/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
ssl = yes
ssl_cert = <$base/tls/cert.pem
ssl_key = <$base/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_max_userip_connections = $max_conn
# the folders WildDuck creates for every user, with the same names and separator
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = subscribe
    special_use = \\Drafts
  }
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
  mailbox "Sent Mail" {
    auto = subscribe
    special_use = \\Sent
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $users
}
userdb {
  driver = passwd-file
  args = username_format=%n $users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $pop3s_port
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
protocol imap {
  mail_max_userip_connections = $max_conn
}
protocol pop3 {
  mail_max_userip_connections = $max_conn
}
EOF
  mv -f "$conf.tmp" "$conf"
}

cmd_start() {
  local pid p deadline
  if pid=$(our_pid); then
    say "already running (pid $pid)"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "must run as root (Dovecot's master switches to the mail user)"
  [ -x /usr/sbin/dovecot ] || die "/usr/sbin/dovecot is missing (apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd)"
  for p in "$imap_port" "$imaps_port" "$pop3_port" "$pop3s_port" "$lmtp_port"; do
    ! port_open "$p" || die "port 127.0.0.1:$p is in use"
  done
  mkdir -p "$base"/{run,state,log,mail}
  chmod 0755 "$base" "$base/run"
  chown 65534:65534 "$base/mail"
  write_users
  write_cert
  write_config
  /usr/sbin/dovecot -c "$conf" || { tail -n 20 "$base/log/dovecot.log" >&2 || true; die "dovecot failed to start"; }
  deadline=$((SECONDS + 30))
  for p in "$imap_port" "$imaps_port" "$pop3_port" "$pop3s_port" "$lmtp_port"; do
    until port_open "$p"; do
      [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$base/log/dovecot.log" >&2; die "port $p not open after 30 s"; }
      sleep 0.1
    done
  done
  pid=$(our_pid) || die "dovecot listens but $base/run/master.pid does not name it"
  say "started (pid $pid): IMAP 127.0.0.1:$imap_port, IMAPS :$imaps_port, POP3 :$pop3_port," \
      "POP3S :$pop3s_port, LMTP :$lmtp_port; users in $users, mail in $base/mail"
}

cmd_stop() {
  local pid i
  if ! pid=$(our_pid); then
    say "not running"
    return 0
  fi
  kill -TERM "$pid"
  for i in $(seq 200); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  [ ! -d "/proc/$pid" ] || die "dovecot master $pid still runs 20 s after SIGTERM"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && port_open "$imap_port" && port_open "$lmtp_port"; then
    echo "dovecot-maildir: running (pid $pid), IMAP :$imap_port IMAPS :$imaps_port POP3 :$pop3_port POP3S :$pop3s_port LMTP :$lmtp_port"
    return 0
  fi
  echo "dovecot-maildir: not running"
  return 3
}

cmd_reset() {
  cmd_stop
  rm -rf "$base/mail" "$users" "$base/state"
  say "mail, users and state removed"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *) echo "usage: bench/baselines/dovecot-maildir.sh start|stop|status|reset" >&2; exit 2 ;;
esac

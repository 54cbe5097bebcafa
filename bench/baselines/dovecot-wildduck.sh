#!/usr/bin/env bash
# dovecot-wildduck.sh — Debian's Dovecot with our plugins (storage, quota, LMTP delivery,
# passdb/userdb) on the same database as wd-server, as a benchmark baseline.
#
#   bench/baselines/dovecot-wildduck.sh start    start the stack (scripts/stack.sh), then
#                                                dovecot_wildduck.py in the background
#   bench/baselines/dovecot-wildduck.sh stop     SIGTERM to that wrapper: it stops Dovecot
#                                                and removes its temporary directory
#   bench/baselines/dovecot-wildduck.sh status   exit 0 when it runs and answers, else 3
#
# Runs as root (Dovecot, and the bind mount of our auth module; see
# tests/dovecot/dovecot_stack.py). State: <repo>/var/bench/dovecot-wildduck/{wrapper.pid,
# ready.json, wrapper.log}; Dovecot's own files are in the temporary directory ready.json names.
#
# Environment (defaults in brackets):
#   WD_BENCH_VAR   parent of the state directory [<repo>/var/bench]
#   WD_STACK_DIR WD_MONGO_PORT WD_REDIS_PORT   passed to scripts/stack.sh
#   WD_BUILD_DIR   our build directory with the plugins [<repo>/build]
#   WD_BENCH_DB    database of our servers [wdbench_ours]
#   DVWD_IMAP_PORT [20343]  DVWD_POP3_PORT [20310]  DVWD_LMTP_PORT [20324]   (127.0.0.1)
#   DVWD_MAX_CONN  [100]    mail_max_userip_connections
# No TLS listeners (the harness' base configuration has ssl = no).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${WD_BENCH_VAR:-$repo/var/bench}/dovecot-wildduck
pidfile=$base/wrapper.pid
ready=$base/ready.json
log=$base/wrapper.log
build=${WD_BUILD_DIR:-$repo/build}
imap_port=${DVWD_IMAP_PORT:-20343}
pop3_port=${DVWD_POP3_PORT:-20310}
lmtp_port=${DVWD_LMTP_PORT:-20324}
max_conn=${DVWD_MAX_CONN:-100}

say() { echo "dovecot-wildduck.sh: $*" >&2; }
die() { say "$*"; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

our_pid() {
  local pid=""
  [ -f "$pidfile" ] && read -r pid <"$pidfile" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "dovecot_wildduck.py" || return 1
  echo "$pid"
}

cmd_start() {
  local pid p deadline env
  if pid=$(our_pid); then
    say "already running (pid $pid)"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "must run as root"
  for p in "$imap_port" "$pop3_port" "$lmtp_port"; do
    ! port_open "$p" || die "port 127.0.0.1:$p is in use"
  done
  mkdir -p "$base"
  rm -f "$ready"
  env=$("$repo/scripts/stack.sh" start)
  (
    # the three WD_* lines stack.sh printed
    while IFS= read -r line; do export "$line"; done <<<"$env"
    export WD_BUILD_DIR=$build
    cd "$repo"
    exec setsid nohup python3 "$here/dovecot_wildduck.py" --build "$build" \
      --imap-port "$imap_port" --pop3-port "$pop3_port" --lmtp-port "$lmtp_port" \
      --max-conn "$max_conn" --ready-file "$ready" </dev/null >>"$log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$pidfile"
  deadline=$((SECONDS + 60))
  until [ -s "$ready" ]; do
    if ! [ -d "/proc/$pid" ]; then
      rm -f "$pidfile"
      tail -n 40 "$log" >&2
      die "dovecot_wildduck.py exited during startup (log: $log)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 40 "$log" >&2; die "not ready after 60 s"; }
    sleep 0.2
  done
  say "started (wrapper pid $pid): IMAP 127.0.0.1:$imap_port, POP3 :$pop3_port, LMTP :$lmtp_port; $(cat "$ready")"
}

cmd_stop() {
  local pid i
  if ! pid=$(our_pid); then
    say "not running"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  for i in $(seq 300); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  [ ! -d "/proc/$pid" ] || die "wrapper $pid still runs 30 s after SIGTERM (log: $log)"
  rm -f "$pidfile"
  say "stopped (wrapper pid $pid)"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && port_open "$imap_port" && port_open "$lmtp_port"; then
    echo "dovecot-wildduck: running (wrapper pid $pid), IMAP :$imap_port POP3 :$pop3_port LMTP :$lmtp_port"
    return 0
  fi
  echo "dovecot-wildduck: not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: bench/baselines/dovecot-wildduck.sh start|stop|status" >&2; exit 2 ;;
esac

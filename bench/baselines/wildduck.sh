#!/usr/bin/env bash
# wildduck.sh — Node WildDuck (npm @zone-eu/wildduck) as a benchmark baseline, on our data
# stack (FerretDB 1.24 + Redis from scripts/stack.sh), on loopback ports.
#
#   bench/baselines/wildduck.sh start    install if needed, start the stack, write the config,
#                                        start WildDuck, wait until IMAP and the API answer
#   bench/baselines/wildduck.sh stop     stop the WildDuck this script started (the stack stays)
#   bench/baselines/wildduck.sh status   exit 0 when it runs and answers, else 3
#   bench/baselines/wildduck.sh install  only the npm install
#
# Everything lives in <repo>/var/bench/wildduck (git ignores var/): node_modules from npm,
# run/wildduck.toml (written on every start), run/wildduck.log, run/wildduck.pid.
#
# Environment (defaults in brackets):
#   WD_BENCH_VAR   parent of the state directory [<repo>/var/bench]
#   WD_STACK_DIR WD_MONGO_PORT WD_REDIS_PORT   passed to scripts/stack.sh [its defaults]
#   WILDDUCK_VERSION     npm version [1.46.15: the newest whose engines accept Node 20;
#                        1.51.x wants Node >= 22.19]
#   WILDDUCK_DB          MongoDB database name [wdbench_wildduck] (ours uses "wildduck")
#   WILDDUCK_REDIS_DB    Redis database number [5] (ours uses 3)
#   WILDDUCK_IMAP_PORT [20143]  plain IMAP, LOGIN allowed without STARTTLS (ignoreSTARTTLS)
#   WILDDUCK_IMAPS_PORT [20993] IMAP over TLS (WildDuck's bundled self-signed certificate)
#   WILDDUCK_POP3_PORT [20110]  plain POP3 (USER/PASS without STLS)
#   WILDDUCK_LMTP_PORT [20024]  LMTP
#   WILDDUCK_API_PORT  [20080]  HTTP API, no access tokens (accessControl disabled)
#   WILDDUCK_LOG_LEVEL [warn]   "info" logs one line per IMAP/API action (and the errors
#                               WildDuck reports only at info level, e.g. failed APPENDs)
#   WILDDUCK_MAX_CONN  [100]    IMAP connections per user (WildDuck's default is 15)
#   WILDDUCK_SHIM      [1]      load wildduck-ferretdb-shim.js (node --require). This is a
#                               WORKAROUND for FerretDB 1.24, see README.md and the shim's
#                               header; with 0, WildDuck starts but every APPEND and
#                               delivery fails on FerretDB.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${WD_BENCH_VAR:-$repo/var/bench}/wildduck
run=$base/run
version=${WILDDUCK_VERSION:-1.46.15}
pkg=$base/node_modules/@zone-eu/wildduck
conf=$run/wildduck.toml
log=$run/wildduck.log
pidfile=$run/wildduck.pid
ident=wildduck-bench
mongo_port=${WD_MONGO_PORT:-27017}
redis_port=${WD_REDIS_PORT:-6379}
db=${WILDDUCK_DB:-wdbench_wildduck}
redis_db=${WILDDUCK_REDIS_DB:-5}
imap_port=${WILDDUCK_IMAP_PORT:-20143}
imaps_port=${WILDDUCK_IMAPS_PORT:-20993}
pop3_port=${WILDDUCK_POP3_PORT:-20110}
lmtp_port=${WILDDUCK_LMTP_PORT:-20024}
api_port=${WILDDUCK_API_PORT:-20080}
log_level=${WILDDUCK_LOG_LEVEL:-warn}
max_conn=${WILDDUCK_MAX_CONN:-100}
shim=${WILDDUCK_SHIM:-1}

say() { echo "wildduck.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for p in "$mongo_port" "$redis_port" "$redis_db" "$imap_port" "$imaps_port" "$pop3_port" \
         "$lmtp_port" "$api_port" "$max_conn"; do
  [[ "$p" =~ ^[0-9]+$ ]] || die "not a number: '$p'"
done
[[ "$db" =~ ^[A-Za-z0-9_-]+$ ]] || die "WILDDUCK_DB '$db': letters, digits, _ and - only"
[[ "$log_level" =~ ^(silly|verbose|info|http|warn|error|silent)$ ]] || die "bad WILDDUCK_LOG_LEVEL"

# A process is ours when the pid file names it, its working directory is the package and its
# title (set by WildDuck from `ident`) is ours.
our_pid() {
  local pid=""
  [ -f "$pidfile" ] && read -r pid <"$pidfile" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$pkg" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^$ident\|node" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_install() {
  command -v npm >/dev/null || die "npm is not installed"
  mkdir -p "$base"
  if [ -f "$pkg/package.json" ] &&
     [ "$(node -p "require('$pkg/package.json').version")" = "$version" ]; then
    return 0
  fi
  [ -f "$base/package.json" ] || echo '{"name":"wildduck-bench","private":true}' >"$base/package.json"
  say "npm install @zone-eu/wildduck@$version into $base (about a minute)"
  (cd "$base" && npm install --no-audit --no-fund --omit=dev "@zone-eu/wildduck@$version" >&2)
}

write_config() {
  mkdir -p "$run"
  # Merged by wild-config over the package's config/default.toml (loaded from the cwd).
  cat >"$conf.tmp" <<EOF
# Written by bench/baselines/wildduck.sh on every start; edits are overwritten.
ident = "$ident"
processes = 1

[dbs]
mongo = "mongodb://127.0.0.1:$mongo_port/$db"
[dbs.redis]
host = "127.0.0.1"
port = $redis_port
db = $redis_db

[log]
level = "$log_level"

[imap]
host = "127.0.0.1"
port = $imap_port
secure = false
ignoreSTARTTLS = true
maxConnections = $max_conn
[[imap.interface]]
enabled = true
secure = true
host = "127.0.0.1"
port = $imaps_port

[pop3]
host = "127.0.0.1"
port = $pop3_port
secure = false
ignoreSTARTTLS = true

[lmtp]
enabled = true
host = "127.0.0.1"
port = $lmtp_port

[api]
host = "127.0.0.1"
port = $api_port
secure = false

EOF
  mv -f "$conf.tmp" "$conf"
}

cmd_start() {
  local pid p deadline
  if pid=$(our_pid); then
    say "already running (pid $pid)"
    return 0
  fi
  rm -f "$pidfile"
  cmd_install
  WD_MONGO_PORT=$mongo_port WD_REDIS_PORT=$redis_port "$repo/scripts/stack.sh" start >/dev/null
  for p in "$imap_port" "$imaps_port" "$pop3_port" "$lmtp_port" "$api_port"; do
    ! port_open "$p" || die "port 127.0.0.1:$p is in use"
  done
  write_config
  local req=()
  if [ "$shim" = 1 ]; then
    req=(--require "$here/wildduck-ferretdb-shim.js")
    say "WORKAROUND: loading $here/wildduck-ferretdb-shim.js (FerretDB 1.24 gaps, see README.md)"
  fi
  (
    cd "$pkg"
    export WILDDUCK_DIR=$pkg
    exec setsid nohup node "${req[@]}" server.js "--config=$conf" </dev/null >>"$log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$pidfile"
  deadline=$((SECONDS + 90))
  for p in "$imap_port" "$imaps_port" "$pop3_port" "$lmtp_port" "$api_port"; do
    until port_open "$p"; do
      if ! [ -d "/proc/$pid" ]; then
        rm -f "$pidfile"
        tail -n 30 "$log" >&2
        die "WildDuck exited during startup (log: $log)"
      fi
      [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$log" >&2; die "port $p not open after 90 s"; }
      sleep 0.3
    done
  done
  say "started (pid $pid): IMAP 127.0.0.1:$imap_port, IMAPS :$imaps_port, POP3 :$pop3_port," \
      "LMTP :$lmtp_port, API http://127.0.0.1:$api_port; db $db on :$mongo_port, redis db $redis_db"
}

cmd_stop() {
  local pid i
  if ! pid=$(our_pid); then
    say "not running"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  for i in $(seq 100); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then
    say "pid $pid ignored SIGTERM for 10 s; SIGKILL"
    kill -KILL "$pid" || true
  fi
  rm -f "$pidfile"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && port_open "$imap_port" && port_open "$api_port"; then
    echo "wildduck: running (pid $pid), IMAP :$imap_port IMAPS :$imaps_port POP3 :$pop3_port LMTP :$lmtp_port API :$api_port"
    return 0
  fi
  echo "wildduck: not running"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) cmd_install ;;
  *) echo "usage: bench/baselines/wildduck.sh start|stop|status|install" >&2; exit 2 ;;
esac

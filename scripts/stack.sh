#!/usr/bin/env bash
# stack.sh — the local data stack of wildduck-c: FerretDB (MongoDB wire protocol over
# SQLite) and Redis, run as plain user processes with all their state under one directory.
#
#   scripts/stack.sh start    start what is not running, wait until both answer, then print
#                             exactly three lines on stdout:
#                               WD_MONGO_URL=mongodb://127.0.0.1:<port>/wildduck
#                               WD_REDIS_URL=redis://127.0.0.1:<port>/3
#                               WD_FERRETDB_SQLITE=<FerretDB's SQLite directory>
#                             (all human text goes to stderr), so callers can eval or grep it.
#                             The last one lets libwdstore add the _id index FerretDB's
#                             queries can use (storage/store-ferretdb-sqlite.c).
#   scripts/stack.sh stop     stop what this directory's pid files name, keep the data.
#   scripts/stack.sh status   one line per service; exit 0 when both run and answer, else 3.
#
# Environment:
#   WD_STACK_DIR      state directory (default <repo>/var/stack, which git ignores)
#   WD_MONGO_PORT     FerretDB port on 127.0.0.1 (default 27017)
#   WD_REDIS_PORT     Redis port on 127.0.0.1 (default 6379)
#   WD_FERRETDB       FerretDB binary (default <repo>/.tools/bin/ferretdb, see install-deps.sh)
#   WD_STACK_TIMEOUT  seconds to wait for each service to answer (default 60)
#
# Layout of <dir>:
#   ferretdb/   SQLite files, state.json, ferretdb.log, ferretdb.pid
#   redis/      redis.conf (rewritten on every start), append-only files, redis.log, redis.pid
#   stack.lock  flock(1) lock so that concurrent start/stop calls on one directory serialise
#
# Design decisions:
#   - Only loopback TCP listeners: FerretDB gets --listen-addr=127.0.0.1:<port>, an empty
#     --listen-unix / --listen-tls, --debug-addr=- (no HTTP metrics/pprof listener) and
#     --telemetry=disable (the machine has no internet; never try to reach one). FERRETDB_*
#     variables of the caller are dropped so they cannot add listeners behind our back.
#     Redis binds 127.0.0.1 only, no unix socket, no cluster bus.
#   - Redis keeps data across stop/start with the append-only file (appendfsync everysec);
#     periodic RDB snapshots are off.
#   - A process is "ours" only when its pid file names it AND /proc/<pid> confirms it: the
#     FerretDB command line carries our --state-dir, the Redis process runs redis-server with
#     its working directory in <dir>/redis. Stop never signals anything else; stale pid
#     files are removed.
#   - start is idempotent: a running, answering service is left alone; a service that runs
#     on a different port than requested is an error (the printed URL would lie); a port
#     held by anything not ours is an error naming the port.
#   - FerretDB logs at "warn": quiet in normal use, but note that at that level it dumps every
#     error reply (e.g. NamespaceNotFound from listIndexes, duplicate keys) to ferretdb.log.
#   - Readiness is checked on the wire: FerretDB with an OP_MSG {ping: 1, $db: "admin"}
#     sent by a few lines of inline python3 (no driver needed), Redis with redis-cli PING.
#   - Daemons are detached (setsid, nohup, stdin from /dev/null, output to their log, file
#     descriptors above 2 closed) so they survive this script and never hold a caller's
#     pipe open ($(stack.sh start) returns as soon as the script does).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${WD_STACK_DIR:-$repo/var/stack}
mongo_port=${WD_MONGO_PORT:-27017}
redis_port=${WD_REDIS_PORT:-6379}
ferretdb_bin=${WD_FERRETDB:-$repo/.tools/bin/ferretdb}
timeout=${WD_STACK_TIMEOUT:-60}

say() { echo "stack.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  echo "usage: scripts/stack.sh start|stop|status" >&2
  echo "  env: WD_STACK_DIR WD_MONGO_PORT WD_REDIS_PORT WD_FERRETDB WD_STACK_TIMEOUT" >&2
  exit 2
}

for p in "$mongo_port" "$redis_port"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "invalid port '$p'"
done
[ "$mongo_port" != "$redis_port" ] || die "WD_MONGO_PORT and WD_REDIS_PORT are both $mongo_port"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "invalid WD_STACK_TIMEOUT '$timeout'"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
# The directory goes into a file: URL (FerretDB) and a config file (Redis) unquoted.
case "$dir" in
  *[[:space:]?#%\"\']*) die "WD_STACK_DIR '$dir' must not contain spaces or any of ?#%\"'" ;;
esac
fdb_dir=$dir/ferretdb
redis_dir=$dir/redis
fdb_pidfile=$fdb_dir/ferretdb.pid
redis_pidfile=$redis_dir/redis.pid

# --- helpers ---------------------------------------------------------------------------------

# close_fds: close every descriptor above 2 of the current (sub)shell, so that daemons
# inherit neither our lock nor any pipe of whoever called us.
close_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
  done
}

# cmdline PID: the process' argv joined with spaces (empty when it is gone).
cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true; }

# read_pid FILE: the pid in FILE, or nothing.
read_pid() {
  local pid=""
  [ -f "$1" ] && read -r pid <"$1" 2>/dev/null || true
  [[ "$pid" =~ ^[0-9]+$ ]] && echo "$pid" || true
}

# is_ours_ferretdb PID / is_ours_redis PID: does /proc confirm that PID is our service?
is_ours_ferretdb() {
  local cmd
  cmd=$(cmdline "$1")
  [[ "$cmd" == *ferretdb* && "$cmd" == *"--state-dir=$fdb_dir "* ]]
}
is_ours_redis() {
  local cmd cwd
  cmd=$(cmdline "$1")
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null || true)
  [[ "$cmd" == *redis-server* && "$cwd" == "$redis_dir" ]]
}

# running NAME: print the pid of our running service NAME (ferretdb|redis); a pid file that
# names a dead or foreign process is removed. Returns 1 when not running.
running() {
  local name=$1 pidfile pid
  if [ "$name" = ferretdb ]; then pidfile=$fdb_pidfile; else pidfile=$redis_pidfile; fi
  pid=$(read_pid "$pidfile")
  if [ -n "$pid" ] && "is_ours_$name" "$pid"; then
    echo "$pid"
    return 0
  fi
  if [ -e "$pidfile" ]; then
    say "$name: removing stale pid file $pidfile${pid:+ (pid $pid is not our $name)}"
    rm -f "$pidfile"
  fi
  return 1
}

# running_port NAME PID: the TCP port our running service was started with.
running_port() {
  local cmd
  cmd=$(cmdline "$2")
  if [ "$1" = ferretdb ]; then
    cmd=${cmd#*--listen-addr=127.0.0.1:}
    echo "${cmd%% *}"
  else
    sed -n 's/^port \([0-9]*\)$/\1/p' "$redis_dir/redis.conf" 2>/dev/null | head -n1
  fi
}

# port_busy PORT: is anything listening on TCP PORT (any address)?
port_busy() {
  [ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]
}

# port_owner PORT: a human description of who listens on PORT (for error messages).
port_owner() {
  ss -Hltnp "( sport = :$1 )" 2>/dev/null | awk '{print $4, $6}' | head -n3
}

# mongo_ping PORT: send an OP_MSG {ping: 1, $db: "admin"} and require {ok: 1} back.
mongo_ping() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, struct, sys

def cstr(s):
    return s.encode() + b"\0"

def doc(elements):
    body = b"".join(elements)
    return struct.pack("<i", 4 + len(body) + 1) + body + b"\0"

def top_level_ok(b):
    """Value of the top-level "ok" field of BSON document b, or None."""
    sizes = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16}
    i, end = 4, struct.unpack_from("<i", b)[0] - 1
    while i < end:
        t = b[i]; i += 1
        j = b.index(b"\0", i); name = b[i:j].decode(errors="replace"); i = j + 1
        if name == "ok":
            if t == 0x01: return struct.unpack_from("<d", b, i)[0]
            if t == 0x10: return struct.unpack_from("<i", b, i)[0]
            if t == 0x12: return struct.unpack_from("<q", b, i)[0]
            if t == 0x08: return b[i]
            return None
        if t in sizes: i += sizes[t]
        elif t in (0x02, 0x0D, 0x0E): i += 4 + struct.unpack_from("<i", b, i)[0]
        elif t in (0x03, 0x04): i += struct.unpack_from("<i", b, i)[0]
        elif t == 0x05: i += 5 + struct.unpack_from("<i", b, i)[0]
        else: return None
    return None

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data

command = doc([b"\x10" + cstr("ping") + struct.pack("<i", 1),
               b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")])
body = struct.pack("<I", 0) + b"\0" + command                  # flagBits, section kind 0
message = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body  # OP_MSG header

with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as s:
    s.sendall(message)
    length, _, response_to, opcode = struct.unpack("<iiii", recv_exact(s, 16))
    rest = recv_exact(s, length - 16)
if opcode != 2013 or response_to != 1 or rest[4] != 0:
    sys.exit(1)
sys.exit(0 if top_level_ok(rest[5:]) == 1 else 1)
PY
}

redis_ping() {
  [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = PONG ]
}

# wait_ready NAME PID PORT LOG: wait until the service answers; fail with the log's tail if
# the process dies or the time runs out.
wait_ready() {
  local name=$1 pid=$2 port=$3 log=$4 deadline=$((SECONDS + timeout))
  while :; do
    if [ "$name" = ferretdb ]; then mongo_ping "$port" && return 0
    else redis_ping "$port" && return 0; fi
    if ! [ -d "/proc/$pid" ]; then
      say "$name (pid $pid) exited before answering on 127.0.0.1:$port; last lines of $log:"
      tail -n 20 "$log" >&2 2>/dev/null || true
      [ "$name" = ferretdb ] && rm -f "$fdb_pidfile"
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name (pid $pid) does not answer on 127.0.0.1:$port after ${timeout}s; last lines of $log:"
      tail -n 20 "$log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

# check_free NAME PORT: fail unless PORT is free for a new instance of NAME.
check_free() {
  if port_busy "$2"; then
    say "$1: port 127.0.0.1:$2 is already in use by something that is not this stack's $1:"
    port_owner "$2" | sed 's/^/  /' >&2
    die "choose another port (WD_MONGO_PORT / WD_REDIS_PORT) or stop that process"
  fi
}

# --- start -----------------------------------------------------------------------------------

# preflight NAME PORT: fail before anything starts when NAME cannot run on PORT, so that a
# failed start does not leave half a stack behind.
preflight() {
  local pid port
  if pid=$(running "$1"); then
    port=$(running_port "$1" "$pid")
    [ "$port" = "$2" ] ||
      die "$1 of $dir already runs on port $port (pid $pid), not $2; run 'scripts/stack.sh stop' first"
  else
    check_free "$1" "$2"
  fi
}

start_ferretdb() {
  local pid log=$fdb_dir/ferretdb.log
  if pid=$(running ferretdb); then
    say "ferretdb already running (pid $pid, 127.0.0.1:$mongo_port)"
    wait_ready ferretdb "$pid" "$mongo_port" "$log"
    return 0
  fi
  check_free ferretdb "$mongo_port"
  [ -x "$ferretdb_bin" ] || die "FerretDB binary $ferretdb_bin is missing; run scripts/install-deps.sh"
  if ! "$ferretdb_bin" --version >/dev/null 2>&1; then
    say "FerretDB binary $ferretdb_bin does not run; its output:"
    "$ferretdb_bin" --version 2>&1 | head -n 5 | sed 's/^/  /' >&2 || true
    die "rebuild it (scripts/install-deps.sh) or point WD_FERRETDB at a working one"
  fi
  (
    close_fds
    while read -r var; do unset "$var"; done < <(compgen -e | grep '^FERRETDB_' || true)
    export DO_NOT_TRACK=1
    cd "$fdb_dir"
    exec nohup setsid "$ferretdb_bin" \
      --handler=sqlite \
      "--sqlite-url=file:$fdb_dir/" \
      "--listen-addr=127.0.0.1:$mongo_port" \
      --listen-unix= \
      --listen-tls= \
      --debug-addr=- \
      --otel-traces-url= \
      --telemetry=disable \
      "--state-dir=$fdb_dir" \
      --log-level=warn \
      </dev/null >>"$log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$fdb_pidfile"
  wait_ready ferretdb "$pid" "$mongo_port" "$log"
  # nohup and setsid exec in place, so $! is FerretDB itself; make sure of it.
  is_ours_ferretdb "$pid" || die "ferretdb: pid $pid is not the FerretDB process we started"
  say "ferretdb started (pid $pid, 127.0.0.1:$mongo_port, data in $fdb_dir)"
}

write_redis_conf() {
  cat >"$redis_dir/redis.conf.tmp" <<EOF
# Written by scripts/stack.sh on every start; edits here are overwritten.
bind 127.0.0.1
port $redis_port
protected-mode no
daemonize yes
supervised no
pidfile $redis_pidfile
dir $redis_dir
logfile $redis_dir/redis.log
loglevel notice
always-show-logo no
databases 16
save ""
appendonly yes
appendfsync everysec
EOF
  mv -f "$redis_dir/redis.conf.tmp" "$redis_dir/redis.conf"
}

start_redis() {
  local pid log=$redis_dir/redis.log deadline
  if pid=$(running redis); then
    say "redis already running (pid $pid, 127.0.0.1:$redis_port)"
    wait_ready redis "$pid" "$redis_port" "$log"
    return 0
  fi
  check_free redis "$redis_port"
  command -v redis-server >/dev/null || die "redis-server is not installed; run scripts/install-deps.sh"
  write_redis_conf
  rm -f "$redis_pidfile"
  if ! (close_fds; cd "$redis_dir" && exec redis-server "$redis_dir/redis.conf" </dev/null >>"$log" 2>&1); then
    say "redis-server failed to start; last lines of $log:"
    tail -n 20 "$log" >&2 2>/dev/null || true
    exit 1
  fi
  # daemonize: the parent has exited; the daemon writes its pid file right after forking.
  deadline=$((SECONDS + timeout))
  until pid=$(read_pid "$redis_pidfile") && [ -n "$pid" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "redis-server wrote no pid file within ${timeout}s; last lines of $log:"
      tail -n 20 "$log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
  wait_ready redis "$pid" "$redis_port" "$log"
  is_ours_redis "$pid" || die "redis: pid $pid is not the redis-server we started"
  say "redis started (pid $pid, 127.0.0.1:$redis_port, data in $redis_dir)"
}

cmd_start() {
  mkdir -p "$fdb_dir" "$redis_dir"
  preflight ferretdb "$mongo_port"
  preflight redis "$redis_port"
  start_ferretdb
  start_redis
  echo "WD_MONGO_URL=mongodb://127.0.0.1:$mongo_port/wildduck"
  echo "WD_REDIS_URL=redis://127.0.0.1:$redis_port/3"
  echo "WD_FERRETDB_SQLITE=$fdb_dir"
}

# --- stop ------------------------------------------------------------------------------------

stop_one() {
  local name=$1 pid pidfile deadline
  if [ "$name" = ferretdb ]; then pidfile=$fdb_pidfile; else pidfile=$redis_pidfile; fi
  if ! pid=$(running "$name"); then
    say "$name not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while [ -d "/proc/$pid" ] && "is_ours_$name" "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
  say "$name stopped (pid $pid)"
}

cmd_stop() {
  stop_one redis
  stop_one ferretdb
}

# --- status ----------------------------------------------------------------------------------

cmd_status() {
  local ok=0 name pid port answers
  for name in ferretdb redis; do
    if pid=$(running "$name"); then
      port=$(running_port "$name" "$pid")
      if [ "$name" = ferretdb ]; then mongo_ping "$port" && answers=1 || answers=0
      else redis_ping "$port" && answers=1 || answers=0; fi
      if [ "$answers" = 1 ]; then
        echo "$name: running (pid $pid, 127.0.0.1:$port)"
      else
        echo "$name: running (pid $pid, 127.0.0.1:$port) but not answering"
        ok=3
      fi
    else
      echo "$name: stopped"
      ok=3
    fi
  done
  return "$ok"
}

# --- main ------------------------------------------------------------------------------------

[ $# -eq 1 ] || usage
case "$1" in start | stop | status) ;; *) usage ;; esac

# Serialise start/stop/status on one directory (fd 9 is closed in the daemons).
exec 9>"$dir/stack.lock"
flock -w $((timeout + 30)) 9 || die "another stack.sh holds $dir/stack.lock"

"cmd_$1"

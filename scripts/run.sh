#!/usr/bin/env bash
# run.sh — the main job on one machine: install what is missing, build, start
# the local stack (FerretDB + Redis under var/stack), make a self-signed TLS
# certificate under var/tls when there is none, and start the servers that
# this checkout has, in the foreground. Ctrl-C stops the servers; the stack
# keeps running until `scripts/stack.sh stop`.
set -euo pipefail
# libmongoc: no per-pid shared-memory counters (a stale /dev/shm/mongoc-<pid> of an
# earlier process makes it warn on stderr)
export MONGOC_DISABLE_SHM=1

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/install-deps.sh
if [ -f build/build.ninja ]; then
  meson setup --reconfigure build >/dev/null
else
  meson setup build
fi
ninja -C build

# Captured first so that a failed start stops this script (set -e).
stack_env=$(bash scripts/stack.sh start)
eval "$(printf '%s\n' "$stack_env" | grep -E '^WD_(MONGO_URL|REDIS_URL|FERRETDB_SQLITE)=' | sed 's/^/export /')"

tls_dir=$repo/var/tls
if [ ! -f "$tls_dir/server.crt" ] || [ ! -f "$tls_dir/server.key" ]; then
  mkdir -p "$tls_dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$tls_dir/server.key" -out "$tls_dir/server.crt" 2>/dev/null
  chmod 600 "$tls_dir/server.key"
  echo "run.sh: created a self-signed certificate in $tls_dir"
fi

cat <<INFO

wildduck-c stack is up:
  MongoDB wire protocol (FerretDB): $WD_MONGO_URL
  Redis:                            $WD_REDIS_URL
  TLS certificate:                  $tls_dir/server.crt

INFO

servers=()
[ -x build/server/wd-server ] && servers+=("build/server/wd-server")
[ -x build/api-server/wd-api ] && servers+=("build/api-server/wd-api")
if [ ${#servers[@]} -eq 0 ]; then
  echo "No server binaries are built in this checkout yet (wd-server and wd-api"
  echo "arrive with later milestones). The stack keeps running; stop it with:"
  echo "  scripts/stack.sh stop"
  exit 0
fi

# A demo account when the database has no user yet; its password is random,
# kept in var/demo-password (mode 600) and printed below.
wdctl=(build/tools/wdctl --dbs.mongo="$WD_MONGO_URL" --dbs.redis="$WD_REDIS_URL")
if [ -x build/tools/wdctl ] && [ -z "$("${wdctl[@]}" user list 2>/dev/null)" ]; then
  demo_password=$(openssl rand -hex 8)
  if printf '%s\n' "$demo_password" | "${wdctl[@]}" user create demo --address demo@localhost \
       --password - >/dev/null; then
    (umask 077; printf '%s\n' "$demo_password" > var/demo-password)
    echo "run.sh: created the demo account: demo / $demo_password (also in var/demo-password)"
  fi
fi

if [ -x build/server/wd-server ]; then
  conf_value() { sed -n "/^\[$1\]/,/^\[/s/^$2 *= *//p" conf.d/default.toml | head -1; }
  imap_port=$(conf_value imap port); pop3_port=$(conf_value pop3 port); lmtp_port=$(conf_value lmtp port)
  cat <<INFO
wd-server (self-signed certificate above):
  IMAP:  127.0.0.1:${imap_port:-9993}, implicit TLS
  POP3:  127.0.0.1:${pop3_port:-9995}, implicit TLS
  LMTP:  127.0.0.1:${lmtp_port:-2424}, loopback only (enabled by run.sh; point Postfix or Haraka here: docs/LMTP.md)
  Demo account:    demo, password in var/demo-password (created when the database had no user)
  Create a user:   build/tools/wdctl --dbs.mongo="$WD_MONGO_URL" --dbs.redis="$WD_REDIS_URL" user create alice --address alice@localhost --password secret
  Deliver mail:    swaks --protocol LMTP --server 127.0.0.1:${lmtp_port:-2424} --to alice@localhost
  Read it (IMAP):  python3 -c 'import imaplib,ssl; m=imaplib.IMAP4_SSL("127.0.0.1", ${imap_port:-9993}, ssl_context=ssl._create_unverified_context()); print(m.login("alice","secret")); print(m.select("INBOX"))'
  Read it (POP3):  python3 -c 'import poplib,ssl; p=poplib.POP3_SSL("127.0.0.1", ${pop3_port:-9995}, context=ssl._create_unverified_context()); p.user("alice"); p.pass_("secret"); print(p.stat())'
  By hand:         openssl s_client -quiet -connect 127.0.0.1:${imap_port:-9993}
                   then: a LOGIN alice secret / b LIST "" "*" / c SELECT INBOX / d LOGOUT
INFO
fi
if [ -x build/api-server/wd-api ]; then
  api_port=$(sed -n '/^\[api\]/,/^\[/s/^port *= *//p' conf.d/default.toml | head -1)
  api="http://127.0.0.1:${api_port:-8080}"
  cat <<INFO
wd-api (WildDuck's HTTP API, loopback; no token needed until api.accessToken is set):
  API:             $api   (OpenAPI: $api/openapi.json, reference: docs/api.md)
  Health:          curl -s $api/health
  Create a user:   curl -s -XPOST $api/users -H 'Content-Type: application/json' -d '{"username":"bob","password":"secret-bob","address":"bob@localhost"}'
  List mailboxes:  curl -s $api/users/<id>/mailboxes
  User token:      curl -s -XPOST $api/authenticate -H 'Content-Type: application/json' -d '{"username":"bob","password":"secret-bob","token":true}'
  Live changes:    curl -sN $api/users/<id>/updates   (EventSource)
INFO
fi
pids=()
for server in "${servers[@]}"; do
  extra=()
  # the demo runs LMTP too (off by default, as in WildDuck: loopback delivery
  # from an MTA is a deliberate choice on a real server)
  [ "$(basename "$server")" = wd-server ] && extra+=(--lmtp.enabled=true)
  "$server" --config conf.d/default.toml --dbs.mongo="$WD_MONGO_URL" --dbs.redis="$WD_REDIS_URL" \
    --tls.cert="$tls_dir/server.crt" --tls.key="$tls_dir/server.key" "${extra[@]}" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM EXIT
wait

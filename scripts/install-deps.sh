#!/usr/bin/env bash
# install-deps.sh — install what wildduck-c needs on Debian 12, and nothing twice.
#
# Debian packages of DESIGN.md §5 are installed only when missing ("apt-get update" runs only
# then). Service starts are blocked during the install (policy-rc.d) so that installing
# redis-server or dovecot never launches system daemons on the ports our stack uses.
# FerretDB 1.24.2 is built with "go install" into <repo>/.tools/bin when absent.
# The npm client used by tests (imapflow) is installed into <repo>/.tools/node when absent.
# A second run changes nothing and says so.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tools="$repo/.tools"
ferretdb_version=v1.24.2

packages=(
  # build
  meson ninja-build pkg-config gcc clang-14 libclang-rt-14-dev llvm-14 git
  # libraries
  libmongoc-dev libbson-dev libhiredis-dev libuv1-dev libssl-dev zlib1g-dev libgmime-3.0-dev
  libmicrohttpd-dev libjansson-dev libcrypt-dev libargon2-dev liboath-dev libidn2-dev librnp-dev
  libcmocka-dev libsqlite3-dev
  # servers and tools used at run and test time
  redis-server redis-tools redis-sentinel openssl
  # independent hash and TOTP tools for the auth test vectors (mkpasswd, argon2, oathtool)
  whois argon2 oathtool
  dovecot-dev dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd
  # the install suite: systemd-analyze verify/security of the units, man pages
  systemd man-db
  # real clients in tests
  python3 mutt isync fetchmail swaks
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

changed=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: root is needed for apt-get (missing: ${missing[*]})" >&2
    exit 1
  fi
  policy=/usr/sbin/policy-rc.d
  restore_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    restore_policy=1
  fi
  trap '[ "$restore_policy" = 1 ] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  changed=1
fi

# FerretDB: "go install ...@v1.24.2" builds a binary that panics at start
# ("Invalid build/version/version.txt"): the module lacks that generated file
# and the binary refuses to run without it. So the module (from the Go module
# proxy, as go install would fetch it) is copied, the file is written, and the
# command is built from the copy. Nothing of it is kept in the repository.
ferretdb_works() {
  [ -x "$tools/bin/ferretdb" ] && "$tools/bin/ferretdb" --version >/dev/null 2>&1
}
if ! ferretdb_works; then
  go=/usr/local/go/bin/go
  [ -x "$go" ] || go=$(command -v go || true)
  if [ -z "$go" ]; then
    echo "install-deps: Go is needed to build FerretDB (looked in /usr/local/go/bin and PATH)" >&2
    exit 1
  fi
  echo "install-deps: building FerretDB $ferretdb_version into $tools/bin"
  mkdir -p "$tools/bin"
  module_dir=$(cd /tmp && GOFLAGS=-mod=mod "$go" mod download -json \
    "github.com/FerretDB/FerretDB@$ferretdb_version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  work=$(mktemp -d)
  cp -r "$module_dir/." "$work/"
  chmod -R u+w "$work"
  echo "$ferretdb_version" > "$work/build/version/version.txt"
  (cd "$work" && GOFLAGS=-mod=mod "$go" build -trimpath -buildvcs=false \
    -o "$tools/bin/ferretdb" ./cmd/ferretdb)
  rm -rf "$work"
  if ! ferretdb_works; then
    echo "install-deps: the FerretDB build does not run: $("$tools/bin/ferretdb" --version 2>&1 | head -3)" >&2
    exit 1
  fi
  changed=1
fi

if [ ! -d "$tools/node/node_modules/imapflow" ]; then
  if command -v npm >/dev/null; then
    echo "install-deps: installing imapflow into $tools/node"
    mkdir -p "$tools/node"
    (cd "$tools/node" && [ -f package.json ] || echo '{"private":true}' > package.json)
    (cd "$tools/node" && npm install --no-audit --no-fund --loglevel=error imapflow >/dev/null)
    changed=1
  else
    echo "install-deps: npm not found; imapflow client tests will not run" >&2
  fi
fi

if [ "$changed" = 0 ]; then
  echo "install-deps: everything is already installed"
fi

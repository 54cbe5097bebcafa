#!/usr/bin/env bash
# wd-load-smoke.sh — run every wd-load mode for about 2 s against a running
# wd-server, to check that the load generator and the server still talk.
# For later benchmark scripts: exit 0 when every mode ran without failures.
#
#   bench/wd-load-smoke.sh [--build DIR] [--host H] [--imap-port P] [--pop3-port P]
#                          [--lmtp-port P] [--imap-port-b P] [--tls] [--user U]
#                          [--password PW] [--rcpt ADDR] [--server-pid PID]
#
# The user must exist (wdctl user create); --rcpt must be one of its addresses.
# Without --imap-port-b, notify uses the same server twice. JSON results go to
# $WD_LOAD_JSON_DIR (default: a temporary directory, removed at the end).
set -u
build=build host=127.0.0.1 imap=9993 pop3=9995 lmtp=2424 imapb="" tls="" user=user1
password=pass rcpt="" pid=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift ;;
	--host) host=$2; shift ;;
	--imap-port) imap=$2; shift ;;
	--pop3-port) pop3=$2; shift ;;
	--lmtp-port) lmtp=$2; shift ;;
	--imap-port-b) imapb=$2; shift ;;
	--tls) tls=--tls ;;
	--user) user=$2; shift ;;
	--password) password=$2; shift ;;
	--rcpt) rcpt=$2; shift ;;
	--server-pid) pid=$2; shift ;;
	*) echo "wd-load-smoke: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/$build/bench/wd-load
[ -x "$bin" ] || { echo "wd-load-smoke: $bin not built" >&2; exit 2; }
[ -n "$rcpt" ] || rcpt="$user@localhost"
[ -n "$imapb" ] || imapb=$imap
out=${WD_LOAD_JSON_DIR:-$(mktemp -d)}
cleanup() { [ -n "${WD_LOAD_JSON_DIR:-}" ] || rm -rf "$out"; }
trap cleanup EXIT
common=(--host "$host" --password "$password" --timeout 30)
failed=0
run() {
	local name=$1; shift
	echo "--- $name"
	if ! "$bin" "$@" --json "$out/$name.json"; then
		echo "wd-load-smoke: $name FAILED" >&2
		failed=$((failed + 1))
	fi
}
run lmtp lmtp "${common[@]}" --port "$lmtp" --clients 1 --rcpt "$rcpt" --duration 2 \
	--size-mix "2k=80,20k=20"
run imap imap "${common[@]}" --port "$imap" $tls --clients 2 --user "$user" --duration 2
run pop3 pop3 "${common[@]}" --port "$pop3" $tls --clients 1 --user "$user" --duration 2
run idle idle "${common[@]}" --port "$imap" $tls --clients 10 --rate 20 --hold 2 --user "$user" \
	${pid:+--server-pid "$pid"}
run notify notify "${common[@]}" --port-a "$imap" --port-b "$imapb" $tls --user "$user" --count 5
echo "wd-load-smoke: $failed mode(s) failed"
[ "$failed" -eq 0 ]

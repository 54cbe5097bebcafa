#!/usr/bin/env bash
# test.sh — build wildduck-c and run every test suite against a private stack.
#
#   1. installs what is missing (scripts/install-deps.sh);
#   2. builds two trees: build/ (gcc, -Werror, every suite) and
#      build-sanitize/ (clang-14, ASan+UBSan, libFuzzer targets; runs the
#      unit and fuzz suites);
#   3. starts FerretDB + Redis on free loopback ports with their data under
#      build/test-stack (never the user's var/stack), exports WD_MONGO_URL
#      and WD_REDIS_URL for the integration suites, and stops them at exit;
#   4. prints one line "N passed, N failed" (", N skipped" when any) and
#      exits non-zero when anything failed.
#
# Options: --suite NAME (repeatable) runs only those suites of build/;
#          --no-sanitize skips the sanitizer build.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

suites=()
sanitize=1
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suites+=("--suite" "$2"); shift 2 ;;
    --no-sanitize) sanitize=0; shift ;;
    *) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh

build=$repo/build
san_build=$repo/build-sanitize

setup() { # dir, then meson options
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
}

setup "$build" -Dwerror=true
ninja -C "$build"
if [ "$sanitize" = 1 ]; then
  CC=clang-14 setup "$san_build" -Dwerror=true -Dsanitize=true -Dfuzz=true
  ninja -C "$san_build"
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

export WD_STACK_DIR=$build/test-stack
export WD_MONGO_PORT=$(free_port)
export WD_REDIS_PORT=$(free_port)
rm -rf "$WD_STACK_DIR"
cleanup() { bash "$repo/scripts/stack.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
# Captured first so that a failed start stops this script (set -e).
stack_env=$(bash scripts/stack.sh start)
eval "$(printf '%s\n' "$stack_env" | grep -E '^WD_(MONGO_URL|REDIS_URL|FERRETDB_SQLITE)=' | sed 's/^/export /')"
# Each run gets its own database so that runs never see each other's data.
export WD_MONGO_URL="${WD_MONGO_URL%/*}/wildduck-test-$$"

status=0
meson test -C "$build" --no-rebuild --print-errorlogs "${suites[@]}" || status=1
if [ "$sanitize" = 1 ] && [ ${#suites[@]} -eq 0 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  meson test -C "$san_build" --no-rebuild --print-errorlogs --suite unit --suite fuzz || status=1
  # wd-api under the sanitizers too: hostile JSON against every route
  # (api-core) and the message paths (api-messages); the other api tests
  # hash passwords, which takes minutes under ASan. wd-server under ASan and
  # LeakSanitizer while clients vanish mid-APPEND/FETCH/DATA
  # (faults-client-vanish, on a stack of its own).
  meson test -C "$san_build" --no-rebuild --print-errorlogs --logbase testlog-api \
    api-core api-messages faults-client-vanish || status=1
fi

# One summary over both trees, from meson's machine-readable logs.
logs=("$build/meson-logs/testlog.json")
[ "$sanitize" = 1 ] && [ ${#suites[@]} -eq 0 ] &&
  logs+=("$san_build/meson-logs/testlog.json" "$san_build/meson-logs/testlog-api.json")
python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            result = json.loads(line)["result"]
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
summary = f"{passed} passed, {failed} failed"
if skipped:
    summary += f", {skipped} skipped"
print(summary)
PY
exit $status

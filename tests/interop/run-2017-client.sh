#!/usr/bin/env bash
# Interoperability check (`make interop`): the unmodified 2017 client, sorna-client 0.9.8 on
# Python 3.6, against our gateway started with the real `serve` command.
# Needs Python 3.6 (default: pyenv 3.6.15; set PEER_PY36) and the shared peers folder beside
# the repository. Not part of `make test`: it installs 2017-era packages into /tmp/peer36.
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERS="${PEERS_DIR:-../shared/peers/sorna-2017}"
PY36="${PEER_PY36:-${PYENV_ROOT:-$HOME/.pyenv}/versions/3.6.15/bin/python3.6}"
VENV="${PEER_CLIENT_VENV:-/tmp/peer36}"
[ -x "$PY36" ] || { echo "interop: Python 3.6 not found at $PY36 (set PEER_PY36)" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sorna.kernel' 2>/dev/null; then
  "$PY36" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q 'pip==21.3.1' 'setuptools<60' 'wheel<0.38'
  "$VENV/bin/pip" install -q 'sorna-client==0.9.8' 'aiohttp==2.2.5' 'multidict==3.3.2' \
    'yarl==0.12.0' 'async-timeout==2.0.1' 'chardet==3.0.4' 'requests==2.18.4' 'urllib3==1.22' \
    'idna==2.6' 'certifi==2017.7.27.1' 'simplejson==3.11.1' 'python-dateutil==2.6.1' \
    'six==1.11.0' 'namedlist==1.7' 'ConfigArgParse==0.12.0'
fi

root=$(mktemp -d)
out="$root/exports"
.venv/bin/python -m sorna_sdk.local serve --port 0 --root "$root/kernels" >"$out" 2>"$root/log" &
gw=$!
trap 'kill "$gw" 2>/dev/null; wait "$gw" 2>/dev/null; rm -rf "$root"' EXIT
for _ in $(seq 100); do [ "$(wc -l <"$out")" -ge 3 ] && break; sleep 0.1; done
# shellcheck disable=SC1090
source "$out"
export SORNA_ENDPOINT SORNA_ACCESS_KEY SORNA_SECRET_KEY
run() { "$VENV/bin/python" "$PEERS/sorna-client-run.py" "$@" | tail -1; }
status=0
run --code 'name = input("name? ")
print("hello", name)' --input Bob --expect-stdout "hello Bob" || status=1
run --async --no-pty --lang lua5 --code 'print("hello world")' --expect-stdout "hello world" || status=1
run --code 'import time
for i in range(3):
    print(i, flush=True); time.sleep(1.5)
print("done")' --expect-stdout "done" || status=1
exit $status

#!/usr/bin/env bash
# Interoperability check (`make interop-backendai-client`): the UNMODIFIED official client,
# backend.ai-client 26.9.6 on Python 3.13, as the judge of our gateway's Backend.AI dialect.
# It starts our gateway with the real `serve` command and runs the shared scenario runner
# (../shared/peers/backendai-26.9/bai-client-run.py, called in place, never copied) once per
# variant: async and --sync, API v9.20250722 and v4.20181215, input, a continued run, the PTY
# echo and a forced destroy. One line per run; exit 0 only if every run passed.
#
#   PEERS_DIR         the runner's folder (default ../shared/peers/backendai-26.9)
#   BAI_PY313         Python 3.13 to create the client venv with (default: pyenv 3.13.0)
#   BAI_CLIENT_VENV   the client venv (default /tmp/bai313; reused when it works)
#   BAI_RUN_IMAGE     the image the runs ask for (default python:3.11-debian12)
#   BAI_INTEROP_KEEP  1: keep the logs folder even when every run passed
#
# Exit status: 0 every run passed, 1 a run failed, 2 the environment is missing.
# Not part of `make test` or CI: it installs backend.ai-client (about 125 packages) once.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
PEERS="${PEERS_DIR:-../shared/peers/backendai-26.9}"
RUNNER="$PEERS/bai-client-run.py"
PY313="${BAI_PY313:-${PYENV_ROOT:-$HOME/.pyenv}/versions/3.13.0/bin/python3.13}"
VENV="${BAI_CLIENT_VENV:-/tmp/bai313}"
IMAGE="${BAI_RUN_IMAGE:-python:3.11-debian12}"
CLIENT_VERSION=26.9.6

say() { echo "interop-backendai-client: $*" >&2; }

if [ ! -f "$RUNNER" ]; then
  cat >&2 <<EOF
interop-backendai-client: the official client's scenario runner is not at $RUNNER.
It needs:
  - the shared peers folder beside the repository (../shared/peers/backendai-26.9 with
    bai-client-run.py and setup-modern-peers.sh), or PEERS_DIR pointing at that folder;
  - Python 3.13 (default: pyenv 3.13.0 at $PY313; set BAI_PY313) to create the client venv
    $VENV with backend.ai-client==$CLIENT_VERSION from the package index, once (about 1 min),
    unless that venv already works;
  - .venv of this repository (make creates it).
EOF
  exit 2
fi
RUNNER="$(cd "$(dirname "$RUNNER")" && pwd)/$(basename "$RUNNER")"
if [ ! -x .venv/bin/python ]; then
  say "no .venv/bin/python; run 'make interop-backendai-client' (it creates it)"
  exit 2
fi

client_ok() {
  [ -x "$VENV/bin/python" ] || return 1
  # From /tmp: the official client reads a .env file in the working directory.
  (cd /tmp && "$VENV/bin/python" - "$CLIENT_VERSION" <<'PY') >/dev/null 2>&1
import importlib.metadata as m, sys
from ai.backend.client.session import AsyncSession, Session  # noqa: F401
sys.exit(0 if m.version("backend.ai-client") == sys.argv[1] else 1)
PY
}

if ! client_ok; then
  # The client half of setup-modern-peers.sh (the manager parts are not needed here).
  if [ ! -x "$PY313" ]; then
    say "Python 3.13 not found at $PY313 (set BAI_PY313), and $VENV has no working client"
    exit 2
  fi
  say "installing backend.ai-client==$CLIENT_VERSION into $VENV (once; about a minute)"
  [ -x "$VENV/bin/python" ] || "$PY313" -m venv "$VENV"
  "$VENV/bin/pip" install -q "backend.ai-client==$CLIENT_VERSION" 2>&1 | grep -v 'is ignored' >&2 || true
  if ! client_ok; then
    say "backend.ai-client==$CLIENT_VERSION does not import in $VENV"
    exit 2
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bai-interop.XXXXXX")
mkdir -p "$work/xdg" "$work/cwd" "$work/logs"
chmod 700 "$work"
gw=""
status=0
cleanup() {
  if [ -n "$gw" ]; then
    kill "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true
  fi
  if [ "$status" = 0 ] && [ "${BAI_INTEROP_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    say "runner output and the gateway's log are kept in $work/logs"
  fi
}
trap cleanup EXIT

# Our gateway, with a private config folder (its keypair file) and kernel root.
XDG_CONFIG_HOME="$work/xdg" .venv/bin/python -m sorna_sdk.local serve --port 0 \
  --root "$work/kernels" >"$work/exports" 2>"$work/logs/gateway.log" &
gw=$!
for _ in $(seq 300); do
  grep -q SORNA_SECRET_KEY "$work/exports" 2>/dev/null && break
  kill -0 "$gw" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q SORNA_SECRET_KEY "$work/exports" 2>/dev/null; then
  say "the gateway did not start; its log:"
  cat "$work/logs/gateway.log" >&2
  status=1
  exit 1
fi
# shellcheck disable=SC1091
. "$work/exports"
say "gateway $SORNA_ENDPOINT (pid $gw), client $VENV, image $IMAGE"

# The official client reads BACKEND_* (and SORNA_* as fallbacks): pass ours as BACKEND_*,
# nothing else from this shell's environment that could change its behaviour.
client_env=(
  env -i "PATH=$PATH" "HOME=$work/cwd" "XDG_CONFIG_HOME=$work/xdg-client" "LANG=C.UTF-8"
  "BACKEND_ENDPOINT=$SORNA_ENDPOINT" "BACKEND_ENDPOINT_TYPE=api"
  "BACKEND_ACCESS_KEY=$SORNA_ACCESS_KEY" "BACKEND_SECRET_KEY=$SORNA_SECRET_KEY"
)
unset SORNA_SECRET_KEY

ASK='x = input("who? ")
print("hi", x)'
TICKS='import time
for i in range(3):
    print("tick", i, flush=True)
    time.sleep(1)'

n=0
run() {  # run VARIANT RUNNER-ARGS...
  local variant="$1"
  shift
  n=$((n + 1))
  local log="$work/logs/$(printf '%02d' "$n")-${variant// /_}.jsonl"
  local rc=0
  (cd "$work/cwd" && timeout 180 "${client_env[@]}" "$VENV/bin/python" "$RUNNER" \
    --image "$IMAGE" --name "bai-interop-$n-$$" "$@") >"$log" 2>"$log.stderr" || rc=$?
  "$REPO/.venv/bin/python" - "$variant" "$rc" "$log" <<'PY' || status=1
import json, sys

variant, rc, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
steps, summary = [], None
with open(path, encoding="utf-8", errors="replace") as handle:
    for line in handle:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("step") == "summary":
            summary = item
        elif isinstance(item, dict):
            steps.append(item)
ok = rc == 0 and bool(summary and summary.get("ok"))
if summary is None:
    with open(path + ".stderr", encoding="utf-8", errors="replace") as handle:
        tail = handle.read().strip().splitlines()[-1:] or [""]
    text = f"no summary (exit {rc}{', timed out' if rc == 124 else ''}) {tail[0][:200]}"
else:
    text = json.dumps({k: summary.get(k) for k in ("ok", "failed", "api_version", "steps")})
    for step in steps:  # what the server answered, to show the path taken
        if step.get("step") == "execute" and step.get("statuses"):
            text += " execute: " + ",".join(step["statuses"])
        if step.get("step") == "stream_pty" and step.get("ok"):
            text += f" pty: {step.get('frames')} frames"
        if step.get("step") == "destroy" and step.get("ok"):
            text += f" destroy: {json.dumps(step.get('response'))}"
    for step in steps:
        if step.get("step") in (summary.get("failed") or []) and not step.get("ok"):
            why = {k: step[k] for k in ("status", "problem", "error", "statuses", "stdout",
                                          "output", "frames") if step.get(k) not in (None, "")}
            text += f" | {step['step']}: {json.dumps(why, ensure_ascii=False)[:400]}"
            break
print(f"[{variant}] {'ok  ' if ok else 'FAIL'} {text}", flush=True)
sys.exit(0 if ok else 1)
PY
}

for version in v9.20250722 v4.20181215; do
  for front in async sync; do
    flag=()
    [ "$front" = sync ] && flag=(--sync)
    run "$version $front input" --api-version "$version" "${flag[@]}" --no-pty \
      --code "$ASK" --input bob --expect-stdout "hi bob"
  done
done
run "v9.20250722 async continued" --api-version v9.20250722 --no-pty \
  --code "$TICKS" --expect-stdout "tick 2"
run "v4.20181215 sync continued" --api-version v4.20181215 --sync --no-pty \
  --code "$TICKS" --expect-stdout "tick 2"
run "v9.20250722 async pty" --api-version v9.20250722 --no-execute
run "v9.20250722 sync pty" --api-version v9.20250722 --sync --no-execute
run "v4.20181215 async pty" --api-version v4.20181215 --no-execute
run "v9.20250722 async forced-destroy" --api-version v9.20250722 --no-pty --forced-destroy \
  --code 'print("bye")' --expect-stdout bye
run "v4.20181215 sync forced-destroy" --api-version v4.20181215 --sync --no-pty \
  --forced-destroy --code 'print("bye")' --expect-stdout bye

if kill -0 "$gw" 2>/dev/null; then
  kill "$gw"
  wait "$gw" || say "the gateway exited with status $? on SIGTERM"
else
  say "the gateway died during the runs"
  status=1
fi
gw=""
if [ "$status" = 0 ]; then
  say "all $n runs passed"
else
  say "some of the $n runs failed"
fi
exit "$status"

#!/usr/bin/env bash
# Interoperability check against a REAL Backend.AI 26.9.6 manager with a real Docker agent
# (`make interop-backendai`): brings up the lab from ../shared/peers/backendai-26.9
# (lab-up.sh docker), runs tests/interop/backendai_scenario.py on this SDK's public API,
# and stops the lab again (lab-down.sh) unless BAI_LAB_KEEP=1.
# Not part of `make test` or CI: it needs root, Docker, network namespaces and minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
LAB="${BAI_LAB_DIR:-../shared/peers/backendai-26.9}"   # relative to the repository root
STATE="${BAI_LAB_STATE:-/tmp/bai-lab}"                  # where lab-up.sh writes env

if [ ! -f "$LAB/lab-up.sh" ] || [ ! -f "$LAB/lab-down.sh" ]; then
  cat >&2 <<EOF
interop-backendai: the Backend.AI lab is not at $LAB
  (there is no lab-up.sh and lab-down.sh there).
It needs:
  - the lab scripts of the shared peers folder (backendai-26.9: lab-up.sh, lab-down.sh, ...);
    point BAI_LAB_DIR at that folder if it lives elsewhere;
  - root, a kernel that can run Docker containers (overlayfs, cgroups) and network
    namespaces (the lab runs in a private netns with only lo);
  - about 1 GB of free disk in /tmp, and a few minutes the first time (package installs,
    a locally built kernel image; about a minute when only the services start).
EOF
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "interop-backendai: no .venv/bin/python; run 'make interop-backendai' (it creates it)" >&2
  exit 2
fi

stop_lab() {
  echo "interop-backendai: stopping the lab (BAI_LAB_KEEP=1 keeps it up)" >&2
  bash "$LAB/lab-down.sh" >&2 || echo "interop-backendai: lab-down.sh reported a problem" >&2
}
if [ "${BAI_LAB_KEEP:-0}" != 1 ]; then
  trap stop_lab EXIT
fi

echo "interop-backendai: lab-up.sh docker ($LAB)" >&2
# Its stdout repeats the env file, secret key included: keep only its stderr (timings).
bash "$LAB/lab-up.sh" docker >/dev/null
# shellcheck disable=SC1091
. "$STATE/env"
export BACKEND_ENDPOINT BACKEND_ACCESS_KEY BACKEND_SECRET_KEY
export BAI_RUN_IMAGE="${BAI_RUN_IMAGE:-python}"

status=0
.venv/bin/python tests/interop/backendai_scenario.py || status=$?
exit "$status"

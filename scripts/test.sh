#!/usr/bin/env bash
# Runs dream's test suite (sets up .venv first; a no-op when it is current).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
if [ -z "${MENAGERIE_ROOT:-}" ] && [ -d ../shared/menagerie ]; then
  export MENAGERIE_ROOT=$(cd ../shared/menagerie && pwd)
fi
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "no tests were collected" >&2
  exit 1
fi
exit "$status"

#!/usr/bin/env bash
# Fresh machine -> simulated-cell demo: sets up .venv (idempotent), then runs
# `dream demo` (twin of a catalogue object, rest, push, report folder under runs/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/dream demo "$@"

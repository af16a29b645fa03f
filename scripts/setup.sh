#!/usr/bin/env bash
# One-command setup of dream on a fresh Debian machine (Python 3.11):
#   Debian packages -> .venv with pinned requirements -> the four packages (editable).
# Idempotent: a second run checks stamps and returns in seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3.11}

# Debian packages: libusb for pyrealsense2, Mesa EGL for MuJoCo offscreen rendering.
APT_PKGS=(libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libgl1)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] apt-get install ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "dream needs Python 3.11 (the ROS 2 Kilted wheels are cp311)"'

stamp="$VENV/.dream-requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing pinned requirements (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip==25.3
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

pkgs_stamp="$VENV/.dream-packages.sha256"
want=$(cat src/*/setup.py src/*/package.xml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$pkgs_stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing the dream packages (editable)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --config-settings editable_mode=compat \
    -e src/dream_hw -e src/dream_perception -e src/dream_sysid -e src/dream_grasp
  echo "$want" > "$pkgs_stamp"
fi
echo "[setup] ready: $VENV" >&2

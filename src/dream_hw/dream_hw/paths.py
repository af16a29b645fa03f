"""Where dream finds its config and the shared models, installed or in a checkout."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from dream_hw.errors import UserError


def _checkout_root() -> Path | None:
    """The repository root when running from a source checkout (editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "config" / "cell.yaml").is_file() and (parent / "src").is_dir():
            return parent
    return None


def config_dir() -> Path:
    """The config/ folder: $DREAM_CONFIG_DIR, the checkout's, or the installed share/ copy."""
    env = os.environ.get("DREAM_CONFIG_DIR")
    if env:
        path = Path(env)
        if not (path / "cell.yaml").is_file():
            raise UserError(f"DREAM_CONFIG_DIR={env} holds no cell.yaml")
        return path
    root = _checkout_root()
    if root is not None:
        return root / "config"
    for prefix in (Path(sys.prefix), *_ament_prefixes()):
        candidate = prefix / "share" / "dream_hw" / "config"
        if (candidate / "cell.yaml").is_file():
            return candidate
    raise UserError("cannot find dream's config/ (set DREAM_CONFIG_DIR to the folder holding cell.yaml)")


def _ament_prefixes() -> list[Path]:
    return [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def repo_root() -> Path | None:
    """The source checkout, if dream runs from one."""
    return _checkout_root()


def shared_dir() -> Path | None:
    """../shared beside the checkout (models, dex-urdf), when present."""
    root = _checkout_root()
    if root is not None and (root.parent / "shared").is_dir():
        return root.parent / "shared"
    return None

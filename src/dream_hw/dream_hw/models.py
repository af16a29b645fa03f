"""Robot models from MuJoCo Menagerie, through the `mujoco-menagerie` package API.

Resolution order: $MENAGERIE_ROOT; the package's download cache; ../shared/menagerie
beside a checkout (machines without internet); a download.
"""
from __future__ import annotations

import os
from pathlib import Path

from dream_hw.errors import UserError
from dream_hw.paths import shared_dir

HOW_TO_GET = (
    "set MENAGERIE_ROOT to a MuJoCo Menagerie checkout (e.g. MENAGERIE_ROOT=../shared/menagerie) "
    "or give the machine internet access so mujoco-menagerie can download it"
)


def menagerie_dir(robot: str) -> Path:
    """The directory of one Menagerie robot (e.g. 'franka_emika_panda') on disk."""
    import mujoco_menagerie as mm

    try:
        entry = mm.get(robot)
    except mm.MenagerieError as exc:
        raise UserError(f"unknown Menagerie robot {robot!r}: {exc}") from None
    if os.environ.get("MENAGERIE_ROOT"):
        caches = [mm.Cache()]
    else:
        caches = []
        default = mm.Cache()
        if default.is_cached(entry):
            caches.append(default)
        shared = shared_dir()
        if shared is not None and (shared / "menagerie" / robot).is_dir():
            caches.append(mm.Cache(root=shared / "menagerie"))
        caches.append(default)
    errors = []
    for cache in caches:
        try:
            return Path(entry.path(cache, progress=None))
        except (mm.MenagerieError, OSError) as exc:
            errors.append(str(exc))
    raise UserError(f"robot model {robot!r} unavailable ({errors[-1]}); {HOW_TO_GET}")


def menagerie_xml(robot: str, file: str) -> Path:
    """One MJCF file of a Menagerie robot, e.g. ('wonik_allegro', 'right_hand.xml')."""
    path = menagerie_dir(robot) / file
    if not path.is_file():
        raise UserError(f"Menagerie robot {robot!r} has no file {file!r} (looked in {path.parent})")
    return path

"""The object's geometry: a validated watertight mesh, its mass properties at a
given mass, and convex collision parts (MuJoCo collides meshes as convex hulls,
so a non-convex object needs a convex decomposition to rest and be pushed right).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from dream_hw.errors import UserError

MESH_SUFFIXES = (".obj", ".stl", ".ply")
# A mesh whose volume is below this fraction of its convex hull's is decomposed.
CONVEX_FILL = 0.97
MIN_EXTENT_M, MAX_EXTENT_M = 0.005, 1.0


def read_mesh_file(path: str | Path) -> trimesh.Trimesh:
    """An object mesh file (OBJ/STL/PLY) as one triangle mesh; UserError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"object mesh {path} does not exist")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise UserError(f"object mesh {path}: expected one of {', '.join(MESH_SUFFIXES)}, got '{path.suffix}'")
    try:
        return trimesh.load(path, force="mesh", process=True)
    except Exception as exc:  # trimesh raises many kinds on broken files
        raise UserError(f"object mesh {path} could not be read: {exc}".splitlines()[0]) from None


@dataclass(frozen=True)
class MassProperties:
    """Rigid-body mass properties in the mesh frame (the `object` frame)."""

    mass: float
    com: np.ndarray            # (3,) centre of mass
    inertia: np.ndarray        # (3, 3) about the centre of mass, mesh axes

    def principal(self) -> np.ndarray:
        return np.sort(np.linalg.eigvalsh(self.inertia))


@dataclass(frozen=True)
class ObjectGeometry:
    """A watertight object mesh (metres) and the convex parts it collides with."""

    mesh: trimesh.Trimesh
    parts: tuple[trimesh.Trimesh, ...]
    source: str

    @property
    def convex(self) -> bool:
        return len(self.parts) == 1

    @classmethod
    def from_file(cls, path: str | Path, decompose: bool = True) -> "ObjectGeometry":
        return cls.from_mesh(read_mesh_file(path), str(path), decompose)

    @classmethod
    def box(cls, size_xyz: tuple[float, float, float]) -> "ObjectGeometry":
        if min(size_xyz) <= 0:
            raise UserError(f"box size must be positive, got {size_xyz}")
        return cls.from_mesh(trimesh.creation.box(extents=size_xyz), f"box {size_xyz}", decompose=False)

    @classmethod
    def cylinder(cls, radius: float, height: float) -> "ObjectGeometry":
        if radius <= 0 or height <= 0:
            raise UserError(f"cylinder radius and height must be positive, got {radius}, {height}")
        mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=48)
        return cls.from_mesh(mesh, f"cylinder r={radius} h={height}", decompose=False)

    @classmethod
    def from_mesh(cls, mesh: trimesh.Trimesh, source: str, decompose: bool = True) -> "ObjectGeometry":
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            raise UserError(f"object mesh {source} holds no triangles")
        mesh = mesh.copy()
        mesh.remove_unreferenced_vertices()
        if not mesh.is_watertight:
            raise UserError(f"object mesh {source} is not watertight (holes or open edges): "
                            "a closed surface is needed to compute volume and inertia")
        if not mesh.is_winding_consistent:
            raise UserError(f"object mesh {source} has inconsistent face winding")
        if mesh.volume < 0:
            mesh.invert()
        extent = float(mesh.extents.max())
        if not MIN_EXTENT_M <= extent <= MAX_EXTENT_M:
            hint = " (is it in millimetres? dream expects metres)" if extent > MAX_EXTENT_M else ""
            raise UserError(f"object mesh {source} is {extent:.4g} m across: expected "
                            f"{MIN_EXTENT_M}-{MAX_EXTENT_M} m{hint}")
        fill = mesh.volume / mesh.convex_hull.volume
        if fill >= CONVEX_FILL or not decompose:
            parts = (mesh.convex_hull,)
        else:
            parts = tuple(convex_decomposition(mesh))
        return cls(mesh, parts, source)

    def mass_properties(self, mass: float) -> MassProperties:
        """Uniform-density mass properties scaled to `mass` (kg)."""
        if not np.isfinite(mass) or mass <= 0:
            raise UserError(f"object mass must be a positive number of kilograms, got {mass}")
        density = mass / self.mesh.volume
        props = self.mesh.mass_properties
        inertia = np.asarray(props["inertia"]) * density / props["density"]
        return MassProperties(mass=float(mass), com=np.asarray(props["center_mass"], float), inertia=inertia)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dream" / "coacd"


def convex_decomposition(mesh: trimesh.Trimesh, threshold: float = 0.03) -> list[trimesh.Trimesh]:
    """Approximate convex decomposition (CoACD), cached on disk by mesh content.

    Seeded so the same mesh always gives the same parts (twins are reproducible).
    """
    key = hashlib.sha256(np.ascontiguousarray(mesh.vertices, np.float64).tobytes()
                         + np.ascontiguousarray(mesh.faces, np.int64).tobytes()
                         + repr(threshold).encode()).hexdigest()[:24]
    cache = _cache_dir() / f"{key}.npz"
    if cache.is_file():
        data = np.load(cache)
        return [trimesh.Trimesh(data[f"v{i}"], data[f"f{i}"]) for i in range(int(data["n"]))]
    import coacd

    coacd.set_log_level("error")
    result = coacd.run_coacd(coacd.Mesh(mesh.vertices, mesh.faces), threshold=threshold, seed=1,
                             preprocess_mode="auto", max_convex_hull=32)
    parts = [trimesh.Trimesh(v, f).convex_hull for v, f in result]
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"n": np.array(len(parts))}
    for i, part in enumerate(parts):
        arrays[f"v{i}"], arrays[f"f{i}"] = part.vertices, part.faces
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    return parts

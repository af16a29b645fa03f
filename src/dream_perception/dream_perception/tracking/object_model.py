"""The tracked object as ICP needs it: surface samples with normals in the object
frame and a KD-tree over them, built once, so each frame only transforms the
measured points into the object frame and queries the tree."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from dream_hw.errors import UserError



@dataclass(frozen=True)
class ObjectModel:
    """Surface samples (object frame, m) of a mesh; the origin is the `object` frame."""

    mesh: trimesh.Trimesh
    points: np.ndarray          # (N, 3)
    normals: np.ndarray         # (N, 3), outward, unit
    tree: cKDTree = field(repr=False)
    source: str
    object_id: str = ""

    @property
    def radius(self) -> float:
        """Bounding-sphere radius about the origin: gates for segmentation and search."""
        return float(np.linalg.norm(self.mesh.vertices, axis=1).max())

    @property
    def bottom_z(self) -> float:
        """Lowest mesh z: the object's origin stands this far above a table it rests on."""
        return float(self.mesh.vertices[:, 2].min())

    @classmethod
    def from_mesh(cls, mesh: trimesh.Trimesh, source: str, n_points: int = 4000, object_id: str = "",
                  seed: int = 0) -> "ObjectModel":
        if len(mesh.faces) == 0 or mesh.area <= 0:
            raise UserError(f"object mesh {source} has no surface")
        extent = float(np.max(mesh.extents))
        if not 0.005 <= extent <= 1.0:
            raise UserError(f"object mesh {source}: largest extent {extent:.4g} m is not an object's size "
                            "(expected metres, 5 mm to 1 m)")
        pts, faces = trimesh.sample.sample_surface(mesh, int(n_points), seed=seed)
        normals = np.asarray(mesh.face_normals[faces], float)
        pts = np.asarray(pts, float)
        return cls(mesh, pts, normals, cKDTree(pts), source, object_id)

    @classmethod
    def from_file(cls, path: str | Path, n_points: int = 4000, object_id: str = "") -> "ObjectModel":
        from dream_sysid.twin.object_geometry import read_mesh_file

        return cls.from_mesh(read_mesh_file(path), str(path), n_points, object_id)

    @classmethod
    def from_catalogue(cls, object_id: str, catalogue: str | Path | None = None,
                       n_points: int = 4000) -> "ObjectModel":
        """The catalogue's mesh for object_id (dream_sysid's catalogue, imported lazily)."""
        from dream_sysid.catalogue import get_object

        entry = get_object(object_id, catalogue)
        return cls.from_file(entry.mesh_path, n_points, object_id)

    def symmetries(self) -> list[np.ndarray]:
        """Half-turns about the object axes that map the surface onto itself (a box
        has four, the letter U two): poses that differ by them look the same, so
        errors are measured up to them."""
        out = [np.eye(3)]
        tol = 1.5 * float(np.sqrt(self.mesh.area / len(self.points)))   # ~ the sample spacing
        sample = self.points[:: max(1, len(self.points) // 600)]
        for axis in range(3):
            signs = np.ones(3)
            signs[[a for a in range(3) if a != axis]] = -1.0
            rot = np.diag(signs)
            dist, _ = self.tree.query(sample @ rot.T)
            if np.percentile(dist, 90) < tol:
                out.append(rot)
        return out



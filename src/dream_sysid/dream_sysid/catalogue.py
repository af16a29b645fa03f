"""The object catalogue: meshes of the DREAM paper's objects, made by this code.

The paper's objects (letters U and A, a Lego brick, a domino, a cookie, a ketchup
bottle) are rebuilt here from their sizes so the twin, the tests and the demo all
use the same geometry, and so the meshes can be regenerated rather than trusted
as opaque files. Run `python -m dream_sysid.catalogue --out config/objects` to
write the OBJ files and catalogue.yaml; `load_catalogue()` / `get_object()` read
them back. ROS-free: needs numpy, trimesh and PyYAML only.

Mesh convention: metres, +z up, origin at the centre of the axis-aligned bounding
box, the object resting on its face at z = min. Letters lie flat, the letter's
own "up" along +y.
"""
from __future__ import annotations

import argparse
import math
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import trimesh
import yaml

from dream_hw.errors import OneLineArgumentParser, UserError, cli_main
# The twin's rule: a mesh filling this fraction of its hull collides as its hull.
from dream_sysid.twin.object_geometry import CONVEX_FILL

CATALOGUE_FILE = "catalogue.yaml"
DEFAULT_FRICTION = 0.5
DEFAULT_POSE = (0.55, 0.0, 0.0)
_EPS = 1e-12



# --------------------------------------------------------------------------- 2-D

def _signed_area(loop: np.ndarray) -> float:
    x, y = loop[:, 0], loop[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _oriented(loop: Sequence[Sequence[float]], ccw: bool) -> np.ndarray:
    """The loop as an array wound counter-clockwise (outlines) or clockwise (holes)."""
    arr = np.asarray(loop, dtype=float)
    return arr if (_signed_area(arr) > 0) == ccw else arr[::-1].copy()


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _segments_cross(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """True if the segments pq and ab intersect anywhere (touching counts)."""
    d1, d2 = _cross(a, b, p), _cross(a, b, q)
    d3, d4 = _cross(p, q, a), _cross(p, q, b)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and \
            ((d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)):
        return True

    def on(o: np.ndarray, s: np.ndarray, e: np.ndarray, d: float) -> bool:
        return abs(d) <= _EPS and min(s[0], e[0]) - 1e-12 <= o[0] <= max(s[0], e[0]) + 1e-12 \
            and min(s[1], e[1]) - 1e-12 <= o[1] <= max(s[1], e[1]) + 1e-12

    return on(p, a, b, d1) or on(q, a, b, d2) or on(a, p, q, d3) or on(b, p, q, d4)


def _bridge_holes(points: np.ndarray, outer: list[int], holes: list[list[int]]) -> list[int]:
    """Join every hole to the outline by a zero-width cut, giving one loop to ear-clip.

    Each hole is cut from its rightmost vertex to the nearest outline vertex that
    sees it without crossing any edge, so the result stays a (weakly) simple polygon.
    """
    loop = list(outer)
    pending = sorted(holes, key=lambda h: -max(points[i, 0] for i in h))
    while pending:
        hole = pending.pop(0)
        m_pos = max(range(len(hole)), key=lambda k: (points[hole[k], 0], -points[hole[k], 1]))
        m = points[hole[m_pos]]
        edges = [(loop[k], loop[(k + 1) % len(loop)]) for k in range(len(loop))]
        for other in [hole, *pending]:
            edges += [(other[k], other[(k + 1) % len(other)]) for k in range(len(other))]
        order = sorted(range(len(loop)), key=lambda k: (float(np.sum((points[loop[k]] - m) ** 2)), k))
        for k in order:
            v_idx = loop[k]
            v = points[v_idx]
            blocked = False
            for a, b in edges:
                if v_idx in (a, b) or hole[m_pos] in (a, b):
                    continue
                if _segments_cross(m, v, points[a], points[b]):
                    blocked = True
                    break
            if blocked or not _inside_wedge(points, loop, k, m):
                continue
            loop = loop[:k + 1] + hole[m_pos:] + hole[:m_pos + 1] + loop[k:]
            break
        else:
            raise RuntimeError("polygon hole could not be bridged to its outline")
    return loop


def _inside_wedge(points: np.ndarray, loop: list[int], k: int, target: np.ndarray) -> bool:
    """True if the direction from loop vertex k to target points into the polygon's interior."""
    prev, cur, nxt = points[loop[k - 1]], points[loop[k]], points[loop[(k + 1) % len(loop)]]
    if _cross(prev, cur, nxt) >= 0:  # convex corner: target must be left of both edges
        return _cross(prev, cur, target) > 0 and _cross(cur, nxt, target) > 0
    return not (_cross(prev, cur, target) <= 0 and _cross(cur, nxt, target) <= 0)


def _point_in_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    return _cross(a, b, p) >= -_EPS and _cross(b, c, p) >= -_EPS and _cross(c, a, p) >= -_EPS


def triangulate_polygon(outline: Sequence[Sequence[float]],
                        holes: Sequence[Sequence[Sequence[float]]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Ear-clip a polygon with holes: (points (n, 2), triangles (m, 3), counter-clockwise).

    Uses only the given vertices (no Steiner points), so an extrusion's walls meet
    its caps edge to edge and the solid is watertight. No shapely/earcut needed.
    """
    loops = [_oriented(outline, ccw=True)] + [_oriented(h, ccw=False) for h in holes]
    points = np.concatenate(loops)
    starts = np.cumsum([0] + [len(loop) for loop in loops])
    index_loops = [list(range(starts[i], starts[i + 1])) for i in range(len(loops))]
    remaining = _bridge_holes(points, index_loops[0], index_loops[1:])
    triangles: list[tuple[int, int, int]] = []
    while len(remaining) > 3:
        n = len(remaining)
        for k in range(n):
            i0, i1, i2 = remaining[k - 1], remaining[k], remaining[(k + 1) % n]
            a, b, c = points[i0], points[i1], points[i2]
            if _cross(a, b, c) <= _EPS:
                continue
            corners = {i0, i1, i2}
            if any(j not in corners and not _same_point(points, j, corners)
                   and _point_in_triangle(points[j], a, b, c) for j in remaining):
                continue
            triangles.append((i0, i1, i2))
            del remaining[k]
            break
        else:
            raise RuntimeError(f"ear clipping stuck with {n} vertices left")
    if _cross(*(points[i] for i in remaining)) > _EPS:
        triangles.append(tuple(remaining))  # type: ignore[arg-type]
    return points, np.asarray(triangles, dtype=np.int64)


def _same_point(points: np.ndarray, j: int, corners: set[int]) -> bool:
    return any(np.allclose(points[j], points[c], atol=1e-12, rtol=0) for c in corners)


def _arc(cx: float, cy: float, r: float, start: float, stop: float, n: int) -> list[tuple[float, float]]:
    """n + 1 points on a circular arc from angle start to stop (radians), ends included."""
    return [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in np.linspace(start, stop, n + 1)]


def _circle(cx: float, cy: float, r: float, n: int) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)) for k in range(n)]


# --------------------------------------------------------------------------- 3-D

def _finish(vertices: np.ndarray, faces: np.ndarray, name: str) -> trimesh.Trimesh:
    """Centre on the bounding box and check the solid is closed, outward and clean."""
    mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64), process=False)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    if not (mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0):
        raise RuntimeError(f"catalogue mesh {name} is not a closed, outward-wound solid")
    if float(mesh.area_faces.min()) <= 1e-10:
        raise RuntimeError(f"catalogue mesh {name} has degenerate faces")
    return mesh


def extrude_polygon(outline: Sequence[Sequence[float]], height: float,
                    holes: Sequence[Sequence[Sequence[float]]] = (),
                    top_holes: Sequence[Sequence[Sequence[float]]] = ()) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A prism over a polygon: (vertices, faces, top-hole rings as vertex indices).

    `top_holes` are openings left in the top cap only (for studs to be grown from);
    the returned rings are their vertex indices at z = height, counter-clockwise.
    """
    bottom_pts, bottom_tris = triangulate_polygon(outline, holes)
    top_pts, top_tris = triangulate_polygon(outline, list(holes) + list(top_holes))
    # top_pts starts with the same outline + through-hole loops as bottom_pts: the walls join them
    assert np.array_equal(top_pts[:len(bottom_pts)], bottom_pts)
    verts = np.vstack([np.c_[bottom_pts, np.zeros(len(bottom_pts))],
                       np.c_[top_pts, np.full(len(top_pts), height)]])
    off = len(bottom_pts)
    faces = [bottom_tris[:, ::-1], top_tris + off]
    loops = [_oriented(outline, True)] + [_oriented(h, False) for h in holes]
    start = 0
    for loop in loops:
        n = len(loop)
        for k in range(n):
            b0, b1 = start + k, start + (k + 1) % n
            faces.append(np.array([[b0, b1, b1 + off], [b0, b1 + off, b0 + off]]))
        start += n
    rings = []
    for hole in top_holes:
        n = len(hole)
        # holes are stored clockwise in top_pts; report them counter-clockwise
        rings.append((np.arange(start, start + n) + off)[::-1])
        start += n
    return verts, np.vstack(faces), rings


def _loft(rings: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A closed solid through horizontal rings (each (n, 3), counter-clockwise seen from +z),
    bottom to top, capped by a fan at each end."""
    n = len(rings[0])
    verts = [np.asarray(r, float) for r in rings]
    faces = []
    for r in range(len(rings) - 1):
        a, b = r * n, (r + 1) * n
        for k in range(n):
            k1 = (k + 1) % n
            faces.append([a + k, a + k1, b + k1])
            faces.append([a + k, b + k1, b + k])
    bottom_c = len(rings) * n
    top_c = bottom_c + 1
    verts.append(np.array([[*rings[0][:, :2].mean(axis=0), rings[0][0, 2]],
                           [*rings[-1][:, :2].mean(axis=0), rings[-1][0, 2]]]))
    top = (len(rings) - 1) * n
    for k in range(n):
        k1 = (k + 1) % n
        faces.append([bottom_c, k1, k])
        faces.append([top_c, top + k, top + k1])
    return np.vstack(verts), np.asarray(faces, np.int64)


# ----------------------------------------------------------------------- objects

def letter_u(width: float = 0.09, height: float = 0.10, thickness: float = 0.025,
             stroke: float = 0.022, segments: int = 24) -> trimesh.Trimesh:
    """Block letter U lying flat: two legs joined by a half-ring (non-convex)."""
    r_out, r_in = width / 2, width / 2 - stroke
    yc = -height / 2 + r_out
    outline = [(-r_out, height / 2)] + _arc(0, yc, r_out, math.pi, 2 * math.pi, segments) \
        + [(r_out, height / 2), (r_in, height / 2)] \
        + _arc(0, yc, r_in, 2 * math.pi, math.pi, segments) + [(-r_in, height / 2)]
    v, f, _ = extrude_polygon(outline, thickness)
    return _finish(v, f, "letter_u")


def letter_a(width: float = 0.09, height: float = 0.10, thickness: float = 0.025,
             top_width: float = 0.016, stroke: float = 0.02,
             bar_bottom: float = -0.015, bar_top: float = -0.003) -> trimesh.Trimesh:
    """Block letter A lying flat: flat-topped, with a crossbar and the triangular hole (genus 1).

    `stroke` is the legs' horizontal width; bar_* are the crossbar's edges (m, from the centre).
    """
    h2, w2, t2 = height / 2, width / 2, top_width / 2

    def leg_x(y: float, inner: bool) -> float:  # left leg edge at height y
        x = -w2 + (y + h2) / height * (w2 - t2)
        return x + stroke if inner else x

    apex_y = (-(-w2 + stroke)) / (w2 - t2) * height - h2  # where the inner edges meet (x = 0)
    outline = [(-w2, -h2), (leg_x(-h2, True), -h2), (leg_x(bar_bottom, True), bar_bottom),
               (-leg_x(bar_bottom, True), bar_bottom), (-leg_x(-h2, True), -h2), (w2, -h2),
               (t2, h2), (-t2, h2)]
    hole = [(leg_x(bar_top, True), bar_top), (-leg_x(bar_top, True), bar_top), (0.0, apex_y)]
    v, f, _ = extrude_polygon(outline, thickness, holes=[hole])
    return _finish(v, f, "letter_a")


def lego_brick(length: float = 0.064, width: float = 0.032, body_height: float = 0.020,
               stud_diameter: float = 0.0096, stud_height: float = 0.004,
               segments: int = 20) -> trimesh.Trimesh:
    """A 2x4 brick at twice Lego scale: a solid body with 8 studs grown from its top.

    The studs share their base rings with openings in the body's top cap, so the
    union is one watertight surface without a boolean library.
    """
    pitch = length / 4
    centres = [(-1.5 * pitch + i * pitch, -0.5 * pitch + j * pitch) for i in range(4) for j in range(2)]
    outline = [(-length / 2, -width / 2), (length / 2, -width / 2), (length / 2, width / 2), (-length / 2, width / 2)]
    studs = [_circle(cx, cy, stud_diameter / 2, segments) for cx, cy in centres]
    verts, faces, rings = extrude_polygon(outline, body_height, top_holes=studs)
    all_v, all_f = [verts], [faces]
    count = len(verts)
    for ring in rings:
        base = verts[ring]
        top = base + [0, 0, stud_height]
        n = len(ring)
        top_idx = np.arange(count, count + n)
        centre_idx = count + n
        all_v += [top, [[*base[:, :2].mean(axis=0), body_height + stud_height]]]
        for k in range(n):
            k1 = (k + 1) % n
            all_f.append(np.array([[ring[k], ring[k1], top_idx[k1]], [ring[k], top_idx[k1], top_idx[k]],
                                   [centre_idx, top_idx[k], top_idx[k1]]]))
        count += n + 1
    return _finish(np.vstack(all_v), np.vstack(all_f), "lego_brick")


def box(size: tuple[float, float, float], name: str = "box") -> trimesh.Trimesh:
    """A plain box (domino, light and heavy blocks)."""
    mesh = trimesh.creation.box(extents=size)
    return _finish(mesh.vertices, mesh.faces, name)


def domino() -> trimesh.Trimesh:
    """A large (toy) domino lying on its face: 8 x 4 x 2.2 cm.

    Sized so the paper's 106 g gives a plastic-like 1.5 g/cm^3; a 5 x 2.5 x 1 cm
    domino would need 8.5 g/cm^3, i.e. not the paper's object."""
    return box((0.08, 0.04, 0.022), "domino")


def cookie(diameter: float = 0.095, thickness: float = 0.025, segments: int = 48) -> trimesh.Trimesh:
    """A flat disc, 9.5 cm x 2.5 cm: the paper's 210 g at ~1.2 g/cm^3 (a 7 x 1.2 cm disc would be 4.6 g/cm^3)."""
    r = diameter / 2
    ring = np.array([(x, y, 0.0) for x, y in _circle(0, 0, r, segments)])
    v, f = _loft([ring, ring + [0, 0, thickness]])
    return _finish(v, f, "cookie")


def _superellipse(a: float, b: float, n: float, z: float, segments: int) -> np.ndarray:
    """A ring on |x/a|^n + |y/b|^n = 1: n = 2 is an ellipse, larger n a rounded rectangle."""
    t = 2 * np.pi * np.arange(segments) / segments
    c, s = np.cos(t), np.sin(t)
    x = a * np.sign(c) * np.abs(c) ** (2 / n)
    y = b * np.sign(s) * np.abs(s) ** (2 / n)
    return np.c_[x, y, np.full(segments, z)]


def ketchup_bottle(length: float = 0.065, width: float = 0.045, height: float = 0.19,
                   segments: int = 48) -> trimesh.Trimesh:
    """A standing squeeze bottle: rounded-rectangle body, shoulder tapering to a round neck, a cap.

    Slightly non-convex (the cap is wider than the neck) but fills its hull almost fully.
    """
    a, b = length / 2, width / 2
    neck_r, cap_r = 0.011, 0.0135
    # (z, semi-axis x, semi-axis y, superellipse exponent), bottom to top
    profile = [
        (0.000, a - 0.004, b - 0.004, 3.0),
        (0.004, a, b, 3.0),
        (0.110, a, b, 3.0),
        (0.125, a * 0.93, b * 0.95, 2.8),
        (0.138, a * 0.72, b * 0.80, 2.4),
        (0.150, 0.016, 0.015, 2.1),
        (0.158, neck_r, neck_r, 2.0),
        (0.165, neck_r, neck_r, 2.0),
        (0.165, cap_r, cap_r, 2.0),
        (height - 0.002, cap_r, cap_r, 2.0),
        (height, cap_r - 0.002, cap_r - 0.002, 2.0),
    ]
    rings = [_superellipse(sa, sb, n, z, segments) for z, sa, sb, n in profile]
    v, f = _loft(rings)
    return _finish(v, f, "ketchup_bottle")


def light_block() -> trimesh.Trimesh:
    """A 5 cm cube (50 g: a light object to bracket the paper's range)."""
    return box((0.05, 0.05, 0.05), "light_block")


def heavy_block() -> trimesh.Trimesh:
    """An 8 x 8 x 6 cm box (1 kg: a heavy object to bracket the paper's range)."""
    return box((0.08, 0.08, 0.06), "heavy_block")


# --------------------------------------------------------------------- catalogue

@dataclass(frozen=True)
class ObjectSpec:
    """What the generator writes for one object (ground truth from the paper's scenes)."""

    id: str
    name: str
    build: Callable[[], trimesh.Trimesh]
    mass_kg: float
    note: str
    paper_table1_mass_kg: float | None = None
    paper_table1_error_pct: float | None = None
    friction: float = DEFAULT_FRICTION
    pose_xy_yaw: tuple[float, float, float] = DEFAULT_POSE


SPECS: tuple[ObjectSpec, ...] = (
    ObjectSpec("letter_u", "Letter U", letter_u, 0.125,
               "block letter U lying flat, 10 x 9 x 2.5 cm; non-convex (paper object)",
               paper_table1_mass_kg=0.125, paper_table1_error_pct=12.0),
    ObjectSpec("letter_a", "Letter A", letter_a, 0.134,
               "block letter A lying flat, 10 x 9 x 2.5 cm, with its triangular hole; non-convex (paper object)",
               paper_table1_mass_kg=0.134, paper_table1_error_pct=9.0),
    ObjectSpec("lego_brick", "Lego brick", lego_brick, 0.058,
               "2x4 brick at 2x scale, solid body, 8 studs. Mass: the paper's Table I prints 89 g, but the "
               "authors' scene files give 0.058 kg and the printed 8.6 % error matches 53 g estimated "
               "against 58 g, so 0.058 kg is used (paper object)",
               paper_table1_mass_kg=0.089, paper_table1_error_pct=8.6),
    ObjectSpec("domino", "Domino", domino, 0.106,
               "large domino lying on its face, 8 x 4 x 2.2 cm box (paper object; size chosen for a plausible density)",
               paper_table1_mass_kg=0.106, paper_table1_error_pct=9.3),
    ObjectSpec("cookie", "Cookie", cookie, 0.210,
               "flat disc, 9.5 cm diameter x 2.5 cm (paper object; size chosen for a plausible density)",
               paper_table1_mass_kg=0.210, paper_table1_error_pct=4.8),
    ObjectSpec("ketchup_bottle", "Ketchup bottle", ketchup_bottle, 0.725,
               "standing bottle, 6.5 x 4.5 cm rounded-rectangle body, 19 cm tall, neck and cap (paper object)",
               paper_table1_mass_kg=0.725, paper_table1_error_pct=8.1),
    ObjectSpec("light_block", "Light block", light_block, 0.050,
               "5 cm cube; light end of the mass range (not in the paper)"),
    ObjectSpec("heavy_block", "Heavy block", heavy_block, 1.0,
               "8 x 8 x 6 cm box; heavy end of the mass range (not in the paper)"),
)

HEADER = ("# dream object catalogue. GENERATED by `python -m dream_sysid.catalogue --out config/objects`;\n"
          "# edit dream_sysid/catalogue.py and regenerate rather than editing this file.\n"
          "# Meshes: OBJ, metres, +z up, origin at the bounding-box centre, resting on z = min.\n"
          "# mass_kg is the ground truth used by the twin; paper_table1_* are the DREAM paper's\n"
          "# Table I values (mass as printed, identification error in percent) for reference.\n")


def _round(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def _entry(spec: ObjectSpec, mesh: trimesh.Trimesh) -> dict[str, Any]:
    fill = mesh.volume / mesh.convex_hull.volume
    entry: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "mesh": f"{spec.id}.obj",
        "mass_kg": spec.mass_kg,
        "friction": spec.friction,
        "pose_xy_yaw": [float(v) for v in spec.pose_xy_yaw],
        "convex": bool(fill >= CONVEX_FILL),
        "size_m": [_round(v, 4) for v in mesh.extents],
        "volume_cm3": _round(mesh.volume * 1e6, 2),
        "hull_fill": _round(fill, 3),
        "note": spec.note,
    }
    if spec.paper_table1_mass_kg is not None:
        entry["paper_table1_mass_kg"] = spec.paper_table1_mass_kg
    if spec.paper_table1_error_pct is not None:
        entry["paper_table1_error_pct"] = spec.paper_table1_error_pct
    return entry


def generate(out_dir: Path) -> list[dict[str, Any]]:
    """Write every object's OBJ and catalogue.yaml into out_dir; returns the entries.

    Output is byte-for-byte reproducible (fixed digits, no timestamps, no normals).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec in SPECS:
        mesh = spec.build()
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_color=False,
                                               include_texture=False, digits=7,
                                               header=f"dream catalogue object {spec.id} (metres)")
        (out_dir / f"{spec.id}.obj").write_text(text)
        entries.append(_entry(spec, mesh))
    body = yaml.safe_dump({"objects": entries}, sort_keys=False, width=100, allow_unicode=False)
    (out_dir / CATALOGUE_FILE).write_text(HEADER + body)
    return entries


# ------------------------------------------------------------------------ loader

@dataclass(frozen=True)
class CatalogueObject:
    """One catalogue entry, validated, with the mesh path made absolute."""

    id: str
    name: str
    mesh_path: Path
    mass_kg: float
    friction: float
    pose_xy_yaw: tuple[float, float, float]
    convex: bool
    note: str = ""
    paper_table1_mass_kg: float | None = None
    paper_table1_error_pct: float | None = None


def default_catalogue_path() -> Path:
    from dream_hw.paths import config_dir

    return config_dir() / "objects" / CATALOGUE_FILE


def _positive(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{where}: {field} must be a positive number, got {value!r}")
    return float(value)


def _parse_entry(raw: Any, index: int, base: Path, source: Path) -> CatalogueObject:
    if not isinstance(raw, dict):
        raise UserError(f"{source}: objects[{index}] must be a mapping, got {type(raw).__name__}")
    obj_id = raw.get("id")
    if not isinstance(obj_id, str) or not obj_id:
        raise UserError(f"{source}: objects[{index}] has no id")
    where = f"{source}: object '{obj_id}'"
    for field in ("mesh", "mass_kg"):
        if field not in raw:
            raise UserError(f"{where}: missing '{field}'")
    mesh = raw["mesh"]
    if not isinstance(mesh, str) or not mesh:
        raise UserError(f"{where}: mesh must be a file name, got {mesh!r}")
    mesh_path = (base / mesh).resolve()
    if not mesh_path.is_file():
        raise UserError(f"{where}: mesh file {mesh_path} does not exist "
                        "(regenerate with python -m dream_sysid.catalogue)")
    pose = raw.get("pose_xy_yaw", list(DEFAULT_POSE))
    if not (isinstance(pose, list) and len(pose) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pose)):
        raise UserError(f"{where}: pose_xy_yaw must be [x, y, yaw] (m, m, rad), got {pose!r}")
    convex = raw.get("convex", False)
    if not isinstance(convex, bool):
        raise UserError(f"{where}: convex must be true or false, got {convex!r}")
    paper_mass = raw.get("paper_table1_mass_kg")
    paper_err = raw.get("paper_table1_error_pct")
    return CatalogueObject(
        id=obj_id,
        name=str(raw.get("name", obj_id)),
        mesh_path=mesh_path,
        mass_kg=_positive(raw["mass_kg"], where, "mass_kg"),
        friction=_positive(raw.get("friction", DEFAULT_FRICTION), where, "friction"),
        pose_xy_yaw=(float(pose[0]), float(pose[1]), float(pose[2])),
        convex=convex,
        note=str(raw.get("note", "")),
        paper_table1_mass_kg=None if paper_mass is None else _positive(paper_mass, where, "paper_table1_mass_kg"),
        paper_table1_error_pct=None if paper_err is None else _positive(paper_err, where, "paper_table1_error_pct"),
    )


def load_catalogue(path: str | Path | None = None) -> dict[str, CatalogueObject]:
    """The catalogue by object id (default: config/objects/catalogue.yaml); UserError on bad entries."""
    source = Path(path) if path is not None else default_catalogue_path()
    if not source.is_file():
        raise UserError(f"object catalogue {source} does not exist "
                        "(generate it with python -m dream_sysid.catalogue)")
    try:
        data = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"object catalogue {source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise UserError(f"object catalogue {source} must hold a list under 'objects'")
    result: dict[str, CatalogueObject] = {}
    for index, raw in enumerate(data["objects"]):
        entry = _parse_entry(raw, index, source.parent, source)
        if entry.id in result:
            raise UserError(f"{source}: object '{entry.id}' is listed twice")
        result[entry.id] = entry
    return result


def get_object(object_id: str, path: str | Path | None = None) -> CatalogueObject:
    """One catalogue object by id; UserError naming the known ids if it is not there."""
    catalogue = load_catalogue(path)
    if object_id not in catalogue:
        raise UserError(f"unknown object '{object_id}' (catalogue has: {', '.join(sorted(catalogue))})")
    return catalogue[object_id]


# --------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m dream_sysid.catalogue",
        description=textwrap.fill(
            "Generate the object catalogue: one watertight OBJ mesh per object (metres, +z up, "
            "origin at the bounding-box centre) and catalogue.yaml with each object's ground-truth "
            "mass, friction prior, default table pose and the DREAM paper's Table I values. "
            "Output is deterministic: regenerating gives identical files.", width=88),
        epilog="objects: " + ", ".join(s.id for s in SPECS)
               + "\nexample: python -m dream_sysid.catalogue --out config/objects",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder to write into (default: dream's config/objects)")
    return parser


@cli_main("dream_sysid.catalogue")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out if args.out is not None else default_catalogue_path().parent
    entries = generate(out)
    for e in entries:
        size = " x ".join(f"{v * 100:.1f}" for v in e["size_m"])
        print(f"{e['id']:15s} {size:>20s} cm  {e['volume_cm3']:8.2f} cm3  "
              f"{'convex' if e['convex'] else 'non-convex'}", file=sys.stderr)
    print(f"wrote {len(entries)} meshes and {CATALOGUE_FILE} to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

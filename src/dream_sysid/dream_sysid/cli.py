"""`dream`: the project's command line (twin building, the simulated-cell demo).

Errors in what the user gives exit with status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

DESCRIPTION = """dream: real-to-sim-to-real tools for the Franka + Allegro + LEAP cell.

Commands:
  twin build   build the MuJoCo digital twin of an object on the cell's table
  demo         build a twin, let the object rest, push it, write a report folder
"""


def _positive(kind: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} must be a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{kind} must be positive, got {text}")
        return value

    return parse


def add_object_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("object (one of)")
    excl = src.add_mutually_exclusive_group(required=True)
    excl.add_argument("--object", metavar="ID", help="catalogue object id (config/objects/catalogue.yaml)")
    excl.add_argument("--mesh", type=Path, metavar="FILE",
                      help="object mesh (OBJ/STL/PLY, metres, watertight; origin = the object frame)")
    excl.add_argument("--box", type=_positive("box size"), nargs=3, metavar=("X", "Y", "Z"),
                      help="a box of this size (m)")
    props = parser.add_argument_group("physical parameters")
    props.add_argument("--mass", type=_positive("mass"), metavar="KG",
                       help="object mass in kg (default: the catalogue's; required for --mesh/--box)")
    props.add_argument("--friction", type=_positive("friction"), metavar="MU",
                       help="object friction coefficient (default: catalogue's, else 0.5)")
    props.add_argument("--pose", type=float, nargs=3, metavar=("X", "Y", "YAW"),
                       help="object position on the table in world (m) and yaw (rad) "
                            "(default: catalogue's, else 0.55 0 0)")
    parser.add_argument("--cell", type=Path, metavar="YAML", help="cell description (default: config/cell.yaml)")


def resolve_object(args: argparse.Namespace):
    """(object_id, geometry, mass, friction, placement) from the CLI arguments."""
    from dream_sysid.twin.builder import ObjectPlacement
    from dream_sysid.twin.object_geometry import ObjectGeometry

    if args.object:
        from dream_sysid.catalogue import get_object

        entry = get_object(args.object)
        geometry = ObjectGeometry.from_file(entry.mesh_path)
        mass = args.mass or entry.mass_kg
        friction = args.friction or entry.friction
        x, y, yaw = args.pose or entry.pose_xy_yaw
        return entry.id, geometry, mass, friction, ObjectPlacement(x, y, yaw)
    if args.mass is None:
        raise UserError("--mass is required with --mesh or --box (kg)")
    if args.mesh is not None:
        geometry, object_id = ObjectGeometry.from_file(args.mesh), args.mesh.stem
    else:
        geometry, object_id = ObjectGeometry.box(tuple(args.box)), "box"
    x, y, yaw = args.pose or (0.55, 0.0, 0.0)
    return object_id, geometry, args.mass, args.friction or 0.5, ObjectPlacement(x, y, yaw)


def cmd_twin_build(args: argparse.Namespace) -> int:
    from dream_hw.cell import load_cell
    from dream_sysid.twin.builder import build_twin, describe

    cell = load_cell(args.cell)
    object_id, geometry, mass, friction, placement = resolve_object(args)
    twin = build_twin(cell, geometry, kind=args.kind, mass_kg=mass, friction=friction,
                      placement=placement, object_id=object_id)
    scene = twin.save(args.out)
    print(f"twin written to {scene}", file=sys.stderr)
    print(describe(twin))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dream_sysid.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="dream", description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineArgumentParser)

    twin = sub.add_parser("twin", help="digital-twin tools")
    twin_sub = twin.add_subparsers(dest="twin_command", required=True, metavar="ACTION",
                                   parser_class=OneLineArgumentParser)
    build = twin_sub.add_parser(
        "build", help="build a twin MJCF (table, arm + hand, object as a free body)",
        description="Builds the MuJoCo digital twin of the cell with one object on the table: "
                    "the Panda arm with the Allegro hand (--kind push) or the LEAP hand (--kind grasp), "
                    "the object as a free body named 'object' whose inertia is computed from its mesh "
                    "at the given mass. Writes OUT/scene.xml and OUT/twin.yaml; prints one JSON line.",
        epilog="example: dream twin build --object domino --out /tmp/domino_twin",
    )
    add_object_arguments(build)
    build.add_argument("--kind", choices=("push", "grasp"), default="push",
                       help="push twin (arm + Allegro) or grasp twin (arm + LEAP); default push")
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    build.set_defaults(func=cmd_twin_build)

    demo = sub.add_parser(
        "demo", help="simulated-cell demo: rest, push, report",
        description="Builds the push twin of a catalogue object, lets it rest on the table for 5 s, "
                    "pushes it with the Allegro index finger (arm moved by differential IK), prints "
                    "what happened and writes a report folder (twin, trajectory, plots, summary.json).",
    )
    demo.add_argument("--object", default="domino", metavar="ID", help="catalogue object id (default domino)")
    demo.add_argument("--out", type=Path, metavar="DIR", help="report folder (default runs/demo-<time>)")
    demo.add_argument("--push-distance", type=_positive("push distance"), default=0.08, metavar="M",
                      help="how far the fingertip travels past first contact (default 0.08 m)")
    demo.add_argument("--push-speed", type=_positive("push speed"), default=0.15, metavar="M/S",
                      help="fingertip speed during the push (default 0.15 m/s)")
    demo.add_argument("--cell", type=Path, metavar="YAML", help="cell description (default: config/cell.yaml)")
    demo.set_defaults(func=cmd_demo)
    return parser


@cli_main("dream")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

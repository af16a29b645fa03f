"""`dream-sysid`: offline mass identification from a recorded push bag.

    dream-sysid identify BAG [BAG ...] [--scene SCENE.xml] [--object-body NAME] [--report DIR]

Progress goes to stderr; the last line of stdout is the result as one JSON object
(the contract's, ../shared/interfaces.md). Exit status 0 on success (also when the
push did not pin the mass down: `identifiable` is then false), 2 with one line on
stderr on bad input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

PROG = "dream-sysid"

DESCRIPTION = """\
Identifies an object's mass (and its friction) from a recorded robot push by
fitting the MuJoCo digital twin to the tracked motion (DREAM paper, section IV-B).
"""

BAG_HELP = """\
what a push bag must hold (rosbag2 directory: metadata.yaml + mcap, or sqlite3):
  /dream/object/pose              geometry_msgs/PoseStamped, the tracked object in
                                  'world', at least 10 poses (required)
  /dream/push/info                std_msgs/String, one JSON object (required):
                                  object_id, scene (twin MJCF, relative to the bag
                                  directory or absolute), object_body (default
                                  'object'), joint_map (driver joint -> MJCF joint),
                                  program (the push that was run)
  /allegroHand_0/joint_cmd        sensor_msgs/JointState, hand commands (optional)
  /allegroHand_0/joint_states     sensor_msgs/JointState, measured hand (optional;
                                  stands in for missing commands)
  /fr3_arm_controller/joint_trajectory
                                  trajectory_msgs/JointTrajectory, arm commands
  /joint_states                   sensor_msgs/JointState, measured arm (either may
                                  be missing: a static arm is fixed in the twin)
  /sim/object/pose_gt             geometry_msgs/PoseStamped, simulation only
The hand and arm topic names are those of config/cell.yaml. Stamps share one clock
(/clock in simulation). The push executor node (/dream/push/run) records such bags.

output: progress on stderr; the last stdout line is one JSON object:
  {"mass_kg", "mass_ci95_kg", "friction", "identifiable", "warning",
   "pose_rmse_m", "rot_rmse_rad", "iterations", "seconds"}
exit status: 0 on success (also when the mass is not identifiable: see
"identifiable" and "warning"), 2 on bad input (missing topic, unreadable bag,
scene without the object body, too few poses), with one line on stderr.

example:
  dream-sysid identify runs/push_bags/push-flick-20250101-120000 --report /tmp/report
"""


def _log(text: str) -> None:
    print(f"[{PROG}] {text}", file=sys.stderr, flush=True)


def cmd_identify(args: argparse.Namespace) -> int:
    from dream_sysid.bag.reader import read_push_bags

    started = time.monotonic()
    # No progress before the input is validated: bad input is exactly one line on stderr.
    recordings = read_push_bags(args.bags, scene=args.scene, object_body=args.object_body, cell=_cell(args.cell))
    for recording in recordings:
        parts = [f"{len(recording.poses.t)} poses"]
        for label, series in (("hand states", recording.hand_states), ("hand commands", recording.hand_cmds),
                              ("arm states", recording.arm_states)):
            if series is not None:
                parts.append(f"{len(series.t)} {label}")
        if recording.arm_trajectories:
            parts.append(f"{len(recording.arm_trajectories)} arm trajectories")
        _log(f"{recording.path}: {', '.join(parts)}; scene {recording.scene}, object body {recording.object_body!r}")
    if args.report is not None:
        try:
            args.report.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create report folder {args.report}: {exc}") from None

    try:
        from dream_sysid.identification.api import identify
    except ImportError as exc:
        print(f"{PROG}: error: the identification module is not available ({exc})", file=sys.stderr)
        return 1
    first = recordings[0]
    result = identify(recordings, scene=first.scene, object_body=first.object_body,
                      report_dir=args.report, progress=True)
    _log(f"done in {time.monotonic() - started:.1f} s")
    print(result.to_json(), flush=True)
    return 0


def _cell(path: Path | None):
    from dream_hw.cell import load_cell

    return load_cell(path)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineArgumentParser)
    ident = sub.add_parser(
        "identify", help="identify the mass from a push bag",
        description=DESCRIPTION + """
Reads the push bag BAG, fits the twin and prints the result. Several bags
(pushes of the same object in the same scene) are identified together: their
likelihoods over mass add, each push keeping its own friction and latency. A
push is chaotic, so a few pushes pin the mass down better than one (on the
benchmark, three pushes: 7.2 % mean error where one gave 10.7 %;
bench/sysid.py --together 3).""",
        epilog=BAG_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ident.add_argument("bags", type=Path, nargs="+", metavar="BAG",
                       help="push bag directory (rosbag2, mcap or sqlite3); several: pushes of one object")
    ident.add_argument("--scene", type=Path, metavar="SCENE.xml",
                       help="twin MJCF to fit (overrides the scene named in /dream/push/info)")
    ident.add_argument("--object-body", metavar="NAME",
                       help="body of the object in the scene (overrides /dream/push/info; default 'object')")
    ident.add_argument("--report", type=Path, metavar="DIR",
                       help="also write plots (tracked vs simulated trajectory before/after, loss curve, "
                            "loss profile over mass) and the updated twin with the identified mass")
    ident.add_argument("--cell", type=Path, metavar="YAML", help="cell description (default: config/cell.yaml)")
    ident.set_defaults(func=cmd_identify)
    return parser


@cli_main(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

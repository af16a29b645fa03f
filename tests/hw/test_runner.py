"""How dream's nodes stop: Ctrl-C must end the spin between callbacks, never inside one."""
from __future__ import annotations

import subprocess
import sys
import textwrap

# A process that deserialises messages in a tight loop (as a busy subscription does) and
# sends itself SIGINT in the middle of it. With Python's default handler the
# KeyboardInterrupt lands inside rclpy's C deserialiser and surfaces as a TypeError traceback
# (seen in CI: push_executor exited 1 after Ctrl-C mid-push).
_CHILD = textwrap.dedent("""
    import os, signal, sys
    import rclpy
    from rclpy.serialization import deserialize_message, serialize_message
    from geometry_msgs.msg import PoseStamped
    from dream_hw.nodes.runner import StopRequest

    rclpy.init()
    stop = StopRequest().install()
    raw = serialize_message(PoseStamped())
    n = 0
    while not stop.requested:
        deserialize_message(raw, PoseStamped)
        n += 1
        if n == 2000:
            os.kill(os.getpid(), signal.SIGINT)
        if n > 2_000_000:
            sys.exit("SIGINT did not request a stop")
    assert rclpy.ok()          # nodes are destroyed after the loop, not inside the handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # a second Ctrl-C raises
    rclpy.shutdown()
    print("stopped cleanly after", n)
""")


def test_sigint_requests_a_stop_instead_of_raising_mid_callback():
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stopped cleanly" in proc.stdout
    assert "Traceback" not in proc.stderr

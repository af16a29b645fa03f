"""The one way dream's nodes start and stop: a user error in parameters exits 2
with one line; Ctrl-C / SIGTERM shut down cleanly (nodes release hardware in
destroy_node)."""
from __future__ import annotations

import signal
import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from dream_hw.errors import EXIT_BAD_INPUT, UserError


def install_shutdown_signals() -> None:
    """SIGINT (Ctrl-C) and SIGTERM (launch, systemd, docker stop) request a shutdown that the
    spin loop notices between callbacks. Python's default SIGINT raises KeyboardInterrupt
    wherever the main thread happens to be: inside message deserialisation it surfaced as a
    TypeError traceback and exit 1 (CI, push_executor), inside a dynamixel transaction it left
    the port busy for torque-off. A second Ctrl-C raises KeyboardInterrupt as usual, for a node
    that does not stop."""
    def request_shutdown(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rclpy.try_shutdown()

    signal.signal(signal.SIGINT, request_shutdown)
    signal.signal(signal.SIGTERM, request_shutdown)


def run_node(factory: Callable[[], Node], prog: str, args: list[str] | None = None,
             spin: Callable[[Node], None] = rclpy.spin) -> int:
    """Creates the node with `factory` and `spin`s it until shutdown; returns the exit status.

    `spin` may arrange its own executors; it must shut them down before returning."""
    rclpy.init(args=args)
    install_shutdown_signals()
    try:
        node = factory()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return EXIT_BAD_INPUT
    try:
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _spin_quietly(executor) -> None:
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def spin_with_service_thread(node) -> None:
    """Spins `node` on this thread and `node.service_node` on its own, so a service
    callback that waits for motion (a push, a grasp) never blocks the subscriptions
    it waits on. At exit `node.shutdown()` runs first, to release that callback."""
    import threading

    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    service_executor = SingleThreadedExecutor()
    service_executor.add_node(node.service_node)
    service_thread = threading.Thread(target=_spin_quietly, args=(service_executor,), daemon=True)
    service_thread.start()
    try:
        executor.spin()
    finally:
        node.shutdown()
        service_executor.shutdown(timeout_sec=5.0)
        service_thread.join(timeout=5.0)  # a thread still inside rcl at exit aborts the process
        executor.shutdown(timeout_sec=5.0)

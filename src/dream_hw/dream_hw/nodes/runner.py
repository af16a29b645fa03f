"""The one way dream's nodes start and stop: a user error in parameters exits 2
with one line; Ctrl-C / SIGTERM stop the spin between callbacks, then nodes
release hardware in destroy_node."""
from __future__ import annotations

import signal
import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from dream_hw.errors import EXIT_BAD_INPUT, UserError

SPIN_PERIOD_S = 0.1     # how often a spin loop looks at the stop flag


class StopRequest:
    """Set by SIGINT / SIGTERM; spin loops check it between callbacks.

    Why not Python's defaults: SIGINT raises KeyboardInterrupt wherever the main thread
    is. Inside rclpy's message deserialisation it surfaced as a TypeError traceback and
    exit 1 (CI, push_executor); inside a dynamixel transaction it left the port busy for
    torque-off. Shutting rclpy down from the handler is no better: it destroys the nodes
    (closing the LEAP port) in the middle of the callback the signal interrupted.
    A second Ctrl-C raises KeyboardInterrupt as usual, for a node that does not stop."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def install(self) -> "StopRequest":
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)
        return self


def spin_executor(executor, stop: StopRequest, done: Callable[[], bool] = lambda: False) -> None:
    """Spins `executor` on this thread until a stop is requested, rclpy shuts down or `done()`."""
    while rclpy.ok() and not stop.requested and not done():
        executor.spin_once(timeout_sec=SPIN_PERIOD_S)


def spin_until_stopped(node: Node, stop: StopRequest) -> None:
    """Spins `node` on this thread until a stop is requested or rclpy shuts down."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        spin_executor(executor, stop)
    finally:
        executor.shutdown(timeout_sec=5.0)


def run_node(factory: Callable[[], Node], prog: str, args: list[str] | None = None,
             spin: Callable[[Node, StopRequest], None] = spin_until_stopped) -> int:
    """Creates the node with `factory` and `spin`s it until a stop; returns the exit status.

    `spin` may arrange its own executors; it must shut them down before returning."""
    rclpy.init(args=args)
    stop = StopRequest().install()
    try:
        node = factory()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return EXIT_BAD_INPUT
    try:
        spin(node, stop)
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


def spin_with_service_thread(node, stop: StopRequest) -> None:
    """Spins `node` on this thread and `node.service_node` on its own, so a service
    callback that waits for motion (a push, a grasp) never blocks the subscriptions
    it waits on. At exit `node.shutdown()` runs first, to release that callback."""
    import threading

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    service_executor = SingleThreadedExecutor()
    service_executor.add_node(node.service_node)
    service_thread = threading.Thread(target=_spin_quietly, args=(service_executor,), daemon=True)
    service_thread.start()
    try:
        spin_executor(executor, stop)
    finally:
        node.shutdown()
        service_executor.shutdown(timeout_sec=5.0)
        service_thread.join(timeout=5.0)  # a thread still inside rcl at exit aborts the process
        executor.shutdown(timeout_sec=5.0)

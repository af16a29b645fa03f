"""Helpers for ROS tests: spin until a condition holds (never bare sleeps), run
nodes in-process on an executor, or as separate OS processes over DDS."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class TimeoutExpired(AssertionError):
    pass


def spin_until(executor, predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Spin `executor` until predicate() is true; fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutExpired(f"timed out after {timeout:.1f} s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)


class TestNode:
    """A node plus its executor; spins other in-process nodes too when added."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str, context):
        self.context = context
        self.node = Node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def add(self, node: Node) -> Node:
        self.executor.add_node(node)
        return node

    def spin_until(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        spin_until(self.executor, predicate, timeout, what)

    def collect(self, msg_type, topic: str, qos=10, raw: bool = False) -> list:
        """Subscribe and return the list the messages are appended to."""
        box: list = []
        self.node.create_subscription(msg_type, topic, box.append, qos, raw=raw)
        return box

    def close(self) -> None:
        self.executor.shutdown()
        for node in list(self.executor.get_nodes()):
            node.destroy_node()
        self.node.destroy_node()


class NodeProcess:
    """A project node run as its own OS process (python -m module), over DDS.

    Inherits the test's ROS environment (domain, localhost discovery). Output
    goes to a log file that is printed if the test fails.
    """

    def __init__(self, module: str, args: Sequence[str] = (), params: dict | None = None,
                 log_dir: Path | None = None, env: dict | None = None):
        cmd = [sys.executable, "-m", module, *args]
        if params:
            cmd += ["--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={_param(v)}")]
        self.log_path = (log_dir or Path(os.environ.get("ROS_LOG_DIR", "/tmp"))) / f"{module.rsplit('.', 1)[-1]}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Send `sig`, wait for exit (SIGKILL after timeout), return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _param(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param(v) for v in value) + "]"
    return str(value)


def wait_for_publisher(test: TestNode, topic: str, timeout: float = 15.0, owner: NodeProcess | None = None) -> None:
    """Wait for a publisher on `topic`; with `owner`, the process that should publish it, stop
    as soon as it dies and put its output in the failure (a timeout alone says nothing of why)."""
    def published() -> bool:
        return test.node.count_publishers(topic) > 0

    try:
        test.spin_until(lambda: published() or (owner is not None and not owner.alive()), timeout,
                        f"a publisher on {topic}")
    except TimeoutExpired as exc:
        if owner is None:
            raise
        raise TimeoutExpired(f"{exc}; output of {owner.log_path.name}:\n{owner.output()}") from None
    if not published():
        raise AssertionError(f"the process meant to publish {topic} exited ({owner.proc.returncode}):\n"
                             f"{owner.output()}")


def wait_for_subscriber(test: TestNode, topic: str, timeout: float = 15.0) -> None:
    test.spin_until(lambda: test.node.count_subscribers(topic) > 0, timeout, f"a subscriber on {topic}")

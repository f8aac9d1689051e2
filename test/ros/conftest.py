"""Isolation for tests that talk over DDS: a domain of their own, discovery on
localhost only, the package's Fast DDS profile. Set before rclpy starts."""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Iterator

import pytest

from heisd_ros.ros.environment import graph_environment

DOMAIN_ID = 1 + (os.getpid() % 100)
os.environ.update(graph_environment(DOMAIN_ID))

import rclpy  # noqa: E402  (after the environment is set)
from rclpy.executors import SingleThreadedExecutor  # noqa: E402


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, period: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")


class SpinningNode:
    """An rclpy node of the test process, spun on a background thread."""

    def __init__(self, name: str):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutdown races end the loop
                if not self.context.ok():
                    return
                raise

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(timeout=5)
        self.node.destroy_node()


@pytest.fixture
def ros_node(request: pytest.FixtureRequest) -> Iterator[SpinningNode]:
    n = SpinningNode(f"test_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"[:60])
    yield n
    n.close()

"""Isolation for tests that talk over DDS: a domain of their own, discovery on
localhost only, the package's Fast DDS profile. Set before rclpy starts."""
from __future__ import annotations

import os
import threading
import subprocess
import sys
import time
from typing import Callable, Iterator

import pytest

from heisd_ros.ros.environment import graph_environment

DOMAIN_ID = 1 + (os.getpid() % 100)
os.environ.update(graph_environment(DOMAIN_ID))

import rclpy  # noqa: E402  (after the environment is set)
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from heisd_ros.ros.spinner import BackgroundSpinner  # noqa: E402


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, period: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")


class SpinningNode:
    """An rclpy node of the test process, spun on a background thread.

    All test nodes share the process-wide default context (initialised once per
    session): initialising and finalising several contexts in one process can
    deadlock in rclpy's logging teardown."""

    def __init__(self, name: str):
        self.node = rclpy.create_node(name)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.spinner = BackgroundSpinner(self.executor)

    def close(self) -> None:
        self.spinner.stop()
        self.node.destroy_node()


@pytest.fixture(scope="session")
def ros_context() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def ros_node(request: pytest.FixtureRequest, ros_context: None) -> Iterator[SpinningNode]:
    name = "test_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    n = SpinningNode(name[:60])
    yield n
    n.close()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> str:
    """A real bundle, trained for a few steps on procedural demonstrations (about 20 s)."""
    out = tmp_path_factory.mktemp("bundle") / "tiny"
    subprocess.run([sys.executable, "-m", "heisd_ros", "build-bundle", "--data", "synthetic:4:20", "--out", str(out),
                    "--steps", "30", "--drafter-steps", "20", "--cameras", "agentview", "--quiet"],
                   check=True, capture_output=True, timeout=600)
    return str(out)


def call_service(node, srv_type, name: str, request, timeout: float = 15.0, attempts: int = 3):
    """Call a service from a spinning test node and wait for the answer.

    A request sent right after discovery can lose its response (the server's reply
    writer may not have matched this client's reader yet), so an unanswered request is
    sent again, up to ``attempts`` times."""
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=30), f"{name} did not appear"
    for _ in range(attempts):
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if done.wait(timeout / attempts):
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"{name}: no response to {attempts} requests in {timeout:.0f} s")

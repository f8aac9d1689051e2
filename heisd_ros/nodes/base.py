"""What every heisd_ros node shares: parameters from the spec table, a
/diagnostics status, counters, and a main() that shuts down cleanly."""
from __future__ import annotations

import collections
import signal
import sys
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from heisd_ros.ros.param_specs import NODE_PARAMS
from heisd_ros.ros.params import ParameterTable

# diagnostic_msgs levels as ints (the message field itself is a byte).
OK, WARN, ERROR, STALE = 0, 1, 2, 3


class _HeisdNodeMixin:
    """Parameters, status and diagnostics; subclasses set NODE_NAME (a key of NODE_PARAMS)."""

    NODE_NAME = ""

    def __init__(self, **kwargs: Any):
        super().__init__(self.NODE_NAME, **kwargs)
        self.params = ParameterTable(self, NODE_PARAMS[self.NODE_NAME], self.validate_parameter)
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in self.params.values().items()))
        self.counters: collections.Counter[str] = collections.Counter()
        self._status: tuple[int, str] = (OK, "starting")
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(self.params["diagnostics_period_s"], self.publish_diagnostics)

    # Hooks for subclasses -------------------------------------------------
    def validate_parameter(self, name: str, value: Any) -> str | None:
        """Node-specific check of a parameter change; return the reason to reject it."""
        return None

    def diagnostic_values(self) -> dict[str, Any]:
        """Extra key/values for the /diagnostics status."""
        return {}

    # Status ------------------------------------------------------------------
    def set_status(self, level: int, message: str) -> None:
        if (level, message) != self._status and level != OK:
            # rclpy fixes a log call site's severity on first use: one call site per severity
            if level == WARN:
                self.get_logger().warning(message)
            else:
                self.get_logger().error(message)
        self._status = (level, message)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def publish_diagnostics(self) -> None:
        level, message = self._status
        values = {**{f"count.{k}": v for k, v in sorted(self.counters.items())}, **self.diagnostic_values()}
        status = DiagnosticStatus(
            level=bytes([level]), name=f"heisd/{self.get_name()}", message=message, hardware_id=self.get_fully_qualified_name(),
            values=[KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(msg)


class HeisdNode(_HeisdNodeMixin, Node):
    """A plain heisd_ros node."""


class HeisdLifecycleNode(_HeisdNodeMixin, LifecycleNode):
    """A managed (lifecycle) heisd_ros node: configure / activate / deactivate / cleanup."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def run(node_factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Initialise rclpy, spin one node on a single-threaded executor, shut down
    cleanly on SIGINT / SIGTERM. Returns a process exit code."""
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    code = 0
    try:
        node = node_factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a node that cannot start says why and exits non-zero
        if not rclpy.ok():  # interrupted while still starting: the context was shut down under us
            return 0
        logger = node.get_logger() if node is not None else rclpy.logging.get_logger("heisd")
        logger.fatal(f"{type(exc).__name__}: {exc}")
        code = 1
    finally:
        # Ctrl-C in a terminal reaches a node twice (the terminal signals the whole process
        # group, and ros2 launch forwards its own SIGINT): the second must not cut teardown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # try_shutdown restored the handler rclpy replaced
    return code
